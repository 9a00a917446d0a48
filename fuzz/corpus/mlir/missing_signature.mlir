// Bad: the op has no `: () -> ()` after its attributes (error at 4:1, the closing brace of the module).
module {
  "sattn.sparse_attention"() { window_size = 8 : i64 }
}
