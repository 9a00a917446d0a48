// Layouts of every spec (libsattn/src/layout*.cpp): the sparse reference over a layout equals the
// dense reference under the equivalent mask, structural invariants, selection rules, and small
// hand-worked cases. Expected values come from the definitions (layout.cpp's header comment),
// never from the code under test.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/layout.hpp"
#include "sattn/synthetic.hpp"

namespace {

using namespace sattn;
using Rows = std::vector<std::vector<int32_t>>;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t pick(Rng& rng, int64_t lo, int64_t hi) { return lo + int64_t(rng.below(uint64_t(hi - lo + 1))); }

Op make_op(int64_t batch, int64_t heads, int64_t kv_heads, int64_t seq, int64_t kv, int64_t dim, bool causal) {
  Op op;
  op.shape = Shape{batch, heads, kv_heads, seq, kv, dim};
  op.causal = causal;
  return op;
}

Tensor random_tensor(Rng& rng, int64_t batch, int64_t heads, int64_t len, int64_t dim) {
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
Problem random_problem(Rng& rng, int trial) {
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

bool causal_allows(const Op& op, int64_t i, int64_t j) {
  return j >= 0 && j < op.shape.kv_len && (!op.causal || j <= i + op.shape.kv_len - op.shape.seq_len);
}

Rows rows_of(const Layout& l, int64_t b = 0, int64_t kvh = 0) {
  const HeadLayout& hl = l.head(b, kvh);
  Rows rows;
  for (size_t r = 0; r + 1 < hl.ptr.size(); ++r) rows.emplace_back(hl.idx.begin() + hl.ptr[r], hl.idx.begin() + hl.ptr[r + 1]);
  return rows;
}

// Structure shared by every layout: pointers, sorted unique in-range indices, the causal rule
// (CSR lists hold only allowed keys; BSR never lists a block entirely in the future), and the
// pair counts agree with the mask.
void check_structure(const Op& op, const Layout& l) {
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
void check_mask_equals(const Op& op, const Layout& l, const MaskFn& allowed) {
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
int64_t check_against_oracle(const Problem& p, const Layout& l, const MaskFn& allowed) {
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

MaskFn mask_of(const Layout& l, const Op& op) {
  auto masks = std::make_shared<std::vector<std::vector<uint8_t>>>();
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t kvh = 0; kvh < op.shape.kv_heads; ++kvh) masks->push_back(layout_mask(l, b, kvh));
  const int64_t kv_heads = op.shape.kv_heads, group = op.shape.group_size(), cols = op.shape.kv_len;
  return [=](int64_t b, int64_t h, int64_t i, int64_t j) {
    return (*masks)[b * kv_heads + h / group][i * cols + j] != 0;
  };
}

// --- Independent element predicates of the data-independent specs (from the definitions) ---

MaskFn dense_predicate(const Op& op) {
  return [op](int64_t, int64_t, int64_t i, int64_t j) { return causal_allows(op, i, j); };
}

MaskFn sliding_window_predicate(const Op& op, SlidingWindowParams p) {
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

MaskFn block_local_global_predicate(const Op& op, BlockLocalGlobalParams p) {
  return [op, p](int64_t, int64_t, int64_t i, int64_t j) {
    if (!causal_allows(op, i, j)) return false;
    const int64_t B = p.block_size, global = ceil_div(p.global_tokens, B);
    const int64_t br = i / B, bc = j / B;
    const int64_t local =
        std::clamp<int64_t>(floor_div(br * B + op.shape.kv_len - op.shape.seq_len, B), 0, ceil_div(op.shape.kv_len, B) - 1);
    if (br < global || bc < global) return true;
    return op.causal ? (bc >= local - p.window_blocks && bc <= local) : std::abs(bc - local) <= p.window_blocks;
  };
}

MaskFn landmark_predicate(const Op& op, int64_t m) {
  std::set<int64_t> landmarks;
  for (int64_t t = 0; t < m; ++t) landmarks.insert(t * op.shape.kv_len / m);
  return [op, landmarks](int64_t, int64_t, int64_t i, int64_t j) { return causal_allows(op, i, j) && landmarks.count(j) > 0; };
}

// --- Brute-force scores (double, summed over the group's query heads) ---

double pair_score(const Problem& p, int64_t b, int64_t kvh, int64_t i, int64_t j) {
  const int64_t group = p.op.shape.group_size();
  double s = 0;
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
    for (int64_t c = 0; c < p.op.shape.head_dim; ++c) s += double(p.q.row(b, h, i)[c]) * double(p.k.row(b, kvh, j)[c]);
  return s;
}

std::vector<double> mean_rows(const Tensor& t, int64_t b, int64_t h, int64_t first, int64_t last) {
  std::vector<double> m(t.dim(), 0.0);
  for (int64_t i = first; i < last; ++i)
    for (int64_t c = 0; c < t.dim(); ++c) m[c] += t.row(b, h, i)[c];
  for (double& x : m) x /= double(last - first);
  return m;
}

double bsr_block_score(const Problem& p, const BsrParams& prm, int64_t b, int64_t kvh, int64_t br, int64_t bc) {
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

int64_t expected_keep(double keep_ratio, int64_t candidates) {
  if (candidates == 0) return 0;
  // The documented formula, with its 1e-9 relative slack against binary rounding.
  return std::max<int64_t>(1, int64_t(std::ceil(keep_ratio * double(candidates) * (1 - 1e-9))));
}

// Keys chosen by score within [first, last) of allowed keys: the right count, and no dropped key
// scores above a kept one.
void check_best_of(const Problem& p, int64_t b, int64_t kvh, int64_t i, const std::vector<int32_t>& row, int64_t first,
                   int64_t last, int64_t count) {
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

SlidingWindowParams random_sliding_window(Rng& rng, const Op& op) {
  return {pick(rng, 0, std::min<int64_t>(op.shape.kv_len, 40)), pick(rng, 1, 3), rng.below(2) == 1};
}
BsrParams random_bsr(Rng& rng, const Op& op) {
  BsrParams p;
  const int64_t sizes[] = {1, 3, 4, 8, 16, 32, 64};
  p.block_size = std::min(sizes[rng.below(7)], std::max(op.shape.seq_len, op.shape.kv_len));
  p.keep_ratio = 0.05 + 0.95 * rng.uniform();
  p.comp_block_size = rng.below(2) == 0 ? 0 : pick(rng, 1, p.block_size);
  p.global_tokens = rng.below(2) == 0 ? 0 : pick(rng, 0, op.shape.kv_len);
  return p;
}
BlockLocalGlobalParams random_block_local_global(Rng& rng, const Op& op) {
  const int64_t sizes[] = {1, 3, 4, 8, 16, 32, 64};
  return {std::min(sizes[rng.below(7)], std::max(op.shape.seq_len, op.shape.kv_len)), pick(rng, 0, 3),
          rng.below(2) == 0 ? 0 : pick(rng, 0, op.shape.kv_len)};
}
NmParams random_nm(Rng& rng) {
  const int64_t m = pick(rng, 1, 8);
  return {pick(rng, 1, m), m};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Sparse reference over the layout == dense reference under the equivalent mask, every spec.

TEST_CASE("layout: dense matches the dense oracle") {
  Rng rng(101);
  int64_t empty_rows = 0;
  for (int trial = 0; trial < 10; ++trial) {
    const Problem p = random_problem(rng, trial);
    CAPTURE(trial);
    const Layout l = build_layout(p.op, Spec::dense, DenseParams{}, nullptr, nullptr);
    CHECK(l.block);
    CHECK(l.shared);
    CHECK(l.block_size == std::min<int64_t>(64, std::max(p.op.shape.seq_len, p.op.shape.kv_len)));
    check_structure(p.op, l);
    check_mask_equals(p.op, l, dense_predicate(p.op));
    empty_rows += check_against_oracle(p, l, dense_predicate(p.op));
  }
  CHECK(empty_rows > 0);
}

TEST_CASE("layout: sliding_window matches the independent oracle") {
  Rng rng(202);
  int64_t empty_rows = 0;
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const SlidingWindowParams prm = random_sliding_window(rng, p.op);
    CAPTURE(trial);
    CAPTURE(prm.window_size);
    CAPTURE(prm.dilation);
    CAPTURE(prm.wrap);
    const Layout l = build_layout(p.op, Spec::sliding_window, prm, nullptr, nullptr);
    CHECK_FALSE(l.block);
    CHECK(l.shared);
    check_structure(p.op, l);
    const MaskFn allowed = sliding_window_predicate(p.op, prm);
    check_mask_equals(p.op, l, allowed);
    empty_rows += check_against_oracle(p, l, allowed);
  }
  CHECK(empty_rows > 0);
}

TEST_CASE("layout: block_local_global matches the independent oracle") {
  Rng rng(303);
  int64_t empty_rows = 0;
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const BlockLocalGlobalParams prm = random_block_local_global(rng, p.op);
    CAPTURE(trial);
    CAPTURE(prm.block_size);
    CAPTURE(prm.window_blocks);
    CAPTURE(prm.global_tokens);
    const Layout l = build_layout(p.op, Spec::block_local_global, prm, nullptr, nullptr);
    CHECK(l.block);
    CHECK(l.shared);
    CHECK(l.block_size == prm.block_size);
    check_structure(p.op, l);
    const MaskFn allowed = block_local_global_predicate(p.op, prm);
    check_mask_equals(p.op, l, allowed);
    empty_rows += check_against_oracle(p, l, allowed);
  }
  CHECK(empty_rows > 0);
}

TEST_CASE("layout: landmark without refinement matches the independent oracle") {
  Rng rng(404);
  for (int trial = 0; trial < 10; ++trial) {
    const Problem p = random_problem(rng, trial);
    const LandmarkParams prm{pick(rng, 1, p.op.shape.kv_len + 3), 0};  // m > kv_len: duplicates collapse
    CAPTURE(trial);
    const Layout l = build_layout(p.op, Spec::landmark, prm, nullptr, nullptr);
    CHECK(l.shared);
    check_structure(p.op, l);
    const MaskFn allowed = landmark_predicate(p.op, prm.num_landmarks);
    check_mask_equals(p.op, l, allowed);
    check_against_oracle(p, l, allowed);
  }
}

TEST_CASE("layout: data-dependent specs match the dense oracle under their mask") {
  Rng rng(505);
  for (Spec spec : {Spec::bsr, Spec::nm_structured, Spec::topk_per_query, Spec::lsh, Spec::landmark}) {
    int64_t empty_rows = 0;
    for (int trial = 0; trial < 8; ++trial) {
      const Problem p = random_problem(rng, trial);
      SpecParams prm;
      switch (spec) {
        case Spec::bsr: prm = random_bsr(rng, p.op); break;
        case Spec::nm_structured: prm = random_nm(rng); break;
        case Spec::topk_per_query: prm = TopkParams{pick(rng, 1, p.op.shape.kv_len)}; break;
        case Spec::lsh: prm = LshParams{pick(rng, 1, 8), pick(rng, 1, 3), rng.next_u64()}; break;
        default: prm = LandmarkParams{pick(rng, 1, p.op.shape.kv_len), pick(rng, 1, 3)}; break;
      }
      CAPTURE(to_string(spec));
      CAPTURE(trial);
      const Layout l = build_layout(p.op, spec, prm, &p.q, &p.k);
      CHECK(l.spec == spec);
      CHECK_FALSE(l.shared);
      check_structure(p.op, l);
      empty_rows += check_against_oracle(p, l, mask_of(l, p.op));
    }
    CHECK(empty_rows > 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Selection rules and invariants.

TEST_CASE("layout: bsr keeps local, global and the best-scoring blocks, keep count by formula") {
  Rng rng(606);
  for (int trial = 0; trial < 24; ++trial) {
    const Problem p = random_problem(rng, trial);
    const BsrParams prm = random_bsr(rng, p.op);
    CAPTURE(trial);
    CAPTURE(prm.block_size);
    CAPTURE(prm.keep_ratio);
    CAPTURE(prm.comp_block_size);
    CAPTURE(prm.global_tokens);
    const Layout l = build_layout(p.op, Spec::bsr, prm, &p.q, &p.k);
    check_structure(p.op, l);
    const Shape& s = p.op.shape;
    const int64_t B = prm.block_size, block_cols = ceil_div(s.kv_len, B), offset = s.kv_len - s.seq_len;
    const int64_t global = ceil_div(prm.global_tokens, B);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
        const Rows rows = rows_of(l, b, kvh);
        for (int64_t br = 0; br < ceil_div(s.seq_len, B); ++br) {
          CAPTURE(br);
          // Candidates: block columns whose first key is not after the block row's last aligned key.
          const int64_t last_pos = std::min((br + 1) * B, s.seq_len) - 1 + offset;
          std::vector<int64_t> candidates;
          for (int64_t bc = 0; bc < block_cols; ++bc)
            if (!p.op.causal || bc * B <= last_pos) candidates.push_back(bc);
          std::set<int64_t> forced;
          if (!candidates.empty()) {
            forced.insert(std::clamp<int64_t>(floor_div(br * B + offset, B), 0, block_cols - 1));
            for (int64_t bc : candidates)
              if (bc < global) forced.insert(bc);
          }
          const std::vector<int32_t>& kept = rows[br];
          const int64_t want = std::max<int64_t>(expected_keep(prm.keep_ratio, int64_t(candidates.size())),
                                                 int64_t(forced.size()));
          REQUIRE(int64_t(kept.size()) == want);
          for (int64_t bc : forced) CHECK(std::binary_search(kept.begin(), kept.end(), int32_t(bc)));
          double worst_kept = INFINITY, best_dropped = -INFINITY;
          for (int64_t bc : candidates) {
            if (forced.count(bc)) continue;
            const double score = bsr_block_score(p, prm, b, kvh, br, bc);
            if (std::binary_search(kept.begin(), kept.end(), int32_t(bc)))
              worst_kept = std::min(worst_kept, score);
            else
              best_dropped = std::max(best_dropped, score);
          }
          CHECK(worst_kept >= best_dropped - 1e-9);
        }
      }
  }
}

TEST_CASE("layout: nm_structured keeps the nm_n best allowed keys of every group of nm_m") {
  Rng rng(707);
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const NmParams prm = random_nm(rng);
    CAPTURE(trial);
    CAPTURE(prm.nm_n);
    CAPTURE(prm.nm_m);
    const Layout l = build_layout(p.op, Spec::nm_structured, prm, &p.q, &p.k);
    check_structure(p.op, l);
    for (int64_t b = 0; b < p.op.shape.batch; ++b)
      for (int64_t kvh = 0; kvh < p.op.shape.kv_heads; ++kvh) {
        const Rows rows = rows_of(l, b, kvh);
        for (int64_t i = 0; i < p.op.shape.seq_len; ++i)
          for (int64_t g = 0; g < p.op.shape.kv_len; g += prm.nm_m)
            check_best_of(p, b, kvh, i, rows[i], g, std::min(g + prm.nm_m, p.op.shape.kv_len), prm.nm_n);
      }
  }
}

TEST_CASE("layout: topk_per_query keeps exactly min(k, allowed) best keys per row") {
  Rng rng(808);
  for (int trial = 0; trial < 16; ++trial) {
    const Problem p = random_problem(rng, trial);
    const TopkParams prm{pick(rng, 1, p.op.shape.kv_len)};
    CAPTURE(trial);
    CAPTURE(prm.topk_k);
    const Layout l = build_layout(p.op, Spec::topk_per_query, prm, &p.q, &p.k);
    check_structure(p.op, l);
    for (int64_t b = 0; b < p.op.shape.batch; ++b)
      for (int64_t kvh = 0; kvh < p.op.shape.kv_heads; ++kvh) {
        const Rows rows = rows_of(l, b, kvh);
        for (int64_t i = 0; i < p.op.shape.seq_len; ++i)
          check_best_of(p, b, kvh, i, rows[i], 0, p.op.shape.kv_len, prm.topk_k);
      }
  }
}

TEST_CASE("layout: topk selection is exact on ties and near-ties below float resolution") {
  // 300 keys; keys 100..299 are one vector plus a perturbation of 1e-7 relative that orders them
  // in double but not reliably in float. Keys 0..99 all equal: an exact tie, lower index wins.
  const int64_t kv = 300, dim = 16;
  Op op = make_op(1, 1, 1, 3, kv, dim, false);
  Problem p{op, Tensor(1, 1, 3, dim), Tensor(1, 1, kv, dim), Tensor(1, 1, kv, dim)};
  Rng rng(909);
  std::vector<float> base(dim), other(dim);
  for (int64_t c = 0; c < dim; ++c) base[c] = rng.normal(), other[c] = rng.normal();
  for (int64_t j = 0; j < kv; ++j)
    for (int64_t c = 0; c < dim; ++c) p.k.row(0, 0, j)[c] = j < 100 ? other[c] : base[c];
  for (int64_t j = 100; j < kv; ++j) p.k.row(0, 0, j)[0] = base[0] * (1.0f + float((j * 37) % 200) * 1e-7f);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < dim; ++c) p.q.row(0, 0, i)[c] = i == 2 ? other[c] : base[c] + (c == 0 ? 1.0f : 0.0f);
  for (int64_t topk : {1, 5, 37, 150}) {
    const Layout l = build_layout(op, Spec::topk_per_query, TopkParams{topk}, &p.q, &p.k);
    const Rows rows = rows_of(l);
    for (int64_t i = 0; i < 3; ++i) {
      std::vector<std::pair<double, int64_t>> ranked;  // (-score, key): ascending = best first
      for (int64_t j = 0; j < kv; ++j) {
        double s = 0;
        for (int64_t c = 0; c < dim; ++c) s += double(p.q.row(0, 0, i)[c]) * double(p.k.row(0, 0, j)[c]);
        ranked.push_back({-s, j});
      }
      std::sort(ranked.begin(), ranked.end());
      std::vector<int32_t> want;
      for (int64_t t = 0; t < topk; ++t) want.push_back(int32_t(ranked[t].second));
      std::sort(want.begin(), want.end());
      CAPTURE(topk);
      CAPTURE(i);
      CHECK(rows[i] == want);
    }
  }
}

TEST_CASE("layout: GQA heads share one selection scored with the summed query") {
  // Keys: k0 = (1, 0), k1 = (0, 1), k2 = (0.6, 0.6). Head 0 (q = (1, 0)) alone prefers k0, head 1
  // (q = (0, 1)) alone prefers k1; summed (1, 1) scores k2 highest (1.2).
  const float keys[3][2] = {{1, 0}, {0, 1}, {0.6f, 0.6f}};
  auto fill = [&](Problem& p) {
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t c = 0; c < 2; ++c) p.k.row(0, p.k.heads() - 1, j)[c] = p.k.row(0, 0, j)[c] = keys[j][c];
    p.q.row(0, 0, 0)[0] = 1, p.q.row(0, 1, 0)[1] = 1;
  };
  Problem grouped{make_op(1, 2, 1, 1, 3, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 1, 3, 2), Tensor(1, 1, 3, 2)};
  Problem separate{make_op(1, 2, 2, 1, 3, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 2, 3, 2), Tensor(1, 2, 3, 2)};
  fill(grouped);
  fill(separate);
  SUBCASE("topk_per_query") {
    CHECK(rows_of(build_layout(grouped.op, Spec::topk_per_query, TopkParams{1}, &grouped.q, &grouped.k))[0] ==
          std::vector<int32_t>{2});
    const Layout l = build_layout(separate.op, Spec::topk_per_query, TopkParams{1}, &separate.q, &separate.k);
    CHECK(rows_of(l, 0, 0)[0] == std::vector<int32_t>{0});
    CHECK(rows_of(l, 0, 1)[0] == std::vector<int32_t>{1});
  }
  SUBCASE("nm_structured") {
    CHECK(rows_of(build_layout(grouped.op, Spec::nm_structured, NmParams{1, 3}, &grouped.q, &grouped.k))[0] ==
          std::vector<int32_t>{2});
  }
  SUBCASE("bsr: block scores summed over the group") {
    // Blocks of 2 identical keys; block 3 is the local block (query 0 aligned with key 7).
    const float block_keys[4][2] = {{1, 0}, {0, 1}, {0.6f, 0.6f}, {-1, -1}};
    Problem g{make_op(1, 2, 1, 1, 8, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2)};
    Problem s{make_op(1, 2, 2, 1, 8, 2, false), Tensor(1, 2, 1, 2), Tensor(1, 2, 8, 2), Tensor(1, 2, 8, 2)};
    for (Problem* p : {&g, &s}) {
      for (int64_t h = 0; h < p->k.heads(); ++h)
        for (int64_t j = 0; j < 8; ++j)
          for (int64_t c = 0; c < 2; ++c) p->k.row(0, h, j)[c] = block_keys[j / 2][c];
      p->q.row(0, 0, 0)[0] = 1, p->q.row(0, 1, 0)[1] = 1;
    }
    const BsrParams prm{2, 0.5, 0, 0};
    CHECK(rows_of(build_layout(g.op, Spec::bsr, prm, &g.q, &g.k))[0] == std::vector<int32_t>{2, 3});
    const Layout l = build_layout(s.op, Spec::bsr, prm, &s.q, &s.k);
    CHECK(rows_of(l, 0, 0)[0] == std::vector<int32_t>{0, 3});
    CHECK(rows_of(l, 0, 1)[0] == std::vector<int32_t>{1, 3});
  }
}

TEST_CASE("layout: lsh is deterministic per seed, differs across seeds, keeps the diagonal") {
  Rng rng(1010);
  const Op op = make_op(2, 4, 2, 64, 64, 16, false);
  const Tensor q = random_tensor(rng, 2, 4, 64, 16), k = random_tensor(rng, 2, 2, 64, 16);
  const Layout a = build_layout(op, Spec::lsh, LshParams{8, 2, 7}, &q, &k);
  const Layout b = build_layout(op, Spec::lsh, LshParams{8, 2, 7}, &q, &k);
  const Layout c = build_layout(op, Spec::lsh, LshParams{8, 2, 8}, &q, &k);
  bool any_difference = false;
  for (size_t h = 0; h < a.heads.size(); ++h) {
    CHECK(a.heads[h].ptr == b.heads[h].ptr);
    CHECK(a.heads[h].idx == b.heads[h].idx);
    any_difference = any_difference || a.heads[h].idx != c.heads[h].idx;
  }
  CHECK(any_difference);
  for (int64_t bb = 0; bb < 2; ++bb)
    for (int64_t kvh = 0; kvh < 2; ++kvh) {
      const Rows rows = rows_of(a, bb, kvh);
      for (int64_t i = 0; i < 64; ++i) CHECK(std::binary_search(rows[i].begin(), rows[i].end(), int32_t(i)));
    }
}

TEST_CASE("layout: lsh buckets follow the documented hash") {
  // Re-derives the buckets from the documented construction (Rng stream, projection layout,
  // argmax over [xR, -xR] or xR) for even and odd bucket counts.
  Rng rng(1111);
  const int64_t seq = 40, kv = 50, dim = 8;
  for (bool causal : {false, true})
    for (int64_t buckets : {2, 5, 8})
      for (int64_t rounds : {1, 3}) {
        const Op op = make_op(1, 2, 1, seq, kv, dim, causal);
        const Tensor q = random_tensor(rng, 1, 2, seq, dim), k = random_tensor(rng, 1, 1, kv, dim);
        const uint64_t seed = 42;
        const Layout l = build_layout(op, Spec::lsh, LshParams{buckets, rounds, seed}, &q, &k);
        const int64_t cols = buckets % 2 == 0 ? buckets / 2 : buckets;
        auto hash = [&](const std::vector<double>& x, const std::vector<double>& proj) {
          std::vector<double> values;
          for (int64_t t = 0; t < cols; ++t) {
            double v = 0;
            for (int64_t c = 0; c < dim; ++c) v += x[c] * proj[c * cols + t];
            values.push_back(v);
          }
          if (buckets % 2 == 0)
            for (int64_t t = 0; t < cols; ++t) values.push_back(-values[t]);
          return std::max_element(values.begin(), values.end()) - values.begin();  // first max
        };
        std::vector<std::vector<int64_t>> query_bucket(rounds), key_bucket(rounds);
        for (int64_t r = 0; r < rounds; ++r) {
          Rng stream(seed ^ ((uint64_t(r) + 1) * 0x9E3779B97F4A7C15ull));
          std::vector<double> proj(dim * cols);
          for (double& x : proj) x = stream.normal();
          for (int64_t i = 0; i < seq; ++i) {
            std::vector<double> x(dim, 0.0);
            for (int64_t c = 0; c < dim; ++c) x[c] = double(q.row(0, 0, i)[c]) + double(q.row(0, 1, i)[c]);
            query_bucket[r].push_back(hash(x, proj));
          }
          for (int64_t j = 0; j < kv; ++j) {
            std::vector<double> x(k.row(0, 0, j), k.row(0, 0, j) + dim);
            key_bucket[r].push_back(hash(x, proj));
          }
        }
        check_mask_equals(op, l, [&](int64_t, int64_t, int64_t i, int64_t j) {
          if (!causal_allows(op, i, j)) return false;
          if (j == i + kv - seq) return true;  // the diagonal is always kept
          for (int64_t r = 0; r < rounds; ++r)
            if (query_bucket[r][i] == key_bucket[r][j]) return true;
          return false;
        });
      }
}

TEST_CASE("layout: lsh with one bucket is every allowed key") {
  Rng rng(1212);
  const Op op = make_op(1, 1, 1, 30, 20, 4, true);
  const Tensor q = random_tensor(rng, 1, 1, 30, 4), k = random_tensor(rng, 1, 1, 20, 4);
  check_mask_equals(op, build_layout(op, Spec::lsh, LshParams{1, 1, 3}, &q, &k), dense_predicate(op));
}

// ---------------------------------------------------------------------------------------------
// Hand-worked cases.

TEST_CASE("layout: sliding_window hand-worked cases") {
  SUBCASE("seq 8, window 2, dilation 2, wrap: every other key of the ring") {
    const Op op = make_op(1, 1, 1, 8, 8, 4, false);
    const Rows rows = rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{2, 2, true}, nullptr, nullptr));
    for (int64_t i = 0; i < 8; ++i)
      CHECK(rows[i] == (i % 2 == 0 ? std::vector<int32_t>{0, 2, 4, 6} : std::vector<int32_t>{1, 3, 5, 7}));
  }
  SUBCASE("seq 8, window 1, dilation 3, wrap") {
    const Op op = make_op(1, 1, 1, 8, 8, 4, false);
    const Rows want = {{0, 3, 5}, {1, 4, 6}, {2, 5, 7}, {0, 3, 6}, {1, 4, 7}, {0, 2, 5}, {1, 3, 6}, {2, 4, 7}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{1, 3, true}, nullptr, nullptr)) == want);
  }
  SUBCASE("causal, seq 4 < kv 6 (offset 2), window 2, dilation 2, no wrap") {
    const Op op = make_op(1, 1, 1, 4, 6, 4, true);
    const Rows want = {{0, 2}, {1, 3}, {0, 2, 4}, {1, 3, 5}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{2, 2, false}, nullptr, nullptr)) == want);
  }
  SUBCASE("causal, seq 6 > kv 4 (offset -2): the first two rows are empty") {
    const Op op = make_op(1, 1, 1, 6, 4, 4, true);
    const Rows want = {{}, {}, {0}, {0, 1}, {1, 2}, {2, 3}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{1, 1, false}, nullptr, nullptr)) == want);
  }
  SUBCASE("causal with wrap: wrapped positions are in the future and dropped") {
    const Op op = make_op(1, 1, 1, 5, 5, 4, true);
    const Rows want = {{0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}};
    CHECK(rows_of(build_layout(op, Spec::sliding_window, SlidingWindowParams{2, 1, true}, nullptr, nullptr)) == want);
  }
}

