module {
  sattn.sparse_attention {batch = 1 : i64, head_dim = 64 : i64, heads = 4 : i64, name = "ring", seq_len = 512 : i64, window_size = 16 : i64, wrap = true}
}

