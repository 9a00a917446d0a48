// Bad: nm_m 0 (error at 3:105).
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 1 : i64, head_dim = 8 : i64, nm_n = 2 : i64, nm_m = 0 : i64 } : () -> ()
}
