// Bad: a window of 64 on a 16-token sequence (error at 3:114).
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 1 : i64, head_dim = 8 : i64, spec = "sliding_window", window_size = 64 : i64 } : () -> ()
}
