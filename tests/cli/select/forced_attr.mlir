// The op forces dense through its spec attribute, although it describes a window.
module {
  "sattn.sparse_attention"() {
    name = "forced_attr", heads = 2 : i64, seq_len = 256 : i64, head_dim = 32 : i64,
    window_size = 8 : i64,
    spec = "dense"
  } : () -> ()
}
