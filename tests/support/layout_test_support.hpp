// Helpers shared by the layout tests (test_layout*.cpp): random problems, structural checks,
// the oracle comparison, and independent definitions of each spec (element predicates and
// brute-force scores) written from layout.cpp's semantics, never from the code under test.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/layout.hpp"
#include "core/synthetic.hpp"

namespace sattn::layout_test {

using Rows = std::vector<std::vector<int32_t>>;

inline int64_t floor_div(int64_t a, int64_t b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
inline int64_t pick(Rng& rng, int64_t lo, int64_t hi) {
  return lo + int64_t(rng.below(uint64_t(hi - lo + 1)));
}

inline Op make_op(int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t kv, int64_t dim, bool causal) {
  Op op;
  op.shape = Shape{batch, heads, kv_heads, seq, kv, dim};
  op.causal = causal;
  return op;
}

inline Tensor random_tensor(Rng& rng, int64_t batch, int64_t heads, int64_t len, int64_t dim) {
  Tensor t(batch, heads, len, dim);
  for (float& x : t.data) x = rng.normal();
  return t;
}

struct Problem {
  Op op;
  Tensor q, k, v;
};

// Random shapes: lengths 1..200 (equal or not, multiples of nothing in particular), head_dim
// 4..32, GQA groups 1/2/4. Every fourth trial is causal with seq_len > kv_len, so some rows have
// no allowed key.
inline Problem random_problem(Rng& rng, int trial) {
  const int64_t group = int64_t(1) << pick(rng, 0, 2);
  const int64_t kv_heads = pick(rng, 1, 2), batch = pick(rng, 1, 2);
  int64_t seq = pick(rng, 1, 200), kv = rng.below(3) == 0 ? seq : pick(rng, 1, 200);
  bool causal = rng.below(2) == 1;
  if (trial % 4 == 0) {
    causal = true;
    kv = pick(rng, 1, 120);
    seq = kv + pick(rng, 1, 60);
  }
  const int64_t dim = pick(rng, 4, 32);
  Problem p{make_op(batch, kv_heads * group, kv_heads, seq, kv, dim, causal), {}, {}, {}};
  p.q = random_tensor(rng, batch, kv_heads * group, seq, dim);
  p.k = random_tensor(rng, batch, kv_heads, kv, dim);
  p.v = random_tensor(rng, batch, kv_heads, kv, dim);
  return p;
}

inline bool causal_allows(const Op& op, int64_t i, int64_t j) {
  return j >= 0 && j < op.shape.kv_len && (!op.causal || j <= i + op.shape.kv_len - op.shape.seq_len);
}

inline Rows rows_of(const Layout& l, int64_t b = 0, int64_t kvh = 0) {
  const HeadLayout& hl = l.head(b, kvh);
  Rows rows;
  for (size_t r = 0; r + 1 < hl.ptr.size(); ++r)
    rows.emplace_back(hl.idx.begin() + hl.ptr[r], hl.idx.begin() + hl.ptr[r + 1]);
  return rows;
}

// Structure shared by every layout: pointers, sorted unique in-range indices, the causal rule
// (CSR lists hold only allowed keys; BSR never lists a block entirely in the future), and the
// pair counts agree with the mask.
inline void check_structure(const Op& op, const Layout& l) {
  const Shape& s = op.shape;
  REQUIRE(l.rows == s.seq_len);
  REQUIRE(l.cols == s.kv_len);
  REQUIRE(l.causal == op.causal);
  REQUIRE(l.causal_offset == s.kv_len - s.seq_len);
  REQUIRE(l.heads.size() == (l.shared ? size_t(1) : size_t(s.batch * s.kv_heads)));
  const int64_t lists = l.block ? l.block_rows() : l.rows;
  const int64_t range = l.block ? l.block_cols() : l.cols;
  double density_sum = 0;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      const HeadLayout& hl = l.head(b, kvh);
      REQUIRE(hl.ptr.size() == size_t(lists + 1));
      REQUIRE(hl.ptr.front() == 0);
      REQUIRE(hl.ptr.back() == int64_t(hl.idx.size()));
      for (int64_t r = 0; r < lists; ++r) {
        REQUIRE(hl.ptr[r] <= hl.ptr[r + 1]);
        for (int64_t t = hl.ptr[r]; t < hl.ptr[r + 1]; ++t) {
          REQUIRE(hl.idx[t] >= 0);
          REQUIRE(hl.idx[t] < range);
          if (t > hl.ptr[r]) REQUIRE(hl.idx[t - 1] < hl.idx[t]);
          if (!l.block) {
            REQUIRE(causal_allows(op, r, hl.idx[t]));
          } else if (op.causal) {
            const int64_t last_row = std::min((r + 1) * l.block_size, l.rows) - 1;
            REQUIRE(int64_t(hl.idx[t]) * l.block_size <= last_row + l.causal_offset);
          }
        }
      }
      const std::vector<uint8_t> mask = layout_mask(l, b, kvh);
      int64_t ones = 0;
      for (uint8_t m : mask) ones += m;
      CHECK(l.allowed_pairs(b, kvh) == ones);
      density_sum += double(ones) / double(l.rows * l.cols);
    }
  CHECK(l.density() == doctest::Approx(density_sum / double(s.batch * s.kv_heads)).epsilon(1e-12));
}

// The mask an element predicate defines must equal the layout's mask exactly.
inline void check_mask_equals(const Op& op, const Layout& l, const MaskFn& allowed) {
  const Shape& s = op.shape;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      const std::vector<uint8_t> mask = layout_mask(l, b, kvh);
      for (int64_t i = 0; i < s.seq_len; ++i)
        for (int64_t j = 0; j < s.kv_len; ++j) {
          INFO("b=" << b << " kvh=" << kvh << " i=" << i << " j=" << j);
          REQUIRE(bool(mask[i * s.kv_len + j]) == allowed(b, kvh * s.group_size(), i, j));
        }
    }
}

