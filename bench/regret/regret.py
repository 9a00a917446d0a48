#!/usr/bin/python3
"""Selector regret sweep (issue 8): expand sweep.yaml, measure every candidate (cached), select,
write results.json.

  regret.py measure BUILD_DIR [--jobs 2]   measure missing candidates into cache.json
  regret.py measure BUILD_DIR --cache F --min-seq N   ... a part of the sweep into another cache
  regret.py merge   FILE...                merge such caches into cache.json
  regret.py select  BUILD_DIR [--check]    run sattn-select over the sweep, write results.json
                                           (--check: only verify the target and that results.json
                                           is what this selector picks; exit 5 if not)

Measurements: sattn-sim --model-only (the C++ model, cycle-identical to the RTL) -> sim.cycles;
sattn-run-rvv (qemu, VLEN 256) -> rvv.cycles.total (modelled cycles). The sim runs fp32/bf16 ops
at i8, so rocc configurations are selected and measured at i8 for those.
"""
import argparse, concurrent.futures as cf, hashlib, json, os, random, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
SPECS = ["sliding_window", "bsr", "dense"]
TARGET_FRAC, TARGET_REGRET, MAX_REGRET = 0.90, 0.10, 0.50
# Lower bounds of the dense candidate's cycles, as MACs (2 * allowed pairs * head_dim) per cycle:
# rocc: the MAC array issues at most LANES (16) per cycle, so cycles >= busy >= MACs / 16;
# rvv: the block kernel loads every K element of a kept block once per 4-row tile with a strided
# load, 1 cycle per element in the core model, so cycles >= pairs * d / 4 = MACs / 8.
BOUND_MACS_PER_CYCLE = {"rocc": 16, "rvv": 8}


def dense_bound(plan, backend):
    """The proven lower bound of the dense candidate's cycles: its MACs (from sattn-select's plan)
    over BOUND_MACS_PER_CYCLE."""
    dense = next(x for x in plan["selection"]["candidates"] if x["spec"] == "dense")
    return dense["terms"]["macs"] / BOUND_MACS_PER_CYCLE[backend]


def load_sweep(path=os.path.join(HERE, "sweep.yaml")):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def configs(sw):
    rng = random.Random(sw["seed"])
    out = []
    for i in range(sw["configs"]):
        seq = sw["seq_len"][i % len(sw["seq_len"])]  # every seq_len equally often
        # Long sequences draw from smaller head_dim / group lists (measurement time under qemu).
        big = seq >= sw.get("long_seq", 1 << 62)
        g = rng.choice(sw["long_group"] if big else sw["group"])
        c = {
            "name": f"c{i:02d}",
            "seq_len": seq,
            "head_dim": rng.choice(sw["long_head_dim"] if big else sw["head_dim"]),
            "window_size": rng.choice([w for w in sw["window_size"] if w < seq]),  # window < kv_len
            "block_size": rng.choice(sw["block_size"]),
            "keep_ratio": rng.choice(sw["keep_ratio"]),
            "group": g,
            "causal": rng.choice(sw["causal"]),
            "precision": rng.choice(sw["precision"]),
        }
        c["heldout"] = i % sw["holdout_every"] == sw["holdout_every"] - 1
        out.append(c)
    return out


def op_of(c, backend):
    prec = c["precision"]
    if backend == "rocc" and prec in ("fp32", "bf16"):
        prec = "i8"  # what sattn-sim runs them at
    return {"schema": "sattn.op/v1", "name": c["name"], "batch": 1, "heads": c["group"], "kv_heads": 1,
            "seq_len": c["seq_len"], "head_dim": c["head_dim"], "causal": c["causal"], "precision": prec,
            "window_size": c["window_size"], "block_size": c["block_size"], "keep_ratio": c["keep_ratio"]}


def backends_of(c, sw):
    return ["rocc", "rvv"]


def key_of(op, backend, spec):
    return hashlib.sha1(json.dumps([op, backend, spec], sort_keys=True).encode()).hexdigest()[:16]


