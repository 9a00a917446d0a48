// Bad: keep_ratio 0 keeps nothing; it must be in (0, 1] (error at 3:111).
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 1 : i64, head_dim = 8 : i64, block_size = 8 : i64, keep_ratio = 0.0 : f64 } : () -> ()
}
