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
grep -qE "sattn-opt \(MLIR dialect\) +\(optional\) missing" "$T/none.txt" && ok || fail "text report marks it optional"
finish
