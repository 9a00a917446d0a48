# `sattn calibrate --schemes`: every quantization scheme reported and one recommended; --apply
# writes fixed scale tables into artifacts, `sattn run` reads them; bad tables are exit 3 naming
# the file (sattn-quant(7) FIXED SCALES, sattn-artifacts(7)).
source "$(dirname "$0")/lib.sh"

cat >"$T/op.mlir" <<'M'
"sattn.sparse_attention"() { name = "a", heads = 4 : i64, kv_heads = 2 : i64, seq_len = 128 : i64, head_dim = 32 : i64, causal = true, precision = "i8", spec = "dense" } : () -> ()
M
sed 's/"i8"/"i4"/' "$T/op.mlir" >"$T/op4.mlir"
"$PY" - "$T" <<'P'
import numpy as np, os, sys
t = sys.argv[1]
# lap2: lap plus a little noise (fixed tables fit data like the calibration data: per-token
# scales of unrelated data saturate, and the check against the fp32 reference fails, exit 5).
rng = np.random.default_rng(1)
for d in ("lap", "lap2"): os.makedirs(os.path.join(t, d))
for n, s in (("q", (1, 4, 128, 32)), ("k", (1, 2, 128, 32)), ("v", (1, 2, 128, 32))):
    a = rng.laplace(size=s)
    np.save(os.path.join(t, "lap", n + ".npy"), a.astype(np.float32))
    np.save(os.path.join(t, "lap2", n + ".npy"), (a + 0.02 * rng.laplace(size=s)).astype(np.float32))
P

# The report: every scheme, one recommended, the metrics of bench/quant.
run "$SATTN" calibrate "$T/op4.mlir" --schemes --data "$T/lap" --format text
expect_rc 0 "--schemes text"
for s in per-tensor q=head,k=head q=block,k=block q=token,k=token smooth=k, sage 'smooth ' 'smooth,block=4' 'smooth,block=2'; do
  expect_out "$s" "--schemes lists $s"
done
[[ $(grep -c ' \*$' <<<"$out") -eq 1 ]] && ok || fail "exactly one recommended scheme"
run "$SATTN" calibrate "$T/op4.mlir" --schemes --data "$T/lap" -o "$T/schemes.jsonl"
expect_rc 0 "--schemes -o"
run "$PY" "$SRC/tests/cli/schemas/validate.py" "$SRC/schemas" "$T/schemes.jsonl"
expect_rc 0 "sattn.calibration-schemes/v1 validates"
run "$SATTN" calibrate "$T/op4.mlir" --schemes --data "$T/lap"
expect_rc 0 "--schemes json"
"$PY" - "$out" <<'P' && ok || fail "--schemes JSON: metrics and the recommendation"
import json, sys
r = json.loads(sys.argv[1])
assert r["schema"] == "sattn.calibration-schemes/v1" and r["precision"] == "i4", r
rows = {s["scheme"]: s for s in r["schemes"]}
assert len(rows) == 10 and sum(s["best"] for s in rows.values()) == 1
best = rows[r["recommended"]]
assert best["best"]
for s in rows.values():
    assert 0 <= s["rel_l1"] and 0 <= s["max_rel"] and -1 <= s["cosine"] <= 1
# At i4 the recommendation is the lowest relative L1, at least 2x below per-tensor absmax.
assert best["rel_l1"] == min(s["rel_l1"] for s in rows.values())
assert best["rel_l1"] * 2 <= rows["per-tensor"]["rel_l1"], (best, rows["per-tensor"])
P

