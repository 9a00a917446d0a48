"builtin.module"() ({
  "sattn.rocc_call"() {batch = 1 : i64, blg_enabled = false, block_size = 64 : i64, causal = true, comp_block_size = 0 : i64, global_tokens = 0 : i64, gqa_group_size = 4 : i64, head_dim = 64 : i64, heads = 8 : i64, keep_ratio = 2.500000e-01 : f64, kv_heads = 2 : i64, kv_len = 512 : i64, lsh_enabled = false, name = "gqa_causal", nm_enabled = false, precision = "fp32", scale = 1.250000e-01 : f64, selection = "override: forced by the op's spec attribute (bsr, examples/gqa_causal.mlir:3:3)", seq_len = 512 : i64, spec = "bsr", topk_enabled = false} : () -> ()
}) : () -> ()

