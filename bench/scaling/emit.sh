#!/usr/bin/env bash
# Cost growth of sattn-emit: sliding_window (streamed) and landmark (built layout) ops, 8 heads,
# head_dim 64, seq_len 16384..131072, measured one after another under nice with /usr/bin/time
# (wall, user+system CPU, max RSS); writes JSON lines to stdout. bench/scaling/report.py fits
# cost = a*pairs + b and writes bench/results/scaling.md.
#   bench/scaling/emit.sh [BUILD_DIR] > bench/results/scaling.json.tmp
set -euo pipefail
BUILD=${1:-build}
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
    load=$(cut -d' ' -f1 /proc/loadavg)
    rm -rf "$work/out"
    nice /usr/bin/time -f '%e %U %S %M' -o "$work/t" "$EMIT" "$work/op.mlir" --out-dir "$work/out" >"$work/env.json"
    read -r wall user sys rss <"$work/t"
    nnz=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['nnz'])" "$work/out/artifacts.json")
    echo "{\"tool\":\"sattn-emit\",\"case\":\"$case\",\"seq_len\":$n,\"heads\":8,\"nnz\":$nnz,\"wall_ms\":$(echo "$wall*1000" | bc),\"cpu_ms\":$(echo "($user+$sys)*1000" | bc),\"max_rss_kib\":$rss,\"load_before\":$load}"
  done
done
