// Three ops in one module: selection and the tools handle each in turn (one plan per op).
module {
  // A bf16 sliding window; the spec is chosen from window_size.
  "sattn.sparse_attention"() { name = "sw_bf16", heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64, precision = "bf16", window_size = 16 : i64 } : () -> ()

  // Block top-k in int8 with explicit per-tensor scales.
  "sattn.sparse_attention"() {
    name = "bsr_i8", heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    precision = "i8", scale_q = 0.05 : f32, scale_k = 0.05 : f32, scale_v = 0.05 : f32,
    block_size = 64 : i64, keep_ratio = 0.25
  } : () -> ()

  // Block local + global; global_tokens selects block_local_global.
  "sattn.sparse_attention"() {
    name = "blg", heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64, causal = 1,
    global_tokens = 8 : i64, block_size = 64 : i64, tile_M = 16 : i64, tile_D = 32 : i64, tile_S = 128 : i64
  } : () -> ()
}
