// The fast CPU kernel against the reference oracle, and the reduced-precision helpers it uses.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/layout.hpp"
#include "backends/cpu/kernel_fast_internal.hpp"
#include "core/quant.hpp"
#include "core/synthetic.hpp"
#include "layout/blas_threads.hpp"

#include <dirent.h>

using namespace sattn;

namespace {

// ---- hand-built layouts (independent of layout.cpp) ----

Layout empty_layout(const Op& op, bool block, int64_t block_size) {
  Layout l;
  l.spec = block ? Spec::bsr : Spec::topk_per_query;
  l.block = block;
  l.rows = op.shape.seq_len;
  l.cols = op.shape.kv_len;
  l.block_size = block_size;
  l.causal = op.causal;
  l.causal_offset = op.shape.kv_len - op.shape.seq_len;
  l.batch = op.shape.batch;
  l.kv_heads = op.shape.kv_heads;
  l.shared = false;
  return l;
}

// CSR from an element predicate; the causal rule is applied so lists hold exactly the allowed keys.
using ElementPredicate = std::function<bool(int64_t b, int64_t kvh, int64_t i, int64_t j)>;
Layout csr_from(const Op& op, const ElementPredicate& keep) {
  Layout l = empty_layout(op, false, 1);
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t kvh = 0; kvh < op.shape.kv_heads; ++kvh) {
      HeadLayout hl;
      hl.ptr.push_back(0);
      for (int64_t i = 0; i < l.rows; ++i) {
        for (int64_t j = 0; j < l.cols; ++j)
          if (l.causal_ok(i, j) && keep(b, kvh, i, j)) hl.idx.push_back(int32_t(j));
        hl.ptr.push_back(int64_t(hl.idx.size()));
      }
      l.heads.push_back(std::move(hl));
    }
  return l;
}

// BSR from a block predicate (block row, block column); causal is applied per element by the kernel.
using BlockPredicate = std::function<bool(int64_t b, int64_t kvh, int64_t br, int64_t bc)>;
Layout bsr_from(const Op& op, int64_t block_size, const BlockPredicate& keep) {
  Layout l = empty_layout(op, true, block_size);
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t kvh = 0; kvh < op.shape.kv_heads; ++kvh) {
      HeadLayout hl;
      hl.ptr.push_back(0);
      for (int64_t br = 0; br < l.block_rows(); ++br) {
        for (int64_t bc = 0; bc < l.block_cols(); ++bc)
          if (keep(b, kvh, br, bc)) hl.idx.push_back(int32_t(bc));
        hl.ptr.push_back(int64_t(hl.idx.size()));
      }
      l.heads.push_back(std::move(hl));
    }
  return l;
}

// Whether query row i of (b, query head h) has at least one allowed key, from the layout arrays.
bool row_has_keys(const Layout& l, int64_t group, int64_t b, int64_t h, int64_t i) {
  const HeadLayout& hl = l.head(b, h / group);
  if (!l.block) return hl.ptr[i + 1] > hl.ptr[i];
  const int64_t br = i / l.block_size;
  for (int64_t t = hl.ptr[br]; t < hl.ptr[br + 1]; ++t)
    for (int64_t j = int64_t(hl.idx[t]) * l.block_size; j < (int64_t(hl.idx[t]) + 1) * l.block_size; ++j)
      if (l.causal_ok(i, j)) return true;
  return false;
}

Tensor random_tensor(Rng& rng, int64_t b, int64_t h, int64_t len, int64_t d, bool uniform) {
  Tensor t(b, h, len, d);
  for (float& x : t.data) x = uniform ? 2.0f * rng.uniform() - 1.0f : rng.normal();
  return t;
}

struct Case {
  Op op;
  Tensor q, k, v;
};

Case random_case(Rng& rng, bool uniform_data) {
  Case c;
  Shape& s = c.op.shape;
  s.batch = 1 + int64_t(rng.below(2));
  const int64_t groups[] = {1, 2, 4};
  s.kv_heads = 1 + int64_t(rng.below(2));
  s.heads = s.kv_heads * groups[rng.below(3)];
  s.seq_len = 1 + int64_t(rng.below(300));
  s.kv_len = rng.below(3) == 0 ? s.seq_len : 1 + int64_t(rng.below(300));
  // Mostly small head dims (cheap oracle), with tails around the 8-wide SIMD and up to 80.
  const int64_t dims[] = {1, 3, 7, 8, 9, 16, 24, 31, 33, 64, 80};
  s.head_dim = dims[rng.below(11)];
  c.op.causal = rng.below(2) == 1;
  c.q = random_tensor(rng, s.batch, s.heads, s.seq_len, s.head_dim, uniform_data);
  c.k = random_tensor(rng, s.batch, s.kv_heads, s.kv_len, s.head_dim, uniform_data);
  c.v = random_tensor(rng, s.batch, s.kv_heads, s.kv_len, s.head_dim, uniform_data);
  return c;
}

// A layout kind chosen at random; covers full and partial blocks, adjacent-block runs, windows
// (the CSR union path), scattered keys (the CSR gather path) and empty rows.
Layout random_layout(Rng& rng, const Op& op, std::string& kind) {
  const uint64_t pick = rng.below(7);
  const uint64_t salt = rng.next_u64();
  auto hash01 = [salt](int64_t a, int64_t b, int64_t c, int64_t d) {  // deterministic per element
    Rng r(salt ^ uint64_t(a) * 0x9E3779B97F4A7C15ull ^ uint64_t(b) * 0xC2B2AE3D27D4EB4Full ^
          uint64_t(c) * 0x165667B19E3779F9ull ^ uint64_t(d) * 0x27D4EB2F165667C5ull);
    return r.uniform();
  };
  const int64_t block_sizes[] = {1, 4, 16, 32, 64, 100};
  switch (pick) {
    case 0: {
      const int64_t bs = block_sizes[rng.below(6)];
      kind = "bsr-full bs=" + std::to_string(bs);
      return bsr_from(op, bs, [](int64_t, int64_t, int64_t, int64_t) { return true; });
    }
    case 1: {
      const int64_t bs = block_sizes[rng.below(6)];
      const float keep = 0.2f + 0.6f * rng.uniform();
      kind = "bsr-random bs=" + std::to_string(bs);
      return bsr_from(op, bs, [=](int64_t b, int64_t kvh, int64_t br, int64_t bc) {
        return hash01(b, kvh, br, bc) < keep;
      });
    }
    case 2: {
      const int64_t w = 1 + int64_t(rng.below(40));
      const int64_t off = op.shape.kv_len - op.shape.seq_len;
      kind = "csr-window w=" + std::to_string(w);
      return csr_from(op, [=](int64_t, int64_t, int64_t i, int64_t j) { return std::abs(j - (i + off)) <= w; });
    }
    case 3: {
      const float keep = 0.02f + 0.2f * rng.uniform();
      kind = "csr-scattered";
      return csr_from(op, [=](int64_t b, int64_t kvh, int64_t i, int64_t j) { return hash01(b, kvh, i, j) < keep; });
    }
    case 4: {
      kind = "csr-dense-with-empty-rows";
      return csr_from(op, [](int64_t, int64_t, int64_t i, int64_t) { return i % 5 != 2; });
    }
    case 5: {
      // LSH-like: rows and keys hashed into a few buckets; rows of a bucket share one key set,
      // so rows far apart meet in the regrouped GEMM tiles.
      const int64_t buckets = 2 + int64_t(rng.below(3));
      kind = "csr-buckets n=" + std::to_string(buckets);
      return csr_from(op, [=](int64_t b, int64_t kvh, int64_t i, int64_t j) {
        return int64_t(hash01(b, kvh, i, -2) * float(buckets)) == int64_t(hash01(b, kvh, -3, j) * float(buckets));
      });
    }
    default: {
      const float keep = 0.5f * rng.uniform();
      kind = "csr-mixed-rows";  // each row either scattered, dense or empty
      return csr_from(op, [=](int64_t b, int64_t kvh, int64_t i, int64_t j) {
        const float row_kind = hash01(b, kvh, i, -1);
        if (row_kind < 0.15f) return false;
        if (row_kind < 0.5f) return true;
        return hash01(b, kvh, i, j) < keep;
      });
    }
  }
}

