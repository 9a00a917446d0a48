// The backward pass: the fast CPU backward against the double reference backward, the reference
// backward against central finite differences of a double forward written here, the forward's
// log-sum-exp against a direct computation, and the view API (no copy, caller memory).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "alloc_counter.hpp"
#include "core/quant.hpp"
#include "layout_test_support.hpp"
#include "backends/cpu/kernel_fast_internal.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/layout.hpp"

using namespace sattn;
using namespace sattn::layout_test;

namespace {

// Max-norm error of out against ref, relative to max(ref's max-norm, floor). The floor is the
// problem's gradient scale: a gradient that vanishes in exact arithmetic (one key per row gives
// dS = 0) is compared with the rounding of the others, not with its own zero.
double rel_error(const Tensor& out, const Tensor& ref, double floor = 1e-30) {
  double err = 0, norm = floor;
  for (size_t e = 0; e < ref.data.size(); ++e) {
    if (!std::isfinite(out.data[e])) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::abs(double(out.data[e]) - double(ref.data[e])));
    norm = std::max(norm, std::abs(double(ref.data[e])));
  }
  return err / norm;
}

// Random attributes so every spec's layout varies from trial to trial.
void random_attrs(Rng& rng, Op& op) {
  op.attrs.window_size = pick(rng, 0, 20);
  op.attrs.dilation = pick(rng, 1, 3);
  op.attrs.block_size = int64_t(1) << pick(rng, 0, 5);
  op.attrs.keep_ratio = 0.1 + 0.8 * rng.uniform();
  op.attrs.window_blocks = pick(rng, 0, 2);
  op.attrs.nm_n = 1 + pick(rng, 0, 2);
  op.attrs.nm_m = 4 + pick(rng, 0, 4);
  op.attrs.topk_k = pick(rng, 1, 24);
  op.attrs.lsh_buckets = pick(rng, 2, 6);
  op.attrs.num_landmarks = pick(rng, 1, 12);
  op.attrs.landmark_iters = pick(rng, 0, 1);
}

struct Forward {
  Tensor out;
  std::vector<float> lse;
};

Forward forward_with_lse(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                         int threads = 0) {
  Forward f{Tensor(op.shape.batch, op.shape.heads, op.shape.seq_len, op.shape.head_dim), {}};
  f.lse.assign(size_t(op.shape.batch * op.shape.heads * op.shape.seq_len), 0.0f);
  fast_attention_into(op, layout, q, k, v, f.out, f.lse.data(), FastOptions{.threads = threads});
  return f;
}

Tensor random_like(Rng& rng, const Tensor& t) {
  Tensor r = t;
  for (float& x : r.data) x = rng.normal();
  return r;
}

// A CSR layout with scattered keys and empty rows: row i keeps key j when hash(i, j) < keep,
// except every row divisible by 5, which keeps nothing; keys beyond kv_len / 2 + 1 are never kept.
Layout scattered_layout(const Op& op, uint64_t salt) {
  Layout l;
  l.spec = Spec::topk_per_query;
  l.block = false;
  l.rows = op.shape.seq_len;
  l.cols = op.shape.kv_len;
  l.causal = op.causal;
  l.causal_offset = op.shape.kv_len - op.shape.seq_len;
  l.batch = op.shape.batch;
  l.kv_heads = op.shape.kv_heads;
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t kvh = 0; kvh < op.shape.kv_heads; ++kvh) {
      HeadLayout hl;
      hl.ptr.push_back(0);
      for (int64_t i = 0; i < l.rows; ++i) {
        for (int64_t j = 0; j <= l.cols / 2 && i % 5 != 0; ++j) {
          Rng r(salt ^ uint64_t(b * 131 + kvh) * 0x9E3779B97F4A7C15ull ^ uint64_t(i) * 0xC2B2AE3D27D4EB4Full ^
                uint64_t(j) * 0x165667B19E3779F9ull);
          if (l.causal_ok(i, j) && r.uniform() < 0.4f) hl.idx.push_back(int32_t(j));
        }
        hl.ptr.push_back(int64_t(hl.idx.size()));
      }
      l.heads.push_back(std::move(hl));
    }
  return l;
}

