#!/usr/bin/python3
"""The accelerator grid's scaling benchmark (hw/README.md "Grid"): speedup and parallel
efficiency against the tile count for bsr, sliding_window and block_local_global, causal and
not, with and without multicast, for each schedule. Runs the grid model through
BUILD/bin/sattn_bench_grid (bench/grid/bench_grid.cpp: one program per op, built once; the 1x1
output checked against the fp32 reference, every grid's output bits checked equal to the 1x1
run's; the same model `sattn sim --model-only --grid RxC` runs) and writes
bench/results/grid.json; bench/grid/report.py turns it into grid.md and the plots.

  bench/grid/run.py [--seq-len N] [--quick] [--jobs J] [BUILD_DIR]   (seq_len 16384, the issue's; J ops at once)
  bench/grid/run.py --target-seq N [BUILD_DIR]   add causal bsr at 1x1 and 8x10 (dynamic, multicast
                                                 on and off) at seq_len N to the committed grid.json
  bench/grid/run.py --add SPEC CAUSAL(0|1) TILES:SCHEDULE:MULTICAST(on|heads|off),... [BUILD_DIR]
                                                 add configurations of one op (at grid.json's
                                                 seq_len) to the committed grid.json
  bench/grid/run.py --engines N [BUILD_DIR]      add causal bsr 8x10 (dynamic, multicast on) at seq_len
                                                 N run by both engines (event, stepped) side by side

A failed check fails the benchmark. Cycle counts are deterministic; the times recorded are the
model's (wall and CPU: on a shared machine the CPU time is the one to read). grid.json is written
after every op, so an interrupted sweep leaves the ops it finished.
"""
import json, os, platform, subprocess, sys, tempfile, time

src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
args = sys.argv[1:]
seq = 16384
jobs = 1
quick = False
target_seq = None
engines_seq = None
add = None
while args and args[0].startswith("--"):
    if args[0] == "--seq-len":
        seq = int(args[1]); args = args[2:]
    elif args[0] == "--add":
        add = (args[1], args[2] == "1", [(int(t), s, m if m == "heads" else m == "on") for t, s, m in (c.split(":") for c in args[3].split(","))])
        args = args[4:]
    elif args[0] == "--engines":
        engines_seq = int(args[1]); args = args[2:]
    elif args[0] == "--target-seq":
        target_seq = int(args[1]); args = args[2:]
    elif args[0] == "--jobs":
        jobs = int(args[1]); args = args[2:]
    elif args[0] == "--quick":
        quick = True; args = args[1:]
    else:
        sys.exit(f"bench/grid/run.py: unknown option {args[0]}")
build = args[0] if args else os.path.join(src, "build")
sattn = os.path.join(build, "bin", "sattn")
driver = os.path.join(build, "bin", "sattn_bench_grid")
if not os.access(driver, os.X_OK):
    sys.exit(f"bench/grid/run.py: {driver} not found: build first")

SPECS = {
    "bsr": {"spec": "bsr", "block_size": 64, "keep_ratio": 0.1},
    "sliding_window": {"spec": "sliding_window", "window_size": 256},
    "block_local_global": {"spec": "block_local_global", "block_size": 64, "window_blocks": 1, "global_tokens": 64},
}
GRIDS = {1: "1x1", 4: "2x2", 16: "4x4", 40: "5x8", 80: "8x10"}
SHAPE = {"seq_len": seq, "heads": 32, "kv_heads": 8, "head_dim": 64, "precision": "i8"}

# (spec, causal, tiles, schedule, multicast)
points = []
for spec in SPECS:
    for causal in (True, False):
        for tiles in GRIDS:
            points.append((spec, causal, tiles, "dynamic", True))
        for sched in ("static", "zigzag"):
            points.append((spec, causal, 80, sched, True))
        points.append((spec, causal, 80, "dynamic", False))
for tiles in (4, 16, 40):
    points.append(("bsr", True, tiles, "dynamic", False))
for tiles in (16,):
    for sched in ("static", "zigzag"):
        points.append(("bsr", True, tiles, sched, True))
if quick:
    points = [p for p in points if p[0] == "bsr" and p[1]]


def mode_name(mc):
    """A configuration's multicast: True (on: heads x query tiles), "heads" (the heads only), False (off)."""
    return mc if isinstance(mc, str) else "on" if mc else "off"