def measure_one(build, op, backend, spec, timeout=3600):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(op, f)
        path = f.name
    try:
        if backend == "rocc":
            cmd = [f"{build}/bin/sattn-sim", "--model-only", "--max-cycles", str(1 << 40), "-q", path, "--force-spec", spec]
        else:
            # i8/i4 per-tensor: the datapath the selector's cost model prices (issue 23's schemes cost more)
            cmd = [f"{build}/bin/sattn-run-rvv", "-q", "--timeout", str(timeout), path, "--force-spec", spec,
                   "--quant-scheme", "per-tensor"]
        t0 = time.monotonic()
        p = subprocess.run(["nice"] + cmd, capture_output=True, text=True)
        wall = round(time.monotonic() - t0, 2)
        if p.returncode not in (0, 5):
            return {"error": p.stderr.strip()[-300:], "rc": p.returncode, "timing": {"wall_s": wall}}
        d = json.loads(p.stdout.splitlines()[0])
        cyc = d["sim"]["cycles"] if backend == "rocc" else d["rvv"]["cycles"]["total"]
        return {"cycles": cyc, "allowed_pairs": d["layout"]["allowed_pairs"], "passed": d["check"]["passed"],
                "timing": {"wall_s": wall}}
    finally:
        os.unlink(path)


def cache_path():
    return os.path.join(HERE, "cache.json")


def load_cache(path=None):
    try:
        with open(path or cache_path()) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def save_cache(cache, path=None):
    path = path or cache_path()
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cache, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def undecided_dense(sw, cache, build):
    """(config, backend) pairs from dense_bound_from_seq on whose other candidates are all measured
    but whose dense lower bound does not exceed the best of them: the bound cannot rule dense out,
    so dense is measured after all."""
    out = set()
    long = [c for c in configs(sw) if c["seq_len"] >= sw.get("dense_bound_from_seq", 1 << 62)]
    if not long or not os.path.exists(f"{build}/bin/sattn-select"):
        return out
    for b in ("rocc", "rvv"):
        cs = [c for c in long if b in backends_of(c, sw)]
        for c, plan in zip(cs, select(build, [op_of(c, b) for c in cs], b)):
            op = op_of(c, b)
            others = [cache.get(key_of(op, b, s), {}).get("cycles") for s in SPECS if s != "dense"]
            if None in others:
                continue  # measure the others first; the bound may settle it
            if dense_bound(plan, b) <= min(others):
                out.add((c["name"], b))
    return out


def todo_list(sw, cache, a):
    todo = []
    undecided = undecided_dense(sw, cache, a.build)
    for c in configs(sw):
        if not (a.min_seq <= c["seq_len"] <= a.max_seq):
            continue
        for b in backends_of(c, sw):
            if a.backend and b != a.backend:
                continue
            op = op_of(c, b)
            for s in SPECS:
                if (s == "dense" and c["seq_len"] >= sw.get("dense_bound_from_seq", 1 << 62)
                        and (c["name"], b) not in undecided):
                    continue  # bounded, not run (see cmd_select)
                if s == "dense" and c["seq_len"] > a.max_dense_seq:
                    continue
                k = key_of(op, b, s)
                if k not in cache or (a.retry_errors and "error" in cache[k]):
                    # most expensive first, so that a parallel run ends evenly
                    todo.append((c["seq_len"] ** 2 * c["group"] * c["head_dim"], k, op, b, s))
    if a.cheap_first:  # whole configurations, cheapest first (an interrupted run completes the most)
        group = {}
        for cost, k, op, b, s in todo:
            group[(op["name"], b)] = group.get((op["name"], b), 0) + cost * (5 if b == "rvv" else 1)
        todo.sort(key=lambda t: (group[(t[2]["name"], t[3])], t[2]["name"], t[3], t[0]))
    else:
        todo.sort(key=lambda t: -t[0])
    return [t[1:] for t in todo]


