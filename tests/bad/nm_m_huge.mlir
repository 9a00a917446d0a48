module {
  "sattn.sparse_attention"() { seq_len = 64 : i64, nm_n = 2 : i64, nm_m = 4611686018427387904 : i64 } : () -> ()
}
