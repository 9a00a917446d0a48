# Decode shapes (issue 22): one query or a chunk against a long context (kv_len >> seq_len,
# causal: the queries are the context's last positions, the last key block partial), an explicit
# scale, on every backend against the double reference: cpu (fast kernel), rvv (RVV kernels
# under qemu), sim (the accelerator's RTL under Verilator, i8), imc (cost model: reports only).
# And softcap: run on cpu, refused early (exit 2, naming the backend) by backends that cannot.
source "$(dirname "$0")/lib.sh"
: "${BUILD:?BUILD must point at the build tree}"

cat >"$T/decode.mlir" <<'M'
module {
  "sattn.sparse_attention"() { name = "dense_q1", spec = "dense", seq_len = 1 : i64, kv_len = 300 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, scale = 0.3 : f64 } : () -> ()
  "sattn.sparse_attention"() { name = "dense_q8", spec = "dense", seq_len = 8 : i64, kv_len = 300 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true } : () -> ()
  "sattn.sparse_attention"() { name = "sw_q1", spec = "sliding_window", seq_len = 1 : i64, kv_len = 300 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, window_size = 40 : i64, scale = 0.25 : f64 } : () -> ()
  "sattn.sparse_attention"() { name = "sw_q8", spec = "sliding_window", seq_len = 8 : i64, kv_len = 300 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, window_size = 40 : i64 } : () -> ()
  "sattn.sparse_attention"() { name = "bsr_q1", spec = "bsr", seq_len = 1 : i64, kv_len = 300 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, block_size = 32 : i64, keep_ratio = 0.3 : f64 } : () -> ()
  "sattn.sparse_attention"() { name = "bsr_q8", spec = "bsr", seq_len = 8 : i64, kv_len = 300 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 32 : i64, causal = true, block_size = 32 : i64, keep_ratio = 0.3 : f64, scale = 0.2 : f64 } : () -> ()
}
M
# checked FILE BACKEND: six results, each checked against the reference and passed (the
# reference applies the op's scale: a backend that ignored scale = 0.3 would fail it).
checked() {
  "$PY" - "$1" "$2" <<'P'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 6, len(lines)
for r in lines:
    assert r["check"]["passed"] is True, (sys.argv[2], r.get("op"), r["check"])
print("ok")
P
}
for backend in cpu rvv; do
  run "$SATTN" run "$T/decode.mlir" --backend $backend -o "$T/$backend.jsonl"
  expect_rc 0 "decode shapes on $backend"
  run checked "$T/$backend.jsonl" $backend
  expect_out '^ok$' "decode shapes on $backend: every op within tolerance of the reference"
done
# The accelerator computes at i8 (its datapath): the same shapes, quantized.
sed 's/causal = true/causal = true, precision = "i8"/' "$T/decode.mlir" >"$T/decode_i8.mlir"
run "$SATTN" sim "$T/decode_i8.mlir" -o "$T/sim.jsonl"
expect_rc 0 "decode shapes on sim (RTL)"
run checked "$T/sim.jsonl" sim
expect_out '^ok$' "decode shapes on sim: every op within tolerance of the reference, RTL = model"
run "$SATTN" imc "$T/decode.mlir" -o "$T/imc.jsonl"
expect_rc 0 "decode shapes on imc"
[[ $(grep -c '"schema":"sattn.imc/v1"' "$T/imc.jsonl") -eq 6 ]] && ok || fail "imc reports six ops"

# softcap: cpu runs it (checked against the reference, which applies the cap) ...
cat >"$T/cap.json" <<'J'
{"schema": "sattn.op/v1", "name": "gemma", "spec": "sliding_window", "window_size": 16, "seq_len": 4, "kv_len": 200,
 "heads": 4, "kv_heads": 2, "head_dim": 32, "causal": true, "scale": 0.5, "softcap": 2.0}
J
run "$SATTN" run "$T/cap.json"
expect_rc 0 "softcap on cpu"
expect_out '"passed":true' "softcap on cpu: within tolerance"
# ... the others refuse before any work, naming the backend and the attribute's location.
for backend in rvv imc; do
  run "$SATTN" run "$T/cap.json" --backend $backend
  expect_rc 2 "softcap refused by $backend"
  expect_err "cap.json:2:[0-9]+: op gemma: backend $backend cannot run softcap \(logit soft-capping\); backends that can: cpu" \
    "softcap refusal names $backend"
  expect_no_out "softcap refused by $backend: no output"
done
# ... and --backend all routes around them: cpu runs it, the others are skipped with a note.
run "$SATTN" run "$T/cap.json" --backend all --format text
expect_rc 0 "softcap with --backend all"
expect_out '^gemma +cpu +sliding_window +fp32 .* ok$' "--backend all: cpu runs softcap"
for backend in rvv rocc imc; do
  expect_out "^- +$backend +- .* skipped \(capabilities\) +skipped$" "--backend all: $backend skipped"
  expect_err "sattn run --backend $backend: note: op gemma: backend $backend cannot run softcap .*: skipped" \
    "--backend all: the note names $backend"
done
run "$SATTN" sim "$T/cap.json"
expect_rc 2 "softcap refused by sattn sim"
expect_err "cannot run softcap" "sattn sim says why"
run "$SATTN" run-rvv "$T/cap.json"
expect_rc 2 "softcap refused by sattn run-rvv"
finish