TEST_CASE("layout: block_local_global hand-worked cases (seq 10, block 4: partial last block)") {
  auto blocks = [](int64_t seq, int64_t kv, bool causal, BlockLocalGlobalParams p) {
    return rows_of(build_layout(make_op(1, 1, 1, seq, kv, 4, causal), Spec::block_local_global, p, nullptr, nullptr));
  };
  // global_tokens 1 rounds up to one whole global block.
  CHECK(blocks(10, 10, false, {4, 0, 1}) == Rows{{0, 1, 2}, {0, 1}, {0, 2}});
  CHECK(blocks(10, 10, true, {4, 0, 1}) == Rows{{0}, {0, 1}, {0, 2}});
  CHECK(blocks(10, 10, false, {4, 1, 0}) == Rows{{0, 1}, {0, 1, 2}, {1, 2}});
  CHECK(blocks(10, 10, true, {4, 1, 0}) == Rows{{0}, {0, 1}, {1, 2}});
  // seq 6 < kv 10: block row 0 is aligned with keys 4..7 (local block 1), row 1 with 8..9 (block 2).
  CHECK(blocks(6, 10, true, {4, 1, 0}) == Rows{{0, 1}, {1, 2}});
  CHECK(blocks(6, 10, false, {4, 0, 0}) == Rows{{1}, {2}});
}

