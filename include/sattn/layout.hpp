// Sparsity layouts: which (query, key) pairs an op may use (DESIGN §3).
//
// Row specs produce CSR (one key list per query row); block specs produce BSR (one block-column
// list per block row). Causal masking and the partial last block are applied at element
// granularity *by the consumer* for BSR (inside a kept block, key j is allowed for query i iff
// j < kv_len and, when causal, j <= i + causal_offset); CSR lists hold exactly the allowed keys.
// Index lists are sorted ascending and unique.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

struct HeadLayout {
  std::vector<int64_t> ptr;  // CSR: seq_len + 1 entries; BSR: block_rows + 1 entries
  std::vector<int32_t> idx;  // CSR: key indices; BSR: block-column indices
};

struct Layout {
  Spec spec = Spec::dense;
  bool block = false;        // BSR (true) or CSR (false)
  int64_t rows = 0;          // seq_len
  int64_t cols = 0;          // kv_len
  int64_t block_size = 1;    // BSR block edge; 1 for CSR
  bool causal = false;
  int64_t causal_offset = 0;  // kv_len - seq_len: query i is aligned with key i + offset
  int64_t batch = 1;
  int64_t kv_heads = 1;
  // One layout per (batch, kv head), index b * kv_heads + kvh. Data-independent specs store a
  // single layout shared by all (`shared`), so memory does not grow with heads.
  bool shared = false;
  std::vector<HeadLayout> heads;

  const HeadLayout& head(int64_t b, int64_t kvh) const { return shared ? heads[0] : heads[b * kv_heads + kvh]; }
  int64_t block_rows() const { return (rows + block_size - 1) / block_size; }
  int64_t block_cols() const { return (cols + block_size - 1) / block_size; }
  // Whether key j is allowed for query i by the causal rule and bounds (not by the layout).
  bool causal_ok(int64_t i, int64_t j) const { return j < cols && (!causal || j <= i + causal_offset); }
  // Allowed (query, key) element pairs of one (batch, kv head) layout, after causal/bounds.
  int64_t allowed_pairs(int64_t b, int64_t kvh) const;
  // Mean over (batch, kv head) of allowed_pairs / (rows * cols).
  double density() const;
  // Bytes of the index arrays held (ptr int64, idx int32, over every stored layout).
  size_t index_bytes() const;
};

// Builds the layout of `spec` for `op` with resolved `params`. Data-dependent specs read q
// ([batch, heads, seq_len, head_dim]) and k ([batch, kv_heads, kv_len, head_dim]); with GQA the
// scores of the query heads of one KV head are summed. q/k may be null for data-independent
// specs. Throws Error(invalid_input) when a data-dependent spec gets no data.
Layout build_layout(const Op& op, Spec spec, const SpecParams& params, const Tensor* q, const Tensor* k);

// The same over views (no copy): q.data / k.data may be null for data-independent specs (a null
// view counts as "no data").
Layout build_layout(const Op& op, Spec spec, const SpecParams& params, TensorView q, TensorView k);

// Element mask of one (batch, kv head): rows * cols bytes, 1 = allowed (layout, causal and
// bounds combined). For tests and small problems only.
std::vector<uint8_t> layout_mask(const Layout&, int64_t b, int64_t kvh);

}  // namespace sattn