// Checks the fast backward (threads 1 and 3) against the reference on one problem; also the lse.
void check_backward(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v, Rng& rng) {
  const Tensor dout = random_like(rng, Tensor(op.shape.batch, op.shape.heads, op.shape.seq_len, op.shape.head_dim));
  const Gradients ref = reference_attention_backward(op, layout, q, k, v, dout);
  const Forward f = forward_with_lse(op, layout, q, k, v);
  const std::vector<double> lse_ref = reference_lse(op, layout, q, k);
  for (size_t r = 0; r < lse_ref.size(); ++r) {
    if (std::isinf(lse_ref[r])) {
      REQUIRE(f.lse[r] == -std::numeric_limits<float>::infinity());
    } else {
      REQUIRE(std::abs(double(f.lse[r]) - lse_ref[r]) <= 1e-5 * std::max(1.0, std::abs(lse_ref[r])));
    }
  }
  Gradients first;
  for (int threads : {1, 3}) {
    Gradients g{q, k, v};  // shaped like the gradients, filled with garbage to check overwriting
    fast_attention_backward(op, layout, q, k, v, f.out, dout, f.lse.data(), g.dq, g.dk, g.dv, FastOptions{.threads = threads});
    CAPTURE(threads);
    if (threads == 1) {
      first = g;
    } else {  // the same bits whatever the thread count (docs/decisions.md)
      CHECK(g.dq.data == first.dq.data);
      CHECK(g.dk.data == first.dk.data);
      CHECK(g.dv.data == first.dv.data);
    }
    double floor = 1e-30;
    for (float x : ref.dv.data) floor = std::max(floor, std::abs(double(x)));
    CHECK(rel_error(g.dq, ref.dq, floor) <= 1e-4);
    CHECK(rel_error(g.dk, ref.dk, floor) <= 1e-4);
    CHECK(rel_error(g.dv, ref.dv) <= 1e-4);
  }
}

std::string describe(const Op& op) {
  const Shape& s = op.shape;
  return "B=" + std::to_string(s.batch) + " H=" + std::to_string(s.heads) + " KVH=" + std::to_string(s.kv_heads) +
         " S=" + std::to_string(s.seq_len) + " KV=" + std::to_string(s.kv_len) + " D=" + std::to_string(s.head_dim) +
         (op.causal ? " causal" : "");
}

// A double forward written here from the definition (mask from layout_mask): the loss
// L = sum(dout * O) for finite differences.
double loss_double(const Op& op, const Layout& layout, const std::vector<double>& q, const std::vector<double>& k,
                   const std::vector<double>& v, const Tensor& dout) {
  const Shape& s = op.shape;
  const int64_t d = s.head_dim, group = s.heads / s.kv_heads;
  const double scale = 1.0 / std::sqrt(double(d));
  double loss = 0;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t kvh = h / group;
      const std::vector<uint8_t> mask = layout_mask(layout, b, kvh);
      for (int64_t i = 0; i < s.seq_len; ++i) {
        std::vector<double> w(size_t(s.kv_len), 0.0);
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < s.kv_len; ++j) {
          if (!mask[i * s.kv_len + j]) continue;
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += q[((b * s.heads + h) * s.seq_len + i) * d + c] *
                                                 k[((b * s.kv_heads + kvh) * s.kv_len + j) * d + c];
          w[j] = dot * scale;
          m = std::max(m, w[j]);
        }
        if (m == -std::numeric_limits<double>::infinity()) continue;
        double sum = 0;
        for (int64_t j = 0; j < s.kv_len; ++j) sum += mask[i * s.kv_len + j] ? (w[j] = std::exp(w[j] - m)) : 0.0;
        for (int64_t c = 0; c < d; ++c) {
          double o = 0;
          for (int64_t j = 0; j < s.kv_len; ++j)
            if (mask[i * s.kv_len + j]) o += w[j] / sum * v[((b * s.kv_heads + kvh) * s.kv_len + j) * d + c];
          loss += o * double(dout.row(b, h, i)[c]);
        }
      }
    }
  return loss;
}

}  // namespace

