// Fast kernel, the integer datapath of a quantization scheme other than per-tensor
// (sattn-quant(7)): one query row at a time over its keys, both layout kinds. Compiled once per
// ISA like the other kernel sources (kernel_fast_internal.hpp).
//   scores: int8 x int8 dot products (exact in int32) times the row's and the key's scales, plus
//           the mean-Q bias in fp32 (smooth_q), in the exp2 domain. The bias of a key depends only
//           on the row's query block, so it is computed once per (query block, key) and cached
//           (Scratch::quant_bias), not once per (row, key);
//   P:      exp2(s - row max), quantized to [0, p_max] (pv i8 / fix16) with round half to even;
//   P.V:    the integer products pcode * vcode (|.| < 2^30) accumulated in double, which is exact
//           (every partial sum an integer below 2^53: kExactKeys keys at most per flush into the
//           int64 total), so the result is the int64 sum of sattn-quant(7) bit for bit; V codes
//           are read as floats (Problem::quant_v, exact for int16); keys with P = 0 are skipped.
// Two passes over a row's scores (max, then P) so that P is quantized against the row's final
// max, as the same-quantized reference does.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"
#include "core/quant_scheme.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace sattn::fast {
inline namespace SATTN_CPU_ISA_NS {

namespace {

inline int32_t dot_codes(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t sum = 0;  // exact: |a|, |b| <= 127
  for (int64_t c = 0; c < n; ++c) sum += int32_t(a[c]) * int32_t(b[c]);
  return sum;
}

// out[t] = float(q . k_base[keys[t]]) * scale[keys[t]] * row_scale: the integer dot products
// (exact in int32) of a row against its keys. With AVX-512BW, four keys at a time share the
// widened q and one reduction of their four accumulators.
inline void code_scores(const int8_t* q, const int8_t* k_base, const int32_t* keys, int64_t n, int64_t dim,
                        const float* k_scale, float row_scale, float* out) {
  int64_t t = 0;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  for (; t + 4 <= n; t += 4) {
    const int8_t* k[4];
    for (int u = 0; u < 4; ++u) k[u] = k_base + int64_t(keys[t + u]) * dim;
    __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int64_t c = 0; c < dim; c += 32) {
      const __mmask32 m = dim - c >= 32 ? ~__mmask32(0) : (__mmask32(1) << (dim - c)) - 1;
      const __m512i qv = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, q + c));
      for (int u = 0; u < 4; ++u)
        acc[u] = _mm512_add_epi32(acc[u], _mm512_madd_epi16(qv, _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, k[u] + c))));
    }
    // Reduce the four accumulators together: pairwise interleaved sums, then the 128-bit lanes
    // (all-lanes masked forms: GCC 12 warns about the plain ones' undefined pass-through).
    const __mmask16 all16 = 0xffff;
    const __mmask8 all8 = 0xff;
    const __m512i s01 = _mm512_add_epi32(_mm512_maskz_unpacklo_epi32(all16, acc[0], acc[1]),
                                         _mm512_maskz_unpackhi_epi32(all16, acc[0], acc[1]));
    const __m512i s23 = _mm512_add_epi32(_mm512_maskz_unpacklo_epi32(all16, acc[2], acc[3]),
                                         _mm512_maskz_unpackhi_epi32(all16, acc[2], acc[3]));
    const __m512i s = _mm512_add_epi32(_mm512_maskz_unpacklo_epi64(all8, s01, s23), _mm512_maskz_unpackhi_epi64(all8, s01, s23));
    const __m256i h = _mm256_add_epi32(_mm512_maskz_extracti64x4_epi64(0xf, s, 0), _mm512_maskz_extracti64x4_epi64(0xf, s, 1));
    const __m128i sums = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));  // keys t..t+3
    alignas(16) int32_t d4[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(d4), sums);
    for (int u = 0; u < 4; ++u) out[t + u] = float(d4[u]) * (row_scale * k_scale[keys[t + u]]);
  }
#endif
  for (; t < n; ++t) out[t] = float(dot_codes(q, k_base + int64_t(keys[t]) * dim, dim)) * (row_scale * k_scale[keys[t]]);
}

// Keys per double accumulation before it is flushed into the int64 total: each product is below
// 2^30 in magnitude, so up to 2^22 of them sum below 2^52, exactly representable. 4096 keeps the
// flush cheap and lets a test reach it (tests/unit/cpu/test_quant_scheme.cpp).
constexpr int64_t kExactKeys = 4096;

#if defined(__AVX512F__)
// 8 floats widened to double (the all-lanes masked form: GCC 12 warns about the plain
// _mm512_cvtps_pd's undefined pass-through operand).
inline __m512d widen8(const float* x) { return _mm512_maskz_cvtps_pd(__mmask8(0xff), _mm256_loadu_ps(x)); }
#endif

