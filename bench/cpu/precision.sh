#!/usr/bin/env bash
# bf16 on AMX tiles against the fp32 and bf16 paths without AMX (issue 25 "Low precision on the
# CPU"), in CPU seconds: sattn_bench_precision times fast_attention_into on one dense op (batch 1,
# HEADS heads, not causal) in one process per configuration, one thread, OPENBLAS_NUM_THREADS=1
# (an idle OpenBLAS worker otherwise spins beside the kernel and is counted in the process's CPU
# time), after a warm-up call. Configurations, run one after the other within each round so that
# each comparison is side by side: fp32 on the avx512 copy (the fused fp32 tile), bf16 on the
# avx512 copy (the same tile on bf16-rounded copies) and bf16 on the amx copy (AMX tiles), at seq
# 4096 and 16384, head_dim 64 and 128. The error of each configuration against the reference is
# checked by `sattn bench` in bench/cpu/dense.sh and by the unit tests, not here.
# Writes bench/results/cpu-precision.json; bench/cpu/report.py turns it into a section of cpu.md.
#
#   bench/cpu/precision.sh [BUILD_DIR] [ROUNDS] [REPS] [HEADS]   defaults 2, 3 and 2
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
ROUNDS=${2:-2}
REPS=${3:-3}
HEADS=${4:-2}
PROBE="$BUILD/bin/sattn_bench_precision"
[[ -x $PROBE ]] || { echo "bench/cpu/precision: $PROBE not found: build it first (target sattn_bench_precision)" >&2; exit 2; }
doctor=$(SATTN_CPU_ISA= "$BUILD/bin/sattn" doctor --format json || true)
isas=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["cpu_isas_available"]))' "$doctor")
[[ " $isas " == *" avx512 "* ]] || { echo "bench/cpu/precision: no avx512 copy on this CPU ($isas)" >&2; exit 2; }
configs=("avx512 fp32" "avx512 bf16")
[[ " $isas " == *" amx "* ]] && configs+=("amx bf16") || echo "bench/cpu/precision: no amx copy here ($isas): bf16 without AMX only" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in $(seq "$ROUNDS"); do
  for seq in 4096 16384; do
    for dim in 64 128; do
      for config in "${configs[@]}"; do
        read -r isa precision <<<"$config"
        echo "bench/cpu/precision: round $round, seq $seq, head_dim $dim, $isa $precision" >&2
        load=$(cut -d' ' -f1-3 /proc/loadavg)
        SATTN_CPU_ISA=$isa OPENBLAS_NUM_THREADS=1 "$PROBE" "$seq" "$HEADS" "$dim" "$precision" "$REPS" 1 |
          /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["round"]=int(sys.argv[1]); d["load_before"]=sys.argv[2].split(); d["load_after"]=open("/proc/loadavg").read().split()[:3]; print(json.dumps(d))' \
            "$round" "$load" >>"$work/points.jsonl"
      done
    done
  done
done
/usr/bin/python3 - "$work/points.jsonl" "$SRC/bench/results/cpu-precision.json" <<'PY'
import datetime, json, os, platform, subprocess, sys
points = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]
src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(out))))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
rev = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = bool(subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True).stdout.strip())
doc = {"schema": "sattn.bench-precision/v1",
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
       "git": {"revision": rev, "dirty": dirty},
       "machine": {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(), "kernel": platform.release(),
                   "isa_flags": sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))},
       "problem": {"batch": 1, "heads": points[0]["heads"] if points else None, "causal": False, "threads": 1},
       "points": points}
tmp = out + ".tmp"
open(tmp, "w").write(json.dumps(doc, indent=1) + "\n")
os.replace(tmp, out)
print(out)
PY