// Sparse reference over the layout vs the dense reference under `allowed`: max abs error
// <= 1e-5, no NaN, and rows with no allowed key exactly 0. Returns the number of empty rows.
inline int64_t check_against_oracle(const Problem& p, const Layout& l, const MaskFn& allowed) {
  const Shape& s = p.op.shape;
  const Tensor sparse = reference_attention(p.op, l, p.q, p.k, p.v);
  const Tensor dense = reference_attention_masked(p.op, p.q, p.k, p.v, allowed);
  const ErrorStats e = compare(sparse, dense);
  CHECK(e.finite);
  CHECK(e.max_abs <= 1e-5);
  int64_t empty_rows = 0;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        bool any = false;
        for (int64_t j = 0; j < s.kv_len && !any; ++j) any = allowed(b, h, i, j);
        if (any) continue;
        ++empty_rows;
        const float* out = sparse.row(b, h, i);
        for (int64_t c = 0; c < s.head_dim; ++c) REQUIRE(out[c] == 0.0f);  // NaN fails this too
      }
  return empty_rows;
}

inline MaskFn mask_of(const Layout& l, const Op& op) {
  auto masks = std::make_shared<std::vector<std::vector<uint8_t>>>();
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t kvh = 0; kvh < op.shape.kv_heads; ++kvh) masks->push_back(layout_mask(l, b, kvh));
  const int64_t kv_heads = op.shape.kv_heads, group = op.shape.group_size(), cols = op.shape.kv_len;
  return
      [=](int64_t b, int64_t h, int64_t i, int64_t j) { return (*masks)[b * kv_heads + h / group][i * cols + j] != 0; };
}

// --- Independent element predicates of the data-independent specs (from the definitions) ---

inline MaskFn dense_predicate(const Op& op) {
  return [op](int64_t, int64_t, int64_t i, int64_t j) { return causal_allows(op, i, j); };
}

inline MaskFn sliding_window_predicate(const Op& op, SlidingWindowParams p) {
  return [op, p](int64_t, int64_t, int64_t i, int64_t j) {
    if (!causal_allows(op, i, j)) return false;
    const int64_t pos = i + op.shape.kv_len - op.shape.seq_len, kv = op.shape.kv_len;
    const int64_t t_max = op.causal ? 0 : p.window_size;
    if (!p.wrap) {
      const int64_t diff = j - pos;
      return diff % p.dilation == 0 && diff / p.dilation >= -p.window_size && diff / p.dilation <= t_max;
    }
    for (int64_t t = -p.window_size; t <= t_max; ++t)
      if (((pos + t * p.dilation - j) % kv + kv) % kv == 0) return true;
    return false;
  };
}

inline MaskFn block_local_global_predicate(const Op& op, BlockLocalGlobalParams p) {
  return [op, p](int64_t, int64_t, int64_t i, int64_t j) {
    if (!causal_allows(op, i, j)) return false;
    const int64_t B = p.block_size, global = ceil_div(p.global_tokens, B);
    const int64_t br = i / B, bc = j / B;
    const int64_t local = std::clamp<int64_t>(floor_div(br * B + op.shape.kv_len - op.shape.seq_len, B), 0,
                                              ceil_div(op.shape.kv_len, B) - 1);
    if (br < global || bc < global) return true;
    return op.causal ? (bc >= local - p.window_blocks && bc <= local) : std::abs(bc - local) <= p.window_blocks;
  };
}

inline MaskFn landmark_predicate(const Op& op, int64_t m) {
  std::set<int64_t> landmarks;
  for (int64_t t = 0; t < m; ++t) landmarks.insert(t * op.shape.kv_len / m);
  return [op, landmarks](int64_t, int64_t, int64_t i, int64_t j) {
    return causal_allows(op, i, j) && landmarks.count(j) > 0;
  };
}

// --- Brute-force scores (double, summed over the group's query heads) ---

inline double pair_score(const Problem& p, int64_t b, int64_t kvh, int64_t i, int64_t j) {
  const int64_t group = p.op.shape.group_size();
  double s = 0;
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
    for (int64_t c = 0; c < p.op.shape.head_dim; ++c) s += double(p.q.row(b, h, i)[c]) * double(p.k.row(b, kvh, j)[c]);
  return s;
}

