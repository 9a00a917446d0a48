// Bad: only the sattn dialect's ops are read (error at 3:3).
module {
  "sattn.softmax"() { spec = "bsr" } : () -> ()
}