TEST_CASE("layout: dense hand-worked cases") {
  const Layout causal = build_layout(make_op(1, 1, 1, 100, 100, 4, true), Spec::dense, DenseParams{}, nullptr, nullptr);
  CHECK(causal.block_size == 64);
  CHECK(rows_of(causal) == Rows{{0}, {0, 1}});
  CHECK(causal.allowed_pairs(0, 0) == 100 * 101 / 2);
  const Layout small = build_layout(make_op(1, 1, 1, 10, 30, 4, false), Spec::dense, DenseParams{}, nullptr, nullptr);
  CHECK(small.block_size == 30);  // clamped to the sequence
  CHECK(rows_of(small) == Rows{{0}});
  CHECK(small.density() == 1.0);
}

TEST_CASE("layout: bsr hand-worked cases") {
  // 8 keys in blocks of 2 with block means (0,0), (1,0), (2,0), (3,0); every query is (1, 0), so
  // block c scores c.
  Problem p{make_op(1, 1, 1, 8, 8, 2, false), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2), Tensor(1, 1, 8, 2)};
  for (int64_t j = 0; j < 8; ++j) p.k.row(0, 0, j)[0] = float(j / 2) + (j % 2 == 0 ? 0.25f : -0.25f);
  for (int64_t i = 0; i < 8; ++i) p.q.row(0, 0, i)[0] = 1;
  auto blocks = [&](bool causal, BsrParams prm) {
    p.op.causal = causal;
    return rows_of(build_layout(p.op, Spec::bsr, prm, &p.q, &p.k));
  };
  CHECK(blocks(false, {2, 0.5, 0, 0}) == Rows{{0, 3}, {1, 3}, {2, 3}, {2, 3}});
  // Causal: 1, 2, 3, 4 candidates keep 1, 1, 2, 2 blocks.
  CHECK(blocks(true, {2, 0.5, 0, 0}) == Rows{{0}, {1}, {1, 2}, {2, 3}});
  // One global token: block 0 is forced; rows 1..3 are full with the local and global blocks.
  CHECK(blocks(false, {2, 0.5, 0, 1}) == Rows{{0, 3}, {0, 1}, {0, 2}, {0, 3}});
  // keep_ratio 1 keeps every candidate.
  CHECK(blocks(true, {2, 1.0, 0, 0}) == Rows{{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}});

  SUBCASE("keep_ratio 0.28 of 25 candidates keeps 7, not 8") {
    // In binary floating point 0.28 * 25 = 7.000000000000001.
    Problem r{make_op(1, 1, 1, 1, 25, 1, false), Tensor(1, 1, 1, 1), Tensor(1, 1, 25, 1), Tensor(1, 1, 25, 1)};
    r.q.row(0, 0, 0)[0] = 1;
    for (int64_t j = 0; j < 25; ++j) r.k.row(0, 0, j)[0] = float(j);
    // Local block is 24 (query 0 aligned with key 24); the best others are 23, 22, ..., 18.
    CHECK(rows_of(build_layout(r.op, Spec::bsr, BsrParams{1, 0.28, 0, 0}, &r.q, &r.k))[0] ==
          std::vector<int32_t>{18, 19, 20, 21, 22, 23, 24});
  }
  SUBCASE("compression scoring takes the best sub-block, not the block mean") {
    // Blocks of 4 keys, sub-blocks of 2. Block 0: sub-block means 5 and -5 (block mean 0);
    // block 1: sub-block means 1 and 1 (block mean 1). Block 2 (keys 8..9) is local.
    Problem c{make_op(1, 1, 1, 1, 10, 1, false), Tensor(1, 1, 1, 1), Tensor(1, 1, 10, 1), Tensor(1, 1, 10, 1)};
    c.q.row(0, 0, 0)[0] = 1;
    const float key_values[10] = {5, 5, -5, -5, 1, 1, 1, 1, 0, 0};
    for (int64_t j = 0; j < 10; ++j) c.k.row(0, 0, j)[0] = key_values[j];
    CHECK(rows_of(build_layout(c.op, Spec::bsr, BsrParams{4, 0.5, 0, 0}, &c.q, &c.k))[0] == std::vector<int32_t>{1, 2});
    CHECK(rows_of(build_layout(c.op, Spec::bsr, BsrParams{4, 0.5, 2, 0}, &c.q, &c.k))[0] == std::vector<int32_t>{0, 2});
  }
}