TEST_CASE("fast_attention_backward matches the reference backward on every spec (random shapes, GQA, causal)") {
  Rng rng(0xBAC4);
  for (int trial = 0; trial < 8; ++trial) {
    Problem p = random_problem(rng, trial);
    random_attrs(rng, p.op);
    for (Spec spec : kAllSpecs) {
      SpecParams params;
      try {
        params = resolve_params(p.op, spec);
      } catch (const Error&) {
        continue;  // e.g. a window wider than kv_len: this spec cannot run on this op
      }
      const Layout layout = build_layout(p.op, spec, params, &p.q, &p.k);
      INFO((std::string(to_string(spec)) + " " + describe(p.op)));
      check_backward(p.op, layout, p.q, p.k, p.v, rng);
    }
  }
}

TEST_CASE("fast_attention_backward: kv_len > seq_len under causal, tails, scattered keys and empty rows") {
  Rng rng(0xE5C0);
  for (const auto& [seq, kv, dim, causal] : {std::tuple{37, 101, 9, true}, std::tuple{64, 300, 64, true},
                                             std::tuple{90, 40, 17, true}, std::tuple{33, 33, 1, false},
                                             std::tuple{129, 257, 80, false}}) {
    Op op = make_op(2, 4, 2, seq, kv, dim, causal);
    op.scale = 0.3;  // the op's scale, not 1/sqrt(d), must reach the backward
    const Tensor q = random_tensor(rng, 2, 4, seq, dim), k = random_tensor(rng, 2, 2, kv, dim),
                 v = random_tensor(rng, 2, 2, kv, dim);
    INFO(describe(op));
    const Layout scattered = scattered_layout(op, rng.next_u64());
    check_backward(op, scattered, q, k, v, rng);
    for (Spec spec : {Spec::dense, Spec::sliding_window, Spec::block_local_global}) {
      op.attrs.block_size = 16;
      op.attrs.window_size = 5;
      check_backward(op, build_layout(op, spec, resolve_params(op, spec), nullptr, nullptr), q, k, v, rng);
    }
  }
}

TEST_CASE("empty rows give zero gradients, unused keys zero dK/dV") {
  Rng rng(0x0E);
  const Op op = make_op(1, 2, 1, 20, 30, 8, false);
  const Tensor q = random_tensor(rng, 1, 2, 20, 8), k = random_tensor(rng, 1, 1, 30, 8),
               v = random_tensor(rng, 1, 1, 30, 8);
  const Layout layout = scattered_layout(op, 7);  // rows 0, 5, 10, 15 empty; keys > 15 unused
  const Forward f = forward_with_lse(op, layout, q, k, v);
  const Tensor dout = random_like(rng, q);
  Gradients g{q, k, v};
  fast_attention_backward(op, layout, q, k, v, f.out, dout, f.lse.data(), g.dq, g.dk, g.dv);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 20; i += 5) {
      CHECK(f.lse[h * 20 + i] == -std::numeric_limits<float>::infinity());
      for (int64_t c = 0; c < 8; ++c) CHECK(g.dq.row(0, h, i)[c] == 0.0f);
    }
  double used_norm = 0;
  for (int64_t j = 0; j < 30; ++j)
    for (int64_t c = 0; c < 8; ++c) {
      if (j > 15) {
        CHECK(g.dk.row(0, 0, j)[c] == 0.0f);
        CHECK(g.dv.row(0, 0, j)[c] == 0.0f);
      } else {
        used_norm += std::abs(g.dv.row(0, 0, j)[c]);
      }
    }
  CHECK(used_norm > 0);  // the used keys do get gradients
}

TEST_CASE("reference_attention_backward equals central finite differences of a double forward") {
  Rng rng(0xFD);
  for (int trial = 0; trial < 3; ++trial) {
    const bool causal = trial != 1;
    const int64_t seq = 5 + trial, kv = 7 - trial, dim = 3 + trial;
    const Op op = make_op(1, 2, 1, seq, kv, dim, causal);
    const Tensor q = random_tensor(rng, 1, 2, seq, dim), k = random_tensor(rng, 1, 1, kv, dim),
                 v = random_tensor(rng, 1, 1, kv, dim);
    const Layout layout = trial == 2 ? scattered_layout(op, 3) : build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
    const Tensor dout = random_like(rng, q);
    const Gradients g = reference_attention_backward(op, layout, q, k, v, dout);
    std::vector<double> qd(q.data.begin(), q.data.end()), kd(k.data.begin(), k.data.end()),
        vd(v.data.begin(), v.data.end());
    const double eps = 1e-6;
    auto check = [&](std::vector<double>& x, const Tensor& grad, const char* name) {
      double max_err = 0, max_grad = 0;
      for (size_t e = 0; e < x.size(); ++e) {
        const double saved = x[e];
        x[e] = saved + eps;
        const double up = loss_double(op, layout, qd, kd, vd, dout);
        x[e] = saved - eps;
        const double down = loss_double(op, layout, qd, kd, vd, dout);
        x[e] = saved;
        const double fd = (up - down) / (2 * eps);
        max_err = std::max(max_err, std::abs(fd - double(grad.data[e])));
        max_grad = std::max(max_grad, std::abs(fd));
      }
      CAPTURE(name);
      CHECK(max_grad > 1e-3);  // the check has something to compare
      CHECK(max_err <= 1e-6 * std::max(1.0, max_grad) + 1e-7);
    };
    check(qd, g.dq, "dq");
    check(kd, g.dk, "dk");
    check(vd, g.dv, "dv");
  }
}

