# Limits (issue 18, items 3, 4, 7, 9, 10): inputs nested 100,000 deep are refused with a
# position by every tool (no crash); readers refuse devices and directories and cap what they
# read (SATTN_MAX_INPUT); every allocation that grows with the input is in the memory estimate,
# and every tool that builds data honours --max-memory; a huge dense op is refused at once;
# Ctrl-C during one large op, or while a FIFO waits, exits 130 within about a second and leaves
# nothing. Every file is in this test's own directory; /dev/zero is only opened for reading.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
tool() { if [[ $1 == run ]]; then echo "$SATTN run"; else echo "$BIN/sattn-$1"; fi; }
OPS="select emit run run-rvv sim calibrate imc"

# --- Nesting 100,000 deep (item 3): exit 3 at a position, never a crash -------------------------
"$PY" - "$T" <<'PYEOF'
import sys
t, n = sys.argv[1], 100000
open(f"{t}/deep.json", "w").write('{"seq_len": 16, "x": ' + "[" * n + "]" * n + "}\n")
open(f"{t}/deep.jsonl", "w").write('{"seq_len": 16}\n{"x": ' + "{\"a\": " * n + "1" + "}" * n + "}\n")
open(f"{t}/deep.yaml", "w").write("seq_len: 16\nx: " + "[" * n + "]" * n + "\n")
open(f"{t}/deep_block.yaml", "w").write("seq_len: 16\nx:\n" + "- " * n + "1\n")
open(f"{t}/deep.mlir", "w").write('"sattn.sparse_attention"() { seq_len = 16 : i64, x = ' + "[" * n + "]" * n + " } : () -> ()\n")
open(f"{t}/deep_modules.mlir", "w").write("module {" * n + "}" * n + "\n")
PYEOF
for f in deep.json deep.jsonl deep.yaml deep_block.yaml deep.mlir deep_modules.mlir; do
  for t in $OPS; do
    mkdir -p "$T/o"
    extra=()
    [[ $t == emit ]] && extra=(--out-dir "$T/o/dir")
    # shellcheck disable=SC2046
    run timeout 60 $(tool "$t") "$T/$f" "${extra[@]}" -o "$T/o/out"
    expect_rc 3 "$t $f"
    expect_err "error: $T/$f:[0-9]+:[0-9]+: .*(nested|indented)" "$t $f: a position"
    expect_no_file "$T/o/out" "$t $f: no output"
    expect_no_file "$T/o/dir" "$t $f: no output directory"
  done
done
# The same through a plan's op and an artifacts envelope (their own readers).
"$BIN/sattn-emit" "$SRC/examples/lsh.mlir" --out-dir "$T/art" >/dev/null 2>&1
"$PY" -c "
import sys
n = 100000
p = sys.argv[1]
text = open(p).read().rstrip().rstrip('}')
open(p, 'w').write(text + ', \"deep\": ' + '[' * n + ']' * n + '}\n')" "$T/art/artifacts.json"
run timeout 60 "$SATTN" run "$T/art/artifacts.json" -o "$T/o/out"
expect_rc 3 "artifacts envelope nested 100,000 deep"
expect_err "artifacts\.json:[0-9]+:[0-9]+: nested deeper than 64 levels" "artifacts envelope: a position"
printf 'schema: sattn.profile/v1\nselect: %s\n' "$("$PY" -c 'print("[" * 100000 + "]" * 100000)')" >"$T/deep_profile.yaml"
run timeout 60 "$BIN/sattn-select" "$SRC/examples/lsh.mlir" --profile "$T/deep_profile.yaml"
expect_rc 3 "profile nested 100,000 deep"
expect_err "deep_profile\.yaml:2:[0-9]+: nested deeper" "profile: a position"

# --- Special files and sizes (item 4, item 9) ------------------------------------------------------
mkdir "$T/dir"
for t in select run; do
  # shellcheck disable=SC2046
  run timeout 20 $(tool "$t") "$T/dir" -o "$T/o/out"
  expect_rc 1 "$t: a directory as the input"
  expect_err "error: $T/dir: cannot read: is a directory" "$t: a directory, named"
  # shellcheck disable=SC2046
  run timeout 20 $(tool "$t") /dev/zero -o "$T/o/out"
  expect_rc 1 "$t: /dev/zero as the input"
  expect_err "error: /dev/zero: cannot read: is a character device" "$t: /dev/zero refused"
