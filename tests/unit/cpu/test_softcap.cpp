// Logit soft-capping (Op::softcap: s -> c * tanh(s / c) on the scaled scores, Gemma 2) and an
// explicit scale: the reference against a direct double computation written here, the fast
// kernel (every path: BSR tiles, CSR tiles, gathered rows, the integer datapath; decode shapes
// with kv_len >> seq_len) against the reference, the backward (fast and reference) against
// finite differences, and the attribute in the op readers.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "layout_test_support.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/formats.hpp"
#include "sattn/layout.hpp"

using namespace sattn;
using namespace sattn::layout_test;

namespace {

// Causal dense attention with softcap and scale, in double, straight from the definition.
std::vector<double> direct_softcap(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v) {
  const Shape& s = op.shape;
  const int64_t d = s.head_dim, off = s.kv_len - s.seq_len;
  const double scale = *op.scale, c = *op.softcap;
  std::vector<double> out;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq_len; ++i) {
        std::vector<double> w;
        for (int64_t j = 0; j <= std::min(s.kv_len - 1, i + off); ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += double(q.row(b, h, i)[e]) * double(k.row(b, h / s.group_size(), j)[e]);
          w.push_back(std::exp(c * std::tanh(dot * scale / c)));
        }
        double sum = 0;
        for (double x : w) sum += x;
        for (int64_t e = 0; e < d; ++e) {
          double o = 0;
          for (size_t j = 0; j < w.size(); ++j) o += w[j] / sum * double(v.row(b, h / s.group_size(), int64_t(j))[e]);
          out.push_back(w.empty() ? 0.0 : o);
        }
      }
  return out;
}

}  // namespace

TEST_CASE("softcap: the reference against a direct computation, and the cap changes the result") {
  Rng rng(0x50F7);
  Op op = make_op(1, 4, 2, 37, 50, 16, true);
  op.scale = 0.9;  // large scores: the cap bites
  op.softcap = 1.5;
  const Tensor q = random_tensor(rng, 1, 4, 37, 16), k = random_tensor(rng, 1, 2, 50, 16), v = random_tensor(rng, 1, 2, 50, 16);
  const Tensor ref = reference_attention_dense(op, q, k, v);
  const std::vector<double> want = direct_softcap(op, q, k, v);
  REQUIRE(want.size() == ref.data.size());
  double err = 0;
  for (size_t e = 0; e < want.size(); ++e) err = std::max(err, std::abs(want[e] - double(ref.data[e])));
  CHECK(err < 1e-6);
  Op plain = op;
  plain.softcap.reset();
  CHECK(compare(reference_attention_dense(plain, q, k, v), ref).max_rel > 0.05);
  // A cap far above every score is (almost) no cap.
  Op loose = op;
  loose.softcap = 1e6;
  CHECK(compare(reference_attention_dense(loose, q, k, v), reference_attention_dense(plain, q, k, v)).max_rel < 1e-6);
}

TEST_CASE("softcap and scale: the fast kernel matches the reference on every path, prefill and decode shapes") {
  Rng rng(0xCA9);
  struct Shape_ {
    int64_t seq, kv;
  };
  // Prefill (equal lengths, a partial last block) and decode (one query or a chunk, kv_len >> seq_len).
  const Shape_ shapes[] = {{70, 70}, {1, 300}, {5, 300}, {16, 257}};
  const std::pair<Spec, const char*> specs[] = {{Spec::dense, "dense"},
                                                {Spec::sliding_window, "sliding_window"},
                                                {Spec::bsr, "bsr"},
                                                {Spec::topk_per_query, "topk_per_query"}};
  for (const Shape_& sh : shapes)
    for (const auto& [spec, name] : specs)
      for (Precision prec : {Precision::fp32, Precision::bf16, Precision::i8})
        for (bool causal : {true, false}) {
          Op op = make_op(1, 4, 2, sh.seq, sh.kv, 24, causal);
          op.precision = prec;
          op.scale = 0.7;
          op.softcap = 2.0;
          op.attrs.window_size = 20;
          op.attrs.block_size = 16;
          op.attrs.keep_ratio = 0.3;
          op.attrs.topk_k = 12;
          const Tensor q = random_tensor(rng, 1, 4, sh.seq, 24), k = random_tensor(rng, 1, 2, sh.kv, 24),
                       v = random_tensor(rng, 1, 2, sh.kv, 24);
          const Layout layout = build_layout(op, spec, resolve_params(op, spec), &q, &k);
          const Tensor ref = reference_attention(op, layout, q, k, v);
          CAPTURE(name);
          CAPTURE(sh.seq);
          CAPTURE(sh.kv);
          CAPTURE(std::string(to_string(prec)));
          CAPTURE(causal);
          for (int threads : {1, 3}) {
            const ErrorStats e = compare(fast_attention(op, layout, q, k, v, FastOptions{.threads = threads}), ref);
            CHECK(e.finite);
            CHECK(e.max_rel <= tolerance(prec));
          }
          // Without the cap the same layout gives another answer (the kernel does apply it).
          if (prec == Precision::fp32) {
            Op plain = op;
            plain.softcap.reset();
            CHECK(compare(fast_attention(plain, layout, q, k, v), ref).max_rel > 10 * tolerance(prec));
          }
        }
}

