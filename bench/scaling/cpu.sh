#!/usr/bin/env bash
# Cost growth of the fast CPU kernel up to seq_len 131072, through `sattn bench` (one
# `sattn run` process per point, the median kernel time of REPS runs, the reference check
# included): sliding_window with window_size 128 (257 keys per row: a row layout, CSR) and bsr
# with block_size 64 keeping 4 block columns per block row (keep_ratio = 4 / (seq_len / 64): a
# block layout), 2 heads, head_dim 64, fp32, seq_len 8192..131072. Allowed pairs grow linearly
# with seq_len in both. No dense baseline (dense at 131072 is 1.7e10 pairs per head).
# Writes bench/results/scaling-cpu.json (sattn.bench/v1; the load average before and after each
# sweep is in its provenance) and regenerates bench/results/scaling.md.
#   bench/scaling/cpu.sh [BUILD_DIR] [REPS]     (about 5-10 minutes on 2 shared cores, under nice)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
REPS=${2:-3}
SATTN="$BUILD/bin/sattn"
[[ -x $SATTN ]] || { echo "bench/scaling: $SATTN not found: build first" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=(8192 16384 32768 65536 131072)
common=(--backend cpu --no-dense-baseline --heads 2 --head-dim 64 --precisions fp32 --reps "$REPS" --timeout 1200)
echo "bench/scaling: sliding_window (window 128) at ${sizes[*]}" >&2
nice "$SATTN" bench "${common[@]}" --specs sliding_window --param window_size=128 \
  --seq-lens "$(IFS=,; echo "${sizes[*]}")" -o "$work/sliding_window.json"
for n in "${sizes[@]}"; do
  keep=$(/usr/bin/python3 -c "print(4 / ($n // 64))")
  echo "bench/scaling: bsr (block 64, 4 blocks per row, keep_ratio $keep) at $n" >&2
  nice "$SATTN" bench "${common[@]}" --specs bsr --param block_size=64 --param keep_ratio="$keep" \
    --seq-lens "$n" -o "$work/bsr-$n.json"
done
"$SATTN" bench --collect "$work" -q -o "$work/all.json"
mv "$work/all.json" "$SRC/bench/results/scaling-cpu.json"
/usr/bin/python3 "$SRC/bench/scaling/report.py" report
