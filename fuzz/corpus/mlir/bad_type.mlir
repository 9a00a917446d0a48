// Bad: window_size must be an integer, not a string (error at 5:19).
module {
  "sattn.sparse_attention"() {
    seq_len = 256 : i64,
    window_size = "x"
  } : () -> ()
}
