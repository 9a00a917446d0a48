// LSH attention: queries and keys hashed into 8 buckets, 2 hash rounds, a fixed seed so the layout is reproducible.
module {
  "sattn.sparse_attention"() {
    name = "lsh",
    batch = 1 : i64, heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    lsh_buckets = 8 : i64,
    lsh_rounds = 2 : i64,
    seed = 7 : i64
  } : () -> ()
}
