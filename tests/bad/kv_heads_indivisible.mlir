// Bad: 6 heads, 4 KV heads (error at 3:69, the kv_heads key).
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 6 : i64, kv_heads = 4 : i64, head_dim = 8 : i64 } : () -> ()
}
