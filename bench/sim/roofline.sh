#!/usr/bin/env bash
# The accelerator's workloads under each profile (highperf, lowpower, imc: profiles/*.yaml), for
# the roofline plots and the cost-growth fits of docs/roofline.md. One `sattn bench --backend rocc
# --model-only --profile P` sweep per workload family and profile (the cycle-exact model: its
# cycles and counters equal the RTL's, which bench/sim/run.sh checks on every run), i8, one head,
# head_dim 64:
#   bsr             block 64, keep_ratio 0.125, seq_len 1024..8192   (pairs ~ seq_len^2 / 8)
#   bsr density     block 64, keep_ratio 0.0625..0.5 at seq_len 2048 (pairs ~ density)
#   sliding_window  window 64, seq_len 1024..8192                   (pairs ~ 129 seq_len)
#   block_local_global block 64, 1 window block, 64 global tokens, seq_len 1024, 4096
# Writes bench/results/roofline.json (sattn.bench/v1) and regenerates bench/results/roofline.md
# and the plots bench/results/roofline-PROFILE.{svg,png} (bench/sim/roofline.py).
#   bench/sim/roofline.sh [BUILD_DIR]        (a few minutes)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
SATTN="$BUILD/bin/sattn"
[[ -x $SATTN ]] || { echo "bench/sim: $SATTN not found: build first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--backend rocc --model-only --precisions i8 --heads 1 --head-dim 64 -q)
for prof in highperf lowpower imc; do
  echo "bench/sim/roofline: profile $prof" >&2
  nice "$SATTN" bench "${common[@]}" --profile "$prof" --specs bsr --seq-lens 1024,2048,4096,8192 \
    --param block_size=64 --param keep_ratio=0.125 -o "$work/$prof-bsr.json"
  nice "$SATTN" bench "${common[@]}" --profile "$prof" --specs bsr --seq-lens 2048 \
    --param block_size=64 --param keep_ratio=0.0625,0.25,0.5 -o "$work/$prof-bsr-density.json"
  nice "$SATTN" bench "${common[@]}" --profile "$prof" --specs sliding_window --seq-lens 1024,2048,4096,8192 \
    --param window_size=64 -o "$work/$prof-sliding_window.json"
  nice "$SATTN" bench "${common[@]}" --profile "$prof" --specs block_local_global --seq-lens 1024,4096 \
    --param block_size=64 --param window_blocks=1 --param global_tokens=64 -o "$work/$prof-block_local_global.json"
done
"$SATTN" bench --collect "$work" -q -o "$work/roofline.json"
mv "$work/roofline.json" "$SRC/bench/results/roofline.json"
/usr/bin/python3 "$SRC/bench/sim/roofline.py"
