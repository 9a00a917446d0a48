module {
  "sattn.sparse_attention"() { seq_len = 64 : i64, window_size = 8 : i64, dilation = 4611686018427387904 : i64 } : () -> ()
}
