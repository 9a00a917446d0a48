// Bad: keep_ratio must be in (0, 1] (error at 5:5).
module {
  "sattn.sparse_attention"() {
    block_size = 64 : i64,
    keep_ratio = 1.5 : f64
  } : () -> ()
}