def cmd_measure(a):
    sw = load_sweep()
    cache = load_cache(a.cache)
    todo = todo_list(sw, cache, a)
    print(f"{len(todo)} measurements to run", file=sys.stderr)
    if a.list:
        for k, op, b, s in todo:
            print(k, op["name"], b, s, op["seq_len"], op["heads"], op["head_dim"])
        return
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        futs = {ex.submit(measure_one, a.build, op, b, s, a.timeout): (k, op, b, s) for k, op, b, s in todo}
        for n, fu in enumerate(cf.as_completed(futs)):
            k, op, b, s = futs[fu]
            cache[k] = dict(fu.result(), backend=b, spec=s, config=op["name"])
            print(f"[{n+1}/{len(todo)}] {op['name']} seq {op['seq_len']} {b} {s}: "
                  f"{cache[k].get('cycles', cache[k].get('error'))} ({cache[k]['timing']['wall_s']} s)",
                  file=sys.stderr, flush=True)
            save_cache(cache, a.cache)
    save_cache(cache, a.cache)


def cmd_merge(a):
    """Merge measurement caches (e.g. written on another machine) into cache.json."""
    cache = load_cache()
    for path in a.files:
        for k, v in load_cache(path).items():
            if "error" not in v or k not in cache:
                cache[k] = v
    save_cache(cache)


