# Errors that help (issue 21, item 6): a did-you-mean for unknown flags and unknown op attributes,
# the tool's prefix on every warning line, a directory or a .npy array given where an op file is
# expected names the file and what was expected, and an output directory that cannot be written
# says "not writable".
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"

# --- Unknown flags: usage error (exit 2) with the closest flag ------------------------------------
flag() {  # flag EXPECTED_HINT CMD...
  local want=$1; shift
  run "$@"
  expect_rc 2 "$*"
  expect_err "^$(basename "$1")( run)?: error: The following argument was not expected: [^;]*; did you mean '$want'\?$" "$*: suggests $want"
}
flag --format "$SATTN" run "$SRC/examples/bsr.mlir" --formt json
flag --explain "$BIN/sattn-select" "$SRC/examples/bsr.mlir" --explian
flag --out-dir "$BIN/sattn-emit" "$SRC/examples/bsr.mlir" --outdir x
flag --layout "$BIN/sattn-emit" "$SRC/examples/bsr.mlir" --out-dir "$T/e" --layuot=bshd
flag --min-recall "$BIN/sattn-select" "$SRC/examples/bsr.mlir" --min-recal 0.9
run "$SATTN" bench --spec bsr --dry-run
expect_rc 2 "bench --spec"
expect_err "did you mean '--specs'\?" "bench --spec suggests --specs"
run "$SATTN" run "$SRC/examples/bsr.mlir" --xyzzy
expect_rc 2 "a flag like no other"
expect_err "^sattn run: error: The following argument was not expected: --xyzzy$" "no suggestion when nothing is close"
expect_err "^Try 'sattn run --help' for more information\.$" "the help hint follows"

# --- Unknown op attributes: a warning with file:line:col and the closest attribute ------------------
cat >"$T/typo.mlir" <<'EOF'
"sattn.sparse_attention"() {seq_len = 64 : i64, heads = 2 : i64, head_dim = 16 : i64, spec = "sliding_window", window = 8 : i64, keep_ratoi = 0.5 : f64, zzz = 1 : i64} : () -> ()
EOF
want_window="typo\.mlir:1:[0-9]+: unknown attribute 'window' ignored \(did you mean 'window_size'\?\)$"
want_keep="typo\.mlir:1:[0-9]+: unknown attribute 'keep_ratoi' ignored \(did you mean 'keep_ratio'\?\)$"
want_zzz="typo\.mlir:1:[0-9]+: unknown attribute 'zzz' ignored$"
# Every tool that reads ops: each stderr line starts with the tool's own prefix.
for t in "sattn run" "sattn select" "sattn emit" "sattn calibrate" "sattn imc" "sattn eval" sattn-select sattn-emit sattn-calibrate sattn-imc sattn-eval; do
  args=()
  case $t in
    *emit) args=(--out-dir "$T/emit.${t// /_}") ;;
    *calibrate) args=(--precision i8) ;;
    "sattn run") args=(-q --out-dir "$T/run") ;;
  esac
  if [[ $t == sattn-* ]]; then cmd=("$BIN/$t"); else cmd=("$SATTN" "${t#sattn }"); fi
  run "${cmd[@]}" "$T/typo.mlir" "${args[@]}"
  expect_rc 0 "$t: unknown attributes are warnings"
  expect_err "^$t: warning: .*$want_window" "$t: window -> window_size"
  expect_err "^$t: warning: .*$want_keep" "$t: keep_ratoi -> keep_ratio"
  expect_err "^$t: warning: .*$want_zzz" "$t: no suggestion for zzz"
  bad_lines=$(grep -v "^$t: " <<<"$err" | grep -c .)
  [[ $bad_lines -eq 0 ]] && ok || fail "$t: every stderr line has the prefix '$t: '"
done
# --quiet silences them, as before.
run "$BIN/sattn-select" "$T/typo.mlir" -q
expect_rc 0 "select -q"
[[ -z $err ]] && ok || fail "select -q: no warnings"

