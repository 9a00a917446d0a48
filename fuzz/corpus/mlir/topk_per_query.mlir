// Top-k per query: each query keeps its 32 highest-scoring keys.
module {
  "sattn.sparse_attention"() {
    name = "topk_per_query",
    batch = 1 : i64, heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    topk_k = 32 : i64
  } : () -> ()
}