done
# stdin is read up to SATTN_MAX_INPUT (default 64 MiB), then refused; not until memory runs out.
run timeout 20 bash -c "SATTN_MAX_INPUT=1M '$BIN/sattn-select' - -o '$T/o/out' </dev/zero"
expect_rc 1 "/dev/zero as stdin"
expect_err "<stdin>: input larger than 1 MiB .*SATTN_MAX_INPUT" "stdin capped"
run timeout 60 bash -c "head -c 70000000 /dev/zero | '$BIN/sattn-select' - -o '$T/o/out'"
expect_rc 1 "70 MB on stdin (default limit)"
expect_err "input larger than 64 MiB" "default limit"
run bash -c "SATTN_MAX_INPUT=lots '$BIN/sattn-select' '$SRC/examples/lsh.mlir'"
expect_rc 2 "malformed SATTN_MAX_INPUT"
SATTN_MAX_INPUT=0 run "$BIN/sattn-select" "$SRC/examples/lsh.mlir" -o "$T/o/plan"
expect_rc 0 "SATTN_MAX_INPUT=0: no limit"
# An artifact array that is a device (a link the user made to /dev/zero) and a profile base that
# is one: refused, not read without end.
rm -rf "$T/art2" && cp -r "$T/art" "$T/art2"
"$BIN/sattn-emit" "$SRC/examples/lsh.mlir" --out-dir "$T/art2" --force >/dev/null 2>&1
rm "$T/art2/q.npy" && ln -s /dev/zero "$T/art2/q.npy"
run timeout 20 "$SATTN" run "$T/art2/artifacts.json" -o "$T/o/out"
expect_rc 1 "an array path to /dev/zero"
expect_err "q\.npy: cannot read: is a character device" "array device refused"
ln -s /dev/zero "$T/zero.yaml"
printf 'schema: sattn.profile/v1\nbase: zero.yaml\n' >"$T/child.yaml"
run timeout 20 "$BIN/sattn-select" "$SRC/examples/lsh.mlir" --profile "$T/child.yaml"
expect_rc 3 "a profile base: that is a device"
expect_err "child\.yaml:2:7: base: .*character device" "base: device refused at the key"

# --- Memory (item 4) ------------------------------------------------------------------------
# Dense at seq_len 2^30 is refused before anything is allocated (it took 6.5 s: the selector
# walked every row; now 0.3-0.5 s in a release build). How fast is a benchmark's business, not a
# test's (a sanitized build takes seconds): `timeout` only catches a hang.
printf '"sattn.sparse_attention"() { seq_len = 1073741824 : i64, spec = "dense" } : () -> ()\n' >"$T/dense30.mlir"
run timeout 120 "$SATTN" run "$T/dense30.mlir" -o "$T/o/out"
expect_rc 1 "dense at 2^30"
expect_err "estimated peak memory .* nothing was allocated" "dense at 2^30: refused with the estimate"
expect_no_file "$T/o/out" "dense at 2^30: no output"
# lsh's hashing matrices are in the estimate: 4096 buckets of head_dim 128 over 4 rounds.
printf '"sattn.sparse_attention"() { seq_len = 4096 : i64, head_dim = 128 : i64, spec = "lsh", lsh_buckets = 4096 : i64, lsh_rounds = 4 : i64 } : () -> ()\n' >"$T/lsh.mlir"
run "$SATTN" run "$T/lsh.mlir" --max-memory 8M -o "$T/o/out"
expect_rc 1 "lsh with many buckets under --max-memory"
expect_err "lsh hashing [0-9.]+ [KM]iB" "the estimate names lsh's hashing"
# sattn-calibrate honours --max-memory and SATTN_MAX_MEMORY (it had no guard).
run "$BIN/sattn-calibrate" "$SRC/examples/bsr.mlir" --max-memory 1M -o "$T/o/out"
expect_rc 1 "calibrate --max-memory"
expect_err "sattn-calibrate: error: .*estimated peak memory .*q, k, v \(1 sample and a quantized copy\)" "calibrate estimate"
expect_no_file "$T/o/out" "calibrate refused: no output"
SATTN_MAX_MEMORY=1M run "$BIN/sattn-calibrate" "$SRC/examples/bsr.mlir" -o "$T/o/out"
expect_rc 1 "calibrate SATTN_MAX_MEMORY"

