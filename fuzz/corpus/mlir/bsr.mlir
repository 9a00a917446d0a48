// Block top-k (BSR): keep a quarter of the 64x64 key blocks of each block row, scored on 16-token compressed blocks.
module {
  "sattn.sparse_attention"() {
    name = "bsr",
    batch = 1 : i64, heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64,
    block_size = 64 : i64,
    keep_ratio = 0.25 : f64,
    comp_block_size = 16 : i64,
    tile_M = 16 : i64, tile_S = 128 : i64, tile_D = 32 : i64
  } : () -> ()
}
