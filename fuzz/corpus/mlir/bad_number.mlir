// Bad: 12x4 is not a number (error at 3:46).
module {
  "sattn.sparse_attention"() { window_size = 12x4 : i64 } : () -> ()
}