# calibrate -> apply -> run: the tables of one sample reproduce the dynamic run bit for bit.
run "$SATTN" emit "$T/op.mlir" --out-dir "$T/art" --data "$T/lap"
expect_rc 0 "emit"
cp -r "$T/art" "$T/art0"
run "$SATTN" calibrate "$T/art" --schemes --apply -q
expect_rc 0 "--apply on artifacts"
printf '%s\n' "$out" >"$T/applied.jsonl"
run "$PY" "$SRC/tests/cli/schemas/validate.py" "$SRC/schemas" "$T/applied.jsonl" "$T/art/artifacts.json"
expect_rc 0 "the updated envelope validates (validate.py)"
"$PY" - "$T/art" "$T/applied.jsonl" <<'P' && ok || fail "stdout = the envelope file + dir"
import json, sys
d, printed = sys.argv[1:]
env = json.load(open(f"{d}/artifacts.json"))
line = [json.loads(l) for l in open(printed) if l.strip()]
assert len(line) == 1
line[0].pop("dir")
assert line[0] == env
assert env["quant"]["calibration"]["schema"] == "sattn.calibration-schemes/v1"
P
for f in scale_q scale_k scale_v mean_q mean_k; do expect_file "$T/art/$f.npy" "--apply writes $f"; done
scheme=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["op"]["quant_scheme"])' "$T/art/artifacts.json")
"$PY" - "$T/art" <<'P' && ok || fail "table shapes and the envelope"
import json, sys, numpy as np
d = sys.argv[1]
e = json.load(open(d + "/artifacts.json"))
s = e["quant"]["scheme"]
assert e["op"]["quant_scheme"] == s and "q=token" in s and "k=token" in s and "smooth=qk" in s, s
blk = int(s.split("block=")[1].split(",")[0])
want = {"scale_q": [1, 4, 128], "scale_k": [1, 2, 128], "scale_v": [1, 2, 32], "mean_q": [1, 4, -(-128 // blk), 32],
        "mean_k": [1, 2, 32]}
for n, sh in want.items():
    assert e["arrays"][n] == {"path": n + ".npy", "dtype": "float32", "shape": sh}, e["arrays"][n]
    a = np.load(d + "/" + n + ".npy")
    assert list(a.shape) == sh and a.dtype == np.float32 and np.isfinite(a).all()
    if n.startswith("scale"): assert (a > 0).all()
P
run "$SATTN" run "$T/art/artifacts.json" --check full --out-dir "$T/o_fixed"
expect_rc 0 "run with fixed tables"
expect_out '"passed":true' "fixed tables pass the check"
run "$SATTN" run "$T/op.mlir" --data "$T/lap" --quant-scheme "$scheme" --out-dir "$T/o_dyn"
expect_rc 0 "dynamic run of the same scheme"
cmp -s "$T/o_fixed/o.npy" "$T/o_dyn/o.npy" && ok || fail "fixed tables from one sample = dynamic scales on it"

# A scheme or precision other than the tables' is refused with the reason; the same scheme runs.
run "$SATTN" run "$T/art/artifacts.json" --quant-scheme sage
expect_rc 3 "--quant-scheme other than the tables'"
expect_err "fixed scale tables for quant_scheme" "says why"
run "$SATTN" run "$T/art/artifacts.json" --precision i4
expect_rc 3 "--precision other than the tables'"
run "$SATTN" run "$T/art/artifacts.json" --quant-scheme "$scheme"
expect_rc 0 "--quant-scheme equal to the tables'"
# Re-applying another scheme replaces the tables; those it lacks leave the envelope and the directory.
cp -r "$T/art" "$T/art4"
run "$SATTN" calibrate "$T/art4" --schemes --apply -q --quant-scheme q=token,k=block,pv=fix16,v=channel
expect_rc 0 "re-apply without smoothing"
expect_no_file "$T/art4/mean_q.npy" "mean_q removed"
expect_no_file "$T/art4/mean_k.npy" "mean_k removed"
"$PY" -c "import json,sys; e=json.load(open(sys.argv[1])); assert 'mean_q' not in e['arrays'] and e['arrays']['scale_k']['shape'] == [1, 2, 8], e['arrays']" "$T/art4/artifacts.json" && ok || fail "envelope after re-apply"
run "$SATTN" run "$T/art4/artifacts.json" --check full
expect_rc 0 "run after re-apply"

# Tables calibrated on another sample: the run differs from the dynamic one (the tables are used).
cp -r "$T/art0" "$T/art2"
run "$SATTN" calibrate "$T/art2" --schemes --apply -q --data "$T/lap2" --quant-scheme sage
expect_rc 0 "--apply --quant-scheme sage --data other"
expect_no_file "$T/art2/mean_q.npy.tmp" "no temporaries left"
run "$SATTN" run "$T/art2/artifacts.json" --check full --out-dir "$T/o_fixed2"
expect_rc 0 "run with tables of another sample"
run "$SATTN" run "$T/op.mlir" --data "$T/lap" --quant-scheme sage --out-dir "$T/o_dyn2"
! cmp -s "$T/o_fixed2/o.npy" "$T/o_dyn2/o.npy" && ok || fail "tables of another sample change the output"
# Tables of unrelated data (independent draws): the check against the fp32 reference says so.
"$PY" -c "
import numpy as np, os, sys
rng = np.random.default_rng(9); os.makedirs(sys.argv[1])
for n, s in (('q', (1, 4, 128, 32)), ('k', (1, 2, 128, 32)), ('v', (1, 2, 128, 32))):
    np.save(os.path.join(sys.argv[1], n + '.npy'), rng.laplace(size=s).astype(np.float32))" "$T/other"
cp -r "$T/art0" "$T/art3"
run "$SATTN" calibrate "$T/art3" --schemes --apply -q --data "$T/other"
expect_rc 0 "--apply with unrelated data"
run "$SATTN" run "$T/art3/artifacts.json" --check full
expect_rc 5 "tables of unrelated data fail the check honestly"

# Bad tables: exit 3 naming the file.
bad_table() {  # NAME CASE PYTHON-EXPR(a) -> rewrites DIR/NAME.npy
  rm -rf "$T/bad" && cp -r "$T/art" "$T/bad"
  "$PY" -c "import numpy as np,sys; a=np.load(sys.argv[1]); $3; np.save(sys.argv[1], a.astype(np.float32))" "$T/bad/$1.npy"
  run "$SATTN" run "$T/bad/artifacts.json"
  expect_rc 3 "$2"
  expect_err "error: .*bad/$1\.npy" "$2 names the file"
}
bad_table scale_k "scale_k of the wrong shape" "a=a[:, :, :64]"
bad_table scale_q "a zero scale" "a[0, 1, 7] = 0"
bad_table scale_v "a NaN scale" "a[0, 0, 3] = np.nan"
bad_table mean_k "a NaN mean" "a[0, 1, 2] = np.nan"
bad_table scale_k "a negative scale" "a[0, 0, 0] = -1"
expect_err "element 0 " "the element is named"
# The envelope's shape disagrees with the scheme: the envelope is named.
rm -rf "$T/bad" && cp -r "$T/art" "$T/bad"
"$PY" -c "import json,sys; p=sys.argv[1]; e=json.load(open(p)); e['arrays']['scale_q']['shape']=[1]; json.dump(e, open(p,'w'))" "$T/bad/artifacts.json"
run "$SATTN" run "$T/bad/artifacts.json"
expect_rc 3 "envelope shape of scale_q"
expect_err "bad/artifacts.json.*scale_q" "names the envelope and the table"
# A table missing, or tables for a per-tensor op.
rm -rf "$T/bad" && cp -r "$T/art" "$T/bad"
"$PY" -c "import json,sys; p=sys.argv[1]; e=json.load(open(p)); del e['arrays']['mean_k']; json.dump(e, open(p,'w'))" "$T/bad/artifacts.json"
run "$SATTN" run "$T/bad/artifacts.json"
expect_rc 3 "a needed table missing"
expect_err "lacks mean_k" "names the missing table"
rm -rf "$T/bad" && cp -r "$T/art" "$T/bad"
"$PY" -c "import json,sys; p=sys.argv[1]; e=json.load(open(p)); e['op']['quant_scheme']='per-tensor'; json.dump(e, open(p,'w'))" "$T/bad/artifacts.json"
run "$SATTN" run "$T/bad/artifacts.json"
expect_rc 3 "tables with a per-tensor scheme"

# Usage errors.
run "$SATTN" calibrate "$T/op.mlir" --schemes --apply --data "$T/lap"
expect_rc 2 "--schemes --apply on a bare op"
run "$SATTN" calibrate "$T/art0" --schemes --apply --quant-scheme per-tensor
expect_rc 2 "--quant-scheme per-tensor has no tables"
run "$SATTN" calibrate "$T/op.mlir" --schemes --method mse --data "$T/lap"
expect_rc 2 "--schemes with --method"
finish
