module {
  "sattn.sparse_attention"() { seq_len = 1000 : i8 } : () -> ()
}