TEST_CASE("backward precision: bf16 is straight-through on the rounding; i8/i4 are refused") {
  Rng rng(0xB16);
  Op op = make_op(1, 4, 2, 50, 70, 24, true);
  op.precision = Precision::bf16;
  const Tensor q = random_tensor(rng, 1, 4, 50, 24), k = random_tensor(rng, 1, 2, 70, 24),
               v = random_tensor(rng, 1, 2, 70, 24);
  op.attrs.block_size = 8;
  for (Spec spec : {Spec::dense, Spec::sliding_window, Spec::topk_per_query}) {
    const Layout layout = build_layout(op, spec, resolve_params(op, spec), &q, &k);
    const Forward f = forward_with_lse(op, layout, q, k, v);
    const Tensor dout = random_like(rng, q);
    Op fp32_op = op;
    fp32_op.precision = Precision::fp32;
    const Gradients ref = reference_attention_backward(fp32_op, layout, apply_precision(q, Precision::bf16, 1),
                                                       apply_precision(k, Precision::bf16, 1),
                                                       apply_precision(v, Precision::bf16, 1), dout);
    Gradients g{q, k, v};
    fast_attention_backward(op, layout, q, k, v, f.out, dout, f.lse.data(), g.dq, g.dk, g.dv);
    CHECK(rel_error(g.dq, ref.dq) <= 1e-4);
    CHECK(rel_error(g.dk, ref.dk) <= 1e-4);
    CHECK(rel_error(g.dv, ref.dv) <= 1e-4);
    // The unrounded fp32 gradients differ (bf16 rounding is visible), so the check above can fail.
    const Gradients unrounded = reference_attention_backward(fp32_op, layout, q, k, v, dout);
    CHECK(rel_error(g.dq, unrounded.dq) > 1e-4);
  }
  for (Precision p : {Precision::i8, Precision::i4}) {
    op.precision = p;
    const Layout layout = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
    Tensor out = q, dq = q, dk = k, dv = v;
    std::vector<float> lse(200, 0.0f);
    try {
      fast_attention_backward(op, layout, q, k, v, out, q, lse.data(), dq, dk, dv);
      FAIL("i8/i4 backward did not throw");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::invalid_input);
      CHECK(std::string(e.what()).find("backward supports fp32 and bf16") != std::string::npos);
    }
  }
}

