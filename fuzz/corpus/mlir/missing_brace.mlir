// Bad: the attribute dictionary is not closed before `: () -> ()` (error at 3:75).
module {
  "sattn.sparse_attention"() { window_size = 8 : i64, seq_len = 256 : i64 : () -> ()
}