// acc[0..dim) += sum_t p[t] * V[keys[t]] in double, p and V integers held in floats (exact).
inline void accumulate_exact(double* acc, const float* p, const float* v_base, const int32_t* keys, int64_t n,
                             int64_t dim) {
  int64_t c = 0;
#if defined(__AVX512F__)
  // 64 channels = 8 accumulators of 8 doubles kept in registers across the keys, then 32.
  for (; c + 64 <= dim; c += 64) {
    __m512d a[8];
    for (int u = 0; u < 8; ++u) a[u] = _mm512_loadu_pd(acc + c + 8 * u);
    for (int64_t t = 0; t < n; ++t) {
      const float* vr = v_base + int64_t(keys[t]) * dim + c;
      const __m512d pv = _mm512_set1_pd(double(p[t]));
      for (int u = 0; u < 8; ++u) a[u] = _mm512_fmadd_pd(pv, widen8(vr + 8 * u), a[u]);
    }
    for (int u = 0; u < 8; ++u) _mm512_storeu_pd(acc + c + 8 * u, a[u]);
  }
  for (; c + 32 <= dim; c += 32) {
    __m512d a0 = _mm512_loadu_pd(acc + c), a1 = _mm512_loadu_pd(acc + c + 8);
    __m512d a2 = _mm512_loadu_pd(acc + c + 16), a3 = _mm512_loadu_pd(acc + c + 24);
    for (int64_t t = 0; t < n; ++t) {
      const float* vr = v_base + int64_t(keys[t]) * dim + c;
      const __m512d pv = _mm512_set1_pd(double(p[t]));
      a0 = _mm512_fmadd_pd(pv, widen8(vr), a0);
      a1 = _mm512_fmadd_pd(pv, widen8(vr + 8), a1);
      a2 = _mm512_fmadd_pd(pv, widen8(vr + 16), a2);
      a3 = _mm512_fmadd_pd(pv, widen8(vr + 24), a3);
    }
    _mm512_storeu_pd(acc + c, a0);
    _mm512_storeu_pd(acc + c + 8, a1);
    _mm512_storeu_pd(acc + c + 16, a2);
    _mm512_storeu_pd(acc + c + 24, a3);
  }
#elif SATTN_FAST_AVX2
  for (; c + 16 <= dim; c += 16) {
    __m256d a0 = _mm256_loadu_pd(acc + c), a1 = _mm256_loadu_pd(acc + c + 4);
    __m256d a2 = _mm256_loadu_pd(acc + c + 8), a3 = _mm256_loadu_pd(acc + c + 12);
    for (int64_t t = 0; t < n; ++t) {
      const float* vr = v_base + int64_t(keys[t]) * dim + c;
      const __m256d pv = _mm256_set1_pd(double(p[t]));
      a0 = _mm256_fmadd_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(vr)), a0);
      a1 = _mm256_fmadd_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(vr + 4)), a1);
      a2 = _mm256_fmadd_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(vr + 8)), a2);
      a3 = _mm256_fmadd_pd(pv, _mm256_cvtps_pd(_mm_loadu_ps(vr + 12)), a3);
    }
    _mm256_storeu_pd(acc + c, a0);
    _mm256_storeu_pd(acc + c + 4, a1);
    _mm256_storeu_pd(acc + c + 8, a2);
    _mm256_storeu_pd(acc + c + 12, a3);
  }
#endif
  for (; c < dim; ++c) {  // the tail, and the whole row without SIMD: the same exact sums
    double a = acc[c];
    for (int64_t t = 0; t < n; ++t) a += double(p[t]) * double(v_base[int64_t(keys[t]) * dim + c]);
    acc[c] = a;
  }
}

template <class T>
T* grown(std::vector<T>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}

}  // namespace