void check_empty_rows_are_zero(const Op& op, const Layout& l, const Tensor& out) {
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t h = 0; h < op.shape.heads; ++h)
      for (int64_t i = 0; i < op.shape.seq_len; ++i) {
        if (row_has_keys(l, op.shape.group_size(), b, h, i)) continue;
        const float* row = out.row(b, h, i);
        for (int64_t c = 0; c < op.shape.head_dim; ++c) REQUIRE(row[c] == 0.0f);
      }
}

std::string describe(const Op& op, const std::string& kind) {
  const Shape& s = op.shape;
  return kind + " b=" + std::to_string(s.batch) + " h=" + std::to_string(s.heads) + " kvh=" +
         std::to_string(s.kv_heads) + " S=" + std::to_string(s.seq_len) + " L=" + std::to_string(s.kv_len) +
         " D=" + std::to_string(s.head_dim) + (op.causal ? " causal" : "");
}

// bf16 output against the reference on the same bf16-rounded inputs. The fp32 tiles differ from
// it only in accumulation order and the exp (max-norm 1e-5). The AMX tiles (amx_bf16_tiles) also
// round P to bf16 for P.V: each weight moves by at most 2^-8 of itself (round to nearest, 8
// significant bits) while the row sum keeps the fp32 P, so each output element may move by at
// most 2^-8 * sum_j p_j |v_jd| / sum_j p_j: the reference with |V| for V, times 2^-8, plus the fp32
// tiles' 1e-5 of max|ref|. Returns the max-norm error (0 when there is nothing to compare).
double check_bf16_same_inputs(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out) {
  const Tensor qr = apply_precision(q, Precision::bf16, 1.0f), kr = apply_precision(k, Precision::bf16, 1.0f),
               vr = apply_precision(v, Precision::bf16, 1.0f);
  const Tensor ref = reference_attention(op, layout, qr, kr, vr);
  const ErrorStats e = compare(out, ref);
  if (!fast::amx_bf16_tiles(op, layout)) {
    CHECK(e.max_rel <= 1e-5);
    return e.max_rel;
  }
  Tensor v_abs = vr;
  for (float& x : v_abs.data) x = std::abs(x);
  const Tensor weighted = reference_attention(op, layout, qr, kr, v_abs);
  double ref_max = 0;
  for (float x : ref.data) ref_max = std::max(ref_max, double(std::abs(x)));
  int64_t outside = 0;
  double worst = 0;  // the largest error as a fraction of its bound
  for (size_t e_i = 0; e_i < out.data.size(); ++e_i) {
    const double bound = std::ldexp(double(weighted.data[e_i]), -8) + 1e-5 * ref_max;
    const double err = std::abs(double(out.data[e_i]) - double(ref.data[e_i]));
    outside += err > bound;
    if (bound > 0) worst = std::max(worst, err / bound);
  }
  CAPTURE(worst);
  CHECK(outside == 0);
  return e.max_rel;
}

}  // namespace

// ---- bf16 ----

TEST_CASE("float_to_bf16 rounds to nearest even and keeps NaN quiet") {
  auto bf = [](uint32_t bits) { return float_to_bf16(std::bit_cast<float>(bits)); };
  CHECK(float_to_bf16(1.0f) == 0x3F80);
  CHECK(float_to_bf16(-2.0f) == 0xC000);
  CHECK(bf(0x3F808000u) == 0x3F80);  // exactly halfway, 0x3F80 is even: down
  CHECK(bf(0x3F818000u) == 0x3F82);  // exactly halfway, 0x3F81 is odd: up to even
  CHECK(bf(0x3F808001u) == 0x3F81);  // just above halfway: up
  CHECK(bf(0x3F807FFFu) == 0x3F80);  // just below halfway: down
  CHECK(bf(0xBF808000u) == 0xBF80);  // negative tie: magnitude rounds like the positive one
  CHECK(bf(0x3FFF8000u) == 0x4000);  // mantissa carry into the exponent
  CHECK(bf(0x7F800000u) == 0x7F80);  // +Inf
  CHECK(bf(0xFF800000u) == 0xFF80);  // -Inf
  CHECK(bf(0x7F7FFFFFu) == 0x7F80);  // max finite float rounds up to Inf
  CHECK(bf(0x7F7F7FFFu) == 0x7F7F);  // largest value that stays finite
  CHECK(bf(0x7FC00000u) == 0x7FC0);  // quiet NaN
  CHECK(bf(0x7F800001u) == 0x7FC0);  // signalling NaN whose payload is all truncated: still NaN, quiet
  CHECK(bf(0xFF800001u) == 0xFFC0);
  CHECK(bf(0x00000001u) == 0x0000);  // smallest denormal rounds to +0
  CHECK(bf16_to_float(0x3F80) == 1.0f);
  CHECK(bf16_to_float(0x4049) == 3.140625f);
  CHECK(std::isnan(bf16_to_float(bf(0x7F800001u))));
}

// ---- integer quantization ----

TEST_CASE("quantize rounds half to even and clamps to the symmetric range") {
  CHECK(quant_max(Precision::i8) == 127);
  CHECK(quant_max(Precision::i4) == 7);
  const Precision i8 = Precision::i8, i4 = Precision::i4;
  CHECK(quantize(0.5f, 1.0f, i8) == 0);
  CHECK(quantize(1.5f, 1.0f, i8) == 2);
  CHECK(quantize(2.5f, 1.0f, i8) == 2);
  CHECK(quantize(-0.5f, 1.0f, i8) == 0);
  CHECK(quantize(-1.5f, 1.0f, i8) == -2);
  CHECK(quantize(-2.5f, 1.0f, i8) == -2);
  CHECK(quantize(0.49999997f, 1.0f, i8) == 0);
  CHECK(quantize(2.5000002f, 1.0f, i8) == 3);
  CHECK(quantize(126.5f, 1.0f, i8) == 126);
  CHECK(quantize(127.5f, 1.0f, i8) == 127);
  CHECK(quantize(1000.0f, 1.0f, i8) == 127);
  CHECK(quantize(-1000.0f, 1.0f, i8) == -127);  // symmetric: never -128
  CHECK(quantize(0.75f, 0.5f, i8) == 2);         // 1.5 -> 2
  CHECK(quantize(0.25f, 0.5f, i8) == 0);         // 0.5 -> 0
  CHECK(quantize(3.5f, 1.0f, i4) == 4);
  CHECK(quantize(6.5f, 1.0f, i4) == 6);
  CHECK(quantize(7.5f, 1.0f, i4) == 7);
  CHECK(quantize(-8.0f, 1.0f, i4) == -7);
  CHECK(quantize(std::numeric_limits<float>::infinity(), 1.0f, i4) == 7);
  CHECK(quantize(std::numeric_limits<float>::quiet_NaN(), 1.0f, i8) == 0);
}

