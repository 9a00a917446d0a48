// Grouped-query, causal block top-k: 8 query heads share 2 KV heads (gqa_group_size = 4), so block selection is shared by each group of 4.
module {
  "sattn.sparse_attention"() {
    name = "gqa_causal",
    batch = 1 : i64, heads = 8 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    gqa_group_size = 4 : i64,
    causal = true,
    spec = "bsr",
    block_size = 64 : i64,
    keep_ratio = 0.25 : f64
  } : () -> ()
}
