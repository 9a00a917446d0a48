// Every rule matches; they apply in order (block_local_global first), and disabling one falls
// through to the next.
module {
  "sattn.sparse_attention"() {
    name = "rules", heads = 2 : i64, seq_len = 256 : i64, head_dim = 32 : i64,
    global_tokens = 16 : i64, nm_n = 2 : i64, nm_m = 8 : i64, topk_k = 16 : i64,
    lsh_buckets = 4 : i64, num_landmarks = 16 : i64
  } : () -> ()
}
