# The helpers (riscv64 runners, QEMU plugin, Verilator harness) are found from libsattn's own
# location, not from the host executable's: a tool copied outside bin/ (it still loads
# build/lib/libsattn.so through its rpath, as python3 or a user's program would load the
# library) runs the rvv and rocc backends. SATTN_LIBEXEC_DIR overrides the lookup.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must point at the build tree}"
unset SATTN_LIBEXEC_DIR

mkdir -p "$T/elsewhere/bin"
cp "$BUILD/bin/sattn" "$T/elsewhere/bin/sattn"
[[ ! -e $T/elsewhere/libexec ]] && ok || fail "no libexec beside the copy"
OP='{"name":"small","seq_len":64,"heads":1,"head_dim":16,"window_size":4,"precision":"i8"}'
echo "$OP" >"$T/op.json"

run "$T/elsewhere/bin/sattn" run --backend rvv "$T/op.json"
expect_rc 0 "rvv from a tool outside bin/: finds the runner and plugin beside the library"
expect_out '"backend":"rvv"' "the rvv result"
run "$T/elsewhere/bin/sattn" sim --probe
expect_rc 0 "the accelerator probe from a tool outside bin/: finds the harness"
expect_out '"schema":"sattn.probe/v1"' "the probe answered"

# The override wins over the library's location.
mkdir -p "$T/empty"
run env SATTN_LIBEXEC_DIR="$T/empty" "$T/elsewhere/bin/sattn" run --backend rvv "$T/op.json"
expect_rc 4 "SATTN_LIBEXEC_DIR (empty) overrides the lookup"
expect_err "$T/empty" "names the directory it looked in"
[[ -z $out ]] && ok || fail "no output when the helpers are missing"

finish
