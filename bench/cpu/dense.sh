#!/usr/bin/env bash
# The fused dense CPU kernel against this machine's OpenBLAS sgemm (issue 25), side by side in one
# run: numpy's 4096^3 float32 matmul (/usr/bin/python3, every OPENBLAS_* variable unset, so
# OpenBLAS uses all cores) and the fast dense kernel at seq_len 4096 and 16384 (batch 1, 8 heads,
# head_dim 64, fp32, not causal) for each ISA copy (SATTN_CPU_ISA) with the fused block tile and
# with the cblas block tile it replaced (SATTN_CPU_BLOCK_KERNEL=fused|gemm). Each kernel point is
# `sattn bench --backend cpu --specs dense --reps 3` (median of 3 processes, each checked against
# the double-precision reference; `sattn run --check auto` samples 256 rows per head at these sizes).
# The baseline (SSE2) copy runs only at 4096 (at 16384 one point takes minutes).
# bf16 rows (issue 25 "Low precision on the CPU"): the same op at bf16 on the avx512 copy (the fused
# fp32 tile over bf16-rounded copies) and on the amx copy (AMX tiles, docs/decisions.md "bf16 on AMX
# tiles"), in the same rounds; the amx copy has no fp32 rows of its own (fp32 runs the avx512 kernels).
# Writes bench/results/cpu-dense.json; bench/cpu/report.py turns it into a section of cpu.md.
#
#   bench/cpu/dense.sh [BUILD_DIR] [ROUNDS] [REPS]   defaults 1 and 3; a round takes 5 minutes on
#                                                   2 quiet cores, 20+ under load
# ISAS="avx512 amx" limits the copies measured (default: every copy the CPU runs); OUT=FILE writes
# another file than bench/results/cpu-dense.json (report.py also reads cpu-dense-amx.json).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
ROUNDS=${2:-1}
REPS=${3:-3}
SATTN="$BUILD/bin/sattn"
[[ -x $SATTN ]] || { echo "bench/cpu/dense: $SATTN not found: build first" >&2; exit 2; }
work=$(mktemp -d)
# Kept when a step fails (the points measured so far, for a look); removed after the JSON is written.
trap '[[ $? == 0 ]] && rm -rf "$work" || echo "bench/cpu/dense: partial results kept in $work" >&2' EXIT
# The ISA copies this CPU runs, from `sattn doctor` (whose exit status also reports tools this
# benchmark does not use, such as the RVV or Verilator toolchains: only its JSON is read).
doctor=$(SATTN_CPU_ISA= "$SATTN" doctor --format json || true)
isas=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["cpu_isas_available"]))' "$doctor")
if [[ -n ${ISAS:-} ]]; then
  for isa in $ISAS; do [[ " $isas " == *" $isa "* ]] || { echo "bench/cpu/dense: ISAS: $isa is not available here ($isas)" >&2; exit 2; }; done
  isas=$ISAS
fi
OUT=${OUT:-$SRC/bench/results/cpu-dense.json}
# numpy's sgemm with OpenBLAS's own defaults: no OPENBLAS_* variable (thread count, core type).
# Both sides run under the same `nice` (the kernel points always did): a niced kernel beside an
# un-niced sgemm gets ~1/10 of a core that any normal-priority process also wants, which on a
# "quiet" machine with a little background load made the short 4096 kernel spread 111-176 ms
# while sgemm stayed steady.
unset_blas=()
while IFS='=' read -r name _; do [[ $name == OPENBLAS_* ]] && unset_blas+=(-u "$name"); done < <(env)
sgemm() {
  env "${unset_blas[@]}" nice /usr/bin/python3 - <<'PY'
import json, time, numpy as np
n = 4096
rng = np.random.default_rng(25)
a = rng.random((n, n), dtype=np.float32)
b = rng.random((n, n), dtype=np.float32)
a @ b  # warm-up (threads started, pages touched)
times = []
for _ in range(3):
    t = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"n": n, "ms": [x * 1e3 for x in times], "median_ms": times[1] * 1e3,
                  "gflops": 2 * n ** 3 / times[1] / 1e9}))
