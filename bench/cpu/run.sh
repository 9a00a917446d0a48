#!/usr/bin/env bash
# The CPU benchmark through `sattn bench` (issue 8): the fast kernel's GFLOP/s and its speedup
# over the fast dense kernel and over the OpenBLAS dense attention, measured in the same sweep,
# (1) for every spec at seq_len 1024 and 4096 and (2) against density at seq_len 4096 (bsr
# keep_ratio and sliding_window window_size). Writes bench/results/cpu.json (sattn.bench/v1, the
# three sweeps collected into one document) and regenerates bench/results/cpu.md from it.
#
#   bench/cpu/run.sh [BUILD_DIR]      about 3-5 minutes on 2 idle cores (the reference check of
#                                     every point dominates); run under nice
# Only the report, from the committed JSON: bench/cpu/report.py (make bench-reports).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
SATTN="$BUILD/bin/sattn"
[[ -x $SATTN ]] || { echo "bench/cpu: $SATTN not found: build first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--backend cpu --heads 2 --head-dim 64 --precisions fp32 --reps 3 --timeout 1200)

echo "bench/cpu: every spec at 1024 and 4096 (+ fast dense and OpenBLAS dense baselines)" >&2
nice "$SATTN" bench "${common[@]}" --seq-lens 1024,4096 \
  --specs sliding_window,bsr,block_local_global,nm_structured,topk_per_query,lsh,landmark -o "$work/specs.json"
echo "bench/cpu: bsr density sweep at 4096" >&2
nice "$SATTN" bench "${common[@]}" --seq-lens 4096 --no-dense-baseline --specs bsr \
  --param block_size=64 --param keep_ratio=0.03125,0.0625,0.125,0.25,0.5 -o "$work/density-bsr.json"
echo "bench/cpu: sliding_window density sweep at 4096" >&2
nice "$SATTN" bench "${common[@]}" --seq-lens 4096 --no-dense-baseline --specs sliding_window \
  --param window_size=32,64,128,256,512,1024 -o "$work/density-sliding_window.json"
# One document: --collect merges the records and computes the ratios across the sweeps (the
# density sweeps use the dense and OpenBLAS points of the first sweep).
"$SATTN" bench --collect "$work" -q -o "$work/cpu.json" || [[ $? -eq 5 ]]
mv "$work/cpu.json" "$SRC/bench/results/cpu.json"
/usr/bin/python3 "$SRC/bench/cpu/report.py"
