# Bring your own data (issue 21): --layout bshd reads [B, S, H, D] arrays transposed to
# [B, H, S, D] (checked against numpy's transpose), K/V repeated to every query head (Hugging
# Face repeat_kv) are detected and de-duplicated (query head h uses KV head h // group), and bad
# arrays are input errors (exit 3) naming the file.
source "$(dirname "$0")/lib.sh"
OP='{"schema": "sattn.op/v1", "name": "byo", "batch": 2, "heads": 6, "kv_heads": 2, "seq_len": 40, "kv_len": 48, "head_dim": 16, "causal": true, "spec": "dense"}'
echo "$OP" > "$T/op.json"
# The same data in three directories: bhsd, bshd (numpy's transpose), and bhsd with K/V repeated.
run "$PY" - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(7)
q = rng.standard_normal((2, 6, 40, 16), dtype=np.float32)
k = rng.standard_normal((2, 2, 48, 16), dtype=np.float32)
v = rng.standard_normal((2, 2, 48, 16), dtype=np.float32)
import os
for d in ("bhsd", "bshd", "rep", "rep_bshd", "badrep", "rank3", "neither", "heads4"):
    os.makedirs(f"{t}/{d}")
def save(d, **a):
    for n, x in a.items():
        np.save(f"{t}/{d}/{n}.npy", np.ascontiguousarray(x))
save("bhsd", q=q, k=k, v=v)
save("bshd", q=q.transpose(0, 2, 1, 3), k=k.transpose(0, 2, 1, 3), v=v.transpose(0, 2, 1, 3))
kr, vr = np.repeat(k, 3, axis=1), np.repeat(v, 3, axis=1)   # repeat_kv: head h is KV head h // 3
save("rep", q=q, k=kr, v=vr)
save("rep_bshd", q=q.transpose(0, 2, 1, 3), k=kr.transpose(0, 2, 1, 3), v=vr.transpose(0, 2, 1, 3))
bad = kr.copy(); bad[1, 4, 3, 0] += 1.0                  # batch 1, head 4 no longer equals head 3
save("badrep", q=q, k=bad, v=vr)
save("rank3", q=q[0], k=k, v=v)
save("neither", q=q, k=k[:, :, :40], v=v)               # kv_len 40 in neither layout
save("heads4", q=q, k=np.concatenate([k, k], axis=1), v=v)  # 4 heads: neither kv_heads (2) nor heads (6)
# The reference output of the bhsd data, computed here in float64 (GQA: query head h uses KV head h // 3).
kk, vv = np.repeat(k, 3, axis=1).astype(np.float64), np.repeat(v, 3, axis=1).astype(np.float64)
s = np.einsum("bhqd,bhkd->bhqk", q.astype(np.float64), kk) / np.sqrt(16)
mask = np.arange(48)[None, :] <= np.arange(40)[:, None] + (48 - 40)   # causal, bottom-right aligned
s = np.where(mask, s, -np.inf)
p = np.exp(s - s.max(-1, keepdims=True)); p /= p.sum(-1, keepdims=True)
np.save(f"{t}/ref.npy", np.einsum("bhqk,bhkd->bhqd", p, vv))
PY
expect_rc 0 "numpy writes the data"

run "$SATTN" run "$T/op.json" --data "$T/bhsd" --out-dir "$T/o_bhsd" -q
expect_rc 0 "bhsd data"
run "$SATTN" run "$T/op.json" --data "$T/bshd" --layout bshd --out-dir "$T/o_bshd" -q
expect_rc 0 "bshd data with --layout bshd"
run "$SATTN" run "$T/op.json" --data "$T/rep" --out-dir "$T/o_rep" --format json
expect_rc 0 "K/V repeated to every query head"
expect_err "^sattn run: warning: .*k\.npy: its 6 heads are the op's 2 KV heads each repeated 3 times \(repeat_kv\); read de-duplicated$" "a one-line note for k"
expect_err "v\.npy: its 6 heads are the op's 2 KV heads" "a note for v"
expect_out '"passed":true' "repeated data checks against the reference"
run "$SATTN" run "$T/op.json" --data "$T/rep_bshd" --layout bshd --out-dir "$T/o_rep_bshd" -q
expect_rc 0 "repeated K/V in bshd"
# Every output is the same as the bhsd run's, bit for bit, and near numpy's float64 reference.
run "$PY" - "$T" <<'PY'
import sys, numpy as np
t = sys.argv[1]
a = np.load(f"{t}/o_bhsd/o.npy")
for d in ("o_bshd", "o_rep", "o_rep_bshd"):
    b = np.load(f"{t}/{d}/o.npy")
    assert b.shape == a.shape == (2, 6, 40, 16), (d, b.shape)
    assert np.array_equal(a, b), d