PY
}
# Every kernel point is preceded by its own sgemm measurement: on a shared machine the load moves
# within minutes, so each ratio compares two measurements taken seconds apart.
point() {  # ISA KERNEL PRECISION SEQ ROUND
  local p="$1-$2-$3-$4-$5"
  echo "bench/cpu/dense: round $5, seq $4, $1, $2, $3: sgemm, then the kernel" >&2
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  sgemm | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); d["load_before"]=sys.argv[1].split(); print(json.dumps(d))' "$load" \
    >"$work/sgemm-$p.json"
  SATTN_CPU_ISA=$1 SATTN_CPU_BLOCK_KERNEL=$2 nice "$SATTN" bench --backend cpu --heads 8 --head-dim 64 \
    --precisions "$3" --reps "$REPS" --timeout 3600 --seq-lens "$4" --specs dense --no-blas-baseline -q \
    -o "$work/$p.json"
  cut -d' ' -f1-3 /proc/loadavg >"$work/load-after-$p"
}
for round in $(seq "$ROUNDS"); do
  for seq in 4096 16384; do
    for isa in $isas; do
      [[ $isa == baseline && $seq != 4096 ]] && continue
      if [[ $isa != amx ]]; then  # fp32 on the amx copy is the avx512 copy's kernels
        for kernel in gemm fused; do point "$isa" "$kernel" fp32 "$seq" "$round"; done
      fi
      if [[ $isa == avx512 || $isa == amx ]]; then point "$isa" fused bf16 "$seq" "$round"; fi
    done
  done
done
/usr/bin/python3 - "$work" "$OUT" "$isas" "$ROUNDS" <<'PY'
import datetime, json, os, platform, subprocess, sys
work, out, isas, rounds = sys.argv[1], sys.argv[2], sys.argv[3].split(), int(sys.argv[4])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
src = os.path.dirname(os.path.dirname(out))
try:
    rev = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
except OSError:
    rev, dirty = "", False
doc = {"schema": "sattn.bench-dense/v1",
       "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
       "git": {"revision": rev, "dirty": dirty},
       "machine": {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(),
                   "isa_flags": sorted(f for f in flags if f.startswith(("avx512", "amx")) or f in ("avx2", "fma"))},
       "problem": {"batch": 1, "heads": 8, "kv_heads": 8, "head_dim": 64, "precisions": ["fp32", "bf16"], "causal": False},
       "sgemm_niced": True,  # sgemm under `nice` like the kernel points (older runs: normal priority)
       "points": []}
for r in range(1, rounds + 1):
    for seq in (4096, 16384):
        for isa in isas:
            for kernel, precision in (("gemm", "fp32"), ("fused", "fp32"), ("fused", "bf16")):
                p = f"{work}/{isa}-{kernel}-{precision}-{seq}-{r}"
                if not os.path.exists(p + ".json"):
                    continue
                sg = json.load(open(f"{work}/sgemm-{isa}-{kernel}-{precision}-{seq}-{r}.json"))
                for rec in json.load(open(p + ".json"))["records"]:
                    fig = rec["figures"]
                    doc["points"].append({"round": r, "isa": isa, "kernel": kernel, "precision": precision,
                                          "seq_len": rec["point"]["seq_len"],
                                          "status": rec["status"], "kernel_ms": fig.get("kernel_ms"),
                                          "kernel_reps_ms": fig.get("kernel_reps_ms"), "gflops": fig.get("gflops"),
                                          "max_rel_error": fig.get("max_rel_error"), "tolerance": fig.get("tolerance"),
                                          "sgemm": sg, "load_after": open(f"{p.replace(work + '/', work + '/load-after-')}").read().split()})
tmp = out + ".tmp"
open(tmp, "w").write(json.dumps(doc, indent=1) + "\n")
os.replace(tmp, out)
print(out)
PY
