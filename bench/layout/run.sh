#!/usr/bin/env bash
# Layout-build benchmark: nm_structured 1:16 and topk_per_query k = seq/16 at one sequence length
# (default 16384; 8 heads, head_dim 64, the CPU benchmark's problem), built by this tree's
# sattn_bench_layout and, side by side in the same run, by a second build (BEFORE: a folder
# holding an older sattn_bench_layout and its libsattn.so.0). Each build runs under
# /usr/bin/time -v (wall seconds of the build itself, max RSS of the process); the two builds
# must print the same layout hash. Writes markdown to stdout.
#   bench/layout/run.sh BUILD_DIR [BEFORE_DIR] [SEQ] [REPS]
# It ends with one run of this tree's build of topk_per_query with k = 64 (a layout of 32 MiB at
# 16384 x 8 heads), whose peak RSS less the inputs and the layout is the builder's own memory.
# Making a BEFORE folder: build sattn_bench_layout at the older commit, then copy
# bin/sattn_bench_layout and lib/libsattn.so.0 (dereferenced) into one folder.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [BEFORE_DIR] [SEQ] [REPS]}
before=${2:-}
seq=${3:-16384}
reps=${4:-2}
after_bin=$build/bin/sattn_bench_layout
[[ -x $after_bin ]] || { echo "run.sh: error: $after_bin not built (cmake --build $build --target sattn_bench_layout)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

field() {  # field NAME: the value of NAME=... in the benchmark's output line, "-" when absent
  sed -nE "s/.*(^| )$1=([^ ]+).*/\2/p" "$tmp/out" | grep . || echo -
}

one() {  # one LABEL SPEC: prints "label|spec|build_s|build_cpu_s|cpu_s|max_rss_mib|layout_mib|hash|load"
  local label=$1 spec=$2 load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  if [[ $label == before ]]; then
    LD_LIBRARY_PATH=$before /usr/bin/time -v "$before/sattn_bench_layout" "$spec" "$seq" >"$tmp/out" 2>"$tmp/time"
  else
    /usr/bin/time -v "$after_bin" "$spec" "$seq" >"$tmp/out" 2>"$tmp/time"
  fi
  local rss cpu
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$tmp/time")
  cpu=$(awk -F': ' '/User time|System time/ {t += $2} END {printf "%.2f", t}' "$tmp/time")
  echo "$label|$spec|$(field build_s)|$(field build_cpu_s)|$cpu|$rss|$(field layout_mib)|$(field hash)|$load"
}

echo "# Layout build of the score-selected specs (bench/layout/run.sh)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, shared with other jobs (load average at each run below)"
echo "- problem: batch 1, 8 heads (kv_heads 8), seq_len = kv_len $seq, head_dim 64, fp32, not causal, synthetic_qkv (seed 0x5A77); nm_structured 1:16, topk_per_query k = seq/16"
echo "- build s: wall seconds of build_layout alone (inflated by the load: compare side by side only); build CPU s: CPU seconds of every thread during build_layout alone (printed by builds that measure it, \"-\" otherwise); process CPU s: user + system seconds of the whole process (synthetic data and the hash included), less sensitive to the load; max RSS: /usr/bin/time -v of the whole process (Q/K/V inputs $((3 * 8 * seq * 64 * 4 / 1048576)) MiB and the layout itself included)"
echo "- runs alternate before / after, $reps of each per spec, in one session"
echo
echo "| build | spec | build s | build CPU s | process CPU s | max RSS MiB | layout MiB | layout hash | load average (1, 5, 15 min) |"
echo "|---|---|---:|---:|---:|---:|---:|---|---|"
for spec in nm topk; do
  for ((r = 0; r < reps; ++r)); do
    if [[ -n $before ]]; then one before "$spec"; fi
    one after "$spec"
  done
done | tee "$tmp/rows" | sed 's/|/ | /g; s/^/| /; s/$/ |/'
if [[ -n $before ]]; then
  bad=$(awk -F'|' '{h[$2] = h[$2] " " $8} END {for (s in h) {n = split(h[s], a, " "); for (i = 2; i <= n; ++i) if (a[i] != a[1]) print s}}' "$tmp/rows")
  echo
  if [[ -n $bad ]]; then echo "**layout hashes differ between builds: $bad**"; exit 5; fi
  echo "Every run of a spec printed the same layout hash: the two builders give identical layouts."
fi

# Memory where the layout itself is small: topk_per_query k = 64, this tree's build only.
load=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/time -v "$after_bin" topk "$seq" 8 plain 64 >"$tmp/out" 2>"$tmp/time"
rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$tmp/time")
cpu=$(awk -F': ' '/User time|System time/ {t += $2} END {printf "%.2f", t}' "$tmp/time")
s=$(field build_s) bcpu=$(field build_cpu_s) mib=$(field layout_mib)
inputs=$((3 * 8 * seq * 64 * 4 / 1048576))
echo
echo "Small layout (topk_per_query k = 64, seq $seq, 8 heads, this build): build $s s (CPU $bcpu s), process CPU $cpu s, max RSS $rss MiB"
echo "= inputs $inputs MiB (Q, K, V) + layout $mib MiB + $(awk -v r="$rss" -v i="$inputs" -v l="$mib" 'BEGIN {printf "%.0f", r - i - l}') MiB"
echo "(the builder's working memory, the program and its libraries); load average $load."
