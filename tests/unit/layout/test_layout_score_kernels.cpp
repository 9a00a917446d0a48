// The score kernels behind nm_structured / topk_per_query (libsattn/layout/score_kernels.cpp, one
// copy per ISA, picked at run time or by SATTN_CPU_ISA): every copy this CPU runs must give the
// selection the documented rule defines, by brute force in double, on random shapes (tails of
// every tile and key block, head_dim not a multiple of the vector), causal rows (some empty),
// GQA, batches, and the paths the fast code leaves to the general rule: near-ties (integer data),
// rows whose scores are all equal (a top-k list that overflows), nearly equal keys (doubtful keys
// below the top-k threshold), huge queries (float would
// overflow: exact scores only), counts of 1 .. kv_len + 3.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "layout_test_support.hpp"
#include "sattn/attention.hpp"

using namespace sattn;
using namespace sattn::layout_test;

namespace {

// The rule of layout.cpp: the group-summed query (summed over the group's heads in order, in
// double), dotted with the key in index order.
double rule_score(const Problem& p, int64_t b, int64_t kvh, int64_t i, int64_t j) {
  const int64_t group = p.op.shape.group_size(), d = p.op.shape.head_dim;
  std::vector<double> qs(d, 0.0);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
    for (int64_t c = 0; c < d; ++c) qs[c] += double(p.q.row(b, h, i)[c]);
  double s = 0;
  for (int64_t c = 0; c < d; ++c) s += qs[c] * double(p.k.row(b, kvh, j)[c]);
  return s;
}

// The `count` allowed keys of [first, last) of highest score, ties to the lower key, ascending.
std::vector<int32_t> rule_best(const Problem& p, int64_t b, int64_t kvh, int64_t i, int64_t first, int64_t last,
                               int64_t count) {
  return best_keys(p.op, i, first, last, count, [&](int64_t j) { return rule_score(p, b, kvh, i, j); });
}

std::vector<int32_t> row_keys(const Layout& l, int64_t head, int64_t i) {
  const HeadLayout& hl = l.heads[head];
  return {hl.idx.begin() + hl.ptr[i], hl.idx.begin() + hl.ptr[i + 1]};
}

// Sets SATTN_CPU_ISA for one scope.
struct IsaScope {
  explicit IsaScope(const std::string& isa) {
    const char* old = std::getenv("SATTN_CPU_ISA");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("SATTN_CPU_ISA", isa.c_str(), 1);
  }
  ~IsaScope() {
    if (had_)
      setenv("SATTN_CPU_ISA", old_.c_str(), 1);
    else
      unsetenv("SATTN_CPU_ISA");
  }
  bool had_ = false;
  std::string old_;
};

// Every row of every (batch, kv head) of `l` against the rule.
void check_topk(const Problem& p, const Layout& l, int64_t k) {
  const Shape& s = p.op.shape;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        CAPTURE(b);
        CAPTURE(kvh);
        CAPTURE(i);
        CHECK(row_keys(l, b * s.kv_heads + kvh, i) == rule_best(p, b, kvh, i, 0, s.kv_len, k));
      }
}

void check_nm(const Problem& p, const Layout& l, NmParams nm) {
  const Shape& s = p.op.shape;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        std::vector<int32_t> want;
        for (int64_t g = 0; g < s.kv_len; g += nm.nm_m) {
          const std::vector<int32_t> part = rule_best(p, b, kvh, i, g, std::min(g + nm.nm_m, s.kv_len), nm.nm_n);
          want.insert(want.end(), part.begin(), part.end());
        }
        CAPTURE(b);
        CAPTURE(kvh);
        CAPTURE(i);
        CHECK(row_keys(l, b * s.kv_heads + kvh, i) == want);
      }
}

}  // namespace

