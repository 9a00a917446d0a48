// Bad: 6 heads cannot be split into groups of 4 (error at 3:49).
module {
  "sattn.sparse_attention"() { heads = 6 : i64, gqa_group_size = 4 : i64 } : () -> ()
}
