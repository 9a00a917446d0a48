// Helpers shared by the accelerator tests (test_accel_model.cpp, test_accel_rtl.cpp): one small
// problem per spec, and independent counts (allowed pairs, bytes touched) computed from the
// layout's element mask, never from the driver under test.
#pragma once
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "backends/rocc/accel.hpp"
#include "sattn/attention.hpp"
#include "sattn/layout.hpp"
#include "core/quant.hpp"
#include "core/synthetic.hpp"

namespace sattn::accel_test {

struct Case {
  Op op;
  QKV data;
  Layout layout;
};

// A small op of `spec`: GQA (2 query heads per KV head), a partial last block (lengths not a
// multiple of the block), parameters that give each spec a non-trivial layout.
inline Case make_case(Spec spec, Precision prec, bool causal, int64_t seq = 72, int64_t kv = 72, int64_t dim = 32,
                      int64_t heads = 2, int64_t kv_heads = 1) {
  Case c;
  c.op.shape = Shape{1, heads, kv_heads, seq, kv, dim};
  c.op.causal = causal;
  c.op.precision = prec;
  PatternAttrs& a = c.op.attrs;
  switch (spec) {
    case Spec::dense: break;
    case Spec::sliding_window: a.window_size = 6; break;
    case Spec::bsr: a.block_size = 16; a.keep_ratio = 0.4; break;
    case Spec::block_local_global: a.block_size = 16; a.window_blocks = 1; a.global_tokens = 16; break;
    case Spec::nm_structured: a.nm_n = 2; a.nm_m = 8; break;
    case Spec::topk_per_query: a.topk_k = 10; break;
    case Spec::lsh: a.lsh_buckets = 4; break;
    case Spec::landmark: a.num_landmarks = 8; break;
    case Spec::quest: a.page_size = 8; a.top_pages = 3; break;
  }
  c.data = synthetic_qkv(c.op.shape, 0x5A77 + uint64_t(spec));
  c.layout = build_layout(c.op, spec, resolve_params(c.op, spec), &c.data.q, &c.data.k);
  return c;
}

// Allowed (query, key) pairs over batch and query heads, from the element mask.
inline int64_t allowed_pairs(const Case& c) {
  int64_t n = 0;
  const Shape& s = c.op.shape;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (uint8_t m : layout_mask(c.layout, b, h / s.group_size())) n += m;
  return n;
}

// Bytes of Q rows plus the K and V rows some allowed pair touches (lower bound of DMA bytes in).
inline int64_t touched_bytes(const Case& c) {
  const Shape& s = c.op.shape;
  const int64_t rowbytes = c.op.precision == Precision::i4 ? s.head_dim / 2 : s.head_dim;
  int64_t bytes = s.batch * s.heads * s.seq_len * rowbytes;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const std::vector<uint8_t> m = layout_mask(c.layout, b, h / s.group_size());
      std::set<int64_t> keys;
      for (int64_t i = 0; i < s.seq_len; ++i)
        for (int64_t j = 0; j < s.kv_len; ++j)
          if (m[size_t(i * s.kv_len + j)]) keys.insert(j);
      bytes += 2 * int64_t(keys.size()) * rowbytes;
    }
  return bytes;
}

inline accel::Program program_of(const Case& c, const accel::Config& cfg) {
  const Scales sc = resolve_scales(c.op, c.data.q, c.data.k, c.data.v);
  return accel::build_program(c.op, c.layout, c.data, sc, cfg);
}

}  // namespace sattn::accel_test