def record_mode(r):
    """A record's multicast mode (records before the heads x query tiles gangs have none: on or off)."""
    return r.get("multicast_mode", "on" if r["multicast"] else "off")


def run_op(spec, causal, seq_len, configs):
    """Runs configs [(tiles, schedule, multicast[, "stepped"])] of one op; returns their records."""
    cmd = [driver, spec, str(seq_len), "1" if causal else "0"] + \
          [f"{GRIDS[c[0]]}:{c[1]}:{mode_name(c[2])}" + (":stepped" if len(c) > 3 else "") for c in configs]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench/grid: {' '.join(cmd)} failed (exit {p.returncode}): {p.stderr.strip()}")
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    for r in recs:
        r["wall_s"] = round(r["model_ms"] / 1000, 2)
        r["cpu_s"] = round(r["model_cpu_ms"] / 1000, 2)
    print(f"{spec} causal={causal} seq_len={seq_len}: {len(recs)} configurations, {time.time() - t0:.1f} s",
          file=sys.stderr)
    return recs


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def load_avg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


out = os.path.join(src, "bench", "results", "grid.json")
if add:
    spec, causal, configs = add
    recs = run_op(spec, causal, json.load(open(out))["shape"]["seq_len"], configs)
    doc = json.load(open(out))  # read again: another --add may have written it meanwhile
    key = lambda r: (r["spec"], r["causal"], r["tiles"], r["schedule"], record_mode(r))
    new = {key(r) for r in recs if r["tiles"] > 1}
    doc["records"] = [r for r in doc["records"] if key(r) not in new] + [r for r in recs if r["tiles"] > 1]
    doc.setdefault("added", []).append({"op": [spec, causal], "configs": sorted(new), "load_average": load_avg(),
                                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)
    sys.exit(0)
if engines_seq:
    doc = json.load(open(out))
    recs = run_op("bsr", True, engines_seq, [(80, "dynamic", True), (80, "dynamic", True, "stepped")])
    doc.setdefault("engine_runs", {})[str(engines_seq)] = {"load_average": load_avg(), "records": recs}
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)
    sys.exit(0)
if target_seq:
    doc = json.load(open(out))
    recs = run_op("bsr", True, target_seq, [(1, "dynamic", True), (80, "dynamic", True), (80, "dynamic", False)])
    doc.setdefault("target_runs", {})[str(target_seq)] = {"load_average": load_avg(), "records": recs}
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)
    sys.exit(0)

records = []
t_start = time.time()
load0 = load_avg()
by_op = {}
for spec, causal, tiles, sched, mc in points:
    by_op.setdefault((spec, causal), []).append((tiles, sched, mc))
# The targets' ops first (causal bsr; block_local_global's non-causal imbalance), so a sweep cut
# short still has them.
first = [("bsr", True), ("block_local_global", False)]
by_op = {k: by_op[k] for k in first if k in by_op} | {k: v for k, v in by_op.items() if k not in first}
version = subprocess.run([sattn, "--version"], capture_output=True, text=True).stdout.strip()


def write(final):
    doc = {"schema": "sattn.bench-grid/v1",
           "provenance": {"sattn": version, "machine": platform.machine(), "cpus": os.cpu_count(),
                          "cpu_model": cpu_model(), "node": platform.node(), "load_average_start": load0,
                          "load_average_end": load_avg(), "jobs": jobs,
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                          "total_wall_s": round(time.time() - t_start, 1), "complete": final},
           "shape": dict(SHAPE, lanes=16, dram_latency_cycles=40, dram_bytes_per_cycle=16, dram_ports=1),
           "specs": SPECS, "records": records}
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)


# The ops in parallel (each a process of its own), grid.json rewritten as each one finishes.
from concurrent.futures import ThreadPoolExecutor, as_completed
with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
    futures = [pool.submit(run_op, spec, causal, seq, configs) for (spec, causal), configs in by_op.items()]
    for fut in as_completed(futures):
        records += fut.result()
        order = {p: i for i, p in enumerate(points)}
        records.sort(key=lambda r: order.get((r["spec"], r["causal"], r["tiles"], r["schedule"], r["multicast"]), -1))
        write(False)
write(True)
print(f"bench/grid: wrote {out}", file=sys.stderr)
