// Bad: a negative seq_len (error at 3:32).
module {
  "sattn.sparse_attention"() { seq_len = -16 : i64, heads = 1 : i64, head_dim = 8 : i64 } : () -> ()
}
