#!/usr/bin/env bash
# Cost growth of sattn-emit: sliding_window (streamed) with two windows and landmark (a built
# layout), 8 heads, head_dim 64, seq_len 16384..131072 (landmark to 65536), each run REPS times
# (default 3) one after another under nice. Per run: wall ms, user+system CPU ms of the process
# (getrusage of the child, microseconds), max RSS, the load average before it. Writes JSON lines
# to stdout; bench/scaling/report.py pack-emit turns them into bench/results/scaling.json.
#   bench/scaling/emit.sh [BUILD_DIR] [REPS] > runs.jsonl        (about 1-2 minutes)
set -euo pipefail
BUILD=${1:-build}
REPS=${2:-3}
EMIT="$BUILD/bin/sattn-emit"
[[ -x $EMIT ]] || { echo "emit.sh: $EMIT not found" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for case in window128 window512 landmark; do
  for n in 16384 32768 65536 131072; do
    case $case in
      window128) attrs='window_size = 128 : i64, spec = "sliding_window"' ;;
      window512) attrs='window_size = 512 : i64, spec = "sliding_window"' ;;
      landmark) [[ $n -gt 65536 ]] && continue; attrs='num_landmarks = 256 : i64, spec = "landmark"' ;;
    esac
    printf '"sattn.sparse_attention"() { name = "s", batch = 1 : i64, heads = 8 : i64, seq_len = %d : i64, head_dim = 64 : i64, causal = false, %s } : () -> ()\n' "$n" "$attrs" >"$work/op.mlir"
    for rep in $(seq 1 "$REPS"); do
      rm -rf "$work/out"
      echo "emit.sh: $case n=$n rep $rep" >&2
      # The child's own CPU time and peak RSS from wait4(); wall time around it.
      /usr/bin/python3 - "$EMIT" "$work" "$case" "$n" "$rep" <<'P'
import json, os, sys, time
emit, work, case, n, rep = sys.argv[1:6]
load = float(open("/proc/loadavg").read().split()[0])
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.nice(10)
    fd = os.open(f"{work}/env.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1)
    os.execv(emit, [emit, f"{work}/op.mlir", "--out-dir", f"{work}/out"])
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
if status != 0:
    sys.exit(f"emit.sh: sattn-emit failed (status {status})")
nnz = json.load(open(f"{work}/out/artifacts.json"))["nnz"]
print(json.dumps({"tool": "sattn-emit", "case": case, "seq_len": int(n), "heads": 8, "rep": int(rep), "nnz": nnz,
                  "wall_ms": round(wall * 1e3, 2), "cpu_ms": round((ru.ru_utime + ru.ru_stime) * 1e3, 2),
                  "max_rss_kib": ru.ru_maxrss, "load_before": load}))
P
    done
  done
done
