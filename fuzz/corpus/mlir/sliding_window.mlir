// Causal dilated sliding window: each query sees itself and the 32 keys at distances 2, 4, ... 64 before it.
module {
  "sattn.sparse_attention"() {
    name = "sliding_window",
    batch = 1 : i64, heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64,
    causal = true,
    window_size = 32 : i64,
    dilation = 2 : i64,
    tile_S = 128 : i64, tile_D = 32 : i64
  } : () -> ()
}
