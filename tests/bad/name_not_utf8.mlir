module {
  "sattn.sparse_attention"() { name = "café", seq_len = 16 : i64 } : () -> ()
}
