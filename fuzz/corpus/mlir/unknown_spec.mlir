// Bad: "diagonal" is not a spec; the message lists the valid ones (error at 3:39).
module {
  "sattn.sparse_attention"() { spec = "diagonal" } : () -> ()
}
