# End to end: a module lowered by sattn-opt, piped into the backends, runs exactly what the
# tools run on the original op (same spec and parameters, so the same layout, the same exact
# RVV instruction counts and the same accelerator cycles), and passes its check.
source "$SRC/tests/cli/lib.sh"
BIN=$(dirname "$SATTN")
export PATH="$BIN:$PATH"
while read -r v; do unset "$v"; done < <(env | grep -o '^SATTN_[A-Z0-9_]*' | grep -v '^SATTN_LIBEXEC_DIR$')
# What must agree, one line per op: everything but where and when it ran.
summary() {
  $PY -c 'import json,sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("timing", "producer", "input", "dir", "source", "loc", "selection", "op")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x
for line in sys.stdin:
    r = json.loads(line)
    print(r.get("name") or r.get("op", {}).get("name"), json.dumps(strip(r), sort_keys=True))'
}

for ex in ring topk_per_query; do
  in="$SRC/examples/$ex.mlir"
  run bash -o pipefail -c "sattn-opt '$in' -pass-pipeline='builtin.module(sattn-lower-rvv)' | sattn-run-rvv -"
  expect_rc 0 "$ex: sattn-opt | sattn-run-rvv -"
  lowered=$(summary <<<"$out")
  run sattn-run-rvv "$in"
  expect_rc 0 "$ex: sattn-run-rvv on the op"
  direct=$(summary <<<"$out")
  [[ -n $direct && $lowered == "$direct" ]] && ok || fail "$ex: rvv results differ: lowered $lowered / direct $direct"
  [[ $lowered == *'"passed": true'* ]] && ok || fail "$ex: lowered run passes its check"
done

in="$SRC/examples/sliding_window.mlir"
run bash -o pipefail -c "sattn-opt '$in' -sattn-lower-rocc | sattn-sim -"
expect_rc 0 "sattn-opt | sattn-sim -"
lowered=$(summary <<<"$out")
run sattn-sim "$in"
direct=$(summary <<<"$out")
[[ -n $direct && $lowered == "$direct" ]] && ok || fail "sim results differ: lowered $lowered / direct $direct"

# sattn-emit: the same artifacts as from sattn-select's plan; sattn-run-rvv runs them.
in="$SRC/examples/multi.mlir"
run bash -o pipefail -c "sattn-opt '$in' -sattn-to-rvv -mlir-print-op-generic | sattn-emit --out-dir '$T/lowered' >'$T/envelopes'"
expect_rc 0 "sattn-opt | sattn-emit"
run bash -o pipefail -c "sattn-select --backend rvv '$in' | sattn-emit --out-dir '$T/direct'"
expect_rc 0 "sattn-select | sattn-emit"
n=0
for f in $(cd "$T/direct" && find . -name '*.npy' -o -name '*.txt' -o -name '*.desc' | sort); do
  n=$((n + 1))
  cmp -s "$T/direct/$f" "$T/lowered/$f" || fail "emit: $f differs"
done
[[ $n -ge 6 ]] && ok || fail "emit wrote $n index/array files"
run bash -c "sattn-run-rvv - <'$T/envelopes'"
expect_rc 0 "sattn-run-rvv on the lowered module's artifacts"
[[ $(grep -c '"passed":true' <<<"$out") -eq 3 ]] && ok || fail "the three ops' artifacts pass their checks"
finish
