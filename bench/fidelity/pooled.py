#!/usr/bin/python3
"""The quality-constrained selector per configuration, on pooled held-out windows (issue 20, the
report's goals): writes bench/results/fidelity-pooled.json; bench/fidelity/report.py adds its
section to bench/results/fidelity.md.

  bench/fidelity/pooled.py [BUILD_DIR] [--ckpt .gpu-carry/model/ckpt.pt] [--corpus .gpu-carry/corpus]
                           [--cache DIR] [--stride 8] [--offset 0] [--bounds window,mean,cv]
                           [--reuse FILE] [--out FILE]     (make bench-fidelity-pooled)
  bench/fidelity/pooled.py --analyse FILE                  (recompute the analysis of FILE in place)

--offset 4 captures a second set of windows (every STRIDE-th from window 4; make
bench-fidelity-pooled-fresh); --bounds measures only those --recall-bound values, and --reuse FILE
keeps FILE's held-out figures, calibration means and other bounds' choices (same windows).

The issue's unit is the configuration (layer, KV-head group, seq) scored on held-out samples. For
each configuration and target R:
- the choice: `sattn-select --min-recall R --recall-bound B` with n calibration windows as repeated
  --data (the selector pools them: per head, a bound from the windows' means), for n in NS and B in
  BOUNDS (window, the default: a prediction bound for one more window; mean: a confidence bound for
  the mean over text; cv: the mean bound at the confidence leave-one-out cross-validation over the
  calibration windows picks, n >= 4); for n = 1 and 2 on several disjoint calibration sets (REPS), each scored on
  its own;
- the held-out figure of every grid point: one `sattn-select --min-recall 0.5` with every held-out
  window as --data, whose plan gives per point `recall_mean`, the worst query head's mean row recall
  over all held-out windows (the pooled rows; each window has the same rows);
- met: the chosen point's pooled held-out recall >= R (dense: 1); within 10 %: the chosen cost <=
  1.1 x the cost of the cheapest grid point whose pooled held-out recall >= R (dense always is).
The held-out set is the same for every n: every captured window more than STRIDE windows (of 1024
bytes) from each of the 16 calibration windows.

Captures Q/K/V on the CPU from the checkpoint of the run that made data/real, as
bench/fidelity/windows.py does (every STRIDE-th 1024-byte window of the held-out text plus
data/real's two), into a cache (default BUILD_DIR/fidelity-windows; reused when the checkpoint, the
corpus and the stride are the same). The checkpoint is not committed: data/README.md says how
data/train.py rebuilds it.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
TARGETS = [0.8, 0.9, 0.95]
SEQS = [256, 512, 1024]
LAYERS = [0, 1, 2, 3]
GROUP = 3            # query heads per KV head
NS = [1, 2, 4, 8, 16]  # calibration windows per selection
POOL = 16            # calibration windows in all (the largest n)
REPS = {1: 4, 2: 2}  # disjoint calibration sets per n (1 when not named): one window is a noisy draw
# sattn-select --recall-bound: the default; the bound for the mean over text; the mean bound at the
# confidence leave-one-out cross-validation on the calibration windows picks (n >= 4; below, mean)
BOUNDS = ["window", "mean", "cv"]
WITHIN = 1.1         # the cost goal: within 10 % of the cheapest held-out-feasible point
GOAL_MET, GOAL_WITHIN = 0.95, 0.90


# ---------------------------------------------------------------------------------------------
# The analysis: pure, from the JSON (tests/cli/fidelity_pooled.sh runs it on a synthetic JSON).

def score_choice(points, chosen, target):
    """points: {label: {"cost", "heldout"}} (dense among them); the choice scored on the pooled
    held-out windows: met, within 10 % of the cheapest point whose held-out recall >= target."""
    feasible = [(p["cost"], label) for label, p in points.items() if p["heldout"] >= target]
    best_cost, best = min(feasible)
    c = points[chosen]
    return {"met": c["heldout"] >= target, "within_10pct": c["cost"] <= WITHIN * best_cost,
            "cost_ratio": c["cost"] / best_cost, "best": best, "best_cost": best_cost,
            "heldout": c["heldout"]}


def analyse(doc):
    """Per bound (--recall-bound) and n (calibration windows): over every (configuration, R,
    calibration set), the rates of met, within 10 % and both; per R as well; plus every case that
    misses a goal."""
    out = {"by_n": [], "misses": []}
    for bound, n in [(b, n) for b in doc.get("bounds", ["window"]) for n in doc["ns"]]:
        rows = []
        for tag, cfg in sorted(doc["configs"].items()):
            for ch in cfg["choices"]:
                if ch["n"] != n or ch.get("bound", "window") != bound:
                    continue
                s = score_choice(cfg["points"], ch["chosen"], ch["target"])
                # Could a selector keeping to points that reach R on its calibration windows (plain
                # pooled worst-head mean, no margin) be within 10 % at all?
                calib_mean = cfg["calib"][str(n)][ch["rep"]]["mean"]
                reach = any(p["cost"] <= WITHIN * s["best_cost"] and
                            (label == "dense" or calib_mean.get(label, 0.0) >= ch["target"])
                            for label, p in cfg["points"].items())
                rows.append(dict(s, config=tag, target=ch["target"], rep=ch["rep"], chosen=ch["chosen"],
                                 calib_bound=ch["calib_bound"], calib_mean=ch["calib_mean"], reachable=reach))
        if not rows:
            continue
        entry = {"bound": bound, "n": n, "sets": 1 + max(r["rep"] for r in rows), "by_target": []}
        for r in doc["targets"] + ["all"]:
            sel = [x for x in rows if r == "all" or x["target"] == r]
            cases = len(sel)
            entry["by_target"].append({
                "target": r, "cases": cases,
                "met": sum(x["met"] for x in sel), "within_10pct": sum(x["within_10pct"] for x in sel),
                "both": sum(x["met"] and x["within_10pct"] for x in sel),
                "dense": sum(x["chosen"] == "dense" for x in sel),
                "reachable": sum(x["reachable"] for x in sel)})
        out["by_n"].append(entry)
        out["misses"] += [dict(x, n=n, bound=bound) for x in rows if not (x["met"] and x["within_10pct"])]
    # A diagnostic, not a selector setting: the choice on the plain pooled calibration mean (no
    # margin, what --recall-confidence 0.5 compares), redone here from the calibration means of
    # every point (the cheapest point whose worst-head mean reaches R, dense when none does) and
    # scored on the same held-out windows.
    out["plain_mean"] = []
    for n in doc["ns"]:
        tot = {"n": n, "cases": 0, "met": 0, "within_10pct": 0, "both": 0}
        for tag, cfg in sorted(doc["configs"].items()):
            for calib in cfg["calib"].get(str(n), []):
                for r in doc["targets"]:
                    ok = sorted((p["cost"], label) for label, p in cfg["points"].items()
                                if label == "dense" or calib["mean"].get(label, 0.0) >= r)
                    s = score_choice(cfg["points"], ok[0][1], r)
                    tot["cases"] += 1
                    tot["met"] += s["met"]
                    tot["within_10pct"] += s["within_10pct"]
                    tot["both"] += s["met"] and s["within_10pct"]
        if tot["cases"]:
            out["plain_mean"].append(tot)
    return out


# ---------------------------------------------------------------------------------------------
# Measuring: capture (cached), then the real sattn-select calls.

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def captured(args):
    """The cache of captured windows: {"windows", "calib_window", "eval_window", "heldout_bytes"}."""
    stamp_path = os.path.join(args.cache, "stamp.json")
    key = {"ckpt_sha256": sha256_file(args.ckpt),
           "corpus_sha256": json.load(open(os.path.join(args.corpus, "manifest.json")))["sha256"],
           "stride": args.stride, "seqs": SEQS}
    if args.offset:
        key["offset"] = args.offset
    if os.path.exists(stamp_path):
        stamp = json.load(open(stamp_path))
        if stamp.get("key") == key:
            return dict(stamp, cached=True)
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(SRC, "data"))
    import windows as capture_windows  # bench/fidelity/windows.py: the same capture
    os.makedirs(args.cache, exist_ok=True)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    wins, calib_w, eval_w, held_bytes = capture_windows.capture(args, args.cache)
    stamp = {"key": key, "windows": wins, "calib_window": calib_w, "eval_window": eval_w, "heldout_bytes": held_bytes}
    with open(stamp_path + ".tmp", "w") as f:
        json.dump(stamp, f)
    os.replace(stamp_path + ".tmp", stamp_path)
    return dict(stamp, cached=False)


def split(windows, stride, offset=0):
    """POOL calibration windows spread evenly over the captured ones (stride windows only), and the
    held-out windows: every captured window more than `stride` windows from each of them."""
    regular = [w for w in windows if (w - offset) % stride == 0]
    pool = [regular[int((i + 0.5) * len(regular) / POOL)] for i in range(POOL)]
    held = [w for w in windows if all(abs(w - c) > stride for c in pool)]
    return pool, held


def calib_sets(pool, n):
    """Disjoint sets of n calibration windows, each spread over the text: pool[r::POOL // n], for
    REPS[n] evenly spaced r."""
    step = POOL // n
    reps = min(REPS.get(n, 1), step)
    return [pool[r * step // reps::step][:n] for r in range(reps)]


def select(bin_dir, op, dirs, target, bound="window", reason=None):
    cmd = ["nice", os.path.join(bin_dir, "sattn-select"), "-q", "--min-recall", str(target), "--recall-bound", bound, op]
    for d in dirs:
        cmd += ["--data", d]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench/fidelity/pooled: {' '.join(cmd[:6])} ... failed ({p.returncode}): {p.stderr[-2000:]}")
    plan = json.loads(p.stdout.splitlines()[0])
    if reason is not None:
        reason.append(plan["selection"]["reason"])
    cands = []
    for c in plan["selection"]["candidates"]:
        t = c["terms"]
        label = f"{c['spec']} {t['params']}".strip()
        cands.append({"label": label, "cost": c["cost"], "feasible": c["feasible"], "chosen": bool(t.get("chosen")),
                      "recall": t.get("recall"), "mean": t.get("recall_mean")})
    return cands


def measure(args, bin_dir, stamp, work, reuse=None):
    """reuse: an earlier JSON of this script on the same windows; its held-out figures, calibration
    means and the choices of the bounds not in args.bounds are kept, only args.bounds are measured."""
    pool, held = split(stamp["windows"], args.stride, args.offset)
    sets = {str(n): calib_sets(pool, n) for n in NS}
    bounds = args.bounds
    doc = {"schema": "sattn.bench-fidelity-pooled/v1", "targets": TARGETS, "ns": NS, "bounds": BOUNDS, "confidence": 0.95,
           "stride": args.stride, "offset": args.offset, "windows": stamp["windows"], "calib_pool": pool, "heldout": held,
           "calib_sets": sets, "configs": {}}
    if reuse is not None:
        if reuse.get("offset", 0) != args.offset:
            sys.exit("bench/fidelity/pooled: --reuse: its offset differs from this run's")
        for key in ("windows", "calib_pool", "heldout", "calib_sets", "targets", "ns", "stride"):
            if reuse[key] != doc[key]:
                sys.exit(f"bench/fidelity/pooled: --reuse: its {key} differ from this run's")
        doc["bounds"] = [b for b in BOUNDS if b in bounds or b in reuse["bounds"]]
    t0 = time.time()
    for seq in SEQS:
        for layer in LAYERS:
            for g in range(2):
                tag = f"L{layer}g{g}s{seq}"
                op = os.path.join(work, f"{tag}.op.json")
                with open(op, "w") as f:
                    json.dump({"schema": "sattn.op/v1", "name": tag, "heads": GROUP, "kv_heads": 1, "seq_len": seq,
                               "head_dim": 64, "causal": True, "precision": "fp32"}, f)
                wdir = lambda w: os.path.join(args.cache, tag, f"w{w:03d}")
                if reuse is not None:
                    old = reuse["configs"][tag]
                    points = old["points"]
                    cfg = {"points": points, "calib": old["calib"],
                           "choices": [c for c in old["choices"] if c.get("bound", "window") not in bounds]}
                else:
                    # Held-out: every grid point's worst-head mean over the pooled held-out windows.
                    points = {}
                    for c in select(bin_dir, op, [wdir(w) for w in held], 0.5):
                        if c["label"] == "dense":
                            points["dense"] = {"cost": c["cost"], "heldout": 1.0}
                        elif c["feasible"]:
                            points[c["label"]] = {"cost": c["cost"], "heldout": c["mean"]}
                    cfg = {"points": points, "choices": [], "calib": {}}
                for n in NS:
                    if reuse is None:
                        cfg["calib"][str(n)] = []
                    for rep, ws in enumerate(sets[str(n)]):
                        per_point = None
                        for bound, r in [(b, r) for b in bounds for r in TARGETS]:
                            reason = []
                            cands = select(bin_dir, op, [wdir(w) for w in ws], r, bound, reason)
                            (ch,) = [c for c in cands if c["chosen"]]
                            if ch["label"] not in points:
                                sys.exit(f"bench/fidelity/pooled: {tag}: the choice {ch['label']} is not a feasible "
                                         "point on the held-out windows")
                            if abs(ch["cost"] - points[ch["label"]]["cost"]) > 1e-9 * ch["cost"]:
                                sys.exit(f"bench/fidelity/pooled: {tag}: {ch['label']} costs differently")
                            # The confidence the bound used (cv: the one cross-validation chose).
                            conf = re.search(r"at confidence ([0-9.]+)", reason[0])
                            cfg["choices"].append({"bound": bound, "n": n, "rep": rep, "target": r, "chosen": ch["label"],
                                                   "calib_bound": 1.0 if ch["label"] == "dense" else ch["recall"],
                                                   "calib_mean": 1.0 if ch["label"] == "dense" else ch["mean"],
                                                   "confidence": float(conf.group(1)) if conf else None})
                            if bound == bounds[0]:  # the pooled calibration means do not depend on the bound
                                per_point = {c["label"]: c for c in cands if c["feasible"] and c["label"] != "dense"}
                        if reuse is None:
                            cfg["calib"][str(n)].append({
                                "windows": ws, "mean": {k: round(c["mean"], 6) for k, c in sorted(per_point.items())}})
                doc["configs"][tag] = cfg
                if sys.stderr.isatty():
                    print(f"bench/fidelity/pooled: {tag} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    return doc


def main():
    ap = argparse.ArgumentParser(description="the quality-constrained selector per configuration, scored on "
                                             "pooled held-out windows (issue 20)")
    ap.add_argument("build", nargs="?", default=os.path.join(SRC, "build"))
    ap.add_argument("--ckpt", default=os.path.join(SRC, ".gpu-carry", "model", "ckpt.pt"))
    ap.add_argument("--corpus", default=os.path.join(SRC, ".gpu-carry", "corpus"))
    ap.add_argument("--cache", help="the captured windows (default BUILD_DIR/fidelity-windows; never committed)")
    ap.add_argument("--stride", type=int, default=8, help="every STRIDE-th 1024-byte window of the held-out text")
    ap.add_argument("--offset", type=int, default=0,
                    help="start at window OFFSET (0 < OFFSET < STRIDE: a second set of windows, none of the default "
                         "set's; its own cache)")
    ap.add_argument("--out", help="write the JSON here instead of bench/results/fidelity-pooled.json (and leave "
                                  "fidelity.md alone)")
    ap.add_argument("--bounds", default=",".join(BOUNDS),
                    help="the --recall-bound values to measure, comma-separated (default: %(default)s)")
    ap.add_argument("--reuse", metavar="FILE",
                    help="keep the held-out figures, calibration means and other bounds' choices of FILE (an "
                         "earlier JSON of this script on the same windows) and measure only --bounds")
    ap.add_argument("--analyse", metavar="FILE", help="recompute the analysis of FILE (a JSON of this script) "
                                                      "and write it back; measures nothing")
    args = ap.parse_args()
    if args.analyse:
        doc = json.load(open(args.analyse))
        doc["analysis"] = analyse(doc)
        with open(args.analyse + ".tmp", "w") as f:
            json.dump(doc, f, separators=(",", ":"))
        os.replace(args.analyse + ".tmp", args.analyse)
        return
    if not 0 <= args.offset < args.stride:
        sys.exit("bench/fidelity/pooled: --offset must be from 0 to below --stride")
    args.bounds = [b for b in args.bounds.split(",") if b]
    if not args.bounds or any(b not in BOUNDS for b in args.bounds):
        sys.exit(f"bench/fidelity/pooled: --bounds: each of {', '.join(BOUNDS)}")
    reuse = json.load(open(args.reuse)) if args.reuse else None
    bin_dir = os.path.join(os.path.abspath(args.build), "bin")
    if not os.path.exists(os.path.join(bin_dir, "sattn-select")):
        sys.exit(f"bench/fidelity/pooled: {bin_dir}/sattn-select not found; build first")
    for path, how in ((args.ckpt, "data/train.py (see data/README.md)"), (args.corpus, "data/make_corpus.py")):
        if not os.path.exists(path):
            sys.exit(f"bench/fidelity/pooled: {path} not found; make it with {how}")
    args.cache = args.cache or os.path.join(os.path.abspath(args.build), "fidelity-windows")
    load = open("/proc/loadavg").read().split()[:3]
    t0 = time.time()
    stamp = captured(args)
    t_capture = time.time() - t0
    with tempfile.TemporaryDirectory() as work:
        doc = measure(args, bin_dir, stamp, work, reuse)
    doc["analysis"] = analyse(doc)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
    rev = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    doc["provenance"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_revision": rev,
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "load_before": load, "load_after": open("/proc/loadavg").read().split()[:3],
        "capture_cached": stamp["cached"], "capture_seconds": round(t_capture), "total_seconds": round(time.time() - t0),
        "command": f"bench/fidelity/pooled.py --stride {args.stride}"
                   + (f" --offset {args.offset}" if args.offset else "") + f" --bounds {','.join(args.bounds)}"
                   + (f" --reuse {os.path.relpath(args.reuse, SRC)}" if args.reuse else "")
                   + (" (make bench-fidelity-pooled-fresh)" if args.offset else " (make bench-fidelity-pooled)")}
    if reuse is not None:
        doc["provenance"]["reused"] = {"bounds": [b for b in reuse["bounds"] if b not in args.bounds],
                                       "provenance": reuse.get("provenance")}
    out = args.out or os.path.join(SRC, "bench", "results", "fidelity-pooled.json")
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(out + ".tmp", out)
    if not args.out:
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "report.py")], check=True)


if __name__ == "__main__":
    main()