TEST_CASE("softcap: backward, fast against reference and reference against finite differences") {
  Rng rng(0xB5C);
  // Every backward path: BSR tiles (dense, bsr), CSR tiles over a key range (windows) or a
  // gathered key union (landmarks), CSR rows (top-k).
  for (Spec spec : {Spec::dense, Spec::sliding_window, Spec::bsr, Spec::landmark, Spec::topk_per_query}) {
    Op op = make_op(1, 2, 1, 33, 40, 8, true);
    op.scale = 0.8;
    op.softcap = 1.25;
    op.attrs.window_size = 6;
    op.attrs.block_size = 8;
    op.attrs.keep_ratio = 0.5;
    op.attrs.num_landmarks = 6;
    op.attrs.topk_k = 5;
    const Tensor q = random_tensor(rng, 1, 2, 33, 8), k = random_tensor(rng, 1, 1, 40, 8), v = random_tensor(rng, 1, 1, 40, 8);
    const Tensor dout = random_tensor(rng, 1, 2, 33, 8);
    const Layout layout = build_layout(op, spec, resolve_params(op, spec), &q, &k);
    const Gradients ref = reference_attention_backward(op, layout, q, k, v, dout);
    CAPTURE(std::string(to_string(spec)));

    // Finite differences of L = sum(dout * O) through the (double) reference forward.
    auto loss = [&](const Tensor& qq, const Tensor& kk, const Tensor& vv) {
      const Tensor o = reference_attention(op, layout, qq, kk, vv);
      double l = 0;
      for (size_t e = 0; e < o.data.size(); ++e) l += double(o.data[e]) * double(dout.data[e]);
      return l;
    };
    auto numeric = [&](Tensor& t, size_t e, const std::function<double()>& f) {
      const float x = t.data[e];
      const float h = 1e-2f;
      t.data[e] = x + h;
      const double up = f();
      t.data[e] = x - h;
      const double down = f();
      t.data[e] = x;
      return (up - down) / (2 * double(h));
    };
    Tensor qq = q, kk = k, vv = v;
    for (size_t e : {size_t(3), size_t(100), size_t(250)}) {
      CHECK(numeric(qq, e, [&] { return loss(qq, k, v); }) == doctest::Approx(ref.dq.data[e]).epsilon(2e-2).scale(1e-2));
      CHECK(numeric(kk, e, [&] { return loss(q, kk, v); }) == doctest::Approx(ref.dk.data[e]).epsilon(2e-2).scale(1e-2));
      CHECK(numeric(vv, e, [&] { return loss(q, k, vv); }) == doctest::Approx(ref.dv.data[e]).epsilon(2e-2).scale(1e-2));
    }

    Tensor out(1, 2, 33, 8);
    std::vector<float> lse(2 * 33);
    fast_attention_into(op, layout, q, k, v, out, lse.data());
    const std::vector<double> lse_ref = reference_lse(op, layout, q, k);
    for (size_t r = 0; r < lse.size(); ++r) CHECK(double(lse[r]) == doctest::Approx(lse_ref[r]).epsilon(1e-5));
    Gradients g{q, k, v};
    fast_attention_backward(op, layout, q, k, v, out, dout, lse.data(), g.dq, g.dk, g.dv);
    CHECK(compare(g.dq, ref.dq).max_rel <= 1e-4);
    CHECK(compare(g.dk, ref.dk).max_rel <= 1e-4);
    CHECK(compare(g.dv, ref.dv).max_rel <= 1e-4);
  }
}

TEST_CASE("softcap: read from every op format, validated, written back") {
  const std::vector<Op> j = parse_ops(R"({"schema":"sattn.op/v1","seq_len":8,"head_dim":8,"softcap":30.5})", "a.json");
  REQUIRE(j.size() == 1);
  CHECK(*j[0].softcap == 30.5);
  const std::vector<Op> y = parse_ops("seq_len: 8\nhead_dim: 8\nattn_logit_softcapping: 50.0\n", "a.yaml");
  CHECK(*y[0].softcap == 50.0);
  const std::vector<Op> m = parse_ops(
      "\"sattn.sparse_attention\"() { seq_len = 8 : i64, head_dim = 8 : i64, softcap = 20.0 : f64 } : () -> ()", "a.mlir");
  CHECK(*m[0].softcap == 20.0);
  CHECK(!parse_ops(R"({"seq_len":8,"head_dim":8})", "b.json")[0].softcap);
  try {
    parse_ops("{\"seq_len\":8,\n \"softcap\":-1}", "c.json");
    FAIL("softcap -1 accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::invalid_input);
    CHECK(e.message().find("softcap") != std::string::npos);
    CHECK(e.loc().line == 2);
  }
}
