# Ctrl-C on long runs (simulation, autotune, a multi-backend run): the tool stops, kills its
# child (qemu, the Verilator harness), removes its temporary directories, writes no output
# file and exits 130.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
# interrupt NAME CMD...: starts CMD with TMPDIR=$T/tmp.NAME, sends SIGINT after 1.5 s, checks.
interrupt() {
  local name=$1
  shift
  mkdir -p "$T/tmp.$name"
  TMPDIR="$T/tmp.$name" "$@" -o "$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  sleep 1.5
  kill -INT "$pid"
  wait "$pid"
  rc=$?
  out=""
  err=$(cat "$T/$name.err")
  expect_rc 130 "$name: exit 130 after Ctrl-C"
  expect_err "interrupted; no output written" "$name: says so"
  expect_no_file "$T/$name.out" "$name: no output file"
  [[ -z $(ls -A "$T/tmp.$name") ]] && ok || fail "$name: temporary files left: $(ls -A "$T/tmp.$name")"
}
interrupt sim "$BIN/sattn-sim" "$SRC/examples/bsr.mlir" --precision i8
interrupt autotune "$BIN/sattn-run-rvv" "$SRC/examples/topk_per_query.mlir" --autotune
interrupt all "$SATTN" run --backend all "$SRC/examples/bsr.mlir"
finish
