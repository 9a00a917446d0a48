#!/usr/bin/env bash
# Emit at scale: sattn-emit on one op with seq_len = kv_len = 131072, 8 heads, head_dim 64,
# REPS times per case (default 3), under nice. Writes bench/results/emit.json (the machine, the
# exact ops and command, per run wall / user / system time, peak RSS, the load average before it,
# nnz and the size of every file) and regenerates bench/results/emit.md from it
# (bench/emit/report.py). The cases:
#   window    sliding_window, window_size 512 (1025 keys per row; streamed, never built)
#   causal    the same, causal (513 keys per row)
#   landmark  landmark, 512 landmarks, no refinement (a shared layout built in memory)
# The goal (issue 3): under 5 s, peak memory proportional to nnz (4 bytes per index), never to
# seq_len^2. Each run's arrays are checked with numpy against the envelope.
#
#   bench/emit/run.sh [BUILD_DIR] [REPS] [CASE...]      (about a minute; make bench-emit)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
REPS=${2:-3}
shift $(( $# > 2 ? 2 : $# ))
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(window causal landmark)
EMIT="$BUILD/bin/sattn-emit"
[[ -x $EMIT ]] || { echo "bench/emit: $EMIT not found; build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/runs.jsonl"
for case in "${cases[@]}"; do
  case $case in
    window) attrs='causal = false, window_size = 512 : i64, spec = "sliding_window"' ;;
    causal) attrs='causal = true, window_size = 512 : i64, spec = "sliding_window"' ;;
    landmark) attrs='num_landmarks = 512 : i64, spec = "landmark"' ;;
    *) echo "bench/emit: unknown case '$case' (window, causal, landmark)" >&2; exit 2 ;;
  esac
  printf '"sattn.sparse_attention"() { name = "%s", batch = 1 : i64, heads = 8 : i64, seq_len = 131072 : i64, head_dim = 64 : i64, %s } : () -> ()\n' \
    "$case" "$attrs" >"$work/$case.mlir"
  for rep in $(seq 1 "$REPS"); do
    echo "bench/emit: $case, run $rep of $REPS" >&2
    rm -rf "$work/out"
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    nice /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$EMIT" "$work/$case.mlir" --out-dir "$work/out" >"$work/envelope.json"
    /usr/bin/python3 - "$work" "$case" "$rep" "$load" <<'P' >>"$work/runs.jsonl"
import json, os, sys
import numpy as np
work, case, rep, load = sys.argv[1:5]
d = f"{work}/out"
env = json.load(open(f"{d}/artifacts.json"))
ptr = np.load(f"{d}/row_ptr.npy", mmap_mode="r")
idx = np.load(f"{d}/col_idx.npy", mmap_mode="r")
assert ptr[-1, -1] == len(idx) == env["nnz"], "arrays disagree with the envelope"
wall, user, system, rss = open(f"{work}/time").read().split()
print(json.dumps({"case": case, "rep": int(rep), "op": open(f"{work}/{case}.mlir").read().strip(),
                  "nnz": env["nnz"], "wall_s": float(wall), "user_s": float(user), "system_s": float(system),
                  "max_rss_kib": int(rss), "load_before": [float(x) for x in load.split()],
                  "files": {f: os.path.getsize(f"{d}/{f}") for f in sorted(os.listdir(d))}}))
P
  done
done
/usr/bin/python3 - "$work/runs.jsonl" "$SRC" "$EMIT" <<'P' >"$work/emit.json"
import datetime, json, os, platform, subprocess, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
src, emit = sys.argv[2], sys.argv[3]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
rev = subprocess.run(["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
sattn = os.path.join(os.path.dirname(emit), "sattn")
ver = subprocess.run([sattn, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[0]
print(json.dumps({"schema": "sattn.bench-emit/v1", "provenance": {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_revision": rev,
    "machine": f"{cpu}, {os.cpu_count()} cores, {mem / 1048576:.0f} GiB, {platform.system()} {platform.release()}, host {platform.node()}",
    "sattn_emit": ver, "command": "nice /usr/bin/time sattn-emit CASE.mlir --out-dir out (bench/emit/run.sh, make bench-emit)"},
    "runs": runs}, indent=1))
P
mv "$work/emit.json" "$SRC/bench/results/emit.json"
/usr/bin/python3 "$SRC/bench/emit/report.py"
