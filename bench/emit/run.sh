#!/usr/bin/env bash
# Emit at scale: the sattn-emit figure recorded in bench/results/emit.md.
#
#   bench/emit/run.sh [BUILD_DIR] [window|causal|landmark]    (defaults: build, window)
#
# Emits one op with seq_len = kv_len = 131072, 8 heads, head_dim 64 under /usr/bin/time -v and
# prints a markdown block: the machine, the exact command, wall/user/system time, peak RSS and
# the size of every file. The ops:
#   window    sliding_window, window_size 512 (1025 keys per row; streamed, never built)
#   causal    the same, causal (513 keys per row)
#   landmark  landmark, 512 landmarks, no refinement (a shared layout built in memory)
# The goal (issue 3): under 5 s, peak memory proportional to nnz (4 bytes per index), never to
# seq_len^2.
set -euo pipefail
BUILD=${1:-build}
CASE=${2:-window}
case $CASE in
  window) ATTRS='causal = false, window_size = 512 : i64, spec = "sliding_window"' ;;
  causal) ATTRS='causal = true, window_size = 512 : i64, spec = "sliding_window"' ;;
  landmark) ATTRS='num_landmarks = 512 : i64, spec = "landmark"' ;;
  *) echo "run.sh: unknown case '$CASE' (window, causal, landmark)" >&2; exit 2 ;;
esac
EMIT="$BUILD/bin/sattn-emit"
[[ -x $EMIT ]] || { echo "run.sh: $EMIT not found; build first (ninja -C $BUILD)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/$CASE.mlir" <<M
"sattn.sparse_attention"() { name = "$CASE", batch = 1 : i64, heads = 8 : i64, seq_len = 131072 : i64,
  head_dim = 64 : i64, $ATTRS } : () -> ()
M
cmd=("$EMIT" "$work/$CASE.mlir" --out-dir "$work/out")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/time -v "${cmd[@]}" >"$work/envelope.json" 2>"$work/time.txt"
field() { grep -F "$1" "$work/time.txt" | sed 's/.*: //'; }
# The arrays are what the envelope says: numpy reads them and row_ptr ends at nnz.
/usr/bin/python3 - "$work/out" <<'P'
import json, sys, numpy as np
d = sys.argv[1]; env = json.load(open(f"{d}/artifacts.json"))
ptr = np.load(f"{d}/row_ptr.npy", mmap_mode="r"); idx = np.load(f"{d}/col_idx.npy", mmap_mode="r")
assert ptr[-1, -1] == len(idx) == env["nnz"], "arrays disagree with the envelope"
P
nnz=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['nnz'])" "$work/envelope.json")

echo "- machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB;" \
     "load average before the run: $load_before"
echo "- op ($CASE.mlir): \`$(tr -s ' \n' ' ' <"$work/$CASE.mlir")\`"
echo "- command: \`/usr/bin/time -v sattn-emit $CASE.mlir --out-dir out\`"
echo "- wall $(field 'Elapsed (wall clock)'), user $(field 'User time') s, system $(field 'System time') s," \
     "max RSS $(( $(field 'Maximum resident set size') / 1024 )) MiB; nnz $nnz ($(( nnz * 4 / 1048576 )) MiB of int32)"
echo "- files:"
(cd "$work/out" && ls -l --block-size=1 | awk 'NR > 1 {printf "  - %s: %d bytes\n", $9, $5}')
