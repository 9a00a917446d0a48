# Faults (issue 9): a run killed with SIGKILL mid-write leaves no partial output (each output
# file and emit's --out-dir appear whole or not at all; a dead run's hidden staging directory is
# swept by the next run), a file-size limit or an unwritable directory gives exit 1 with a clear
# message and loses no input, and a missing backend binary gives exit 4 naming the fix.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
cat >"$T/w.mlir" <<'OP'
"sattn.sparse_attention"() { name = "w", heads = 8 : i64, seq_len = 65536 : i64, head_dim = 64 : i64, window_size = 512 : i64, spec = "sliding_window" } : () -> ()
OP
cp "$T/w.mlir" "$T/w.mlir.orig"

# An out-dir is either absent or complete: the envelope and every file it names, each file whole.
complete_dir() {
  "$PY" - "$1" <<'PYEOF'
import json, os, sys
import numpy as np
d = sys.argv[1]
env = json.load(open(os.path.join(d, "artifacts.json")))
for a in env["arrays"].values():
    arr = np.load(os.path.join(d, a["path"]), mmap_mode="r")
    assert list(arr.shape) == a["shape"], a
for f in env["files"].values():
    assert os.path.getsize(os.path.join(d, f)) > 0, f
PYEOF
}

# SIGKILL at increasing moments of a large emit (~0.5 GiB of arrays).
for delay in 0.05 0.2 0.4 0.6 0.9 1.3; do
  rm -rf "$T/k" && mkdir "$T/k"
  "$BIN/sattn-emit" "$T/w.mlir" --out-dir "$T/k/out" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [[ -e $T/k/out ]]; then
    complete_dir "$T/k/out" >/dev/null 2>&1 && ok || fail "SIGKILL after ${delay}s: $T/k/out is incomplete"
  else
    ok
  fi
  visible=$(ls "$T/k")
  [[ -z $visible || $visible == out ]] && ok || fail "SIGKILL after ${delay}s: visible litter: $visible"
  # The next run sweeps the dead run's hidden staging directory and succeeds.
  run "$BIN/sattn-emit" "$T/w.mlir" --out-dir "$T/k/out"
  expect_rc 0 "emit after SIGKILL at ${delay}s"
  [[ -z $(ls -A "$T/k" | grep -v '^out$') ]] && ok || fail "staging left after the next run: $(ls -A "$T/k")"
  complete_dir "$T/k/out" >/dev/null 2>&1 && ok || fail "emit after SIGKILL at ${delay}s: incomplete output"
done

# SIGKILL of `sattn run -o FILE` while it runs: FILE is absent or a whole JSON document.
for delay in 0.3 0.8; do
  rm -f "$T/r.json"
  "$SATTN" run "$SRC/examples/bsr.mlir" -o "$T/r.json" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [[ -e $T/r.json ]]; then
    "$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$T/r.json" && ok || fail "run -o killed at ${delay}s: partial $T/r.json"
  else
    ok
  fi
  [[ -z $(ls -A "$T" | grep -E '^\.?r\.json\.') ]] && ok || fail "run -o killed at ${delay}s: temp file left"
done

# SIGKILL of `sattn run --out-dir DIR` over several ops (one subdirectory each, staged and moved
# into place whole): DIR is absent, or every op has both o.npy and result.json.
for delay in 0.2 0.5 1.0 1.6; do
  rm -rf "$T/ro"
  "$SATTN" run "$SRC/examples/multi.mlir" "$SRC/examples/bsr.mlir" --out-dir "$T/ro" >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [[ -e $T/ro ]]; then
    n_npy=$(find "$T/ro" -name o.npy | wc -l) n_res=$(find "$T/ro" -name result.json | wc -l)
    [[ $n_npy -ge 2 && $n_npy -eq $n_res ]] && ok || fail "run --out-dir killed at ${delay}s: $n_npy o.npy, $n_res result.json"
  else
    ok
  fi
  "$SATTN" run "$SRC/examples/dense.mlir" --out-dir "$T/ro2" >/dev/null 2>&1  # sweeps the dead run's staging
  rm -rf "$T/ro2"
  [[ -z $(ls -A "$T" | grep '^\.sattn-') ]] && ok || fail "run --out-dir killed at ${delay}s: staging left: $(ls -A "$T")"