TEST_CASE("absmax_scale and resolve_scales") {
  const std::vector<float> data{0.0f, -2.54f, 1.0f};
  CHECK(absmax_scale(data, Precision::i8) == doctest::Approx(0.02).epsilon(1e-6));
  CHECK(absmax_scale(data, Precision::i4) == doctest::Approx(2.54 / 7).epsilon(1e-6));
  const std::vector<float> zeros(5, 0.0f);
  CHECK(absmax_scale(zeros, Precision::i8) == 1.0f);

  Op op;
  op.precision = Precision::i8;
  op.shape = Shape{1, 1, 1, 2, 2, 2};
  Tensor q(1, 1, 2, 2), k(1, 1, 2, 2), v(1, 1, 2, 2);
  q.data = {1, 2, 3, 4};
  k.data = {-6.35f, 0, 0, 0};
  v.data = {0, 0, 0, 0};
  op.scale_q = 0.5;
  const Scales s = resolve_scales(op, q, k, v);
  CHECK(s.q == 0.5f);                                        // given
  CHECK(s.k == doctest::Approx(0.05).epsilon(1e-6));         // 6.35 / 127
  CHECK(s.v == 1.0f);                                        // all zeros
}

TEST_CASE("pack_i4 / unpack_i4: low nibble first, sign-extended") {
  const std::vector<int8_t> values{1, -1, 7, -8, 0};
  const std::vector<uint8_t> packed = pack_i4(values);
  CHECK(packed == std::vector<uint8_t>{0xF1, 0x87, 0x00});  // odd count: last high nibble 0
  CHECK(unpack_i4(packed, values.size()) == values);
  CHECK(pack_i4(std::vector<int8_t>{-3}) == std::vector<uint8_t>{0x0D});
  CHECK(unpack_i4(std::vector<uint8_t>{0xD0}, 2) == std::vector<int8_t>{0, -3});
  CHECK(unpack_i4(std::vector<uint8_t>{0x7F, 0x92}, 4) == std::vector<int8_t>{-1, 7, 2, -7});
  CHECK(pack_i4(std::vector<int8_t>{}).empty());
  // Round trip of every i4 value, even count.
  std::vector<int8_t> all;
  for (int x = -8; x <= 7; ++x) all.push_back(int8_t(x));
  CHECK(unpack_i4(pack_i4(all), all.size()) == all);
}

TEST_CASE("apply_precision") {
  Tensor t(1, 1, 1, 4);
  t.data = {0.8f, -0.375f, 100.0f, std::bit_cast<float>(0x3F818000u)};
  const Tensor i8 = apply_precision(t, Precision::i8, 0.25f);
  CHECK(i8.data[0] == 0.75f);    // 3.2 -> 3
  CHECK(i8.data[1] == -0.5f);    // -1.5 -> -2 (tie to even)
  CHECK(i8.data[2] == 31.75f);   // clamped to 127
  const Tensor i4 = apply_precision(t, Precision::i4, 0.25f);
  CHECK(i4.data[2] == 1.75f);    // clamped to 7
  const Tensor bf = apply_precision(t, Precision::bf16, 1.0f);
  CHECK(std::bit_cast<uint32_t>(bf.data[3]) == 0x3F820000u);
  CHECK(apply_precision(t, Precision::fp32, 1.0f).data == t.data);
}

// ---- fast kernel vs the oracle ----

TEST_CASE("fast_attention fp32 matches the reference on random shapes and layouts") {
  Rng rng(20240611);
  for (int iteration = 0; iteration < 80; ++iteration) {
    Case c = random_case(rng, false);
    std::string kind;
    const Layout layout = random_layout(rng, c.op, kind);
    CAPTURE(iteration);
    INFO(describe(c.op, kind));
    const Tensor ref = reference_attention(c.op, layout, c.q, c.k, c.v);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      const Tensor out = fast_attention(c.op, layout, c.q, c.k, c.v, FastOptions{.threads = threads});
      const ErrorStats e = compare(out, ref);
      REQUIRE(e.finite);
      CHECK(e.max_rel <= tolerance(Precision::fp32));
      check_empty_rows_are_zero(c.op, layout, out);
    }
  }
}

namespace {

// Sets one environment variable (the kernel choices SATTN_CPU_BLOCK_KERNEL, SATTN_CPU_CSR_KERNEL)
// for one scope and restores the caller's value.
struct ScopedVar {
  const char* name;
  std::string saved;
  bool had;
  ScopedVar(const char* var, const char* value) : name(var) {
    const char* old = std::getenv(name);
    had = old != nullptr;
    if (had) saved = old;
    setenv(name, value, 1);
  }
  ~ScopedVar() {
    if (had)
      setenv(name, saved.c_str(), 1);
    else
      unsetenv(name);
  }
};

// Both CSR kernels (SATTN_CPU_CSR_KERNEL packed and legacy) on each thread count: finite, within
// the fp32 tolerance of ref, and rows without keys exactly 0.
void check_csr_kernels(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                       const Tensor& ref, std::initializer_list<int> thread_counts) {
  for (const char* kernel : {"packed", "legacy"})
    for (int threads : thread_counts) {
      CAPTURE(kernel);
      CAPTURE(threads);
      const ScopedVar env("SATTN_CPU_CSR_KERNEL", kernel);
      const Tensor out = fast_attention(op, layout, q, k, v, FastOptions{.threads = threads});
      const ErrorStats e = compare(out, ref);
      REQUIRE(e.finite);
      CHECK(e.max_rel <= tolerance(Precision::fp32));
      check_empty_rows_are_zero(op, layout, out);
    }
}

}  // namespace

