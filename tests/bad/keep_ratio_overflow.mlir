module {
  "sattn.sparse_attention"() { spec = "bsr", seq_len = 64 : i64, keep_ratio = 1e999 : f64 } : () -> ()
}