done

# A file-size limit (a full disk, as far as the tool can tell): exit 1, clear message, input intact.
rm -rf "$T/f"
run bash -c "ulimit -f 10240; exec '$BIN/sattn-emit' '$T/w.mlir' --out-dir '$T/f'"
expect_rc 1 "emit under ulimit -f"
expect_err "sattn-emit: error: .*(File too large|write)" "emit under ulimit -f: says why"
expect_no_file "$T/f" "emit under ulimit -f: no partial out-dir"
cmp -s "$T/w.mlir" "$T/w.mlir.orig" && ok || fail "emit under ulimit -f: input changed"
[[ -z $(ls -A "$T" | grep '^\.sattn-') ]] && ok || fail "emit under ulimit -f: staging left: $(ls -A "$T")"

# An unwritable output directory (a path under a regular file, which even root cannot create).
run "$BIN/sattn-emit" "$T/w.mlir" --out-dir "$T/w.mlir.orig/sub"
expect_rc 1 "emit into an unwritable directory"
expect_err "sattn-emit: error: .*w\.mlir\.orig" "emit into an unwritable directory: names the path"
run "$SATTN" run "$SRC/examples/bsr.mlir" -o "$T/w.mlir.orig/x.json"
expect_rc 1 "run -o into an unwritable directory"
cmp -s "$T/w.mlir" "$T/w.mlir.orig" && ok || fail "unwritable directory: input changed"

# -o onto the input file itself: the input is only replaced by a complete result.
cp "$SRC/examples/bsr.mlir" "$T/same.mlir"
run bash -c "ulimit -f 1; exec '$BIN/sattn-select' '$T/same.mlir' -o '$T/same.mlir'"
cmp -s "$T/same.mlir" "$SRC/examples/bsr.mlir" && ok || fail "select -o onto its input under a size limit: input lost"

# A missing backend binary: exit 4 and the command that fixes it.
mkdir -p "$T/empty"
run env SATTN_LIBEXEC_DIR="$T/empty" "$BIN/sattn-run-rvv" "$SRC/examples/bsr.mlir" --vlen 128
expect_rc 4 "run-rvv without its runner"
expect_err "sattn-run-rvv: error: " "run-rvv without its runner: message"
expect_err "(doctor|install|built|SATTN_LIBEXEC_DIR)" "run-rvv without its runner: says what to do"
# qemu that crashes: a qemu-riscv64 on PATH that dies with SIGSEGV.
mkdir -p "$T/fakebin"
printf '#!/bin/sh\nkill -SEGV $$\n' >"$T/fakebin/qemu-riscv64"
chmod +x "$T/fakebin/qemu-riscv64"
run env PATH="$T/fakebin:$PATH" "$BIN/sattn-run-rvv" "$SRC/examples/bsr.mlir" --vlen 128
expect_rc 4 "run-rvv with a crashing qemu"
expect_err "sattn-run-rvv: error: .*qemu" "run-rvv with a crashing qemu: names qemu"
expect_err "sattn doctor" "run-rvv with a crashing qemu: says what to do"
# A harness that crashes: a sattn-accel-sim-lanes16 that dies with SIGSEGV.
mkdir -p "$T/fakeexec"
printf '#!/bin/sh\nkill -SEGV $$\n' >"$T/fakeexec/sattn-accel-sim-lanes16"
chmod +x "$T/fakeexec/sattn-accel-sim-lanes16"
run env SATTN_LIBEXEC_DIR="$T/fakeexec" "$BIN/sattn-sim" "$SRC/examples/bsr.mlir" --precision i8
expect_rc 4 "sim with a crashing harness"
expect_err "sattn-sim: error: .*(signal|SEGV)" "sim with a crashing harness: says how it died"
expect_err "sattn doctor" "sim with a crashing harness: says what to do"
finish