TEST_CASE("fast_attention_into writes caller memory and copies no fp32 input") {
  Rng rng(0x21);
  const Op op = make_op(1, 4, 4, 512, 512, 64, true);
  const Tensor q = random_tensor(rng, 1, 4, 512, 64), k = random_tensor(rng, 1, 4, 512, 64),
               v = random_tensor(rng, 1, 4, 512, 64);
  const Layout layout = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
  const Tensor expect = fast_attention(op, layout, q, k, v, FastOptions{.threads = 1});
  std::vector<float> caller(q.data.size() + 16, -7.0f);  // a caller buffer with guard floats
  const std::array<int64_t, 4> shape{1, 4, 512, 64};
  const int64_t tensor_bytes = int64_t(q.data.size() * sizeof(float));
  auto run = [&](const Op& o) {
    test::g_alloc_bytes = 0;
    test::g_alloc_counting = true;
    fast_attention_into(o, layout, TensorView(q.data.data(), shape), TensorView(k.data.data(), shape),
                        TensorView(v.data.data(), shape), MutableTensorView(caller.data() + 8, shape), nullptr,
                        FastOptions{.threads = 1});
    test::g_alloc_counting = false;
    return test::g_alloc_bytes.load();
  };
  const int64_t fp32_bytes = run(op);
  CHECK(std::equal(expect.data.begin(), expect.data.end(), caller.begin() + 8));
  CHECK(caller[7] == -7.0f);
  CHECK(caller[8 + q.data.size()] == -7.0f);
  CHECK(fp32_bytes < tensor_bytes / 2);  // scratch only: no copy of a 512 KiB input
  Op bf16 = op;
  bf16.precision = Precision::bf16;
  // The counter sees copies when they are made: Q, K, V rounded to bf16 in fp32, or on AMX tiles
  // Q in fp32 and K, V^T as bf16 codes (2 x the bytes of one input).
  CHECK(run(bf16) >= (fast::amx_bf16_tiles(bf16, layout) ? 2 : 3) * tensor_bytes);
  // An output overlapping an input is refused.
  CHECK_THROWS_AS(fast_attention_into(op, layout, q, k, v, MutableTensorView(const_cast<float*>(q.data.data()), shape),
                                      nullptr),
                  Error);
}

TEST_CASE("fast_attention_into and the backward reject shapes that do not match the op") {
  const Op op = make_op(1, 4, 2, 10, 12, 8, false);
  const Layout layout = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
  Tensor q(1, 4, 10, 8), k(1, 2, 12, 8), v(1, 2, 12, 8), out(1, 4, 10, 8), bad(1, 4, 12, 8);
  std::vector<float> lse(40);
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::invalid_input);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(message([&] { fast_attention_into(op, layout, q, bad, v, out, lse.data()); }) ==
        "fast_attention: k has shape [1, 4, 12, 8], the op needs [1, 2, 12, 8]");
  CHECK(message([&] { fast_attention_into(op, layout, q, k, v, bad, lse.data()); }) ==
        "fast_attention: out has shape [1, 4, 12, 8], the op needs [1, 4, 10, 8]");
  CHECK(message([&] { fast_attention_into(op, layout, TensorView(nullptr, q.shape), k, v, out, nullptr); }) ==
        "fast_attention: q has no data");
  Tensor dq = q, dk = k, dv = v;
  CHECK(message([&] { fast_attention_backward(op, layout, q, k, v, out, bad, lse.data(), dq, dk, dv); }) ==
        "fast_attention_backward: dout has shape [1, 4, 12, 8], the op needs [1, 4, 10, 8]");
  CHECK(message([&] { fast_attention_backward(op, layout, q, k, v, out, q, nullptr, dq, dk, dv); })
            .find("lse is null") != std::string::npos);
  CHECK(message([&] { fast_attention_backward(op, layout, q, k, v, out, q, lse.data(), dq, dq, dv); })
            .find("dk has shape") != std::string::npos);
  Op other = op;
  other.shape.seq_len = 11;
  CHECK(message([&] { fast_attention_into(other, layout, q, k, v, out, nullptr); }) ==
        "fast_attention: layout is 10 x 12, the op is 11 x 12");
}

TEST_CASE("build_layout over views equals build_layout over tensors, without data for static specs") {
  Rng rng(0x71E);
  Problem p = random_problem(rng, 1);
  random_attrs(rng, p.op);
  for (Spec spec : kAllSpecs) {
    SpecParams params;
    try {
      params = resolve_params(p.op, spec);
    } catch (const Error&) {
      continue;
    }
    const Layout a = build_layout(p.op, spec, params, &p.q, &p.k);
    const Layout b = build_layout(p.op, spec, params, TensorView(p.q), TensorView(p.k));
    REQUIRE(a.heads.size() == b.heads.size());
    for (size_t h = 0; h < a.heads.size(); ++h) {
      CHECK(a.heads[h].ptr == b.heads[h].ptr);
      CHECK(a.heads[h].idx == b.heads[h].idx);
    }
    if (is_data_dependent(spec) && !(spec == Spec::landmark && p.op.attrs.landmark_iters == 0)) {
      CHECK_THROWS_AS(build_layout(p.op, spec, params, TensorView(), TensorView()), Error);
    } else {
      CHECK(build_layout(p.op, spec, params, TensorView(), TensorView()).heads[0].idx == a.heads[0].idx);
    }
  }
}