TEST_CASE("fast_attention: the fused block tile and the cblas block tile both match the reference") {
  // Block layouts only (the two tiles differ there): random shapes with tails around every SIMD
  // width and register block (query rows per sub-tile: 8/16/64 lanes; 4 or 6 keys and head-dim
  // entries per block), block sizes from 1 to 100 (a sub-tile narrower than the lanes, two
  // sub-tiles), causal with seq_len != kv_len, GQA, empty block rows, long rows of several steps.
  Rng rng(25);
  FastOptions two_threads;
  two_threads.threads = 2;
  for (int iteration = 0; iteration < 60; ++iteration) {
    Case c = random_case(rng, false);
    if (iteration % 4 == 0) {  // a long row: several 256-key chunks and 64-key steps
      c.op.shape.kv_len = 300 + int64_t(rng.below(500));
      c.k = random_tensor(rng, c.op.shape.batch, c.op.shape.kv_heads, c.op.shape.kv_len, c.op.shape.head_dim, false);
      c.v = random_tensor(rng, c.op.shape.batch, c.op.shape.kv_heads, c.op.shape.kv_len, c.op.shape.head_dim, false);
    }
    const int64_t block_sizes[] = {1, 5, 16, 64, 100};
    const int64_t bs = block_sizes[rng.below(5)];
    const float keep = rng.below(3) == 0 ? 1.0f : 0.3f + 0.6f * rng.uniform();
    const uint64_t salt = rng.next_u64();
    const Layout layout = bsr_from(c.op, bs, [&](int64_t b, int64_t kvh, int64_t br, int64_t bc) {
      Rng r(salt ^ uint64_t(b * 7919 + kvh * 104729 + br * 1299709) ^ uint64_t(bc) * 0x9E3779B97F4A7C15ull);
      return keep >= 1.0f || r.uniform() < keep;
    });
    CAPTURE(iteration);
    INFO(describe(c.op, "bsr bs=" + std::to_string(bs)));
    const Tensor ref = reference_attention(c.op, layout, c.q, c.k, c.v);
    for (const char* kernel : {"fused", "gemm"}) {
      CAPTURE(kernel);
      const ScopedVar env("SATTN_CPU_BLOCK_KERNEL", kernel);
      const Tensor out = fast_attention(c.op, layout, c.q, c.k, c.v, two_threads);
      const ErrorStats e = compare(out, ref);
      REQUIRE(e.finite);
      CHECK(e.max_rel <= tolerance(Precision::fp32));
      check_empty_rows_are_zero(c.op, layout, out);
    }
  }
  const ScopedVar bogus("SATTN_CPU_BLOCK_KERNEL", "blas");
  Case c = random_case(rng, false);
  const Layout layout = bsr_from(c.op, 16, [](int64_t, int64_t, int64_t, int64_t) { return true; });
  std::string message;
  try {
    fast_attention(c.op, layout, c.q, c.k, c.v);
  } catch (const Error& e) {
    message = e.what();
    CHECK(e.kind() == ErrorKind::invalid_input);
  }
  CHECK(message.find("SATTN_CPU_BLOCK_KERNEL=blas: unknown block kernel") != std::string::npos);
}

TEST_CASE("fast_attention: packed CSR tiles and the legacy CSR path both match the reference") {
  // CSR layouts only (the two paths differ there): windows (contiguous packed tiles), LSH-like
  // buckets (regrouped rows, gathered unions), scattered keys (the row-by-row gather, wide in the
  // AVX-512 copy), mixed dense/scattered/empty rows; random shapes with head-dim tails around 8
  // and 16, causal with seq_len != kv_len, GQA; tile_rows up to 150 so that one packed tile holds
  // several sub-tiles of lanes (8/16/64 per ISA) and the lane masks cross words.
  Rng rng(2525);
  for (int iteration = 0; iteration < 70; ++iteration) {
    Case c = random_case(rng, iteration % 3 == 0);
    if (iteration % 5 == 0) {  // long rows: several chunks and key windows
      c.op.shape.kv_len = 400 + int64_t(rng.below(900));
      c.k = random_tensor(rng, c.op.shape.batch, c.op.shape.kv_heads, c.op.shape.kv_len, c.op.shape.head_dim, false);
      c.v = random_tensor(rng, c.op.shape.batch, c.op.shape.kv_heads, c.op.shape.kv_len, c.op.shape.head_dim, false);
    }
    const int64_t tile_rows[] = {0, 7, 32, 64, 100, 150};
    if (const int64_t t = tile_rows[rng.below(6)]; t > 0) c.op.attrs.tile_rows = t;
    std::string kind;
    Layout layout = random_layout(rng, c.op, kind);
    if (layout.block) {  // the block kinds of random_layout: a window instead
      const int64_t off = c.op.shape.kv_len - c.op.shape.seq_len, w = 1 + int64_t(rng.below(70));
      kind = "csr-window w=" + std::to_string(w);
      layout = csr_from(c.op, [=](int64_t, int64_t, int64_t i, int64_t j) { return std::abs(j - (i + off)) <= w; });
    }
    CAPTURE(iteration);
    const std::string what = describe(c.op, kind) + " tile_rows=" + std::to_string(c.op.attrs.tile_rows.value_or(0));
    INFO(what);
    const Tensor ref = reference_attention(c.op, layout, c.q, c.k, c.v);
    check_csr_kernels(c.op, layout, c.q, c.k, c.v, ref, {2});
  }
  const ScopedVar bogus("SATTN_CPU_CSR_KERNEL", "gemm");
  Case c = random_case(rng, false);
  const Layout layout = csr_from(c.op, [](int64_t, int64_t, int64_t, int64_t) { return true; });
  std::string message;
  try {
    fast_attention(c.op, layout, c.q, c.k, c.v);
  } catch (const Error& e) {
    message = e.what();
    CHECK(e.kind() == ErrorKind::invalid_input);
  }
  CHECK(message.find("SATTN_CPU_CSR_KERNEL=gemm: unknown CSR kernel") != std::string::npos);
}

TEST_CASE("fast_attention: long windows merge packed tiles; rows with contiguous and scattered keys share a tile") {
  // Windows of 160-300 keys each side: adjacent 32-row tiles merge into 64-row packed tiles (a
  // column range within 15% of the pairs), whose lane masks come from each row's run of columns
  // (difference array); some rows also drop keys inside their window or have none (scattered
  // rows in the same tile: a bit per entry), under causal with seq_len != kv_len and GQA, at
  // head dims with and without tails, on 1 and 2 threads, packed and legacy tiles.
  Rng rng(2526);
  for (int iteration = 0; iteration < 8; ++iteration) {
    Op op;
    const int64_t dims[] = {64, 33, 16, 80};
    op.shape = Shape{1, 4, 2, 500 + int64_t(rng.below(300)), 0, dims[iteration % 4]};
    op.shape.kv_len = op.shape.seq_len + (iteration % 3 == 0 ? int64_t(rng.below(200)) : 0);
    op.causal = iteration % 2 == 1;
    // w >= 210: two 32-row tiles (2w + 64 columns) stay within 15% of their pairs and merge.
    const int64_t w = 160 + 20 * iteration, off = op.shape.kv_len - op.shape.seq_len;
    const bool holes = iteration >= 4;
    const Layout layout = csr_from(op, [=](int64_t, int64_t kvh, int64_t i, int64_t j) {
      if (std::abs(j - (i + off)) > w) return false;
      if (!holes) return true;
      if ((i + kvh) % 37 == 5) return false;                   // an empty row
      if ((i + kvh) % 11 == 3) return (j * 7 + i) % 5 != 0;    // scattered keys inside the window
      return true;
    });
    const Tensor q = random_tensor(rng, 1, 4, op.shape.seq_len, op.shape.head_dim, false),
                 k = random_tensor(rng, 1, 2, op.shape.kv_len, op.shape.head_dim, false),
                 v = random_tensor(rng, 1, 2, op.shape.kv_len, op.shape.head_dim, false);
    CAPTURE(iteration);
    INFO(describe(op, "window w=" + std::to_string(w) + (holes ? " with holes" : "")));
    const Tensor ref = reference_attention(op, layout, q, k, v);
    check_csr_kernels(op, layout, q, k, v, ref, {1, 2});
  }
}

