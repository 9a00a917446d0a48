// A close call on cpu (sattn-select(1), COST MODEL): sliding_window 4456384 cycles against bsr
// 4530176. The prefer hints flip it; so does GQA (gqa.mlir).
module {
  "sattn.sparse_attention"() {
    name = "close_call", heads = 8 : i64, seq_len = 1024 : i64, head_dim = 64 : i64,
    window_size = 18 : i64, block_size = 64 : i64, keep_ratio = 0.0625 : f64
  } : () -> ()
}
