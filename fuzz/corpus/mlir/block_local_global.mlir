// Block local + global: the diagonal block, one block on each side, and 64 global tokens (one block) in every row and column.
module {
  "sattn.sparse_attention"() {
    name = "block_local_global",
    batch = 1 : i64, heads = 4 : i64, seq_len = 1024 : i64, head_dim = 64 : i64,
    block_size = 64 : i64,
    window_blocks = 1 : i64,
    global_tokens = 64 : i64
  } : () -> ()
}