TEST_CASE("fast_attention: rows sharing one scattered key list run as merged packed tiles") {
  // Landmark-like layouts: every row has the same scattered list (read in place as the tile's
  // union, up to 64 rows per tile), except a band of rows with another list and one empty row,
  // which end the merged tiles; GQA, head dims with tails, 1 and 2 threads, both CSR kernels.
  Rng rng(2527);
  for (int iteration = 0; iteration < 4; ++iteration) {
    Op op;
    op.shape = Shape{1, 2, 1, 300 + int64_t(rng.below(100)), 400 + int64_t(rng.below(300)), iteration % 2 ? 40 : 64};
    const bool bands = iteration >= 2;
    const Layout layout = csr_from(op, [=](int64_t, int64_t, int64_t i, int64_t j) {
      if (bands && i == 200) return false;
      if (bands && i >= 100 && i < 140) return j % 5 == 2;
      return j % 3 == 0 || j % 7 == 1;
    });
    const Tensor q = random_tensor(rng, 1, 2, op.shape.seq_len, op.shape.head_dim, false),
                 k = random_tensor(rng, 1, 1, op.shape.kv_len, op.shape.head_dim, false),
                 v = random_tensor(rng, 1, 1, op.shape.kv_len, op.shape.head_dim, false);
    CAPTURE(iteration);
    INFO(describe(op, bands ? "shared list with bands" : "shared list"));
    const Tensor ref = reference_attention(op, layout, q, k, v);
    check_csr_kernels(op, layout, q, k, v, ref, {1, 2});
  }
}

TEST_CASE("fast_attention: tile_rows attribute, all-empty layouts, seq_len > kv_len under causal") {
  Rng rng(7);
  Op op;
  op.shape = Shape{1, 2, 1, 70, 40, 12};
  op.causal = true;  // the first 30 rows see no key at all
  const Tensor q = random_tensor(rng, 1, 2, 70, 12, false), k = random_tensor(rng, 1, 1, 40, 12, false),
               v = random_tensor(rng, 1, 1, 40, 12, false);
  for (int64_t tile_rows : {1, 3, 32, 200}) {
    op.attrs.tile_rows = tile_rows;
    const Layout dense_csr = csr_from(op, [](int64_t, int64_t, int64_t, int64_t) { return true; });
    const Tensor out = fast_attention(op, dense_csr, q, k, v);
    CHECK(compare(out, reference_attention_dense(op, q, k, v)).max_rel <= tolerance(Precision::fp32));
    check_empty_rows_are_zero(op, dense_csr, out);
  }
  const Layout none = csr_from(op, [](int64_t, int64_t, int64_t, int64_t) { return false; });
  const Tensor zero = fast_attention(op, none, q, k, v);
  for (float x : zero.data) REQUIRE(x == 0.0f);
  const Layout no_blocks = bsr_from(op, 16, [](int64_t, int64_t, int64_t, int64_t) { return false; });
  for (float x : fast_attention(op, no_blocks, q, k, v).data) REQUIRE(x == 0.0f);
}

TEST_CASE("fast_attention: scattered rows spanning several key windows and score batches") {
  // kv_len 3000 with head_dim 16 spans several L2 key windows of the row-by-row path, and rows
  // of ~1200 keys need several score batches per window.
  Rng rng(42);
  Op op;
  op.shape = Shape{1, 2, 1, 150, 3000, 16};
  const Tensor q = random_tensor(rng, 1, 2, 150, 16, false), k = random_tensor(rng, 1, 1, 3000, 16, false),
               v = random_tensor(rng, 1, 1, 3000, 16, false);
  for (bool causal : {false, true}) {
    op.causal = causal;
    const Layout l = csr_from(op, [&](int64_t, int64_t, int64_t i, int64_t j) {
      Rng r(uint64_t(i) * 7919 + uint64_t(j) * 104729);
      return r.uniform() < 0.4f;
    });
    const Tensor ref = reference_attention(op, l, q, k, v);
    for (int threads : {1, 2})
      CHECK(compare(fast_attention(op, l, q, k, v, FastOptions{.threads = threads}), ref).max_rel <= tolerance(Precision::fp32));
  }
}

TEST_CASE("fast_attention: the gather path's row kernel on aligned and unaligned K/V, head dims 16 to 128, long rows") {
  // Scattered rows (the row-by-row gather path; on AVX-512 its 16-keys-per-step row kernel for
  // head_dim 16, 32, 64 and 128, the generic path for 48) with K and V placed 0, 4, 5 or 15 floats
  // past a 64-byte boundary, each its own offset (aligned: read in place; else each key window
  // copied to aligned scratch); rows of 0, 1, 16, 17 keys and rows of up to ~900 keys (several
  // score batches, several key windows, the last one short); causal, GQA, softcap, 1 and 2
  // threads; the output against the reference, the LSE against the same op on the Tensors.
  Rng rng(2525);
  const int64_t dims[] = {16, 32, 48, 64, 128};
  const int64_t offsets[][2] = {{0, 0}, {4, 4}, {5, 0}, {0, 15}, {15, 4}};
  for (int iteration = 0; iteration < 10; ++iteration) {
    Op op;
    const int64_t dim = dims[iteration % 5];
    const int64_t kv_len = dim <= 32 ? 2600 : 1300;  // > one key window at every head_dim
    op.shape = Shape{1, 4, 2, 40, kv_len, dim};
    op.causal = iteration % 3 == 1;
    if (iteration % 4 == 3) op.softcap = 2.5;
    const int64_t k_off = offsets[iteration % 5][0], v_off = offsets[(iteration + iteration / 5) % 5][1];
    const float keep = 0.1f + 0.25f * rng.uniform();
    const Layout layout = csr_from(op, [=](int64_t b, int64_t kvh, int64_t i, int64_t j) {
      if (i % 9 == 4) return false;                // empty rows
      if (i % 9 == 5) return j == 3;               // one key
      if (i % 9 == 6) return j % 97 == 1 && j < 97 * 16;  // 16 keys
      if (i % 9 == 7) return j % 89 == 2 && j < 89 * 17;  // 17 keys
      Rng r(uint64_t(b) * 131 + uint64_t(kvh) * 7919 + uint64_t(i) * 104729 + uint64_t(j) * 1299709);
      return r.uniform() < keep;
    });
    const Tensor q = random_tensor(rng, 1, 4, 40, dim, false), k = random_tensor(rng, 1, 2, kv_len, dim, false),
                 v = random_tensor(rng, 1, 2, kv_len, dim, false);
    // K and V copied `off` floats past a 64-byte boundary.
    auto placed = [](const Tensor& t, int64_t off, std::vector<float>& storage) {
      storage.assign(t.data.size() + 32, 0.0f);
      auto addr = reinterpret_cast<uintptr_t>(storage.data());
      float* at = storage.data() + ((64 - addr % 64) % 64) / sizeof(float) + off;
      std::copy(t.data.begin(), t.data.end(), at);
      return TensorView(at, t.shape);
    };
    std::vector<float> k_store, v_store;
    const TensorView kv_k = placed(k, k_off, k_store), kv_v = placed(v, v_off, v_store);
    CAPTURE(iteration);
    CAPTURE(k_off);
    CAPTURE(v_off);
    INFO(describe(op, "gather rows"));
    const Tensor ref = reference_attention(op, layout, q, k, v);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      Tensor out(1, 4, 40, dim);
      std::vector<float> lse(4 * 40);
      fast_attention_into(op, layout, q, kv_k, kv_v, out, lse.data(), FastOptions{.threads = threads});
      const ErrorStats e = compare(out, ref);
      REQUIRE(e.finite);
      CHECK(e.max_rel <= tolerance(Precision::fp32));
      check_empty_rows_are_zero(op, layout, out);
      // The LSE of each row from the plain (unaligned) tensors through the same kernel path:
      // equal within rounding, -inf exactly for the empty rows.
      Tensor out2(1, 4, 40, dim);
      std::vector<float> lse2(4 * 40);
      fast_attention_into(op, layout, q, k, v, out2, lse2.data(), FastOptions{.threads = threads});
      CHECK(compare(out2, ref).max_rel <= tolerance(Precision::fp32));
      for (size_t r = 0; r < lse.size(); ++r) {
        if (r % 40 % 9 == 4) {
          REQUIRE(lse[r] == -std::numeric_limits<float>::infinity());
          continue;
        }
        REQUIRE(std::isfinite(lse[r]));
        CHECK(std::abs(lse[r] - lse2[r]) <= 1e-4f * std::max(1.0f, std::abs(lse2[r])));
      }
    }
  }
}

