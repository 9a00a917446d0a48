// Bad: window_size is given twice (error at 3:55).
module {
  "sattn.sparse_attention"() { window_size = 8 : i64, window_size = 16 : i64 } : () -> ()
}
