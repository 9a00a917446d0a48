// Bad: a negative window_size (error at 3:89).
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 1 : i64, head_dim = 8 : i64, window_size = -3 : i64 } : () -> ()
}
