// Ring (wrap-around) sliding window: 2*16+1 keys per query, indices taken modulo kv_len.
module {
  "sattn.sparse_attention"() {
    name = "ring",
    batch = 1 : i64, heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    window_size = 16 : i64,
    wrap = true
  } : () -> ()
}
