#!/usr/bin/env bash
# The CPU benchmark through `sattn bench` (issue 8): the fast kernel's GFLOP/s and its speedup
# over the fast dense kernel and over the OpenBLAS dense attention, measured in the same sweep,
# (1) for every spec at seq_len 1024 and 4096 and (2) against density at seq_len 4096 (bsr
# keep_ratio and sliding_window window_size). Writes bench/results/cpu.json (sattn.bench/v1, the
# three sweeps collected into one document) and regenerates bench/results/cpu.md from it.
#
#   bench/cpu/run.sh [BUILD_DIR] [BEFORE_DIR]
#     about 10-15 minutes on 2 idle cores (the seq 16384 points and the reference check of every
#     point dominate); run under nice. BEFORE_DIR (optional): a folder holding an older `sattn`
#     and its libsattn.so.0; its sweep of every spec at 4096 and 16384 runs right after this
#     tree's and goes to bench/results/cpu-before.json, so that the report puts the sparse
#     efficiency before and after side by side (issue 25). Without it the committed
#     cpu-before.json is kept as it is.
# Only the report, from the committed JSON: bench/cpu/report.py (make bench-reports).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
SATTN="$BUILD/bin/sattn"
[[ -x $SATTN ]] || { echo "bench/cpu: $SATTN not found: build first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 8 heads: issue 25's problem (seq 4096, 8 heads); with 2 heads a sparse point at 4096 lasts a few
# ms, and fixed costs (threads, the layout check, the output's pages) weigh on its fraction.
common=(--backend cpu --heads 8 --head-dim 64 --precisions fp32 --reps 3 --timeout 1200)

BEFORE=${2:-}
specs=sliding_window,bsr,block_local_global,nm_structured,topk_per_query,lsh,landmark
echo "bench/cpu: every spec at 4096 and 16384 (+ fast dense and OpenBLAS dense baselines)" >&2
nice "$SATTN" bench "${common[@]}" --seq-lens 4096,16384 --specs "$specs" -o "$work/specs.json"
if [[ -n $BEFORE ]]; then
  # The older build, same sweep, right after (its own fast dense baseline: each ratio is taken
  # within one sweep); the OpenBLAS point is the same code in both and is left out.
  # Only the older points run with the older library: a wrapper sets LD_LIBRARY_PATH for them, the
  # driver keeps its own (an older libsattn.so.0 may lack symbols this build's driver needs).
  echo "bench/cpu: every spec at 4096 and 16384 with $BEFORE/sattn" >&2
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$BEFORE" "$BEFORE/sattn" > "$work/sattn-before"
  chmod +x "$work/sattn-before"
  nice "$SATTN" bench "${common[@]}" --seq-lens 4096,16384 --specs "$specs" \
    --no-blas-baseline --sattn "$work/sattn-before" -o "$work/before.json"
fi
echo "bench/cpu: bsr density sweep at 4096" >&2
nice "$SATTN" bench "${common[@]}" --seq-lens 4096 --no-dense-baseline --specs bsr \
  --param block_size=64 --param keep_ratio=0.03125,0.0625,0.125,0.25,0.5 -o "$work/density-bsr.json"
echo "bench/cpu: sliding_window density sweep at 4096" >&2
nice "$SATTN" bench "${common[@]}" --seq-lens 4096 --no-dense-baseline --specs sliding_window \
  --param window_size=32,64,128,256,512,1024 -o "$work/density-sliding_window.json"
# One document: --collect merges the records and computes the ratios across the sweeps (the
# density sweeps use the dense and OpenBLAS points of the first sweep). The before sweep is a
# document of its own (same point ids).
if [[ -n $BEFORE ]]; then
  # The document's provenance is the driver's (this build); record which build ran the points.
  /usr/bin/python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["points_run_by"] = sys.argv[2]
json.dump(d, open(sys.argv[1], "w"), indent=2, sort_keys=True)' "$work/before.json" \
    "$(LD_LIBRARY_PATH=$BEFORE "$BEFORE/sattn" --version)"
  mv "$work/before.json" "$SRC/bench/results/cpu-before.json"
fi
"$SATTN" bench --collect "$work" -q -o "$work/cpu.json" || [[ $? -eq 5 ]]
mv "$work/cpu.json" "$SRC/bench/results/cpu.json"
/usr/bin/python3 "$SRC/bench/cpu/report.py"
