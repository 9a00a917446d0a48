// Bad: the string value of precision has no closing quote (error at 3:67).
module {
  "sattn.sparse_attention"() { window_size = 8 : i64, precision = "bf16 } : () -> ()
}
