// Quest: a decode step (4 queries at the end of a 2048-token context) keeps the 16 pages of 16
// keys whose min/max upper bound is highest, per block row and KV head (GQA group of 2).
module {
  "sattn.sparse_attention"() {
    name = "quest",
    batch = 1 : i64, heads = 4 : i64, kv_heads = 2 : i64, seq_len = 4 : i64, kv_len = 2048 : i64,
    head_dim = 64 : i64, causal = true, page_size = 16 : i64, top_pages = 16 : i64
  } : () -> ()
}
