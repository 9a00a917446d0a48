// Fidelity (libsattn/fidelity): the oracle recall bounds the recall row by row (property test over
// random data, random shapes and random layouts of every spec); the sparse output matches the
// double-precision reference over the same layout; dense keeps everything; an empty layout keeps
// nothing. The numpy comparison of every figure is tests/cli/eval.sh.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/synthetic.hpp"
#include "sattn/attention.hpp"
#include "sattn/fidelity.hpp"
#include "sattn/layout.hpp"

using namespace sattn;

namespace {

Op random_op(Rng& rng) {
  Op op;
  op.name = "f";
  op.shape.batch = 1 + int64_t(rng.below(2));
  op.shape.kv_heads = 1 + int64_t(rng.below(2));
  op.shape.heads = op.shape.kv_heads * (1 + int64_t(rng.below(3)));
  op.shape.seq_len = 8 + int64_t(rng.below(90));
  op.shape.kv_len = rng.below(3) == 0 ? op.shape.seq_len + int64_t(rng.below(20)) : op.shape.seq_len;
  op.shape.head_dim = 4 + int64_t(rng.below(13));
  op.causal = rng.below(2) == 0;
  return op;
}

// Scales Q up so that attention is peaked (recall varies between layouts).
QKV peaked(const Op& op, uint64_t seed) {
  QKV d = synthetic_qkv(op.shape, seed);
  for (float& x : d.q.data) x *= 3.0f;
  return d;
}

// A random CSR layout: each allowed key of each row kept with probability 1/3.
Layout random_csr(const Op& op, Rng& rng) {
  Layout l;
  l.spec = Spec::topk_per_query;
  l.rows = op.shape.seq_len, l.cols = op.shape.kv_len, l.causal = op.causal;
  l.causal_offset = op.shape.kv_len - op.shape.seq_len;
  l.batch = op.shape.batch, l.kv_heads = op.shape.kv_heads;
  for (int64_t n = 0; n < l.batch * l.kv_heads; ++n) {
    HeadLayout h;
    h.ptr.push_back(0);
    for (int64_t i = 0; i < l.rows; ++i) {
      for (int64_t j = 0; j < l.cols; ++j)
        if (l.causal_ok(i, j) && rng.below(3) == 0) h.idx.push_back(int32_t(j));
      h.ptr.push_back(int64_t(h.idx.size()));
    }
    l.heads.push_back(std::move(h));
  }
  return l;
}

}  // namespace

TEST_CASE("fidelity: oracle >= recall row by row, for random layouts of every kind") {
  Rng rng(2020);
  int64_t strict = 0, rows = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const Op op = random_op(rng);
    CAPTURE(trial);
    const QKV data = peaked(op, 100 + uint64_t(trial));
    std::vector<Layout> layouts;
    layouts.push_back(random_csr(op, rng));
    SlidingWindowParams sw;
    sw.window_size = 1 + int64_t(rng.below(6));
    layouts.push_back(build_layout(op, Spec::sliding_window, sw, nullptr, nullptr));
    BsrParams bsr;
    bsr.block_size = 4 + int64_t(rng.below(8));
    bsr.keep_ratio = 0.1 + 0.2 * double(rng.below(4));
    layouts.push_back(build_layout(op, Spec::bsr, bsr, &data.q, &data.k));
    TopkParams tk;
    tk.topk_k = 1 + int64_t(rng.below(8));
    layouts.push_back(build_layout(op, Spec::topk_per_query, tk, &data.q, &data.k));
    std::vector<const Layout*> ptrs;
    for (const Layout& l : layouts) ptrs.push_back(&l);
    // One layout at a time (the partial-sort oracle) and all together (the sorted one) agree.
    const auto all = evaluate_fidelity(op, data, ptrs);
    for (size_t n = 0; n < layouts.size(); ++n) {
      const auto one = evaluate_fidelity(op, data, {ptrs[n]});
      for (size_t h = 0; h < all[n].size(); ++h) {
        const HeadFidelity& f = all[n][h];
        REQUIRE(f.row_recall.size() == f.row_oracle.size());
        for (size_t i = 0; i < f.row_recall.size(); ++i) {
          CHECK(f.row_oracle[i] >= f.row_recall[i]);
          CHECK(f.row_recall[i] >= 0);
          CHECK(f.row_oracle[i] <= 1);
          strict += f.row_oracle[i] > f.row_recall[i] + 1e-9;
          ++rows;
          CHECK(one[0][h].row_oracle[i] == doctest::Approx(f.row_oracle[i]).epsilon(1e-12));
        }
        CHECK(f.oracle.min >= f.recall.min);
        CHECK(f.oracle.p10 >= f.recall.p10);
        CHECK(f.oracle.mean >= f.recall.mean);
      }
    }
  }
  CHECK(strict > rows / 10);  // the bound is not trivially tight
}

