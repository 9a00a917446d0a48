# Quantization schemes on the accelerator (hw/README.md "Quantization schemes", sattn-quant(7)):
# `sattn run --backend rocc [--quant-scheme S]` runs the recommended schemes (the default) on the RTL, checked
# bit for bit against the model and against the same-quantized and fp32 references; a pv=i8
# scheme is refused from the capabilities (exit 3, the reason); calibrate -> apply -> run with
# --backend rocc reads the fixed tables from the artifacts.
source "$(dirname "$0")/lib.sh"

cat >"$T/op.mlir" <<'M'
"sattn.sparse_attention"() { name = "a", heads = 4 : i64, kv_heads = 2 : i64, seq_len = 96 : i64, head_dim = 32 : i64, causal = true, precision = "i8", spec = "bsr", block_size = 16 : i64, keep_ratio = 0.5 : f64 } : () -> ()
M
"$PY" - "$T" <<'P'
import numpy as np, os, sys
rng = np.random.default_rng(7)
os.makedirs(os.path.join(sys.argv[1], "lap"))
for n, s in (("q", (1, 4, 96, 32)), ("k", (1, 2, 96, 32)), ("v", (1, 2, 96, 32))):
    np.save(os.path.join(sys.argv[1], "lap", n + ".npy"), rng.laplace(size=s).astype(np.float32))
P

# The capabilities: PROBE bits 59 (scale words, bias) and 60 (int16 V) from the RTL.
run "$SATTN" sim --probe
expect_rc 0 "--probe"
"$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); assert j["quant_scales"] is True and j["pv_fix16"] is True, j' "$out" \
  && ok || fail "PROBE reports quant_scales and pv_fix16"

# The recommended schemes on the RTL: RTL == model, both references pass, the scheme is reported.
n=0
for case in "i8 smooth" "i4 smooth,block=4" "i8 smooth,pv=fp32"; do
  read -r prec scheme <<<"$case"
  n=$((n + 1))
  run "$SATTN" run "$T/op.mlir" --backend rocc --data "$T/lap" --precision "$prec" --quant-scheme "$scheme" \
    --out-dir "$T/o-$n" --force
  expect_rc 0 "rocc $prec $scheme"
  "$PY" - "$out" "$scheme" <<'P' && ok || fail "rocc $prec $scheme: the result"
import json, sys
j = json.loads(sys.argv[1].splitlines()[0])
c, s = j["check"], j["sim"]
assert j["backend"] == "rocc" and c["passed"] and c["model_match"] is True, c
assert c["quantized_reference"]["passed"] and c["quantized_reference"]["max_rel_error"] <= 1e-2, c
assert "same-quantized" in c["quantized_reference"]["reference"], c
assert s["quant"]["scale_and_bias_bytes"] > 0 and s["quant"]["tables"] == "computed from the data", s["quant"]
assert (s["quant"]["v16"]) == ("pv=fp32" not in sys.argv[2]), s["quant"]
P
done
# The recommended i8 scheme against per-tensor on heavy-tailed data: more accurate, same MACs.
run "$SATTN" run "$T/op.mlir" --backend rocc --data "$T/lap" --quant-scheme per-tensor
expect_rc 0 "rocc per-tensor"
per_tensor=$out
run "$SATTN" run "$T/op.mlir" --backend rocc --data "$T/lap" --quant-scheme smooth
"$PY" - "$per_tensor" "$out" <<'P' && ok || fail "smooth beats per-tensor on Laplace data, same MACs"
import json, sys
a, b = (json.loads(x.splitlines()[0]) for x in sys.argv[1:3])
assert b["check"]["rel_l1"] < a["check"]["rel_l1"], (a["check"], b["check"])
assert a["sim"]["macs_issued"] == b["sim"]["macs_issued"]
assert "quant" not in a["sim"] and a["check"]["quant_scheme"] == "per-tensor"
P

# Without --quant-scheme the accelerator runs the recommended scheme, like every backend: smooth at
# i8, smooth,block=2 at i4, its tables computed from the data, RTL == model; the same output bits
# as naming it.
for case in "i8 smooth smooth" "i4 smooth,block=2 q=token,k=token,block=2,smooth=qk,rotate=1,pv=fix16,v=channel"; do
  read -r prec scheme canonical <<<"$case"
  run "$SATTN" run "$T/op.mlir" --backend rocc --data "$T/lap" --precision "$prec" --out-dir "$T/d-$prec" --force
  expect_rc 0 "rocc $prec default"
  "$PY" - "$out" "$canonical" <<'P' && ok || fail "rocc $prec default: the recommended scheme"
