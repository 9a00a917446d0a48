# head_dim 256 on the accelerator (issue 22; hw/README.md "The cost of DMAX 256"): the RTL runs
# Gemma's 256-wide head, natively and zero-padded (i8 and i4, causal, GQA, a decode chunk with a
# partial last block), bit-exact with the model and within tolerance of the double reference;
# a wider head is refused before any work (exit 3) as rocc's capabilities say; sattn model
# --validate-head-dim 256 validates a Gemma-2-9B layer at its real head_dim on the RTL.
source "$(dirname "$0")/lib.sh"

cat >"$T/wide.mlir" <<'M'
module {
  "sattn.sparse_attention"() { name = "local", spec = "sliding_window", window_size = 24 : i64, seq_len = 8 : i64, kv_len = 200 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 256 : i64, causal = true, precision = "i8" } : () -> ()
  "sattn.sparse_attention"() { name = "global", spec = "bsr", block_size = 32 : i64, keep_ratio = 0.5 : f64, seq_len = 72 : i64, kv_len = 72 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 256 : i64, causal = true, precision = "i4", scale = 0.0625 : f64 } : () -> ()
  "sattn.sparse_attention"() { name = "padded", spec = "dense", seq_len = 40 : i64, kv_len = 56 : i64, heads = 2 : i64, kv_heads = 1 : i64, head_dim = 250 : i64, causal = true, precision = "i8" } : () -> ()
}
M
run "$SATTN" sim "$T/wide.mlir" -o "$T/wide.jsonl"
expect_rc 0 "head_dim 256 and 250 on the RTL"
run "$PY" - "$T/wide.jsonl" <<'P'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(rs) == 3, len(rs)
for r in rs:
    s, c = r["sim"], r["check"]
    assert s["engine"] == "rtl" and s["model_match"] is True, r["op"]
    # Within the fp32 reference's tolerance where the precision has one (i4: None), and tightly
    # against the double reference on the dequantized inputs.
    assert c["passed"] is True and c["quantized_reference"]["passed"] is True, c
# 2 x allowed pairs x 256: the padded op (250 -> 256) issues the MACs of 256 columns. Causal dense
# with kv_len 56 > seq_len 40: row i sees 16 + i + 1 keys.
pairs = 2 * sum(16 + i + 1 for i in range(40))
assert rs[2]["sim"]["macs_issued"] == 2 * pairs * 256, rs[2]["sim"]["macs_issued"]
print("ok")
P
expect_out '^ok$' "every wide op: RTL = model, within tolerance of the double reference"

# Beyond 256: refused before any work, exit 3, at the op, naming the backend's limit.
cat >"$T/huge.json" <<'J'
{"schema": "sattn.op/v1", "name": "huge", "spec": "dense", "seq_len": 8,
 "heads": 1, "head_dim": 512, "precision": "i8"}
J
run "$SATTN" sim "$T/huge.json" -o "$T/huge.out"
expect_rc 3 "head_dim 512 refused by sattn sim"
expect_err 'huge.json:2:[0-9]+: op huge: backend rocc cannot run head_dim 512: at most 256 .*backends that can: cpu' \
  "the refusal names the limit and where"
expect_no_file "$T/huge.out" "no output for a refused op"
run "$SATTN" run --backend rocc "$T/huge.json"
expect_rc 3 "head_dim 512 refused by sattn run --backend rocc"
# ... but --backend all routes around it (as it does softcap): a note and a "skipped" row, the
# others run. The list of backends that can names neither rocc nor cuda (max_head_dim 256 both).
run "$SATTN" run --backend all --format text "$T/huge.json"
expect_rc 0 "--backend all routes around a head_dim wider than rocc's max_head_dim"
expect_out '^huge +cpu +dense +i8 .* ok$' "--backend all: cpu runs head_dim 512"
expect_out '^- +rocc +- .* skipped \(capabilities\) +skipped$' "--backend all: rocc skipped"
expect_err 'sattn run --backend rocc: note: op huge: backend rocc cannot run head_dim 512: at most 256 .*: skipped' \
  "--backend all: the note names rocc's limit"
run "$SATTN" run --backend rocc "$T/huge.json"
expect_err 'backends that can: cpu, rvv, imc$' "head_dim 512: cuda (max_head_dim 256) is not among the backends that can"
run "$SATTN" run --backend cpu "$T/huge.json"
expect_rc 0 "cpu runs head_dim 512"

# sattn model: a Gemma-2-9B layer validated at head_dim 256 on the rvv core and the RTL.
run "$SATTN" model gemma-2-9b --seq 1024 --validate 1 --validate-len 64 --validate-head-dim 256 -q -o "$T/val.json"
expect_rc 0 "--validate-head-dim 256"
run "$PY" - "$T/val.json" <<'P'
import json, sys
v = json.load(open(sys.argv[1]))["validation"]
assert sorted(r["backend"] for r in v) == ["rocc", "rvv"], v
for r in v:
    assert r["op"]["head_dim"] == 256 and r["check_passed"] is True, r
    assert r["measured_cycles"] > 0 and r["model_cycles"] > 0, r
print("ok")
P
expect_out '^ok$' "a Gemma-2-9B layer at head_dim 256 runs and passes on rvv and rocc"
run "$SATTN" model gemma-2-9b --validate 1 --validate-head-dim 0
expect_rc 2 "--validate-head-dim out of range"
expect_err 'validate-head-dim must be in \[1, 4096\]' "the range is named"
finish