void run_quant_tile(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t tile) {
  const QuantizedQKV& z = *p.quant;
  const Layout& layout = *p.layout;
  const int64_t tile_height = layout.block ? layout.block_size : p.tile_rows;
  const int64_t row0 = tile * tile_height;
  const int64_t rows = std::min(tile_height, p.seq_len - row0);
  const int64_t kvh = h / p.group, d = p.dim;
  const HeadLayout& head = layout.head(b, kvh);
  const int64_t k_row0 = z.k_row(b, kvh, 0);
  const float* v_scale = z.v_scale.data() + (b * p.kv_heads + kvh) * d;
  const int8_t* k_codes = z.k_codes.data() + k_row0 * d;
  const float* k_smooth = z.scheme.smooth_q ? z.k_smooth.data() + k_row0 * d : nullptr;
  const float* v_head = (z.p_max > 0 ? p.quant_v : z.v_dequant.data()) + k_row0 * d;
  double* acc_d = grown(scratch.quant_acc, d);
  int64_t* acc_i = grown(scratch.quant_acc_int, d);
  float* acc_f = grown(scratch.acc, d);
  // The mean-Q bias cache: quant_bias[j] holds mean . k'_j * score_scale for the query block whose
  // stamp quant_bias_stamp[j] carries (one stamp per (batch, head, block) met by this worker).
  float* bias = k_smooth ? grown(scratch.quant_bias, p.kv_len) : nullptr;
  if (k_smooth && int64_t(scratch.quant_bias_stamp.size()) < p.kv_len)
    scratch.quant_bias_stamp.resize(size_t(p.kv_len), 0);
  int32_t* bias_stamp = k_smooth ? scratch.quant_bias_stamp.data() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = row0 + r;
    const int64_t qr = z.q_row(b, h, i);
    const int8_t* qc = z.q_codes.data() + qr * d;
    const float* mean = k_smooth ? z.mean_of(b, h, i) : nullptr;
    if (mean && mean != scratch.quant_mean) {  // a new query block: the cached biases are stale
      scratch.quant_mean = mean;
      if (++scratch.quant_stamp == std::numeric_limits<int32_t>::max()) {
        std::fill(scratch.quant_bias_stamp.begin(), scratch.quant_bias_stamp.end(), 0);
        scratch.quant_stamp = 1;
      }
    }
    const auto [keys, key_count] = row_keys(layout, head, tile, i, scratch);
    float* out = p.out_row(b, h, i);
    float* lse = p.lse_row(b, h, i);
    if (key_count == 0) {  // no allowed key: output 0, log-sum-exp -inf
      std::fill(out, out + d, 0.0f);
      if (lse) *lse = kNegInf;
      continue;
    }
    float* scores = grown(scratch.scores, key_count);
    const float row_scale = z.q_scale[size_t(qr)] * p.score_scale;
    const float* k_scale = z.k_scale.data() + k_row0;
    // Softcap with smooth_k: q . mean(K) added back before the cap (exact only under softmax).
    const float row_bias = z.row_bias.empty() ? 0.0f : z.row_bias[size_t(qr)] * p.score_scale;
    code_scores(qc, k_codes, keys, key_count, d, k_scale, row_scale, scores);
    if (mean) {  // the mean-Q term in fp32, once per (query block, key): the keys not cached yet
      const int32_t stamp = scratch.quant_stamp;
      int32_t* missing = grown(scratch.quant_keys, key_count);
      int64_t n_missing = 0;
      for (int64_t t = 0; t < key_count; ++t) {
        missing[n_missing] = keys[t];
        n_missing += bias_stamp[keys[t]] != stamp;
      }
      if (n_missing > 0) {
        float* fresh = grown(scratch.quant_p, n_missing);
        gathered_scores(mean, k_smooth, missing, n_missing, d, p.score_scale, fresh);
        for (int64_t t = 0; t < n_missing; ++t) {
          bias[missing[t]] = fresh[t];
          bias_stamp[missing[t]] = stamp;
        }
      }
      for (int64_t t = 0; t < key_count; ++t) scores[t] += bias[keys[t]];
    }
    if (row_bias != 0.0f)
      for (int64_t t = 0; t < key_count; ++t) scores[t] += row_bias;
    apply_softcap(scores, key_count, p.softcap2);
    const float m = row_max(scores, key_count);
    const float sum_exp = exp2_shift_sum(scores, key_count, m);  // scores now hold 2^(s - m)
    if (z.p_max > 0) {
      // P codes: round half to even of e * p_max (0 <= . <= p_max < 2^22: the 1.5 * 2^23 trick
      // rounds exactly like nearbyint in the default mode); keys whose code is 0 are dropped.
      float* pq = grown(scratch.quant_p, key_count);
      int32_t* kept = grown(scratch.quant_keys, key_count);
      const float p_max = float(z.p_max);
      int64_t n = 0;
      double sum_p = 0;  // exact: an integer below 2^53
      for (int64_t t = 0; t < key_count; ++t) {
        const float code = (scores[t] * p_max + 12582912.0f) - 12582912.0f;
        pq[n] = code;
        kept[n] = keys[t];
        sum_p += double(code);
        n += code > 0.0f;
      }
      std::fill(acc_i, acc_i + d, 0);
      for (int64_t t0 = 0; t0 < n; t0 += kExactKeys) {
        std::fill(acc_d, acc_d + d, 0.0);
        accumulate_exact(acc_d, pq + t0, v_head, kept + t0, std::min(kExactKeys, n - t0), d);
        for (int64_t c = 0; c < d; ++c) acc_i[c] += int64_t(acc_d[c]);
      }
      // sum_p >= p_max: the row's largest score gives P = 1.
      const double inv = 1.0 / sum_p;
      for (int64_t c = 0; c < d; ++c) out[c] = float(double(acc_i[c]) * double(v_scale[c]) * inv);
    } else {
      std::fill(acc_f, acc_f + d, 0.0f);
      gathered_accumulate(acc_f, scores, v_head, keys, key_count, d);
      const float inv = 1.0f / sum_exp;
      for (int64_t c = 0; c < d; ++c) out[c] = acc_f[c] * inv;
    }
    // Scores live in the exp2 domain: ln(sum e^s) = ln2 * (max2 + log2(sum)).
    if (lse) *lse = float(0.6931471805599453 * (double(m) + std::log2(double(sum_exp))));
  }
}

}  // inline namespace SATTN_CPU_ISA_NS
}  // namespace sattn::fast
