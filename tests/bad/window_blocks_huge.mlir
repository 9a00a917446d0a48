module {
  "sattn.sparse_attention"() { spec = "block_local_global", seq_len = 64 : i64, block_size = 16 : i64, window_blocks = 9223372036854775807 : i64 } : () -> ()
}
