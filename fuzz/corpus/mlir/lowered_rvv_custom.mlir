module {
  sattn.rvv_call {batch = 1 : i64, blg_enabled = false, block_size = 64 : i64, causal = false, comp_block_size = 16 : i64, global_tokens = 0 : i64, gqa_group_size = 1 : i64, head_dim = 64 : i64, heads = 4 : i64, keep_ratio = 2.500000e-01 : f64, kv_heads = 4 : i64, kv_len = 1024 : i64, lsh_enabled = false, name = "bsr", nm_enabled = false, precision = "fp32", scale = 1.250000e-01 : f64, selection = "cost: cheapest on rvv: bsr 7.44e+07 < dense 2.98e+08 cycles", seq_len = 1024 : i64, spec = "bsr", tile_D = 32 : i64, tile_M = 16 : i64, tile_S = 128 : i64, topk_enabled = false}
}