TEST_CASE("fast_attention rejects inconsistent inputs") {
  Op op;
  op.shape = Shape{1, 2, 2, 8, 8, 4};
  const Tensor q(1, 2, 8, 4), k(1, 2, 8, 4), v(1, 2, 8, 4), wrong(1, 2, 8, 5);
  const Layout l = bsr_from(op, 4, [](int64_t, int64_t, int64_t, int64_t) { return true; });
  CHECK_THROWS_AS(fast_attention(op, l, wrong, k, v), Error);
  Op other = op;
  other.shape.seq_len = 9;
  const Tensor q9(1, 2, 9, 4);
  CHECK_THROWS_AS(fast_attention(other, l, q9, k, v), Error);
}

TEST_CASE("fast_attention checks large layouts on every thread before writing the output") {
  // 2 heads x 600 x 600 pairs: the pass over the lists runs in blocks of rows on the worker
  // threads; a descending pair or a key out of range in any block is rejected, and the output
  // buffer is left as it was.
  Rng rng(2528);
  Op op;
  op.shape = Shape{1, 2, 2, 600, 600, 8};
  const Tensor q = random_tensor(rng, 1, 2, 600, 8, false), k = random_tensor(rng, 1, 2, 600, 8, false),
               v = random_tensor(rng, 1, 2, 600, 8, false);
  const Layout good = csr_from(op, [](int64_t, int64_t, int64_t, int64_t) { return true; });
  for (int threads : {1, 2})
    CHECK(compare(fast_attention(op, good, q, k, v, FastOptions{.threads = threads}), reference_attention(op, good, q, k, v)).max_rel <=
          tolerance(Precision::fp32));
  for (int broken = 0; broken < 2; ++broken)
    for (int threads : {1, 2}) {
      Layout bad = good;
      HeadLayout& head = bad.heads[1];
      const int64_t row = 555;
      if (broken == 0)
        std::swap(head.idx[size_t(head.ptr[row] + 3)], head.idx[size_t(head.ptr[row] + 4)]);  // descending
      else
        head.idx[size_t(head.ptr[row + 1] - 1)] = 600;  // past kv_len
      Tensor out(1, 2, 600, 8);
      std::fill(out.data.begin(), out.data.end(), 7.0f);
      std::string message;
      try {
        fast_attention_into(op, bad, q, k, v, out, nullptr, FastOptions{.threads = threads});
      } catch (const Error& e) {
        message = e.what();
        CHECK(e.kind() == ErrorKind::invalid_input);
      }
      CAPTURE(broken);
      CAPTURE(threads);
      CHECK(message.find("layout indices must be ascending and in [0, 600)") != std::string::npos);
      for (float x : out.data) REQUIRE(x == 7.0f);
    }
}

TEST_CASE("fast_attention bf16/i8/i4 match the reference on the same rounded/quantized inputs") {
  Rng rng(99);
  for (Precision precision : {Precision::bf16, Precision::i8, Precision::i4}) {
    for (int iteration = 0; iteration < 24; ++iteration) {
      // Uniform data: no outliers, so per-tensor absmax scales use the integer range well.
      Case c = random_case(rng, true);
      c.op.precision = precision;
      c.op.quant_scheme = per_tensor_scheme();  // the historical scheme (others: test_quant_scheme.cpp)
      std::string kind;
      const Layout layout = random_layout(rng, c.op, kind);
      CAPTURE(iteration);
      INFO((std::string(to_string(precision)) + " " + describe(c.op, kind)));
      const Tensor out = fast_attention(c.op, layout, c.q, c.k, c.v, FastOptions{.threads = 1 + iteration % 2});
      REQUIRE(compare(out, out).finite);
      check_empty_rows_are_zero(c.op, layout, out);
      // (a) Same inputs the kernel sees: only accumulation order and the exp differ (and on
      // AMX tiles P's rounding to bf16: check_bf16_same_inputs).
      if (precision == Precision::bf16) {
        check_bf16_same_inputs(c.op, layout, c.q, c.k, c.v, out);
        continue;
      }
      const Scales s = resolve_scales(c.op, c.q, c.k, c.v);
      const bool integer = precision != Precision::bf16;
      const Tensor ref_same = reference_attention(c.op, layout, apply_precision(c.q, precision, s.q),
                                                  apply_precision(c.k, precision, s.k),
                                                  apply_precision(c.v, precision, s.v));
      CHECK(compare(out, ref_same).max_rel <= (integer ? 1e-4 : 1e-5));
      // (b), against the fp32 oracle, runs on the spec layouts below: rows of 1-4 keys with
      // head_dim 1 are not data on which i4 can promise its tolerance.
    }
  }
}

TEST_CASE("fast_attention i8 uses the op's explicit scales") {
  Rng rng(5);
  Op op;
  op.shape = Shape{1, 2, 1, 33, 47, 16};
  op.precision = Precision::i8;
  op.quant_scheme = per_tensor_scheme();
  op.scale_q = 0.02;
  op.scale_k = 0.03;
  op.scale_v = 0.025;
  const Tensor q = random_tensor(rng, 1, 2, 33, 16, true), k = random_tensor(rng, 1, 1, 47, 16, true),
               v = random_tensor(rng, 1, 1, 47, 16, true);
  const Layout l = bsr_from(op, 8, [](int64_t, int64_t, int64_t br, int64_t bc) { return (br + bc) % 3 != 1; });
  const Tensor out = fast_attention(op, l, q, k, v);
  const Tensor ref = reference_attention(op, l, apply_precision(q, Precision::i8, 0.02f),
                                         apply_precision(k, Precision::i8, 0.03f),
                                         apply_precision(v, Precision::i8, 0.025f));
  CHECK(compare(out, ref).max_rel <= 1e-4);
}