e = np.abs(a - np.load(f"{t}/ref.npy")).max()
print(e)
assert e < 1e-5, e
PY
expect_rc 0 "bshd and repeated K/V give the bhsd output; it matches numpy's transpose-based reference"

# Mismatches name the file, say what was expected, and exit 3.
run "$SATTN" run "$T/op.json" --data "$T/bshd" --out-dir "$T/x1" -q
expect_rc 3 "bshd data without --layout"
expect_err "^sattn run: error: .*/bshd/q\.npy: shape \[2, 40, 6, 16\] does not match the op: q \[batch, heads, seq_len, head_dim\] must be \[2, 6, 40, 16\]; it looks like \[B, S, H, D\]: add --layout bshd$" "the hint names --layout bshd"
expect_no_file "$T/x1/o.npy" "no output on error"
run "$SATTN" run "$T/op.json" --data "$T/bhsd" --layout bshd --out-dir "$T/x2" -q
expect_rc 3 "bhsd data read as bshd"
expect_err "bhsd/q\.npy: shape \[2, 6, 40, 16\] does not match the op: q \[batch, seq_len, heads, head_dim\] must be \[2, 40, 6, 16\]; it looks like \[B, H, S, D\]: drop --layout bshd" "the hint says to drop --layout"
run "$SATTN" run "$T/op.json" --data "$T/badrep" --out-dir "$T/x3" -q
expect_rc 3 "6 K heads that are not repeats"
expect_err "^sattn run: error: .*badrep/k\.npy: has 6 heads \(the query heads\) but they are not 2 KV heads repeated in groups of 3 \(repeat_kv\): batch 1, head 4 differs from head 3$" "names the head that differs"
run "$SATTN" run "$T/op.json" --data "$T/rank3" --out-dir "$T/x4" -q
expect_rc 3 "rank 3"
expect_err "^sattn run: error: .*rank3/q\.npy: expected a 4-D" "rank names the file"
run "$SATTN" run "$T/op.json" --data "$T/neither" --layout bshd --out-dir "$T/x5" -q
expect_rc 3 "shape in neither layout"
expect_err "^sattn run: error: .*neither/q\.npy: shape \[2, 6, 40, 16\]" "q is checked first, in the layout given"
run "$SATTN" run "$T/op.json" --data "$T/neither" --out-dir "$T/x6" -q
expect_rc 3 "kv_len in neither layout"
expect_err "^sattn run: error: .*neither/k\.npy: shape \[2, 2, 40, 16\] does not match the op: k \[batch, kv_heads, kv_len, head_dim\] must be \[2, 2, 48, 16\] \(or \[2, 6, 48, 16\], repeated to every query head\)$" "k: both accepted shapes named"
run "$SATTN" run "$T/op.json" --data "$T/heads4" --out-dir "$T/x7" -q
expect_rc 3 "k heads neither kv_heads nor heads"
expect_err "^sattn run: error: .*heads4/k\.npy: shape \[2, 4, 48, 16\] does not match" "names k"
run "$SATTN" run "$T/op.json" --layout bshd -q
expect_rc 2 "--layout needs --data"
run "$SATTN" run "$T/op.json" --data "$T/bshd" --layout bsdh -q
expect_rc 2 "unknown layout"

