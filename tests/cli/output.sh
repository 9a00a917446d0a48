# Output paths (issue 18, item 1): -o and --trace write a regular file or a new name atomically,
# write a symlink's target (the link stays a link), write a FIFO in place (never rename over it),
# refuse a directory, and '-' is stdout. Every path here is inside this test's own directory:
# device nodes are checked by the unit test of classify_output (tests/unit/test_io.cpp), which
# only lstat()s them.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
OP="$SRC/examples/bsr.mlir"

run "$BIN/sattn-select" "$OP" -o "$T/reference.json"
expect_rc 0 "select -o regular file"
expected=$(cat "$T/reference.json")
[[ -n $expected ]] && ok || fail "select -o regular file wrote nothing"

# '-' is stdout.
run "$BIN/sattn-select" "$OP" -o -
expect_rc 0 "select -o -"
[[ $out == "$expected" ]] && ok || fail "select -o - should print the plan"

# A FIFO is written through: the reader gets the plan, the FIFO is still a FIFO, no temp file.
mkdir "$T/f"
mkfifo "$T/f/pipe"
timeout 20 cat "$T/f/pipe" >"$T/from-fifo" &
reader=$!
run timeout 20 "$BIN/sattn-select" "$OP" -o "$T/f/pipe"
expect_rc 0 "select -o FIFO"
wait "$reader"
[[ $(cat "$T/from-fifo") == "$expected" ]] && ok || fail "the FIFO's reader should get the plan"
[[ -p $T/f/pipe ]] && ok || fail "-o FIFO: the FIFO was replaced"
[[ $(ls -A "$T/f") == pipe ]] && ok || fail "-o FIFO: left $(ls -A "$T/f")"

# A symlink's target is written atomically; the link stays.
mkdir "$T/s"
echo old >"$T/s/results.json"
ln -s results.json "$T/s/link"
run "$BIN/sattn-select" "$OP" -o "$T/s/link"
expect_rc 0 "select -o symlink"
[[ -L $T/s/link ]] && ok || fail "-o symlink: the link was replaced by a file"
[[ $(cat "$T/s/results.json") == "$expected" ]] && ok || fail "-o symlink: its target should hold the plan"
# A symlink to a FIFO: written through as well.
mkfifo "$T/s/pipe"
ln -s pipe "$T/s/to-pipe"
timeout 20 cat "$T/s/pipe" >"$T/from-link" &
reader=$!
run timeout 20 "$BIN/sattn-select" "$OP" -o "$T/s/to-pipe"
expect_rc 0 "select -o symlink to FIFO"
wait "$reader"
[[ $(cat "$T/from-link") == "$expected" ]] && ok || fail "symlink to FIFO: the reader should get the plan"
[[ -L $T/s/to-pipe && -p $T/s/pipe ]] && ok || fail "symlink to FIFO: replaced"

# A directory is an error (exit 1 naming it) and is left as it was.
mkdir "$T/d"
echo keep >"$T/d/keep"
run "$BIN/sattn-select" "$OP" -o "$T/d"
expect_rc 1 "select -o directory"
expect_err "sattn-select: error: $T/d: cannot write: is a directory" "select -o directory"
[[ $(ls -A "$T/d") == keep && $(cat "$T/d/keep") == keep ]] && ok || fail "-o directory: changed"

# The same writer serves every tool's -o: sattn run and sattn-emit -o through a FIFO.
mkfifo "$T/f/run"
timeout 60 cat "$T/f/run" >"$T/run.json" &
reader=$!
run timeout 60 "$BIN/sattn" run "$SRC/examples/sliding_window.mlir" -o "$T/f/run"
expect_rc 0 "run -o FIFO"
wait "$reader"
grep -q '"schema":"sattn.result/v1"' "$T/run.json" && ok || fail "run -o FIFO: the reader got no result"
[[ -p $T/f/run ]] && ok || fail "run -o FIFO: the FIFO was replaced"

# sattn-sim --trace: a directory that does not exist fails at once (exit 1, naming it), before
# any simulation; a FIFO gets the whole waveform.
run "$BIN/sattn-sim" "$SRC/examples/sliding_window.mlir" --trace "$T/no/such/dir/w.fst" -o "$T/sim.json"
expect_rc 1 "sim --trace into a missing directory"
expect_err "sattn-sim: error: $T/no/such/dir/w.fst: cannot write" "sim --trace into a missing directory"
expect_no_file "$T/sim.json" "sim --trace into a missing directory"
cat >"$T/small.mlir" <<'OPEOF'
"sattn.sparse_attention"() { name = "t", seq_len = 64 : i64, head_dim = 16 : i64, window_size = 4 : i64, precision = "i8" } : () -> ()
OPEOF
mkfifo "$T/f/trace"
timeout 120 cat "$T/f/trace" >"$T/trace.fst" &
reader=$!
run timeout 120 "$BIN/sattn-sim" "$T/small.mlir" --trace "$T/f/trace" -o "$T/sim.json"
expect_rc 0 "sim --trace FIFO"
wait "$reader"
[[ -s $T/trace.fst ]] && ok || fail "sim --trace FIFO: the reader got no waveform"
[[ -p $T/f/trace ]] && ok || fail "sim --trace FIFO: the FIFO was replaced"
run timeout 120 "$BIN/sattn-sim" "$T/small.mlir" --trace "$T/w.fst" -o "$T/sim2.json"
expect_rc 0 "sim --trace regular file"
[[ -s $T/w.fst ]] && ok || fail "sim --trace regular file: no waveform"

finish
