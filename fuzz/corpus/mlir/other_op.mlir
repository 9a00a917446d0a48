// Bad: only sattn.sparse_attention ops are read (error at 3:3).
module {
  "sattn.rvv_call"() { spec = "bsr" } : () -> ()
}
