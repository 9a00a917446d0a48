// Bad: the file ends inside the attribute dictionary (error at 4:1, the end of input).
module {
  "sattn.sparse_attention"() { window_size = 8 : i64,