TEST_CASE("layout: every ISA copy of the score kernels gives the rule's nm and topk selection") {
  for (CpuIsa isa : cpu_isas_available()) {
    const std::string name(to_string(isa));
    CAPTURE(name);
    const IsaScope scope(name);
    Rng rng(0x5C0E + 17 * int(isa));
    for (int trial = 0; trial < 24; ++trial) {
      CAPTURE(trial);
      Problem p = random_problem(rng, trial);
      const int64_t kv = p.op.shape.kv_len;
      const int kind = trial % 6;
      if (kind == 1) {  // small integers: many exact ties and near-ties
        for (float& x : p.q.data) x = float(int64_t(rng.below(5)) - 2);
        for (float& x : p.k.data) x = float(int64_t(rng.below(3)) - 1);
      } else if (kind == 2) {  // some query rows all zero: every score ties (top-k lists overflow)
        for (int64_t h = 0; h < p.op.shape.heads; ++h)
          for (int64_t i = 0; i < p.op.shape.seq_len; i += 3)
            for (int64_t c = 0; c < p.op.shape.head_dim; ++c) p.q.row(0, h, i)[c] = 0.0f;
      } else if (kind == 4) {  // nearly equal keys: the scores differ by less than their float error,
        // so keys the top-k threshold rejected can still be doubtful (the list must not decide)
        for (int64_t b = 0; b < p.op.shape.batch; ++b)
          for (int64_t h = 0; h < p.op.shape.kv_heads; ++h)
            for (int64_t j = 0; j < kv; ++j)
              for (int64_t c = 0; c < p.op.shape.head_dim; ++c)
                p.k.row(b, h, j)[c] = 1.0f + float(c % 3) + 1e-6f * rng.normal();
      } else if (kind == 3) {  // huge queries: float scores could overflow, exact scores only
        for (int64_t i = 0; i < p.op.shape.seq_len; i += 2) p.q.row(0, 0, i)[0] = 3e36f;
      }
      for (int64_t k : {int64_t(1), int64_t(2), int64_t(5), int64_t(16), std::max<int64_t>(1, kv / 16),
                        std::max<int64_t>(1, kv / 2), std::max<int64_t>(1, kv - 1), kv, kv + 3}) {
        CAPTURE(k);
        check_topk(p, build_layout(p.op, Spec::topk_per_query, TopkParams{k}, &p.q, &p.k), k);
      }
      for (const NmParams nm :
           {NmParams{1, 16}, NmParams{1, 5}, NmParams{1, 1}, NmParams{2, 8}, NmParams{3, 3}, NmParams{4, 4},
            NmParams{1, 37}, NmParams{2, 4}, NmParams{3, 16}, NmParams{4, 9}, NmParams{5, 8}}) {
        CAPTURE(nm.nm_n);
        CAPTURE(nm.nm_m);
        check_nm(p, build_layout(p.op, Spec::nm_structured, nm, &p.q, &p.k), nm);
      }
    }
  }
}

TEST_CASE("layout: long score-selected rows cross many key chunks and row tiles, every ISA copy") {
  // 700 keys (two and a half 256-key chunks, a tail of every key block), 70 rows (several tiles
  // of 8, 16 or 32 rows with a partial last one), causal and not; top-k counts around the listed
  // threshold's first guess and 1:16 / 1:5 / 2:8 N:M.
  for (CpuIsa isa : cpu_isas_available()) {
    const std::string name(to_string(isa));
    CAPTURE(name);
    const IsaScope scope(name);
    Rng rng(0x10F6 + int(isa));
    for (bool causal : {false, true}) {
      CAPTURE(causal);
      Problem p{make_op(2, 2, 1, 70, 700, 19, causal), {}, {}, {}};
      p.q = random_tensor(rng, 2, 2, 70, 19);
      p.k = random_tensor(rng, 2, 1, 700, 19);
      for (int64_t k : {int64_t(3), int64_t(43), int64_t(44), int64_t(300)}) {
        CAPTURE(k);
        check_topk(p, build_layout(p.op, Spec::topk_per_query, TopkParams{k}, &p.q, &p.k), k);
      }
      for (const NmParams nm : {NmParams{1, 16}, NmParams{1, 5}, NmParams{2, 8}, NmParams{2, 4}, NmParams{4, 32}}) {
        CAPTURE(nm.nm_m);
        check_nm(p, build_layout(p.op, Spec::nm_structured, nm, &p.q, &p.k), nm);
      }
    }
  }
}

TEST_CASE("layout: SATTN_CPU_ISA naming an unknown copy fails clearly for the score kernels") {
  Rng rng(77);
  const Problem p{
      make_op(1, 1, 1, 4, 40, 8, false), random_tensor(rng, 1, 1, 4, 8), random_tensor(rng, 1, 1, 40, 8), {}};
  const IsaScope scope("bogus");
  CHECK_THROWS_WITH_AS(build_layout(p.op, Spec::topk_per_query, TopkParams{3}, &p.q, &p.k),
                       doctest::Contains("SATTN_CPU_ISA=bogus: unknown ISA"), Error);
}
