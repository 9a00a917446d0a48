// Bad: the module is never closed (error at the end of input, 4:1).
module {
  "sattn.sparse_attention"() { window_size = 8 : i64, seq_len = 256 : i64 } : () -> ()