namespace {

// Calls fn(op, layout, data) for every spec on a few shapes (GQA, seq_len != kv_len, causal on
// and off), with layouts from build_layout and the synthetic data.
template <class Fn>
void for_each_spec_layout(Fn fn) {
  struct Config {
    int64_t batch, heads, kv_heads, seq_len, kv_len, head_dim;
  };
  const Config configs[] = {{1, 2, 2, 200, 200, 32}, {2, 4, 2, 130, 190, 24}, {1, 4, 1, 97, 61, 40}};
  for (const Config& cfg : configs)
    for (bool causal : {false, true})
      for (Spec spec : kAllSpecs) {
        Op op;
        op.shape = Shape{cfg.batch, cfg.heads, cfg.kv_heads, cfg.seq_len, cfg.kv_len, cfg.head_dim};
        op.causal = causal;
        // Small parameters so every spec is genuinely sparse at these lengths.
        op.attrs.window_size = 9;
        op.attrs.block_size = 16;
        op.attrs.keep_ratio = 0.3;
        op.attrs.window_blocks = 1;
        op.attrs.global_tokens = 8;
        op.attrs.nm_n = 2;
        op.attrs.nm_m = 8;
        op.attrs.topk_k = 12;
        op.attrs.lsh_buckets = 4;
        op.attrs.num_landmarks = 10;
        op.attrs.landmark_iters = 1;
        const SpecParams params = resolve_params(op, spec);
        const QKV data = synthetic_qkv(op.shape, 11);
        const Layout layout = build_layout(op, spec, params, &data.q, &data.k);
        INFO((std::string(to_string(spec)) + " " + describe(op, "")));
        fn(op, layout, data);
      }
}

}  // namespace

TEST_CASE("fast_attention fp32 on every spec's layout (build_layout)") {
  for_each_spec_layout([](const Op& op, const Layout& layout, const QKV& data) {
    const Tensor ref = reference_attention(op, layout, data.q, data.k, data.v);
    for (int threads : {1, 2}) {
      const Tensor out = fast_attention(op, layout, data.q, data.k, data.v, FastOptions{.threads = threads});
      CHECK(compare(out, ref).max_rel <= tolerance(Precision::fp32));
      check_empty_rows_are_zero(op, layout, out);
    }
  });
}

TEST_CASE("fast_attention bf16/i8/i4 on every spec's layout") {
  for_each_spec_layout([](const Op& fp32_op, const Layout& layout, const QKV& data) {
    const Tensor ref_fp32 = reference_attention(fp32_op, layout, data.q, data.k, data.v);
    for (Precision precision : {Precision::bf16, Precision::i8, Precision::i4}) {
      CAPTURE(precision);
      Op op = fp32_op;
      op.precision = precision;
      op.quant_scheme = per_tensor_scheme();
      const Tensor out = fast_attention(op, layout, data.q, data.k, data.v);
      // Tight: the same rounded/quantized inputs through the oracle (bf16: check_bf16_same_inputs).
      if (precision == Precision::bf16) check_bf16_same_inputs(op, layout, data.q, data.k, data.v, out);
      const Scales s = resolve_scales(op, data.q, data.k, data.v);
      const Tensor ref_same = reference_attention(op, layout, apply_precision(data.q, precision, s.q),
                                                  apply_precision(data.k, precision, s.k),
                                                  apply_precision(data.v, precision, s.v));
      if (precision != Precision::bf16) CHECK(compare(out, ref_same).max_rel <= 1e-4);
      // Loose: the fp32 oracle at the documented tolerance (i4: see the next test case).
      if (precision != Precision::i4) CHECK(compare(out, ref_fp32).max_rel <= tolerance(precision));
    }
  });
}


TEST_CASE("fast_attention_into writes every element of the output, whatever the buffer held") {
  // fast_attention_into's contract (out overwritten) is what lets fast_attention skip nothing
  // but the value-initialization of its own tensor: every path (block and CSR layouts, empty and
  // causal-empty rows, every precision and quantization scheme, kv_len 0, 1 and 2 threads) must
  // write every element, empty rows as exactly 0 with lse -inf. The buffers start as NaN, so a
  // row left unwritten fails the comparison; the same op through fast_attention gives the same
  // bits.
  Rng rng(2529);
  const QuantScheme schemes[] = {per_tensor_scheme(), smooth_scheme()};
  for (int iteration = 0; iteration < 48; ++iteration) {
    Case c = random_case(rng, true);
    std::string kind;
    const Layout layout = random_layout(rng, c.op, kind);
    const Precision precisions[] = {Precision::fp32, Precision::bf16, Precision::i8, Precision::i4};
    c.op.precision = precisions[iteration % 4];
    const int64_t d = c.op.shape.head_dim;
    c.op.quant_scheme = schemes[(iteration / 4) % 2 == 1 && (d & (d - 1)) == 0 ? 1 : 0];  // smooth rotates: 2^n dims
    CAPTURE(iteration);
    INFO((std::string(to_string(c.op.precision)) + " " + describe(c.op, kind)));
    const Tensor want = fast_attention(c.op, layout, c.q, c.k, c.v, FastOptions{.threads = 1});
    const int64_t rows = c.op.shape.batch * c.op.shape.heads * c.op.shape.seq_len;
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      Tensor out(c.op.shape.batch, c.op.shape.heads, c.op.shape.seq_len, c.op.shape.head_dim);
      std::fill(out.data.begin(), out.data.end(), std::numeric_limits<float>::quiet_NaN());
      std::vector<float> lse(size_t(rows), std::numeric_limits<float>::quiet_NaN());
      fast_attention_into(c.op, layout, c.q, c.k, c.v, out, lse.data(), FastOptions{.threads = threads});
      for (size_t e = 0; e < out.data.size(); ++e) REQUIRE(std::bit_cast<uint32_t>(out.data[e]) == std::bit_cast<uint32_t>(want.data[e]));
      for (float x : lse) REQUIRE(!std::isnan(x));
      check_empty_rows_are_zero(c.op, layout, out);
    }
  }
  // An output of 2 MiB (fast_attention maps its pages before the fill: outputs of 1 MiB and
  // more), window rows with some rows empty: every element is the reference's, empty rows 0.
  {
    Op big;
    big.shape = Shape{1, 2, 2, 4096, 4096, 64};
    const Tensor q = random_tensor(rng, 1, 2, 4096, 64, false), k = random_tensor(rng, 1, 2, 4096, 64, false),
                 v = random_tensor(rng, 1, 2, 4096, 64, false);
    const Layout window = csr_from(big, [](int64_t, int64_t, int64_t i, int64_t j) { return i % 97 != 5 && std::abs(i - j) <= 8; });
    const Tensor out = fast_attention(big, window, q, k, v, FastOptions{.threads = 2});
    REQUIRE(out.data.size() == size_t(2 * 4096 * 64));
    CHECK(compare(out, reference_attention(big, window, q, k, v)).max_rel <= tolerance(Precision::fp32));
    check_empty_rows_are_zero(big, window, out);
  }
  // No keys at all (kv_len 0): every row empty.
  Op op;
  op.shape = Shape{1, 2, 1, 9, 0, 8};
  const Tensor q = random_tensor(rng, 1, 2, 9, 8, false), k(1, 1, 0, 8), v(1, 1, 0, 8);
  const Layout none = csr_from(op, [](int64_t, int64_t, int64_t, int64_t) { return false; });
  Tensor out(1, 2, 9, 8);
  std::fill(out.data.begin(), out.data.end(), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> lse(18, 0.0f);
  fast_attention_into(op, none, q, k, v, out, lse.data());
  for (float x : out.data) REQUIRE(x == 0.0f);
  for (float x : lse) REQUIRE(x == -std::numeric_limits<float>::infinity());
}

