# Ctrl-C on long runs (simulation, autotune, a multi-backend run): the tool stops, kills its
# child (qemu, the Verilator harness), removes its temporary directories, writes no output
# file and exits 130.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
# interrupt NAME CMD...: starts CMD with TMPDIR=$T/tmp.NAME, waits until it has started a child
# process (qemu or the Verilator harness), sends SIGINT, checks.
interrupt() {
  local name=$1
  shift
  mkdir -p "$T/tmp.$name"
  TMPDIR="$T/tmp.$name" "$@" -o "$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  wait_for_child "$pid"
  sleep 0.3
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
# Workloads long enough (tens of seconds) that none can finish before the signal.
sed -e 's/seq_len = 1024/seq_len = 4096/' "$SRC/examples/bsr.mlir" >"$T/bsr4096.mlir"
sed -e 's/seq_len = 512/seq_len = 2048/' "$SRC/examples/topk_per_query.mlir" >"$T/topk2048.mlir"
interrupt sim "$BIN/sattn-sim" "$T/bsr4096.mlir" --precision i8
interrupt autotune "$BIN/sattn-run-rvv" "$T/topk2048.mlir" --autotune
interrupt all "$SATTN" run --backend all "$T/bsr4096.mlir"
finish
