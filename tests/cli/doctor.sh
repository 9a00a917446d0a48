# sattn doctor's sattn-opt line: optional; "ok" when a working sattn-opt sits next to sattn (it
# lowers a tiny op), "missing" with the packages to install when there is none, "broken" with
# the tool's own words when it fails. The three runs go in parallel (each builds tiny programs).
source "$(dirname "$0")/lib.sh"

opt_check() {  # opt_check REPORT.json: the sattn-opt entry as "required status|detail|fix"
  $PY -c 'import json,sys
c=[c for c in json.load(open(sys.argv[1]))["checks"] if c["name"].startswith("sattn-opt")]
print(len(c), c and c[0]["required"], c and c[0]["status"], "|", c and c[0]["detail"], "|", c and c[0]["fix"])' "$1"
}

# A sattn without a sattn-opt beside it (and none in PATH), and one beside a failing sattn-opt.
mkdir -p "$T/none" "$T/broken"
cp "$SATTN" "$T/none/sattn"
cp "$SATTN" "$T/broken/sattn"
printf '#!/bin/sh\necho "sattn-opt: error while loading shared libraries: libMLIR.so.16" >&2\nexit 127\n' >"$T/broken/sattn-opt"
chmod +x "$T/broken/sattn-opt"
"$SATTN" doctor --format json -q -o "$T/real.json" 2>"$T/real.err" &
PATH=/usr/bin:/bin "$T/none/sattn" doctor --format json -q -o "$T/none.json" 2>"$T/none.err" &
PATH=/usr/bin:/bin "$T/broken/sattn" doctor --format json -q -o "$T/broken.json" 2>"$T/broken.err" &
PATH=/usr/bin:/bin "$T/none/sattn" doctor --format text -q -o "$T/none.txt" 2>/dev/null &
# As on a machine with the .deb installed: qemu-riscv64 in PATH, none of the build tools (clang-16,
# riscv64 gcc, verilator, scdoc). Running needs nothing more (exit 0); --build asks for them (exit 4).
mkdir -p "$T/rtpath"
ln -s "$(command -v qemu-riscv64)" "$T/rtpath/qemu-riscv64"
ln -s "$(command -v sh)" "$T/rtpath/sh"
(PATH="$T/rtpath" "$SATTN" doctor --format json -q -o "$T/rt.json" 2>"$T/rt.err"; echo $? >"$T/rt.rc") &
(PATH="$T/rtpath" "$SATTN" doctor --build --format text -q -o "$T/rtb.txt" 2>"$T/rtb.err"; echo $? >"$T/rtb.rc") &
wait

if [[ -x $(dirname "$SATTN")/sattn-opt ]]; then
  out=$(opt_check "$T/real.json")
  [[ $out == "1 False ok | "*"lowered a tiny op to sattn.rvv_call"* ]] && ok || fail "built sattn-opt: $out"
  grep -q '"version": "MLIR 16' "$T/real.json" && ok || fail "sattn-opt's version reported"
else
  out=$(opt_check "$T/real.json")
  [[ $out == "1 False missing"* ]] && ok || fail "no sattn-opt built: $out"
fi
out=$(opt_check "$T/none.json")
[[ $out == "1 False missing | not built"*"libmlir-16-dev mlir-16-tools llvm-16-dev"* ]] && ok || fail "missing sattn-opt: $out"
out=$(opt_check "$T/broken.json")
[[ $out == "1 False broken | "*"libMLIR.so.16"* ]] && ok || fail "broken sattn-opt: $out"
grep -qE "sattn-opt \(MLIR dialect\) +optional +missing" "$T/none.txt" && ok || fail "text report marks it optional"

[[ $(cat "$T/rt.rc") == 0 ]] && ok || fail "no build tools, every runner works: exit $(cat "$T/rt.rc") ($(cat "$T/rt.err"))"
rt=$($PY -c 'import json,sys
for c in json.load(open(sys.argv[1]))["checks"]: print(c["name"], "|", c["needed"], c["required"], c["status"])' "$T/rt.json")
for name in "clang-16 (RVV intrinsics)" "riscv64-linux-gnu-gcc" "verilator" "scdoc (man pages)"; do
  grep -qxF "$name | build False missing" <<<"$rt" && ok || fail "$name: build-only and missing: $(grep -F "$name" <<<"$rt")"
done
for name in "qemu-riscv64 (vector)" "RVV runner (rvv)" "QEMU counting plugin" "accelerator harness" "rvv backend (tiny op)" "rocc backend (tiny op)"; do
  grep -qxF "$name | run True ok" <<<"$rt" && ok || fail "$name: needed to run and working: $(grep -F "$name" <<<"$rt")"
done
[[ $(cat "$T/rtb.rc") == 4 ]] && ok || fail "--build without the build tools: exit $(cat "$T/rtb.rc"), expected 4"
grep -qE "^verilator +build +missing" "$T/rtb.txt" && ok || fail "--build text report: verilator build missing"
finish