TEST_CASE("fidelity: the sparse output is the reference over the layout; dense keeps everything") {
  Rng rng(7);
  for (int trial = 0; trial < 12; ++trial) {
    const Op op = random_op(rng);
    CAPTURE(trial);
    const QKV data = peaked(op, 7 + uint64_t(trial));
    SlidingWindowParams sw;
    sw.window_size = 2;
    const Layout window = build_layout(op, Spec::sliding_window, sw, nullptr, nullptr);
    const Layout dense = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
    const auto r = evaluate_fidelity(op, data, {&window, &dense});
    const Tensor ref_sparse = reference_attention(op, window, data.q, data.k, data.v);
    const Tensor ref_dense = reference_attention_dense(op, data.q, data.k, data.v);
    // The max-norm error per head, recomputed from the reference's outputs.
    const Shape& s = op.shape;
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h) {
        double err = 0, ref = 0;
        for (int64_t i = 0; i < s.seq_len; ++i)
          for (int64_t c = 0; c < s.head_dim; ++c) {
            err = std::max(err, std::abs(double(ref_sparse.row(b, h, i)[c]) - double(ref_dense.row(b, h, i)[c])));
            ref = std::max(ref, std::abs(double(ref_dense.row(b, h, i)[c])));
          }
        const HeadFidelity& f = r[0][size_t(b * s.heads + h)];
        // The reference rounds its outputs to float: compare at float precision.
        CHECK(f.max_abs == doctest::Approx(err).epsilon(1e-4).scale(1e-6));
        const HeadFidelity& d = r[1][size_t(b * s.heads + h)];
        CHECK(d.recall.min == 1.0);
        CHECK(d.density == 1.0);
        CHECK(d.max_abs < 1e-12);
        CHECK(d.ratio == 1.0);
      }
  }
}

TEST_CASE("fidelity: a layout keeping nothing has recall 0 and outputs 0; summaries") {
  Op op;
  op.name = "empty";
  op.shape = {1, 2, 1, 16, 16, 8};
  op.causal = true;
  const QKV data = peaked(op, 3);
  Layout none;
  none.spec = Spec::topk_per_query;
  none.rows = none.cols = 16, none.causal = true, none.batch = 1, none.kv_heads = 1, none.shared = true;
  none.heads.push_back({std::vector<int64_t>(17, 0), {}});
  const auto r = evaluate_fidelity(op, data, {&none});
  for (const HeadFidelity& f : r[0]) {
    CHECK(f.rows == 16);
    CHECK(f.density == 0);
    CHECK(f.recall.mean == 0);
    CHECK(f.oracle.mean == 0);
    CHECK(f.max_rel == doctest::Approx(1.0));  // the output is 0: the error is the dense output
  }
  const FidelitySummary s = summarize_fidelity(r[0]);
  CHECK(s.heads == 2);
  CHECK(s.rows == 32);
  CHECK(s.worst_head_recall == 0);
  // row_stats: nearest-rank p10 of 1..20 is the 2nd smallest.
  std::vector<double> v;
  for (int n = 20; n >= 1; --n) v.push_back(n);
  const RowStats st = row_stats(v);
  CHECK(st.min == 1);
  CHECK(st.p10 == 2);
  CHECK(st.mean == doctest::Approx(10.5));
}

TEST_CASE("fidelity: a layout of another op is invalid input") {
  Op op;
  op.name = "x";
  op.shape = {1, 1, 1, 16, 16, 8};
  const QKV data = peaked(op, 1);
  Op other = op;
  other.shape.seq_len = other.shape.kv_len = 20;
  const Layout l = build_layout(other, Spec::dense, DenseParams{}, nullptr, nullptr);
  CHECK_THROWS_AS(evaluate_fidelity(op, data, {&l}), Error);
}