import json, sys
j = json.loads(sys.argv[1].splitlines()[0])
c, s = j["check"], j["sim"]
assert c["quant_scheme"] == sys.argv[2] and c["passed"] and c["model_match"] is True, c
assert s["quant"]["scale_and_bias_bytes"] > 0 and s["quant"]["tables"] == "computed from the data", s["quant"]
P
  run "$SATTN" run "$T/op.mlir" --backend rocc --data "$T/lap" --precision "$prec" --quant-scheme "$scheme" \
    --out-dir "$T/n-$prec" --force
  expect_rc 0 "rocc $prec $scheme named"
  cmp -s "$T/d-$prec/o.npy" "$T/n-$prec/o.npy" && ok || fail "rocc $prec: the default is $scheme, bit for bit"
done

# pv=i8 has no datapath on the accelerator: exit 3 with the reason, before any work.
run "$SATTN" run "$T/op.mlir" --backend rocc --data "$T/lap" --quant-scheme sage
expect_rc 3 "sage on rocc"
expect_err "backend rocc cannot run quant_scheme sage: it has no P.V datapath for pv=i8 \(it has pv=fp32, fix16\); backends that can: cpu" \
  "the refusal names the reason and the backends that can"
[[ ! -e "$T/o-sage" ]] && ok || fail "no output after a refusal"
sed 's/spec = "bsr"/quant_scheme = "sage", spec = "bsr"/' "$T/op.mlir" >"$T/op_sage.mlir"
run "$SATTN" sim "$T/op_sage.mlir" --data "$T/lap" --model-only -q
expect_rc 3 "sattn-sim refuses an op whose quant_scheme is sage"

# calibrate -> apply -> run through artifacts, on the accelerator: the fixed tables of one sample
# are its dynamic scales, so the output is bit-identical to the dynamic run of the same scheme.
run "$SATTN" emit "$T/op.mlir" --out-dir "$T/art" --data "$T/lap"
expect_rc 0 "emit"
run "$SATTN" calibrate "$T/art" --schemes --apply --quant-scheme smooth -q
expect_rc 0 "calibrate --schemes --apply --quant-scheme smooth"
run "$SATTN" run "$T/art/artifacts.json" --backend rocc --out-dir "$T/o-art" --force
expect_rc 0 "rocc on the applied artifacts"
"$PY" - "$out" <<'P' && ok || fail "the run read the fixed tables"
import json, sys
j = json.loads(sys.argv[1].splitlines()[0])
assert j["check"]["passed"] and j["check"]["model_match"] is True, j["check"]
assert j["sim"]["quant"]["tables"] == "fixed (artifacts)" and j["check"]["quant_scheme"] == "smooth", j["sim"]["quant"]
P
cmp -s "$T/o-art/o.npy" "$T/o-1/o.npy" && ok || fail "fixed tables of one sample = the dynamic run, bit for bit"
# Tables calibrated on other data are used: the output changes.
"$PY" - "$T" <<'P'
import numpy as np, os, sys
t = sys.argv[1]
s = np.load(os.path.join(t, "art", "scale_k.npy"))
np.save(os.path.join(t, "art", "scale_k.npy"), (s * 1.5).astype(np.float32))
P
run "$SATTN" run "$T/art/artifacts.json" --backend rocc --out-dir "$T/o-art2" --force
expect_rc 0 "rocc on perturbed tables"
cmp -s "$T/o-art2/o.npy" "$T/o-1/o.npy" && fail "perturbed tables changed nothing" || ok
# A zero scale is exit 3 naming the file, on rocc as on cpu.
"$PY" - "$T" <<'P'
import numpy as np, os, sys
t = sys.argv[1]
s = np.load(os.path.join(t, "art", "scale_q.npy"))
s.flat[3] = 0
np.save(os.path.join(t, "art", "scale_q.npy"), s)
P
run "$SATTN" run "$T/art/artifacts.json" --backend rocc
expect_rc 3 "a zero scale"
expect_err "scale_q.npy" "the error names the table"

finish
