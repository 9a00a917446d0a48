// The op the data directories in tests/bad/data are shaped for: q, k, v [1, 1, 16, 8] float32.
module {
  "sattn.sparse_attention"() { seq_len = 16 : i64, heads = 1 : i64, head_dim = 8 : i64, spec = "bsr", block_size = 8 : i64, keep_ratio = 0.5 : f64 } : () -> ()
}