// The `count` causally allowed keys of [first, last) of highest score(j), ties to the lower key,
// in ascending order (brute force: what a top-k or N:M group selection must return).
template <class Score>
std::vector<int32_t> best_keys(const Op& op, int64_t i, int64_t first, int64_t last, int64_t count, Score score) {
  std::vector<std::pair<double, int64_t>> ranked;  // (-score, key): ascending = best first
  for (int64_t j = first; j < last; ++j)
    if (causal_allows(op, i, j)) ranked.push_back({-score(j), j});
  std::sort(ranked.begin(), ranked.end());
  std::vector<int32_t> want;
  for (int64_t t = 0; t < std::min<int64_t>(count, int64_t(ranked.size())); ++t)
    want.push_back(int32_t(ranked[t].second));
  std::sort(want.begin(), want.end());
  return want;
}

inline std::vector<double> mean_rows(const Tensor& t, int64_t b, int64_t h, int64_t first, int64_t last) {
  std::vector<double> m(t.dim(), 0.0);
  for (int64_t i = first; i < last; ++i)
    for (int64_t c = 0; c < t.dim(); ++c) m[c] += t.row(b, h, i)[c];
  for (double& x : m) x /= double(last - first);
  return m;
}

inline double bsr_block_score(const Problem& p, const BsrParams& prm, int64_t b, int64_t kvh, int64_t br, int64_t bc) {
  const Shape& s = p.op.shape;
  const int64_t B = prm.block_size, group = s.group_size();
  const int64_t sub = prm.comp_block_size > 0 && prm.comp_block_size < B ? prm.comp_block_size : B;
  const int64_t block_end = std::min((bc + 1) * B, s.kv_len);
  double best = -INFINITY;
  for (int64_t first = bc * B; first < block_end; first += sub) {
    const std::vector<double> km = mean_rows(p.k, b, kvh, first, std::min(first + sub, block_end));
    double score = 0;
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      const std::vector<double> qm = mean_rows(p.q, b, h, br * B, std::min((br + 1) * B, s.seq_len));
      for (int64_t c = 0; c < s.head_dim; ++c) score += qm[c] * km[c];
    }
    best = std::max(best, score);
  }
  return best;
}

inline int64_t expected_keep(double keep_ratio, int64_t candidates) {
  if (candidates == 0) return 0;
  // The documented formula, with its 1e-9 relative slack against binary rounding.
  return std::max<int64_t>(1, int64_t(std::ceil(keep_ratio * double(candidates) * (1 - 1e-9))));
}

// Keys chosen by score within [first, last) of allowed keys: the right count, and no dropped key
// scores above a kept one.
inline void check_best_of(const Problem& p, int64_t b, int64_t kvh, int64_t i, const std::vector<int32_t>& row,
                          int64_t first, int64_t last, int64_t count) {
  std::vector<int64_t> allowed, kept;
  for (int64_t j = first; j < last; ++j)
    if (causal_allows(p.op, i, j)) allowed.push_back(j);
  for (int32_t j : row)
    if (j >= first && j < last) kept.push_back(j);
  REQUIRE(int64_t(kept.size()) == std::min<int64_t>(count, int64_t(allowed.size())));
  double worst_kept = INFINITY, best_dropped = -INFINITY;
  for (int64_t j : allowed) {
    const double s = pair_score(p, b, kvh, i, j);
    if (std::binary_search(kept.begin(), kept.end(), j))
      worst_kept = std::min(worst_kept, s);
    else
      best_dropped = std::max(best_dropped, s);
  }
  CHECK(worst_kept >= best_dropped - 1e-9);
}

// --- Random parameters per spec ---

inline SlidingWindowParams random_sliding_window(Rng& rng, const Op& op) {
  return {pick(rng, 0, std::min<int64_t>(op.shape.kv_len, 40)), pick(rng, 1, 3), rng.below(2) == 1};
}
inline BsrParams random_bsr(Rng& rng, const Op& op) {
  BsrParams p;
  const int64_t sizes[] = {1, 3, 4, 8, 16, 32, 64};
  p.block_size = std::min(sizes[rng.below(7)], std::max(op.shape.seq_len, op.shape.kv_len));
  p.keep_ratio = 0.05 + 0.95 * rng.uniform();
  p.comp_block_size = rng.below(2) == 0 ? 0 : pick(rng, 1, p.block_size);
  p.global_tokens = rng.below(2) == 0 ? 0 : pick(rng, 0, op.shape.kv_len);
  return p;
}
inline BlockLocalGlobalParams random_block_local_global(Rng& rng, const Op& op) {
  const int64_t sizes[] = {1, 3, 4, 8, 16, 32, 64};
  return {std::min(sizes[rng.below(7)], std::max(op.shape.seq_len, op.shape.kv_len)), pick(rng, 0, 3),
          rng.below(2) == 0 ? 0 : pick(rng, 0, op.shape.kv_len)};
}
inline NmParams random_nm(Rng& rng) {
  const int64_t m = pick(rng, 1, 8);
  return {pick(rng, 1, m), m};
}

}  // namespace sattn::layout_test