namespace {

// Threads of this process (Linux: /proc/self/task).
int process_threads() {
  int count = 0;
  DIR* dir = opendir("/proc/self/task");
  REQUIRE(dir != nullptr);
  while (const dirent* e = readdir(dir))
    if (e->d_name[0] != '.') ++count;
  closedir(dir);
  return count;
}

}  // namespace

TEST_CASE("fast_attention does not restart OpenBLAS's threads once a tool stopped them") {
  // Tools stop OpenBLAS's idle worker threads when they start (stop_idle_blas_threads: they spin
  // for ~0.1 s on the cores the kernel needs); setting OpenBLAS's thread count restarts them, so
  // the forward sets it only when its cblas tiles may run, and not when it is 1 already.
  // Single-threaded kernel runs, so that the only threads besides this one would be OpenBLAS's;
  // the fused tiles and the cblas tiles (SATTN_CPU_BLOCK_KERNEL=gemm, SATTN_CPU_CSR_KERNEL=legacy)
  // both match the reference.
  Rng rng(2530);
  Op op;
  op.shape = Shape{1, 2, 2, 200, 200, 32};
  const Tensor q = random_tensor(rng, 1, 2, 200, 32, false), k = random_tensor(rng, 1, 2, 200, 32, false),
               v = random_tensor(rng, 1, 2, 200, 32, false);
  const Layout block = bsr_from(op, 16, [](int64_t, int64_t, int64_t br, int64_t bc) { return (br + bc) % 3 != 0; });
  const Layout rows = csr_from(op, [](int64_t, int64_t, int64_t i, int64_t j) { return std::abs(i - j) <= 40; });
  stop_idle_blas_threads();
  const int before = process_threads();
  for (const Layout* layout : {&block, &rows}) {
    const Tensor out = fast_attention(op, *layout, q, k, v, FastOptions{.threads = 1});
    CHECK(compare(out, reference_attention(op, *layout, q, k, v)).max_rel <= tolerance(Precision::fp32));
    CHECK(process_threads() == before);
  }
  const ScopedVar gemm("SATTN_CPU_BLOCK_KERNEL", "gemm");
  const ScopedVar legacy("SATTN_CPU_CSR_KERNEL", "legacy");
  for (const Layout* layout : {&block, &rows}) {
    CHECK(compare(fast_attention(op, *layout, q, k, v, FastOptions{.threads = 1}), reference_attention(op, *layout, q, k, v)).max_rel <=
          tolerance(Precision::fp32));
    CHECK(process_threads() == before);
  }
}

TEST_CASE("fast_attention bf16 on AMX tiles: shapes, tails, causal, empty rows, GQA, softcap, threads") {
  // On a CPU with AMX (cpu_isa() amx) the qualifying cases run the AMX tiles; elsewhere, and for
  // head dims that are not multiples of 32 or blocks under 16 rows, the same cases run the fp32
  // tiles on bf16-rounded copies (the fallback). Both against the reference on the same inputs
  // (check_bf16_same_inputs) and the fp32 oracle at the documented bf16 tolerance.
  Rng rng(2025);
  int amx_cases = 0, fallback_cases = 0;
  double amx_worst = 0;
  const int64_t dims[] = {32, 64, 128, 64, 48, 96};
  const int64_t block_sizes[] = {16, 32, 64, 64, 8};
  for (int iteration = 0; iteration < 40; ++iteration) {
    Op op;
    Shape& s = op.shape;
    s.batch = 1 + int64_t(rng.below(2));
    s.kv_heads = 1 + int64_t(rng.below(2));
    s.heads = s.kv_heads * (1 + int64_t(rng.below(3)));  // GQA groups 1-3
    s.seq_len = 1 + int64_t(rng.below(260));               // tails: not a multiple of 16 / 32 / 64
    s.kv_len = rng.below(3) == 0 ? s.seq_len : 1 + int64_t(rng.below(300));
    s.head_dim = dims[iteration % 6];
    op.causal = rng.below(2) == 1;
    op.precision = Precision::bf16;
    if (iteration % 7 == 3) op.softcap = 5.0;
    const int64_t bs = block_sizes[rng.below(5)];
    const float keep = rng.below(3) == 0 ? 1.0f : 0.3f + 0.5f * rng.uniform();
    const uint64_t salt = rng.next_u64();
    // Random kept blocks (adjacent runs and gathered single blocks), and every fifth block row
    // empty (rows with no key: output 0).
    const Layout layout = bsr_from(op, bs, [=](int64_t b, int64_t kvh, int64_t br, int64_t bc) {
      if (br % 5 == 4) return false;
      Rng r(salt ^ uint64_t(b * 1000003 + kvh * 10007 + br * 101 + bc));
      return keep >= 1.0f || r.uniform() < keep;
    });
    const Tensor q = random_tensor(rng, s.batch, s.heads, s.seq_len, s.head_dim, rng.below(2) == 0),
                 k = random_tensor(rng, s.batch, s.kv_heads, s.kv_len, s.head_dim, true),
                 v = random_tensor(rng, s.batch, s.kv_heads, s.kv_len, s.head_dim, rng.below(2) == 0);
    const bool amx = fast::amx_bf16_tiles(op, layout);
    CAPTURE(iteration);
    const std::string what = describe(op, "bsr bs=" + std::to_string(bs)) + (amx ? " (amx tiles)" : " (fp32 tiles)");
    INFO(what);
    // The AMX tiles run exactly when the amx copy runs and the op qualifies.
    CHECK(amx == (cpu_isa() == CpuIsa::amx && s.head_dim % 32 == 0 && bs >= 16));
    const Tensor ref_fp32 = reference_attention(op, layout, q, k, v);
    for (int threads : {1, 2}) {
      const Tensor out = fast_attention(op, layout, q, k, v, FastOptions{.threads = threads});
      REQUIRE(compare(out, out).finite);
      check_empty_rows_are_zero(op, layout, out);
      const double err = check_bf16_same_inputs(op, layout, q, k, v, out);
      if (amx) amx_worst = std::max(amx_worst, err);
      CHECK(compare(out, ref_fp32).max_rel <= tolerance(Precision::bf16));
    }
    (amx ? amx_cases : fallback_cases) += 1;
  }
  MESSAGE("bf16 tiles: " << amx_cases << " cases on AMX, " << fallback_cases << " on the fp32 fallback (cpu_isa "
                         << to_string(cpu_isa()) << ")");
  if (cpu_isa() == CpuIsa::amx) {
    CHECK(amx_cases >= 15);
    // The AMX tiles really ran: P's rounding to bf16 shows against the same-input reference
    // (the fp32 tiles stay within 1e-5 of it).
    CHECK(amx_worst > 1e-5);
  } else {
    CHECK(amx_cases == 0);
  }
}
