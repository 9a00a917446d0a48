// The window's K/V working set (80 keys x 2 x 64 x 4 B = 40960 B) spills a 32 KiB L1, so bsr wins
// (8949760 vs 11528704 cycles); with 64 KiB it fits and sliding_window wins (3799552).
module {
  "sattn.sparse_attention"() {
    name = "l1_window", heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64,
    window_size = 32 : i64, block_size = 64 : i64, keep_ratio = 0.25 : f64
  } : () -> ()
}