def select(build, ops, backend):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for op in ops:
            f.write(json.dumps(op) + "\n")
        path = f.name
    try:
        p = subprocess.run([f"{build}/bin/sattn-select", "-q", "--backend", backend, path],
                           capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def summarize(rows):
    r = sorted(x["regret"] for x in rows)
    n = len(r)
    if n == 0:
        return {"n": 0}
    within = sum(1 for x in r if x <= TARGET_REGRET)
    return {"n": n, "within_10pct": within, "frac_within_10pct": within / n,
            "max": r[-1], "median": r[n // 2], "mean": sum(r) / n,
            "p90": r[min(n - 1, int(0.9 * n))],
            "target_met": within / n >= TARGET_FRAC and r[-1] <= MAX_REGRET}


def cmd_select(a):
    sw = load_sweep()
    cache = load_cache(a.cache)
    cfgs = configs(sw)
    rows, skipped, ratios = [], [], {}
    for b in ("rocc", "rvv"):
        sel_cfgs = [c for c in cfgs if b in backends_of(c, sw)]
        plans = select(a.build, [op_of(c, b) for c in sel_cfgs], b)
        for c, plan in zip(sel_cfgs, plans):
            op = op_of(c, b)
            m = {s: cache.get(key_of(op, b, s), {}).get("cycles") for s in SPECS}
            m = {s: v for s, v in m.items() if v is not None}
            cand = {x["spec"]: x for x in plan["selection"]["candidates"]}
            if m.get("dense"):
                ratios.setdefault(b, []).append(dense_bound(plan, b) / m["dense"])
            bound = None
            if "dense" not in m and c["seq_len"] >= sw.get("dense_bound_from_seq", 1 << 62):
                # Dense is not run here: a proven lower bound of its cycles stands in (BOUNDS in
                # bench/results/regret.md); it only counts when it exceeds a measured candidate.
                bound = dense_bound(plan, b)
                others = [v for s, v in m.items() if s != "dense"]
                if len(others) == len(SPECS) - 1 and bound > min(others):
                    m["dense"] = None
            if len(m) < len(SPECS):  # not (yet) measured: left out of the statistics, listed as such
                skipped.append(f"{c['name']}/{b}")
                continue
            meas = {s: v for s, v in m.items() if v is not None}
            oracle = min(meas, key=meas.get)
            chosen = plan["spec"]
            if chosen in meas:
                regret = meas[chosen] / meas[oracle] - 1
            else:  # chose the bounded dense: its regret is at least this
                regret = bound / meas[oracle] - 1
            rows.append({"config": c["name"], "backend": b, "heldout": c["heldout"], "op": op,
                         "measured": m, "modelled": {s: cand[s].get("cost") for s in SPECS},
                         "dense_lower_bound": bound, "oracle": oracle, "chosen": chosen, "regret": regret})
    summary = {}
    for b in ("rocc", "rvv"):
        for part, pred in (("tuning", lambda r: not r["heldout"]), ("heldout", lambda r: r["heldout"]),
                           ("all", lambda r: True)):
            summary[f"{b}/{part}"] = summarize([r for r in rows if r["backend"] == b and pred(r)])
    ok = all(summary[f"{b}/all"]["target_met"] for b in ("rocc", "rvv"))
    for k, v in summary.items():
        print(f"{k:14s} n={v['n']:3d} within10%={v.get('frac_within_10pct', 0):.0%} "
              f"median={v.get('median', 0):.3f} max={v.get('max', 0):.3f}", file=sys.stderr)
    if a.check:
        # The committed results must be what this selector gives on this cache.
        try:
            with open(os.path.join(HERE, "results.json")) as f:
                committed = {(r["config"], r["backend"]): r["chosen"] for r in json.load(f)["rows"]}
        except FileNotFoundError:
            committed = {}
        stale = [f"{r['config']} {r['backend']}: results.json says {committed.get((r['config'], r['backend']))}, "
                 f"sattn-select now picks {r['chosen']}" for r in rows
                 if committed.get((r["config"], r["backend"])) != r["chosen"]]
        if stale and not a.cache:
            print("regret: error: bench/regret/results.json is stale (rerun bench/regret/run.sh):", file=sys.stderr)
            for x in stale:
                print("  " + x, file=sys.stderr)
            sys.exit(5)
        if not ok:
            print("regret: error: target missed (>=90% of configs within 10% regret and none above 50%, "
                  "per backend)", file=sys.stderr)
            for r in rows:
                if r["regret"] > TARGET_REGRET:
                    print(f"  {r['config']} {r['backend']}: chose {r['chosen']}, oracle {r['oracle']}, "
                          f"regret {r['regret']:.3f}", file=sys.stderr)
            sys.exit(5)
        return
    out = {"schema": "sattn.regret/v1", "sweep": sw, "target": {"frac_within": TARGET_FRAC,
           "regret_within": TARGET_REGRET, "max_regret": MAX_REGRET}, "summary": summary, "rows": rows, "unmeasured": skipped,
           "bound_check": {b: f"{min(r):.3f} to {max(r):.3f} over {len(r)} runs" for b, r in ratios.items()}}
    if a.before:
        out["before_tuning"] = json.load(open(a.before))["summary"]
    elif os.path.exists(os.path.join(HERE, "results.json")):
        prev = json.load(open(os.path.join(HERE, "results.json")))
        if "before_tuning" in prev:
            out["before_tuning"] = prev["before_tuning"]
    path = a.output or os.path.join(HERE, "results.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure"); m.add_argument("build"); m.add_argument("--jobs", type=int, default=2)
    m.add_argument("--cache", help="read and write this cache instead of cache.json")
    m.add_argument("--min-seq", type=int, default=0); m.add_argument("--max-seq", type=int, default=1 << 30)
    m.add_argument("--backend", choices=["rocc", "rvv"]); m.add_argument("--timeout", type=float, default=3600)
    m.add_argument("--retry-errors", action="store_true"); m.add_argument("--list", action="store_true")
    m.add_argument("--max-dense-seq", type=int, default=1 << 30, help="leave dense out above this seq_len")
    m.add_argument("--cheap-first", action="store_true",
                   help="whole configurations, cheapest first (default: the most expensive measurement first)")
    g = sub.add_parser("merge"); g.add_argument("files", nargs="+")
    s = sub.add_parser("select"); s.add_argument("build"); s.add_argument("--check", action="store_true")
    s.add_argument("--cache", help="take measurements from this cache instead of cache.json (--check then skips "
                   "the comparison with results.json)")
    s.add_argument("--before", help="record this results.json's summary as before_tuning")
    s.add_argument("-o", "--output")
    a = ap.parse_args()
    {"measure": cmd_measure, "select": cmd_select, "merge": cmd_merge}[a.cmd](a)


if __name__ == "__main__":
    main()
