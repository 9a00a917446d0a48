# Packaging: CPack builds the .deb from the install rules; unpacked into a fresh prefix (no root,
# no chroot: dpkg-deb -x), the installed sattn finds its helpers, profiles, man pages and
# completions, passes `sattn doctor`, and runs a pipeline from the installed files alone.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must point at the build tree}"

run cpack -G DEB -B "$T/pkg" --config "$BUILD/CPackConfig.cmake"
expect_rc 0 "cpack -G DEB"
deb=$(ls "$T"/pkg/sattn_*.deb 2>/dev/null | head -1)
expect_file "$deb" "the .deb"
run dpkg-deb --info "$deb"
expect_out "Package: sattn" "package name"
expect_out "Depends: .*libyaml-cpp" "shared-library dependencies computed"
run dpkg-deb -x "$deb" "$T/root"
expect_rc 0 "unpack"
P="$T/root/usr"
for f in bin/sattn bin/sattn-select bin/sattn-emit bin/sattn-run-rvv bin/sattn-sim bin/sattn-calibrate bin/sattn-imc \
  libexec/sattn/sattn-rvv-runner-rvv libexec/sattn/sattn-rvv-runner-scalar libexec/sattn/sattn-rvv-runner-autovec \
  libexec/sattn/libsattn-insn-count.so libexec/sattn/sattn-accel-sim-lanes16 \
  share/sattn/profiles/highperf.yaml share/sattn/profiles/lowpower.yaml share/sattn/profiles/imc.yaml \
  share/man/man1/sattn.1 share/man/man1/sattn-select.1 share/man/man5/sattn-profile.5 share/man/man7/sattn-artifacts.7 \
  share/bash-completion/completions/sattn share/zsh/site-functions/_sattn share/fish/vendor_completions.d/sattn.fish; do
  expect_file "$P/$f" "installed $f"
done

# Run from the installed tree only: no build tree, no source tree in reach.
cd "$T" || exit 1
unset SATTN_LIBEXEC_DIR
export XDG_CONFIG_HOME="$T/xdg"
run "$P/bin/sattn" doctor --format json
expect_rc 0 "installed sattn doctor"
expect_out "\"libexec_dir\": \"$P/libexec/sattn\"" "doctor finds the installed helpers"
run "$P/bin/sattn" profile list
expect_out "$P/share/sattn/profiles/highperf.yaml" "installed profiles are found"
cp "$SRC/examples/bsr.mlir" "$T/op.mlir"
run bash -o pipefail -c "'$P/bin/sattn-select' op.mlir | '$P/bin/sattn-emit' --out-dir art | '$P/bin/sattn' run - --format text"
expect_rc 0 "select | emit | run from the installed files"
expect_out "bsr .* ok" "the run checked out"
run bash -c "MANPATH='$P/share/man' man -w sattn-profile"
[[ $rc -ne 0 ]] || expect_out "man5/sattn-profile.5" "man finds the installed page"

# The Python package (docs/python.md), importable from the unpacked tree alone.
expect_file "$P/lib/python3/dist-packages/sattn/__init__.py" "installed Python package"
run env PYTHONPATH="$P/lib/python3/dist-packages" /usr/bin/python3 -c \
  'import numpy as np, sattn; q = np.ones((1, 1, 8, 4), np.float32); print(sattn.__file__, sattn.sparse_attention(q, q, q).sum())'
expect_rc 0 "import sattn from the .deb"
expect_out "$P/lib/python3/dist-packages/sattn/__init__.py 32.0" "the installed package runs"

finish
