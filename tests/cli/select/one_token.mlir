// A one-token sequence: bsr has a single key block, nothing to select among.
module {
  "sattn.sparse_attention"() {
    name = "one_token", heads = 2 : i64, seq_len = 1 : i64, head_dim = 32 : i64,
    keep_ratio = 0.5 : f64
  } : () -> ()
}
