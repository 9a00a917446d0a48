# Artifacts given with other --data (issue 21, docs/decisions.md): the artifacts' layout is used as
# it is, never recomputed, and when it was chosen from Q/K that differ from the ones given, one
# warning says so (run, sim, run-rvv, imc). The same data in another form (bshd, float64) is the
# same data: no warning. A layout that does not depend on the data never warns.
source "$(dirname "$0")/lib.sh"
BIN="$(dirname "$SATTN")"
echo '{"schema": "sattn.op/v1", "name": "blk", "heads": 2, "seq_len": 64, "head_dim": 16, "causal": true, "spec": "bsr", "block_size": 16, "keep_ratio": 0.5, "precision": "i8"}' >"$T/bsr.json"
echo '{"schema": "sattn.op/v1", "name": "win", "heads": 2, "seq_len": 64, "head_dim": 16, "spec": "sliding_window", "window_size": 8, "precision": "i8"}' >"$T/sw.json"
run "$PY" - "$T" <<'PY'
import os, sys, numpy as np
t = sys.argv[1]
def save(d, q, k, v, conv=lambda a: a):
    os.makedirs(f"{t}/{d}")
    for n, a in (("q", q), ("k", k), ("v", v)):
        np.save(f"{t}/{d}/{n}.npy", np.ascontiguousarray(conv(a)))
rng = np.random.default_rng(3)
q, k, v = (rng.standard_normal((1, 2, 64, 16)).astype(np.float32) for _ in range(3))
save("a", q, k, v)
save("a_bshd", q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3))
save("a_f64", q, k, v, lambda a: a.astype(np.float64))         # exact: the same float32 values
save("a_newv", q, k, rng.standard_normal((1, 2, 64, 16)).astype(np.float32))   # only V differs
q2, k2 = (rng.standard_normal((1, 2, 64, 16)).astype(np.float32) for _ in range(2))
save("b", q2, k2, v)                                            # other Q and K
save("c", q, k2, v)                                             # other K only
PY
expect_rc 0 "numpy writes the data"
run "$BIN/sattn-emit" "$T/bsr.json" --data "$T/a" --out-dir "$T/art"
expect_rc 0 "emit bsr from data a"
run "$BIN/sattn-emit" "$T/sw.json" --data "$T/a" --out-dir "$T/art_sw"
expect_rc 0 "emit sliding_window with data a"
A="$T/art/artifacts.json"
warn_re="^sattn run: warning: $A: op 'blk': its bsr layout was chosen from the data emitted with it, and the Q and K of --data $T/b differ; the artifacts' layout is used as it is, not recomputed \(give the plan or the op instead, or re-run sattn emit --data $T/b, to choose it from this data\)$"

for d in a a_bshd a_f64 a_newv; do
  extra=(); [[ $d == a_bshd ]] && extra=(--layout bshd)
  run "$SATTN" run "$A" --data "$T/$d" "${extra[@]}" --format json
  expect_rc 0 "run artifacts with $d"
  grep -q "warning" <<<"$err" && fail "$d: the data the layout was chosen from (Q, K the same): no warning" || ok
done
run "$SATTN" run "$A" --data "$T/b" --format json
expect_rc 0 "other data is a warning, not an error"
expect_err "$warn_re" "the warning names the artifacts, the op, the spec and the data"
[[ $(grep -c warning <<<"$err") -eq 1 ]] && ok || fail "one warning"
# The layout used is the artifacts' own (not one built from b): same nnz and density as emitted,
# and a different one from what the plan gives with b.
layout_of() { "$PY" -c "import json,sys; d=json.loads(sys.stdin.readline()); l=d['layout']; print(l['nnz'], l['density'], d['data']['source'])"; }
got=$(layout_of <<<"$out")
want=$("$PY" -c "import json; e=json.load(open('$A')); print(e['nnz'], e['density'], 'npy')")
[[ $got == "$want" ]] && ok || fail "the artifacts' layout is used (got $got, want $want)"
run "$SATTN" run "$T/bsr.json" --data "$T/b" --format json
expect_rc 0 "the op with data b chooses its own layout"
[[ -z $err ]] && ok || fail "the op with data b: no warning"
run "$BIN/sattn-emit" "$T/bsr.json" --data "$T/b" --out-dir "$T/art_b"
cmp -s "$T/art/block_col_idx.npy" "$T/art_b/block_col_idx.npy" && fail "data a and b must choose different bsr blocks, or the test proves nothing" || ok
run "$SATTN" run "$A" --data "$T/c" --format json
expect_err "and the K of --data $T/c differ" "names what differs"
run "$SATTN" run "$A" --data "$T/b" -q --format json
[[ -z $err ]] && ok || fail "-q silences the warning"
# A layout that does not depend on the data: no warning.
run "$SATTN" run "$T/art_sw/artifacts.json" --data "$T/b" --format json
expect_rc 0 "sliding_window artifacts with other data"
[[ -z $err ]] && ok || fail "sliding_window: no warning (got: $err)"

# The other tools that run artifacts say the same.
run "$BIN/sattn-imc" "$A" --data "$T/b" --format json
expect_rc 0 "imc"
expect_err "^sattn-imc: warning: $A: op 'blk': its bsr layout was chosen from the data emitted with it" "imc warns"
expect_out "\"density\":$("$PY" -c "import json; print(json.load(open('$A'))['density'])")[,}]" "imc uses the artifacts' layout"
run "$BIN/sattn-imc" "$A" --data "$T/a" --format json
[[ -z $err ]] && ok || fail "imc with the same data: no warning"
run "$BIN/sattn-sim" "$A" --data "$T/b" --format json
expect_rc 0 "sim"
expect_err "^sattn-sim: warning: $A: op 'blk': its bsr layout" "sim warns"
run "$BIN/sattn-run-rvv" "$A" --data "$T/b" --vlen 128 --format json
expect_rc 0 "run-rvv"
expect_err "^sattn-run-rvv: warning: $A: op 'blk': its bsr layout" "run-rvv warns"
finish
