// Landmark attention: every query attends over 32 landmark keys, refined by 2 k-means-lite iterations.
module {
  "sattn.sparse_attention"() {
    name = "landmark",
    batch = 1 : i64, heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    num_landmarks = 32 : i64,
    landmark_iters = 2 : i64
  } : () -> ()
}
