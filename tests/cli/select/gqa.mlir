// close_call.mlir with 4 query heads per KV head: bsr's K/V blocks serve the whole group, so its
// cost falls to 4302848 cycles and it wins (sliding_window stays at 4456384).
module {
  "sattn.sparse_attention"() {
    name = "gqa", heads = 8 : i64, gqa_group_size = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64,
    window_size = 18 : i64, block_size = 64 : i64, keep_ratio = 0.0625 : f64
  } : () -> ()
}