# The other tools that read --data take --layout too.
run "$SATTN" emit "$T/op.json" --data "$T/bshd" --layout bshd --out-dir "$T/emit"
expect_rc 0 "sattn emit --layout bshd"
run "$SATTN" run "$T/emit/artifacts.json" --out-dir "$T/o_emit" -q
expect_rc 0 "artifacts emitted from bshd data run"
run "$PY" -c "import numpy as np, sys; sys.exit(0 if np.array_equal(np.load('$T/o_emit/o.npy'), np.load('$T/o_bhsd/o.npy')) else 1)"
expect_rc 0 "the emitted data is the transposed data"
# A bare op that gives no shape attribute takes its shape from the data (in the layout given), with a note;
# the output is the full op's.
echo '{"spec": "dense", "causal": true}' > "$T/bare.json"
run "$SATTN" run "$T/bare.json" --data "$T/bshd" --layout bshd --out-dir "$T/o_bare" --format json
expect_rc 0 "bare op with --data"
expect_err "^sattn run: warning: op 'op0': batch 2, heads 6, kv_heads 2, seq_len 40, kv_len 48, head_dim 16 taken from .*/bshd \(the op gives no shape\)$" "the shape taken is named"
expect_out '"heads":6,"kv_heads":2' "the result's op has the data's shape"
run "$PY" -c "import numpy as np, sys; sys.exit(0 if np.array_equal(np.load('$T/o_bare/o.npy'), np.load('$T/o_bhsd/o.npy')) else 1)"
expect_rc 0 "the bare op computes what the full op does"
echo '{"spec": "dense", "causal": true, "seq_len": 40, "heads": 6}' > "$T/part.json"
run "$SATTN" run "$T/part.json" --data "$T/bhsd" -q
expect_rc 3 "an op that gives part of its shape keeps the defaults (kv_len = seq_len, kv_heads = heads)"
expect_err "q\.npy: shape \[2, 6, 40, 16\] does not match the op: q \[batch, heads, seq_len, head_dim\] must be \[1, 6, 40, 64\]$" "the defaults apply (batch 1, head_dim 64): an error, not inferred"
run "$SATTN" run "$T/bare.json" --data "$T/rank3" -q
expect_rc 3 "inference from a rank-3 q"
expect_err "^sattn run: error: .*rank3/q\.npy: expected a 4-D array, got shape \(6, 40, 16\)$" "names the file"
run "$SATTN" run "$T/bare.json" -q --seed 3 --dry-run
expect_rc 0 "without --data the defaults stay"
# sattn eval and sattn calibrate read --layout bshd too: the same report as on the bhsd copy (but
# for the directory names), and a bare op takes its shape from the first --data.
echo '{"spec": "bsr", "causal": true, "block_size": 16}' > "$T/bsr.json"
for tool in eval calibrate; do
  extra=(); [[ $tool == calibrate ]] && extra=(--precision i8)
  run "$SATTN" $tool "$T/bsr.json" "${extra[@]}" --data "$T/bhsd"
  expect_rc 0 "$tool on bhsd"
  expect_err "op 'op0': batch 2, heads 6, kv_heads 2, seq_len 40, kv_len 48, head_dim 16 taken from" "$tool: shape from the data"
  a=$(sed 's#/bhsd#/DIR#g' <<<"$out")
  run "$SATTN" $tool "$T/bsr.json" "${extra[@]}" --data "$T/bshd" --layout bshd
  expect_rc 0 "$tool on bshd with --layout bshd"
  [[ -n $a && $a == "$(sed 's#/bshd#/DIR#g' <<<"$out")" ]] && ok || fail "$tool: bshd gives the bhsd report"
  run "$SATTN" $tool "$T/bsr.json" "${extra[@]}" --data "$T/bshd"
  expect_rc 3 "$tool on bshd without --layout"
done
# sattn select --min-recall calibrates on --data read with --layout: the plan chosen from the bshd
# copy is the bhsd one's (selection reason and candidates included, but for the directory names).
sed 's/, "spec": "dense"//' "$T/op.json" >"$T/free.json"
for t in "$SATTN select" "$(dirname "$SATTN")/sattn-select"; do
  # shellcheck disable=SC2086
  run $t "$T/free.json" --min-recall 0.95 --data "$T/bhsd" --format text
  expect_rc 0 "$t --min-recall on bhsd"
  a=$(sed 's#/bhsd#/DIR#g' <<<"$out")
  run $t "$T/free.json" --min-recall 0.95 --data "$T/bshd" --layout bshd --format text
  expect_rc 0 "$t --min-recall on bshd with --layout bshd"
  [[ -n $a && $a == "$(sed 's#/bshd#/DIR#g' <<<"$out")" ]] && ok || fail "$t: bshd gives the bhsd plan"
  grep -q "recall" <<<"$a" && ok || fail "$t: the text plan shows the recall table"
  run $t "$T/free.json" --min-recall 0.95 --data "$T/bshd"
  expect_rc 3 "$t: bshd without --layout"
  expect_err "bshd/q\.npy: shape \[2, 40, 6, 16\] does not match the op.*add --layout bshd" "$t: the hint names --layout"
  run $t "$T/op.json" --layout bshd
  expect_rc 2 "$t: --layout needs --data"
  # A bare op takes its shape from the first sample.
  run $t "$T/bsr.json" --min-recall 0.9 --data "$T/bshd" --layout bshd
  expect_rc 0 "$t: a bare op with --min-recall"
  expect_err "op 'op0': batch 2, heads 6, kv_heads 2, seq_len 40, kv_len 48, head_dim 16 taken from" "$t: shape from the data"
done
finish
