#!/usr/bin/env bash
# The RVV benchmark (issue 4): scalar, autovec and rvv kernels at VLEN 128/256/512/1024 for
# sliding_window, bsr and topk_per_query (seq_len 1024, head_dim 64, one head), every precision
# (i8/i4 with the per-tensor quantization scheme, the kernels' loop work; the schemes' cost is in
# bench/results/quant.md).
# Dynamic instruction counts (exact, from the QEMU plugin) and modelled cycles (default core
# model) go to bench/results/rvv.md; the counts also go to bench/rvv/baseline.json, the
# regression baseline (counts are deterministic).
#
#   bench/rvv/run.sh [BUILD_DIR]          run everything, write the report and the baseline
#   bench/rvv/run.sh --check [BUILD_DIR]  run everything, compare with the committed baseline
set -euo pipefail
check=0
if [[ ${1:-} == --check ]]; then check=1; shift; fi
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
RVV="$BUILD/bin/sattn-run-rvv"
PY=/usr/bin/python3
[[ -x $RVV ]] || { echo "bench/rvv: $RVV not found: build the project first" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

declare -A attrs=(
  [sliding_window]='window_size = 64 : i64'
  [bsr]='block_size = 64 : i64, keep_ratio = 0.125 : f64'
  [topk_per_query]='topk_k = 64 : i64'
)
specs=(sliding_window bsr topk_per_query)
precisions=(fp32 bf16 i8 i4)
kernels=(scalar autovec rvv)
vlens=(128 256 512 1024)

for spec in "${specs[@]}"; do
  printf '"sattn.sparse_attention"() { name = "%s", spec = "%s", batch = 1 : i64, heads = 1 : i64, kv_heads = 1 : i64, seq_len = 1024 : i64, kv_len = 1024 : i64, head_dim = 64 : i64, causal = false, %s } : () -> ()\n' \
    "$spec" "$spec" "${attrs[$spec]}" >"$WORK/$spec.mlir"
done

total=$(( ${#specs[@]} * ${#precisions[@]} * ${#kernels[@]} * ${#vlens[@]} ))
n=0
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for spec in "${specs[@]}"; do
  for p in "${precisions[@]}"; do
    for k in "${kernels[@]}"; do
      for v in "${vlens[@]}"; do
        n=$((n + 1))
        printf '\r[%d/%d] %s %s %s VLEN %d   ' "$n" "$total" "$spec" "$p" "$k" "$v" >&2
        rc=0
        nice -n 19 "$RVV" "$WORK/$spec.mlir" --precision "$p" --quant-scheme per-tensor --kernel "$k" --vlen "$v" -q >>"$WORK/results.jsonl" || rc=$?
        # 5: outside tolerance; the result is still written and the report shows it.
        [[ $rc -eq 0 || $rc -eq 5 ]] || { echo "bench/rvv: $spec $p $k VLEN $v failed (exit $rc)" >&2; exit 1; }
      done
    done
  done
done
# The rvv kernel autotuned (tile_rows x LMUL by modelled cycles), fp32.
for spec in "${specs[@]}"; do
  for v in "${vlens[@]}"; do
    printf '\r[autotune] %s fp32 rvv VLEN %d   ' "$spec" "$v" >&2
    rc=0
    nice -n 19 "$RVV" "$WORK/$spec.mlir" --precision fp32 --kernel rvv --vlen "$v" --autotune -q >>"$WORK/autotune.jsonl" || rc=$?
    [[ $rc -eq 0 || $rc -eq 5 ]] || { echo "bench/rvv: autotune $spec VLEN $v failed (exit $rc)" >&2; exit 1; }
  done
done
printf '\n' >&2
elapsed=$(( $(date +%s) - start ))

if [[ $check -eq 1 ]]; then
  exec "$PY" "$SRC/bench/rvv/report.py" check "$WORK/results.jsonl" "$SRC/bench/rvv/baseline.json" \
    --autotune "$WORK/autotune.jsonl"
fi
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(uname -sr), host $(uname -n); $(qemu-riscv64 --version | head -1)"
# The raw results go to bench/results/rvv.json (committed); rvv.md is generated from it.
"$PY" "$SRC/bench/rvv/report.py" pack "$WORK/results.jsonl" "$SRC/bench/results/rvv.json" --autotune "$WORK/autotune.jsonl" \
  --machine "$machine" --elapsed "$elapsed" --load "$load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$SRC/bench/rvv/report.py" report-json "$SRC/bench/results/rvv.json" "$SRC/bench/results/rvv.md" "$SRC/bench/rvv/baseline.json"
