// Calibration: each method on distributions whose best clip is known, the SQNR formula, the
// recommendation rule, end-to-end errors recomputed independently, and --apply's plan edit.
//
// Known optima. For a symmetric uniform quantizer with levels -Q..Q (Q = 127 for i8, 7 for
// i4), the clip c minimizing E[(x - q_c(x))^2] was found by numerically integrating that
// expectation over the density on a fine grid (numpy, 4e5 points, clips searched to 1e-3):
//   N(0, 1):        Q = 127: 3.92   Q = 7: 2.47
//   Laplace(b = 1): Q = 127: 9.88   Q = 7: 4.82
// (Banner et al., "Post-training 4-bit quantization", report 3.92 sigma and 9.89 b for 8 bits.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "calibrate/calibrate.hpp"
#include "sattn/layout.hpp"
#include "core/quant.hpp"
#include "core/quant_scheme.hpp"
#include "sattn/attention.hpp"
#include <memory>
#include "sattn/select.hpp"

using namespace sattn;

namespace {

// Deterministic samples from the standard engines (std::*_distribution is implementation-defined).
struct Source {
  std::mt19937_64 engine;
  explicit Source(uint64_t seed) : engine(seed) {}
  double uniform() { return double(engine() >> 11) * 0x1.0p-53; }  // [0, 1)
  double open_uniform() { return (double(engine() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  double normal() {  // Box-Muller
    return std::sqrt(-2.0 * std::log(open_uniform())) * std::cos(2.0 * M_PI * uniform());
  }
  double laplace() {  // inverse CDF, b = 1
    const double u = open_uniform() - 0.5;
    return -std::copysign(1.0, u) * std::log(1.0 - 2.0 * std::fabs(u));
  }
};

std::vector<float> gaussian(size_t n, uint64_t seed) {
  Source s(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(s.normal());
  return v;
}

std::vector<float> laplacian(size_t n, uint64_t seed) {
  Source s(seed);
  std::vector<float> v(n);
  for (float& x : v) x = float(s.laplace());
  return v;
}

// N(0, 1) with a fraction of values replaced by +-U(lo, hi).
std::vector<float> with_outliers(std::vector<float> v, double fraction, double lo, double hi, uint64_t seed) {
  Source s(seed);
  for (float& x : v)
    if (s.uniform() < fraction) x = float((s.uniform() < 0.5 ? -1 : 1) * (lo + (hi - lo) * s.uniform()));
  return v;
}

// The mean squared error of quantizing with clip c, straight from quantize() (the kernels' rule).
double direct_mse(const std::vector<float>& v, double clip, Precision p) {
  const float scale = float(clip / quant_max(p));
  double sum = 0;
  for (float x : v) {
    const double e = double(x) - double(float(quantize(x, scale, p)) * scale);
    sum += e * e;
  }
  return sum / double(v.size());
}

// Brute force: of the clips from `from` to absmax in steps of `step` (and absmax), the one with
// the lowest direct_mse.
double brute_force_mse_clip(const std::vector<float>& v, Precision p, double from, double step) {
  double top = 0;
  for (float x : v) top = std::max(top, double(std::fabs(x)));
  double best = top, best_err = direct_mse(v, top, p);
  for (double c = from; c < top; c += step) {
    const double e = direct_mse(v, c, p);
    if (e < best_err) best_err = e, best = c;
  }
  return best;
}

}  // namespace

TEST_CASE("calibrate: SQNR of a hand-computed case") {
  // i8, scale 1: 1 -> 1, -0.5 -> 0 (half to even), 0.25 -> 0, 2 -> 2. Errors 0, 0.5, 0.25, 0.
  // Signal 1 + 0.25 + 0.0625 + 4 = 5.3125; noise 0.25 + 0.0625 = 0.3125; ratio 17.
  const std::vector<float> v = {1.0f, -0.5f, 0.25f, 2.0f};
  CHECK(sqnr_db(v, 1.0f, Precision::i8) == doctest::Approx(10.0 * std::log10(17.0)));
  // i4, scale 1: 9 saturates to 7 (error 2); 3 and -1 are exact. Signal 81 + 9 + 1 = 91; noise 4.
  const std::vector<float> w = {9.0f, 3.0f, -1.0f};
  CHECK(sqnr_db(w, 1.0f, Precision::i4) == doctest::Approx(10.0 * std::log10(91.0 / 4.0)));
  // Exactly representable values: no noise.
  CHECK(std::isinf(sqnr_db(std::vector<float>{1.0f, -2.0f, 3.0f}, 1.0f, Precision::i8)));
  // Per-head parts: each with its own scale; the total is one ratio over everything.
  const std::vector<float> a = {0.5f}, b = {9.0f};
  CHECK(sqnr_db({{a, 1.0f}, {b, 1.0f}}, Precision::i4) == doctest::Approx(10.0 * std::log10((0.25 + 81.0) / (0.25 + 4.0))));
}

TEST_CASE("calibrate: the exact quantization MSE agrees with quantize() element by element") {
  std::vector<float> v = with_outliers(gaussian(50000, 3), 1e-3, 10, 30, 4);
  MagnitudeDistribution d(v);
  for (Precision p : {Precision::i8, Precision::i4})
    for (double clip : {0.5, 1.0, 2.47, 3.92, 7.0, 12.5, 29.0, d.absmax()}) {
      CAPTURE(clip);
      CHECK(d.quantization_mse(clip, p) == doctest::Approx(direct_mse(v, clip, p)).epsilon(1e-4));
    }
}

TEST_CASE("calibrate: absmax and percentile clips are order statistics of |x|") {
  const std::vector<float> v = {-4.0f, 1.0f, 3.0f, -2.0f, 0.0f};  // |x| sorted: 0 1 2 3 4
  MagnitudeDistribution d(v);
  CHECK(absmax_clip(d) == 4.0);
  CHECK(percentile_clip(d, 100) == 4.0);
  CHECK(percentile_clip(d, 50) == 2.0);
  CHECK(percentile_clip(d, 87.5) == doctest::Approx(3.5));  // position 0.875 * 4 = 3.5
  CHECK(scale_from_clip(4.0, Precision::i8) == doctest::Approx(4.0 / 127));
  CHECK(scale_from_clip(4.0, Precision::i8) == absmax_scale(v, Precision::i8));
  CHECK(scale_from_clip(0.0, Precision::i4) == 1.0f);
}

TEST_CASE("calibrate: Gaussian data — MSE clip at the known optimum, expected ordering") {
  const std::vector<float> v = gaussian(1 << 20, 11);
  MagnitudeDistribution d(v);
  const double absmax = absmax_clip(d);  // ~4.9 sigma for 2^20 samples
  struct Case {
    Precision p;
    double optimum;
  } cases[] = {{Precision::i8, 3.92}, {Precision::i4, 2.47}};
  for (const Case& c : cases) {
    CAPTURE(to_string(c.p));
    const double mse = mse_clip(d, c.p);
    const double kl = kl_clip(d, c.p, 2048);
    const double pct = percentile_clip(d, 99.99);  // |x| at 99.99%: 3.89 sigma for N(0, 1)
    MESSAGE("gaussian ", to_string(c.p), ": absmax ", absmax, " percentile ", pct, " mse ", mse, " kl ", kl);
    CHECK(mse == doctest::Approx(c.optimum).epsilon(0.04));
    // No worse than the analytic optimum or a brute-force grid, measured by quantize() itself.
    CHECK(direct_mse(v, mse, c.p) <= direct_mse(v, c.optimum, c.p) * 1.0001);
    // Brute force over a 0.01 grid, on a smaller sample (quantize() per element is slow).
    const std::vector<float> small(v.begin(), v.begin() + (1 << 16));
    const double brute = brute_force_mse_clip(small, c.p, 1.5, 0.01);
    CHECK(direct_mse(small, mse_clip(MagnitudeDistribution(small), c.p), c.p) <= direct_mse(small, brute, c.p) * 1.0001);
    CHECK(pct == doctest::Approx(3.89).epsilon(0.03));
    CHECK(absmax > mse);
    CHECK(absmax > kl);
    CHECK(kl > 0.5 * c.optimum);
  }
  // Fewer levels clip harder.
  CHECK(mse_clip(d, Precision::i4) < mse_clip(d, Precision::i8));
}

TEST_CASE("calibrate: Laplace data — MSE clip at the known optimum, heavier tail clips further out") {
  const std::vector<float> v = laplacian(1 << 20, 12);
  MagnitudeDistribution d(v);
  const double absmax = absmax_clip(d);  // ~ln(2^20) = 13.9 b
  struct Case {
    Precision p;
    double optimum;
  } cases[] = {{Precision::i8, 9.88}, {Precision::i4, 4.82}};
  for (const Case& c : cases) {
    CAPTURE(to_string(c.p));
    const double mse = mse_clip(d, c.p);
    MESSAGE("laplace ", to_string(c.p), ": absmax ", absmax, " mse ", mse, " kl ", kl_clip(d, c.p, 2048));
    CHECK(mse == doctest::Approx(c.optimum).epsilon(0.05));
    CHECK(direct_mse(v, mse, c.p) <= direct_mse(v, c.optimum, c.p) * 1.0001);
    CHECK(absmax > mse);
  }
  // The same number of levels on a heavier tail: the optimal clip sits further out (in units
  // of the standard deviation: Laplace(1) has sigma sqrt(2); 9.88 / sqrt(2) = 6.99 > 3.92).
  MagnitudeDistribution g(gaussian(1 << 20, 13));
  CHECK(mse_clip(d, Precision::i8) / std::sqrt(2.0) > mse_clip(g, Precision::i8) * 1.5);
}

TEST_CASE("calibrate: outliers — absmax is the largest clip; MSE finds the brute-force optimum") {
  // 1 in 10^3 values at 40..60 sigma: absmax is set by them.
  const std::vector<float> v = with_outliers(gaussian(1 << 16, 21), 1e-3, 40, 60, 22);
  MagnitudeDistribution d(v);
  const MethodOptions o;
  for (Precision p : {Precision::i8, Precision::i4}) {
    CAPTURE(to_string(p));
    const double absmax = choose_clip(d, CalibrationMethod::absmax, p, o);
    const double pct = choose_clip(d, CalibrationMethod::percentile, p, o);
    const double mse = choose_clip(d, CalibrationMethod::mse, p, o);
    const double kl = choose_clip(d, CalibrationMethod::kl, p, o);
    MESSAGE("outliers ", to_string(p), ": absmax ", absmax, " percentile ", pct, " mse ", mse, " kl ", kl);
    CHECK(absmax >= 40);
    CHECK(absmax > pct);
    CHECK(absmax > mse);
    CHECK(absmax > kl);
    const double brute = brute_force_mse_clip(v, p, 0.5, 0.05);
    CHECK(direct_mse(v, mse, p) <= direct_mse(v, brute, p) * 1.0001);
    CHECK(direct_mse(v, mse, p) < direct_mse(v, absmax, p));
    CHECK(sqnr_db(v, scale_from_clip(mse, p), p) >= sqnr_db(v, scale_from_clip(absmax, p), p));
  }
}

TEST_CASE("calibrate: KL keeps the full range of uniform data and clips heavy tails") {
  Source s(31);
  std::vector<float> uniform(1 << 18);
  for (float& x : uniform) x = float(2 * s.uniform() - 1);
  MagnitudeDistribution u(uniform);
  // Any cut folds real mass into the last bin while Q spreads it: the full range wins.
  CHECK(kl_clip(u, Precision::i8, 2048) >= 0.97 * u.absmax());
  CHECK(kl_clip(u, Precision::i4, 2048) >= 0.97 * u.absmax());
  // Laplace with outliers: the chosen threshold is far below absmax.
  MagnitudeDistribution l(with_outliers(laplacian(1 << 18, 32), 1e-4, 50, 80, 33));
  CHECK(kl_clip(l, Precision::i8, 2048) < 0.5 * l.absmax());
  // The threshold is a bin edge: i * absmax / bins with i >= levels.
  const double t = kl_clip(l, Precision::i8, 2048);
  const double bins = t / l.absmax() * 2048;
  CHECK(bins == doctest::Approx(std::round(bins)));
  CHECK(bins >= 128);
}

TEST_CASE("calibrate: the recommendation rule") {
  auto result = [](CalibrationMethod m, double err, double sqnr) {
    MethodResult r;
    r.method = m;
    r.max_rel_error = err;
    r.q.sqnr_db = r.k.sqnr_db = r.v.sqnr_db = sqnr;
    return r;
  };
  using M = CalibrationMethod;
  // Lowest error wins.
  CHECK(pick_best({result(M::absmax, 0.2, 30), result(M::mse, 0.1, 20), result(M::kl, 0.15, 40)}) == 1);
  // Within 1%: a tie, the higher SQNR wins.
  CHECK(pick_best({result(M::absmax, 0.100, 30), result(M::mse, 0.1005, 35), result(M::kl, 0.2, 40)}) == 1);
  // 2% apart is not a tie.
  CHECK(pick_best({result(M::absmax, 0.100, 30), result(M::mse, 0.102, 35)}) == 0);
  // A non-finite error never wins over a finite one.
  CHECK(pick_best({result(M::absmax, INFINITY, 50), result(M::kl, 0.9, 10)}) == 1);
}

namespace {

Op small_op(int64_t heads, int64_t seq, int64_t dim) {
  Op op;
  op.name = "t";
  op.shape.heads = op.shape.kv_heads = heads;
  op.shape.seq_len = op.shape.kv_len = seq;
  op.shape.head_dim = dim;
  return op;
}

Plan dense_plan(const Op& op) {
  SelectOptions o;
  o.force = Spec::dense;
  return select_spec(op, o);
}

Tensor tensor_from(const Shape& s, int64_t heads, int64_t len, const std::vector<float>& values) {
  Tensor t(s.batch, heads, len, s.head_dim);
  std::copy_n(values.begin(), t.data.size(), t.data.begin());
  return t;
}

}  // namespace

TEST_CASE("calibrate: per-head scales follow each head's own range") {
  const Op op = small_op(2, 64, 16);
  QKV data;
  const size_t n = 64 * 16;
  auto two_heads = [&](uint64_t seed) {  // head 0 ~ N(0, 1), head 1 ~ N(0, 100)
    std::vector<float> v = gaussian(2 * n, seed);
    for (size_t i = n; i < 2 * n; ++i) v[i] *= 10;
    return tensor_from(op.shape, 2, 64, v);
  };
  data.q = two_heads(41);
  data.k = two_heads(42);
  data.v = two_heads(43);
  CalibrateOptions o;
  o.methods = {CalibrationMethod::absmax};
  o.granularity = Granularity::head;
  const CalibrationReport per_head = calibrate(dense_plan(op), std::span(&data, 1), o);
  o.granularity = Granularity::tensor;
  const CalibrationReport per_tensor = calibrate(dense_plan(op), std::span(&data, 1), o);
  const MethodResult& h = per_head.methods[0];
  REQUIRE(h.q.scales.size() == 2);
  for (int head = 0; head < 2; ++head) {
    float m = 0;
    for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(data.k.data[head * n + i]));
    CHECK(h.k.scales[size_t(head)] == doctest::Approx(m / 127.0));
  }
  CHECK(per_tensor.methods[0].k.scales.size() == 1);
  CHECK(per_tensor.methods[0].k.scales[0] == absmax_scale(data.k.data, Precision::i8));
  // The small head gets a 10x finer step, so its noise all but vanishes; the big head's is
  // unchanged. Equal noise from both heads before, so the tensor's noise halves: +3 dB.
  CHECK(h.q.sqnr_db - per_tensor.methods[0].q.sqnr_db == doctest::Approx(10 * std::log10(2.0)).epsilon(0.1));
  // Per-head scales cannot go into an op.
  CHECK_THROWS_AS(apply_calibration(per_head.plan, h, Precision::i8, Granularity::head), Error);
}

TEST_CASE("calibrate: end to end, the recommended method beats absmax on outlier-heavy data") {
  // 0.1% of the values of q, k and v at 10..20 sigma: absmax spends most of the range on them.
  // (Outliers of 20..50 sigma carry attention on their own, and clipping them costs more than
  // it gains: see the measurements in sattn-calibrate(1).)
  const Op op = small_op(4, 256, 64);
  const size_t n = 4 * 256 * 64;
  std::vector<QKV> samples(2);
  uint64_t seed = 51;
  for (QKV& s : samples) {
    s.q = tensor_from(op.shape, 4, 256, with_outliers(gaussian(n, seed), 1e-3, 10, 20, seed + 1));
    s.k = tensor_from(op.shape, 4, 256, with_outliers(gaussian(n, seed + 2), 1e-3, 10, 20, seed + 3));
    s.v = tensor_from(op.shape, 4, 256, with_outliers(gaussian(n, seed + 4), 1e-3, 10, 20, seed + 5));
    seed += 6;
  }
  const Plan plan = dense_plan(op);
  // The worst error over the samples of a set of scales, on the reference kernel fed the
  // quantized values, against the reference on the original values.
  auto error_with = [&](float sq, float sk, float sv) {
    double worst = 0;
    for (const QKV& s : samples) {
      const Layout layout = build_layout(op, Spec::dense, plan.params, &s.q, &s.k);
      const Tensor ref = reference_attention(op, layout, s.q, s.k, s.v);
      const Tensor out = reference_attention(op, layout, apply_precision(s.q, Precision::i8, sq),
                                             apply_precision(s.k, Precision::i8, sk), apply_precision(s.v, Precision::i8, sv));
      worst = std::max(worst, compare(out, ref).max_rel);
    }
    return worst;
  };
  auto pooled_absmax_scale = [&](Tensor QKV::*member) {
    float m = 0;
    for (const QKV& s : samples)
      for (float x : (s.*member).data) m = std::max(m, std::fabs(x));
    return m / 127.0f;
  };
  CalibrateOptions o;
  o.precision = Precision::i8;
  o.methods.assign(std::begin(kAllCalibrationMethods), std::end(kAllCalibrationMethods));
  const CalibrationReport r = calibrate(plan, samples, o);
  const MethodResult& best = r.methods[r.best];
  const double absmax_error =
      error_with(pooled_absmax_scale(&QKV::q), pooled_absmax_scale(&QKV::k), pooled_absmax_scale(&QKV::v));
  const double best_error = error_with(best.q.scales[0], best.k.scales[0], best.v.scales[0]);
  MESSAGE("recommended ", to_string(best.method), " error ", best_error, ", absmax ", absmax_error);
  CHECK(best.method != CalibrationMethod::absmax);
  CHECK(best_error < 0.9 * absmax_error);
  // The report's figures are those errors (its kernel adds only fp32 rounding).
  REQUIRE(r.methods[0].method == CalibrationMethod::absmax);
  CHECK(r.methods[0].max_rel_error == doctest::Approx(absmax_error).epsilon(1e-3));
  CHECK(best.max_rel_error == doctest::Approx(best_error).epsilon(1e-3));
}

TEST_CASE("calibrate: apply writes precision and per-tensor scales into the plan's op") {
  const Op op = small_op(2, 32, 8);
  const QKV data = synthetic_qkv(op.shape, 7);
  CalibrateOptions o;
  o.precision = Precision::i4;
  o.methods = {CalibrationMethod::mse};
  const CalibrationReport r = calibrate(dense_plan(op), std::span(&data, 1), o);
  const Plan applied = apply_calibration(r.plan, r.methods[0], Precision::i4, Granularity::tensor);
  CHECK(applied.op.precision == Precision::i4);
  REQUIRE(applied.op.scale_q);
  CHECK(float(*applied.op.scale_q) == r.methods[0].q.scales[0]);
  CHECK(float(*applied.op.scale_k) == r.methods[0].k.scales[0]);
  CHECK(float(*applied.op.scale_v) == r.methods[0].v.scales[0]);
  CHECK(applied.spec == r.plan.spec);
  // resolve_scales (what every backend uses) now returns them.
  const Scales s = resolve_scales(applied.op, data.q, data.k, data.v);
  CHECK(s.q == r.methods[0].q.scales[0]);
  CHECK(s.v == r.methods[0].v.scales[0]);
  // An all-zero tensor cannot be calibrated; the loader names the file (tests/cli/calibrate.sh).
}

// Fixed scale tables (sattn-calibrate --schemes --apply, sattn-quant(7) FIXED SCALES).
TEST_CASE("fixed tables: one sample's tables are its dynamic scales; on other data the kernel matches the "
          "same-quantized reference built from the same tables") {
  std::mt19937_64 rng(77);
  std::normal_distribution<float> normal;
  const char* schemes[] = {"sage", "smooth", "smooth,block=4", "q=head,k=block,block=8,smooth=k,pv=fix16,v=tensor",
                           "q=block,k=token,block=5,smooth=q,pv=i8,v=channel", "q=token,k=token,smooth=qk,pv=fp32,v=channel"};
  for (int it = 0; it < 12; ++it) {
    Op op;
    op.shape.batch = 1 + it % 2;
    op.shape.kv_heads = 1 + (it / 2) % 2;
    op.shape.heads = op.shape.kv_heads * (1 + it % 3);
    op.shape.seq_len = op.shape.kv_len = 20 + 7 * it;
    op.shape.head_dim = 16;
    op.causal = it % 2 == 0;
    op.precision = it % 3 ? Precision::i8 : Precision::i4;
    const QuantScheme scheme = *parse_quant_scheme(schemes[it % 6]);
    op.quant_scheme = scheme;
    auto make = [&](int64_t heads, int64_t len) {
      Tensor t(op.shape.batch, heads, len, op.shape.head_dim);
      for (float& x : t.data) x = normal(rng) + 1.5f;
      return t;
    };
    QKV a{make(op.shape.heads, op.shape.seq_len), make(op.shape.kv_heads, op.shape.kv_len),
          make(op.shape.kv_heads, op.shape.kv_len)};
    QKV b = a;  // calibration data plus noise: what fixed tables are for
    for (Tensor* t : {&b.q, &b.k, &b.v})
      for (float& x : t->data) x += 0.1f * normal(rng);
    INFO("iteration " << it << " scheme " << schemes[it % 6]);
    const Layout layout = build_layout(op, Spec::dense, dense_plan(op).params, &a.q, &a.k);

    // One sample: the tables are exactly the scales and means computed from it at run time.
    const QuantTables ta = calibrate_tables(op, scheme, std::span<const QKV>(&a, 1));
    const QuantTables dyn = tables_of(quantize_qkv(op, scheme, a.q, a.k, a.v));
    for (const char* name : kQuantTableNames) {
      CHECK(quant_table(ta, name) == quant_table(dyn, name));
      int64_t want = quant_table_shape(op, scheme, name).empty() ? 0 : 1;
      for (int64_t e : quant_table_shape(op, scheme, name)) want *= e;
      CHECK(int64_t(quant_table(ta, name).size()) == want);
    }
    Op fixed = op;
    fixed.quant_tables = std::make_shared<QuantTables>(ta);
    CHECK(fast_attention(fixed, layout, a.q, a.k, a.v).data == fast_attention(op, layout, a.q, a.k, a.v).data);

    // Other data: the tables are used as they are (not recomputed), by the kernel and the reference.
    const QuantizedQKV zb = quantize_qkv(fixed, scheme, b.q, b.k, b.v);
    const QuantTables used = tables_of(zb);
    CHECK(used.scale_q == ta.scale_q);
    CHECK(used.scale_k == ta.scale_k);
    CHECK(used.scale_v == ta.scale_v);
    CHECK(used.mean_q == ta.mean_q);
    CHECK(used.mean_k == ta.mean_k);
    const Tensor out = fast_attention(fixed, layout, b.q, b.k, b.v);
    const Tensor ref = reference_attention_quantized(fixed, layout, b.q, b.k, b.v);
    const ErrorStats e = compare(out, ref);
    CHECK(e.finite);
    CHECK(e.max_rel <= (scheme.pv == PvPrecision::i8 ? 2e-2 : 1e-4));
    CHECK(e.rel_l1 <= (scheme.pv == PvPrecision::i8 ? 2e-3 : 1e-5));
    // ... and they differ from the dynamic scales of b (the test would not see a table ignored otherwise).
    CHECK(fast_attention(op, layout, b.q, b.k, b.v).data != out.data);
  }
}

TEST_CASE("fixed tables: a table of the wrong size is refused") {
  Op op = small_op(2, 32, 16);
  op.precision = Precision::i8;
  const QuantScheme scheme = *parse_quant_scheme("sage");
  op.quant_scheme = scheme;
  auto t = std::make_shared<QuantTables>();
  t->scale_k = {1.0f, 2.0f};
  op.quant_tables = t;
  Tensor q(1, 2, 32, 16), k(1, 2, 32, 16), v(1, 2, 32, 16);
  CHECK_THROWS_AS(quantize_qkv(op, scheme, q, k, v), Error);
}
