# `sattn run --backend cuda`: on a machine without a GPU (CI), exit 4 with "no CUDA device" and no
# output; with one, results checked against the cpu reference on both kernels.
source "$(dirname "$0")/lib.sh"

cat >"$T/bsr.mlir" <<'M'
module {
  "sattn.sparse_attention"() { seq_len = 200 : i64, heads = 4 : i64, kv_heads = 2 : i64, head_dim = 64 : i64,
     causal = true, spec = "bsr", block_size = 32 : i64, keep_ratio = 0.3 : f64, precision = "bf16" } : () -> ()
}
M
cat >"$T/sw.mlir" <<'M'
module {
  "sattn.sparse_attention"() { seq_len = 150 : i64, heads = 2 : i64, head_dim = 128 : i64, causal = true,
     window_size = 20 : i64, dilation = 2 : i64, precision = "bf16" } : () -> ()
  "sattn.sparse_attention"() { seq_len = 90 : i64, heads = 2 : i64, head_dim = 32 : i64, topk_k = 8 : i64 } : () -> ()
}
M

# What is the same with or without a GPU: usage and input errors come first.
run "$SATTN" run --backend gpu "$T/bsr.mlir"
expect_rc 2 "unknown backend"
expect_err "cpu, cuda, rvv" "the message lists cuda"
echo '"sattn.sparse_attention"() { seq_len = -3 : i64 } : () -> ()' >"$T/bad.mlir"
run "$SATTN" run --backend cuda "$T/bad.mlir"
expect_rc 3 "invalid input before the device check"

run "$SATTN" doctor --format json -q
gpu_status=$($PY -c 'import json,sys; print([c["status"] for c in json.load(sys.stdin)["checks"] if c["name"].startswith("CUDA GPU") and not c["required"]][0])' <<<"$out")

if nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
  [[ $gpu_status == ok ]] && ok || fail "doctor: the GPU line is ok (got $gpu_status)"
  run "$SATTN" run --backend cuda "$T/bsr.mlir"
  expect_rc 0 "bf16 bsr on the GPU"
  expect_out '"backend":"cuda"' "backend echoed"
  expect_out '"kernel":"tensor-core"' "bf16, head_dim 64, block 32: tensor cores"
  expect_out '"forward_path":"(wgmma-pipelined|mma\.sync)","kernel":"tensor-core"' "the forward kernel named (Hopper: wgmma-pipelined)"
  expect_out '"passed":true' "checked against the reference"
  expect_out '"timing":\{[^}]*"kernel_ms"' "kernel time in timing"
  run "$SATTN" run --backend cuda --format text --out-dir "$T/o" "$T/sw.mlir"
  expect_rc 0 "window and topk"
  expect_out 'sliding_window +bf16 .* ok$' "window row"
  expect_out 'topk_per_query +fp32 .* ok$' "topk row (simt, csr)"
  expect_file "$T/o/sw.op1/o.npy" "out-dir output"
  run "$SATTN" run --backend cuda --format json "$T/sw.mlir"
  expect_out '"kernel":"simt","mode":"csr"' "fp32 topk on the SIMT kernel"
  expect_out '"mode":"window"' "window computed on the fly"
  run bash -c "echo '{\"seq_len\":64,\"heads\":2,\"head_dim\":32,\"precision\":\"i8\"}' | \"$SATTN\" run --backend cuda -"
  expect_rc 3 "i8 is not a cuda precision"
  expect_err "fp32 and bf16" "says which precisions"
else
  [[ $gpu_status == missing ]] && ok || fail "doctor: the optional GPU line is missing (got $gpu_status)"
  run "$SATTN" run --backend cuda -o "$T/r.jsonl" --out-dir "$T/o" "$T/bsr.mlir"
  expect_rc 4 "no GPU: exit 4"
  expect_err "sattn run: error: .*no CUDA device" "no CUDA device message"
  expect_no_out "no GPU: no output"
  expect_no_file "$T/r.jsonl" "no GPU: no result file"
  expect_no_file "$T/o" "no GPU: no out-dir"
fi
finish