TEST_CASE("layout: nm_structured and topk_per_query hand-worked cases") {
  // One-dimensional keys, query 1: the score of key j is its value.
  const float values[9] = {5, 1, 3, 7, 2, 2, 9, 0, 4};
  auto problem = [&](int64_t seq, int64_t kv, bool causal) {
    Problem p{make_op(1, 1, 1, seq, kv, 1, causal), Tensor(1, 1, seq, 1), Tensor(1, 1, kv, 1), Tensor(1, 1, kv, 1)};
    for (int64_t i = 0; i < seq; ++i) p.q.row(0, 0, i)[0] = 1;
    for (int64_t j = 0; j < kv; ++j) p.k.row(0, 0, j)[0] = values[j];
    return p;
  };
  const Problem p8 = problem(1, 8, false);
  // 2:4 -> group {5,1,3,7} keeps 0 and 3; group {2,2,9,0} keeps 6 and the tie 4 (lower index).
  CHECK(rows_of(build_layout(p8.op, Spec::nm_structured, NmParams{2, 4}, &p8.q, &p8.k))[0] ==
        std::vector<int32_t>{0, 3, 4, 6});
  // kv 9: the last group {4} has fewer than nm_n keys and keeps all of them.
  const Problem p9 = problem(1, 9, false);
  CHECK(rows_of(build_layout(p9.op, Spec::nm_structured, NmParams{2, 4}, &p9.q, &p9.k))[0] ==
        std::vector<int32_t>{0, 3, 4, 6, 8});
  // Causal, seq 2, kv 8: row 0 is aligned with key 6, so its second group is {2, 2, 9}.
  const Problem pc = problem(2, 8, true);
  CHECK(rows_of(build_layout(pc.op, Spec::nm_structured, NmParams{2, 4}, &pc.q, &pc.k)) ==
        Rows{{0, 3, 4, 6}, {0, 3, 4, 6}});
  CHECK(rows_of(build_layout(pc.op, Spec::nm_structured, NmParams{1, 4}, &pc.q, &pc.k)) == Rows{{3, 6}, {3, 6}});
  // Top-k: values 9, 7, 5 -> keys 6, 3, 0; causal row 0 (keys 0..6) the same.
  CHECK(rows_of(build_layout(p8.op, Spec::topk_per_query, TopkParams{3}, &p8.q, &p8.k))[0] ==
        std::vector<int32_t>{0, 3, 6});
  CHECK(rows_of(build_layout(pc.op, Spec::topk_per_query, TopkParams{5}, &pc.q, &pc.k)) ==
        Rows{{0, 2, 3, 4, 6}, {0, 2, 3, 4, 6}});
  // Ties: keys 4 and 5 both score 2; top-4 of keys 0..5 takes 3, 0, 2 and the lower tied key 4.
  const Problem p6 = problem(1, 6, false);
  CHECK(rows_of(build_layout(p6.op, Spec::topk_per_query, TopkParams{4}, &p6.q, &p6.k))[0] ==
        std::vector<int32_t>{0, 2, 3, 4});
}