# --- Ctrl-C during one large op (item 7): exit 130 within about a second, nothing left -------
# A single op that runs for tens of seconds in each tool.
printf '"sattn.sparse_attention"() { name = "big", seq_len = 32768 : i64, heads = 8 : i64, head_dim = 64 : i64, spec = "dense" } : () -> ()\n' >"$T/big_dense.mlir"
printf '"sattn.sparse_attention"() { name = "big", seq_len = 262144 : i64, heads = 8 : i64, head_dim = 64 : i64, window_size = 2048 : i64, spec = "sliding_window" } : () -> ()\n' >"$T/big_sw.mlir"
printf '"sattn.sparse_attention"() { name = "big", seq_len = 65536 : i64, heads = 8 : i64, head_dim = 64 : i64, window_size = 4096 : i64, spec = "sliding_window" } : () -> ()\n' >"$T/big_imc.mlir"
# The bound is 8 s, not "about a second": on an idle machine each tool stops in well under a
# second (sattn-imc: 65-413 ms), but a 2-core machine running the suite at -j2 beside other builds
# slowed one stop to 3.3 s; every op here runs for tens of seconds, so 8 s still tells "stopped at
# its next check" from "ran to the end".
sigint_one_op() {  # sigint_one_op NAME DELAY CMD...: SIGINT after DELAY s, expect 130 within 8 s
  local name=$1 delay=$2
  shift 2
  mkdir -p "$T/sig.$name" "$T/sig.$name.tmp"
  TMPDIR="$T/sig.$name.tmp" "$@" 2>"$T/sig.$name.err" &
  local pid=$!
  sleep "$delay"
  kill -0 "$pid" 2>/dev/null || { rc=done; out=""; err=$(cat "$T/sig.$name.err"); fail "$name: finished before the signal"; return; }
  local t0
  t0=$(date +%s%N)
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  out=""
  err=$(cat "$T/sig.$name.err")
  expect_rc 130 "$name: Ctrl-C during one op"
  [[ $ms -lt 8000 ]] && ok || fail "$name: took $ms ms to stop after Ctrl-C"
  expect_err "interrupted; no output written" "$name: says so"
  [[ -z $(ls -A "$T/sig.$name") ]] && ok || fail "$name: left $(ls -A "$T/sig.$name")"
  [[ -z $(ls -A "$T/sig.$name.tmp") ]] && ok || fail "$name: left temporary files $(ls -A "$T/sig.$name.tmp")"
}
sigint_one_op run 2 "$SATTN" run "$T/big_dense.mlir" --out-dir "$T/sig.run/out" -o "$T/sig.run/r.json"
sigint_one_op emit 1 "$BIN/sattn-emit" "$T/big_sw.mlir" --out-dir "$T/sig.emit/out" -o "$T/sig.emit/e.json"
sigint_one_op calibrate 2 "$BIN/sattn-calibrate" "$T/big_dense.mlir" -o "$T/sig.calibrate/c.json"
sigint_one_op imc 2 "$BIN/sattn-imc" "$T/big_imc.mlir" -o "$T/sig.imc/i.json"
# Two Ctrl-C in a row while a staged directory exists: still no hidden staging left behind.
mkdir -p "$T/sig2"
"$BIN/sattn-emit" "$T/big_sw.mlir" --out-dir "$T/sig2/out" -o "$T/sig2/e.json" 2>"$T/sig2.err" &
pid=$!
sleep 1
kill -INT "$pid"; kill -INT "$pid"
wait "$pid"
rc=$?
out="" err=$(cat "$T/sig2.err")
expect_rc 130 "emit: two Ctrl-C"
[[ -z $(ls -A "$T/sig2") ]] && ok || fail "two Ctrl-C left $(ls -A "$T/sig2")"
# Ctrl-C while opening a FIFO (no reader for -o, no writer for the input): exit 130, not 1.
mkfifo "$T/fifo_out" "$T/fifo_in"
for which in out in; do
  if [[ $which == out ]]; then
    "$BIN/sattn-select" "$SRC/examples/lsh.mlir" -o "$T/fifo_out" 2>"$T/fifo.err" &
  else
    "$BIN/sattn-select" "$T/fifo_in" -o "$T/o/fifo_plan" 2>"$T/fifo.err" &
  fi
  pid=$!
  sleep 0.5
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  out="" err=$(cat "$T/fifo.err")
  expect_rc 130 "Ctrl-C while the $which FIFO waits"
done

# --- Library warnings carry the tool's prefix (item 10) ------------------------------------
printf '{"seq_len": 64, "frobnicate": 1}\n' >"$T/unknown.json"
for t in select run; do
  # shellcheck disable=SC2046
  run $(tool "$t") "$T/unknown.json" -o "$T/o/w.$t"
  expect_rc 0 "$t: an unknown attribute"
  expect_err "^sattn[ -]$t: warning: $T/unknown\.json:1:17: unknown attribute 'frobnicate' ignored" "$t: warning prefix"
done

finish
