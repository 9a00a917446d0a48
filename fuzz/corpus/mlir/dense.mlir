// Dense attention: every query attends to every key. The baseline the sparse specs are compared with.
module {
  "sattn.sparse_attention"() {
    name = "dense",
    batch = 1 : i64, heads = 4 : i64, seq_len = 256 : i64, head_dim = 64 : i64,
    spec = "dense"
  } : () -> ()
}
