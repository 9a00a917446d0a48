# Packaging: CPack builds the .deb from the install rules (sattn, and sattn-mlir when sattn-opt is
# built); lintian finds no error in them; unpacked into a fresh prefix (no root, no chroot:
# dpkg-deb -x), the installed sattn finds its helpers, profiles, schemas, examples, man pages and
# completions, passes `sattn doctor` without any build tool in PATH, and runs a pipeline from the
# installed files alone.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must point at the build tree}"

run cpack -G DEB -B "$T/pkg" --config "$BUILD/CPackConfig.cmake"
expect_rc 0 "cpack -G DEB"
deb=$(ls "$T"/pkg/sattn_*.deb 2>/dev/null | head -1)
expect_file "$deb" "the .deb"
run dpkg-deb --info "$deb"
expect_out "Package: sattn$" "package name"
expect_out "Depends: .*libyaml-cpp" "shared-library dependencies computed"
grep -q "libmlir" <<<"$out" && fail "the main package depends on libmlir-16" || ok
expect_out "^ Maintainer: [^<]+ <[^@>]+@[^>]+>$" "a Maintainer field"
grep -qE "Maintainer: .*@localhost" <<<"$out" && fail "Maintainer is on localhost" || ok
mlir_deb=$(ls "$T"/pkg/sattn-mlir_*.deb 2>/dev/null | head -1)
if [[ -x $BUILD/bin/sattn-opt ]]; then
  expect_file "$mlir_deb" "sattn-mlir .deb (sattn-opt is built)"
  run dpkg-deb --info "$mlir_deb"
  expect_out "Package: sattn-mlir$" "sattn-mlir package name"
  expect_out "Depends: sattn \(= [0-9.]+\), libmlir-16" "sattn-mlir depends on sattn and libmlir-16"
  run dpkg-deb -c "$mlir_deb"
  expect_out "\./usr/bin/sattn-opt$" "sattn-opt is in sattn-mlir"
  run dpkg-deb -x "$mlir_deb" "$T/root"
fi
run dpkg-deb -c "$deb"
grep -q "usr/bin/sattn-opt" <<<"$out" && fail "sattn-opt is in the main package" || ok

# lintian (Debian's package checker): no error in either package. Overrides ship in the packages
# (/usr/share/lintian/overrides), each with its reason (scripts/package/lintian-overrides*).
run lintian --tag-display-limit 0 "$deb" ${mlir_deb:+"$mlir_deb"}
errors=$(grep -E '^E: ' <<<"$out")
[[ -z $errors ]] && ok || fail "lintian errors: $errors"
grep -qE '^E: |^W: |^I: |^N: ' <<<"$out$err" || [[ $rc -eq 0 ]] && ok || fail "lintian did not run (exit $rc): $err"

run dpkg-deb -x "$deb" "$T/root"
expect_rc 0 "unpack"
P="$T/root/usr"
for f in bin/sattn bin/sattn-select bin/sattn-emit bin/sattn-run-rvv bin/sattn-sim bin/sattn-calibrate bin/sattn-imc \
  libexec/sattn/sattn-rvv-runner-rvv libexec/sattn/sattn-rvv-runner-scalar libexec/sattn/sattn-rvv-runner-autovec \
  libexec/sattn/libsattn-insn-count.so libexec/sattn/sattn-accel-sim-lanes16 \
  share/sattn/profiles/highperf.yaml share/sattn/profiles/lowpower.yaml share/sattn/profiles/imc.yaml \
  share/man/man1/sattn.1.gz share/man/man1/sattn-select.1.gz share/man/man5/sattn-profile.5.gz share/man/man7/sattn-artifacts.7.gz \
  share/doc/sattn/copyright share/doc/sattn/changelog.gz share/doc/sattn/examples/bsr.mlir share/doc/sattn/examples/op.json \
  share/sattn/schemas/op.schema.json share/sattn/schemas/plan.schema.json share/sattn/schemas/artifacts.schema.json \
  share/bash-completion/completions/sattn share/zsh/site-functions/_sattn share/fish/vendor_completions.d/sattn.fish; do
  expect_file "$P/$f" "installed $f"
done

# Run from the installed tree only: no build tree, no source tree in reach.
cd "$T" || exit 1
unset SATTN_LIBEXEC_DIR
export XDG_CONFIG_HOME="$T/xdg"
# As on a machine with only the .deb and qemu-user: no clang-16, riscv64 gcc, verilator or scdoc.
mkdir -p "$T/rtpath"
ln -s "$(command -v qemu-riscv64)" "$T/rtpath/qemu-riscv64"
ln -s "$(command -v sh)" "$T/rtpath/sh"
run env PATH="$T/rtpath" "$P/bin/sattn" doctor --format json
expect_rc 0 "installed sattn doctor, no build tools in PATH"
expect_out '"name": "rvv backend \(tiny op\)",' "doctor runs the rvv backend"
expect_out "\"libexec_dir\": \"$P/libexec/sattn\"" "doctor finds the installed helpers"
run "$P/bin/sattn" profile list
expect_out "$P/share/sattn/profiles/highperf.yaml" "installed profiles are found"
cp "$P/share/doc/sattn/examples/bsr.mlir" "$T/op.mlir"   # the example the man pages use, as installed
run bash -o pipefail -c "'$P/bin/sattn-select' op.mlir | '$P/bin/sattn-emit' --out-dir art | '$P/bin/sattn' run - --format text"
expect_rc 0 "select | emit | run from the installed files"
expect_out "bsr .* ok" "the run checked out"
run bash -c "MANPATH='$P/share/man' man -w sattn-profile"
[[ $rc -ne 0 ]] || expect_out "man5/sattn-profile.5.gz" "man finds the installed (gzipped) page"

# The Python package (docs/python.md), importable from the unpacked tree alone.
expect_file "$P/lib/python3/dist-packages/sattn/__init__.py" "installed Python package"
run env PYTHONPATH="$P/lib/python3/dist-packages" /usr/bin/python3 -c \
  'import numpy as np, sattn; q = np.ones((1, 1, 8, 4), np.float32); print(sattn.__file__, sattn.sparse_attention(q, q, q).sum())'
expect_rc 0 "import sattn from the .deb"
expect_out "$P/lib/python3/dist-packages/sattn/__init__.py 32.0" "the installed package runs"

finish
