// N:M structured sparsity: each query keeps the 2 best-scoring keys of every 8 consecutive keys.
module {
  "sattn.sparse_attention"() {
    name = "nm_structured",
    batch = 1 : i64, heads = 4 : i64, seq_len = 512 : i64, head_dim = 64 : i64,
    nm_n = 2 : i64,
    nm_m = 8 : i64
  } : () -> ()
}