TEST_CASE("layout: landmark hand-worked cases") {
  SUBCASE("evenly spaced, causal") {
    const Op op = make_op(1, 1, 1, 10, 10, 4, true);
    const Rows rows = rows_of(build_layout(op, Spec::landmark, LandmarkParams{3, 0}, nullptr, nullptr));
    // floor(t * 10 / 3) = 0, 3, 6.
    CHECK(rows[0] == std::vector<int32_t>{0});
    CHECK(rows[5] == std::vector<int32_t>{0, 3});
    CHECK(rows[9] == std::vector<int32_t>{0, 3, 6});
  }
  SUBCASE("k-means-lite refinement") {
    // Even keys near +1 (1.0, 1.05, 0.9, 0.97), odd keys at -1; the initial landmarks 0 and 4
    // both sit in the +1 cluster. Iteration 1 pulls centroid 1 to -0.62 (nearest key 1);
    // iteration 2 splits the clusters exactly: centroids 0.98 (nearest key 6) and -1 (key 1).
    Op op = make_op(1, 1, 1, 8, 8, 4, false);
    Tensor k(1, 1, 8, 4);
    const float first_coord[8] = {1.0f, -1, 1.05f, -1, 0.9f, -1, 0.97f, -1};
    for (int64_t j = 0; j < 8; ++j) k.row(0, 0, j)[0] = first_coord[j];
    auto landmarks = [&](int64_t iters) {
      return rows_of(build_layout(op, Spec::landmark, LandmarkParams{2, iters}, nullptr, &k))[3];
    };
    CHECK(landmarks(1) == std::vector<int32_t>{0, 1});
    CHECK(landmarks(2) == std::vector<int32_t>{1, 6});
    CHECK(landmarks(3) == std::vector<int32_t>{1, 6});
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST_CASE("layout: data-dependent specs reject missing, misshapen or non-finite data") {
  Rng rng(1313);
  const Op op = make_op(1, 2, 1, 8, 8, 4, false);
  const Tensor q = random_tensor(rng, 1, 2, 8, 4), k = random_tensor(rng, 1, 1, 8, 4);
  const SpecParams params[] = {BsrParams{}, NmParams{}, TopkParams{4}, LshParams{}, LandmarkParams{4, 1}};
  const Spec specs[] = {Spec::bsr, Spec::nm_structured, Spec::topk_per_query, Spec::lsh, Spec::landmark};
  for (int t = 0; t < 5; ++t) {
    CAPTURE(to_string(specs[t]));
    try {
      build_layout(op, specs[t], params[t], nullptr, nullptr);
      FAIL("no error without data");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::invalid_input);
      CHECK(e.message() == "spec " + std::string(to_string(specs[t])) + " needs Q/K data");
    }
    if (specs[t] != Spec::landmark) {  // landmark refinement reads only K
      Tensor wrong = random_tensor(rng, 1, 1, 8, 4);
      CHECK_THROWS_AS(build_layout(op, specs[t], params[t], &wrong, &k), Error);
    }
    Tensor bad = k;
    bad.data[3] = NAN;
    CHECK_THROWS_AS(build_layout(op, specs[t], params[t], &q, &bad), Error);
  }
  // Data-independent specs need none.
  CHECK_NOTHROW(build_layout(op, Spec::landmark, LandmarkParams{4, 0}, nullptr, nullptr));
  CHECK_NOTHROW(build_layout(op, Spec::sliding_window, SlidingWindowParams{}, nullptr, nullptr));
}
