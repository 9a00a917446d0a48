// Bad: head_dim 100000 is above the 4096 limit (error at 3:69).
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 1 : i64, head_dim = 100000 : i64 } : () -> ()
}