# --- A directory or a .npy array where an op file is expected ----------------------------------
mkdir -p "$T/plain" "$T/datadir"
"$SATTN" emit "$SRC/examples/bsr.mlir" --out-dir "$T/art" >"$T/art.out" 2>&1 || fail "emit for the artifacts case"
"$PY" -c "import numpy as np; np.save('$T/datadir/q.npy', np.zeros((1, 1, 4, 4), np.float32))"
for t in "$SATTN run" "$BIN/sattn-select" "$BIN/sattn-sim" "$BIN/sattn-imc"; do
  # shellcheck disable=SC2086
  run $t "$T/plain"
  expect_rc 1 "$t: a directory as the op"
  expect_err ": error: $T/plain: cannot read: is a directory; expected an op file \(MLIR, JSON or YAML\), a plan or an artifacts\.json$" "$t: names the directory and what was expected"
done
run "$SATTN" run "$T/art" -q
expect_rc 1 "an artifacts directory"
expect_err "^sattn run: error: $T/art: cannot read: is a directory; .* \(it holds artifacts: give $T/art/artifacts\.json\)$" "points at artifacts.json"
run "$BIN/sattn-select" "$T/datadir"
expect_rc 1 "a data directory as the op"
expect_err "\(it holds q\.npy: give a data directory with --data $T/datadir\)$" "points at --data"
for t in "$SATTN run" "$BIN/sattn-select" "$BIN/sattn-emit --out-dir $T/npyemit" "$SATTN eval"; do
  # shellcheck disable=SC2086
  run $t "$T/datadir/q.npy"
  expect_rc 3 "$t: a .npy as the op"
  expect_err ": error: $T/datadir/q\.npy: is a \.npy array, not an op; expected an op file \(MLIR, JSON or YAML\), a plan or an artifacts\.json \(Q/K/V arrays go in a directory given with --data DIR" "$t: names the .npy and --data"
done
expect_no_file "$T/npyemit" "no output for a .npy op"
run "$BIN/sattn-select" - <"$T/datadir/q.npy"
expect_rc 3 "a .npy on stdin"
expect_err "^sattn-select: error: <stdin>: is a \.npy array, not an op" "stdin is named"

# --- An output directory that cannot be written: "not writable" ----------------------------------
# Permissions bind only an unprivileged user: as root (tests may run as root) the commands run as
# nobody through setpriv, so the permission check itself is exercised, not skipped.
mkdir -p "$T/ro/old"
chmod 755 "$T"
chmod 555 "$T/ro"
as_user=()
if [[ $(id -u) -eq 0 ]]; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
  # nobody must reach the build tree and the examples (the test reads only these).
  setpriv --reuid=65534 --regid=65534 --clear-groups -- test -x "$BIN/sattn-emit" -a -r "$SRC/examples/bsr.mlir" ||
    fail "nobody cannot reach $BIN/sattn-emit or $SRC/examples: the not-writable case cannot run"
fi
run "${as_user[@]}" "$BIN/sattn-emit" "$SRC/examples/bsr.mlir" --out-dir "$T/ro/new"
expect_rc 1 "emit into a read-only directory"
expect_err "^sattn-emit: error: $T/ro/new: not writable: cannot create a directory in $T/ro \(Permission denied\)$" "emit: not writable, naming the directory"
run "${as_user[@]}" "$SATTN" run "$SRC/examples/bsr.mlir" --out-dir "$T/ro/sub/deeper" -q
expect_rc 1 "run --out-dir under a read-only directory"
expect_err "^sattn run: error: $T/ro/sub/deeper: not writable: cannot create a directory in $T/ro \(Permission denied\)$" "run: not writable"
run "${as_user[@]}" "$BIN/sattn-select" "$SRC/examples/bsr.mlir" -o "$T/ro/plan.json"
expect_rc 1 "select -o into a read-only directory"
expect_err "^sattn-select: error: $T/ro/plan\.json: not writable: cannot create a file in $T/ro \(Permission denied\)$" "-o: not writable"
[[ -z $(ls -A "$T/ro" | grep -v '^old$') ]] && ok || fail "nothing left in the read-only directory: $(ls -A "$T/ro")"
chmod 755 "$T/ro"
# A path under a regular file is no permission problem: the old message stays.
echo x >"$T/file"
run "$BIN/sattn-emit" "$SRC/examples/bsr.mlir" --out-dir "$T/file/sub"
expect_rc 1 "out-dir under a file"
expect_err "cannot create directory: Not a directory$" "not a permission error"
finish
