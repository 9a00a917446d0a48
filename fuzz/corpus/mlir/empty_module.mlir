// Bad: the module holds no sattn.sparse_attention op (error at 2:1).
module {
}
