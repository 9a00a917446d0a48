// SIMD building blocks of the fast CPU kernel (kernel_fast_*.cpp only: those files are built with
// -march=native when SATTN_NATIVE is on). Each helper has an AVX2+FMA body and a scalar twin with
// the same arithmetic, used when the target has no AVX2.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SATTN_FAST_AVX2 1
#else
#define SATTN_FAST_AVX2 0
#endif

namespace sattn::fast {
inline namespace SATTN_CPU_ISA_NS {  // kernel_fast_internal.hpp: one copy per ISA

inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();
inline constexpr float kLog2e = 1.4426950408889634f;

// 2^x for x <= 0 (scores minus their running max). Range reduction x = n + f, |f| <= 1/2, then a
// degree-6 Taylor polynomial of 2^f (truncation error < 1.3e-7 relative) and exponent-field
// scaling. x < -126 (including -inf, a masked score) gives exactly 0.
// The polynomial's coefficients, highest degree first (Horner); every exp2 of the fast kernels
// (scalar, AVX2, and the fused tile's AVX-512 and portable copies) evaluates this one.
inline constexpr float kExp2Poly[7] = {1.5403530393381606e-4f, 1.3333558146428443e-3f, 9.6181291076284772e-3f,
                                       5.5504108664821580e-2f, 2.4022650695910071e-1f, 6.9314718055994531e-1f,
                                       1.0f};

inline float exp2_scalar(float x) {
  if (!(x >= -126.0f)) return 0.0f;
  x = std::min(x, 126.0f);
  // Round to nearest with the 1.5*2^23 trick (exact for |x| < 2^22, default rounding mode).
  const float n = (x + 12582912.0f) - 12582912.0f;
  const float f = x - n;
  float p = kExp2Poly[0];
  for (int i = 1; i < 7; ++i) p = p * f + kExp2Poly[i];
  const auto exponent = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  static_assert(sizeof(two_n) == sizeof(exponent));
  __builtin_memcpy(&two_n, &exponent, sizeof two_n);
  return p * two_n;
}

#if SATTN_FAST_AVX2
inline __m256 exp2_avx2(__m256 x) {
  const __m256 too_small = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(126.0f));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(kExp2Poly[0]);
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(kExp2Poly[i]));
  const __m256i exponent =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
  return _mm256_andnot_ps(too_small, result);  // masked / underflowing lanes: exactly 0
}

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float horizontal_max(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

#if defined(__AVX512F__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers pass _mm512_undefined_ps() as the unused merge source of unmasked
// intrinsics (_mm512_roundscale_ps), which -Wuninitialized reports once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The AVX-512 bodies shared by the fused tile (kernel_fast_fused.cpp) and the AMX tiles
// (kernel_fast_amx.cpp).
// 2^x for x <= 0: kExp2Poly as in exp2_avx2, with scalef doing the exponent scaling; x < -126
// (including -inf) gives exactly 0. No clamp before the rounding: a lane below -126 (-inf: the
// fraction is NaN) is zeroed by the mask.
inline __m512 exp2_avx512(__m512 x) {
  const __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_GE_OQ);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(kExp2Poly[0]);
  for (int i = 1; i < 7; ++i) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[i]));
  return _mm512_maskz_scalef_ps(ok, p, n);
}
// Lanes whose index (lane + first) is below `limit` set to -inf.
inline __m512 mask_below_avx512(__m512 x, int64_t first, int64_t limit) {
  const __m512i lane = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                        _mm512_set1_epi32(int32_t(first)));
  const __mmask16 below = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32(int32_t(limit)));
  return _mm512_mask_mov_ps(x, below, _mm512_set1_ps(kNegInf));
}
// -inf lanes of m replaced by 0 (a lane that has seen no allowed key).
inline __m512 finite_or_zero_avx512(__m512 m) {
  const __mmask16 neg_inf = _mm512_cmp_ps_mask(m, _mm512_set1_ps(kNegInf), _CMP_EQ_OQ);
  return _mm512_mask_mov_ps(m, neg_inf, _mm512_setzero_ps());
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// max(x[0..n)); -inf for n == 0 or an all-masked row.
inline float row_max(const float* x, int64_t n) {
  float m = kNegInf;
  int64_t c = 0;
#if SATTN_FAST_AVX2
  __m256 mv = _mm256_set1_ps(kNegInf);
  for (; c + 8 <= n; c += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + c));
  m = horizontal_max(mv);
#endif
  for (; c < n; ++c) m = std::max(m, x[c]);
  return m;
}

// x[c] = 2^(x[c] - m) in place; returns the sum. Masked entries (-inf) become 0.
inline float exp2_shift_sum(float* x, int64_t n, float m) {
  int64_t c = 0;
  float sum = 0.0f;
#if SATTN_FAST_AVX2
  const __m256 mv = _mm256_set1_ps(m);
  __m256 sv = _mm256_setzero_ps();
  for (; c + 8 <= n; c += 8) {
    const __m256 e = exp2_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + c), mv));
    _mm256_storeu_ps(x + c, e);
    sv = _mm256_add_ps(sv, e);
  }
  sum = horizontal_sum(sv);
#endif
  for (; c < n; ++c) sum += (x[c] = exp2_scalar(x[c] - m));
  return sum;
}

inline void scale_inplace(float* x, int64_t n, float a) {
  int64_t c = 0;
#if SATTN_FAST_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(x + c, _mm256_mul_ps(av, _mm256_loadu_ps(x + c)));
#endif
  for (; c < n; ++c) x[c] *= a;
}

#if SATTN_FAST_AVX2
// Lane mask for the last, partial 8-float chunk of a row of `dim` floats.
inline __m256i tail_mask(int64_t dim) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(dim & 7)), lane);
}

// Eight horizontal sums packed into one vector: lane u = sum of the lanes of a[u].
inline __m256 horizontal_sums8(const __m256 a[8]) {
  const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
  // s0123 = [a0 a1 a2 a3 | a0 a1 a2 a3] partial halves (low lane: elements 0-3, high: 4-7).
  const __m256 low = _mm256_permute2f128_ps(s0123, s4567, 0x20);
  const __m256 high = _mm256_permute2f128_ps(s0123, s4567, 0x31);
  return _mm256_add_ps(low, high);
}
#endif

// scores[t] = scale * dot(q, K[keys[t]]) for t < n; K rows are `dim` floats, contiguous.
inline void gathered_scores(const float* q, const float* k_base, const int32_t* keys, int64_t n, int64_t dim,
                            float scale, float* scores) {
  int64_t t = 0;
#if SATTN_FAST_AVX2
  const int64_t full = dim & ~int64_t{7};
  const __m256i mask = tail_mask(dim);
  const __m256 scale_v = _mm256_set1_ps(scale);
  // Eight keys at a time: eight independent FMA chains hide the FMA latency, and the eight
  // horizontal sums share one hadd tree. A last partial group repeats its last key.
  for (; t < n; t += 8) {
    const float* k_row[8];
    __m256 acc[8];
    for (int u = 0; u < 8; ++u) {
      k_row[u] = k_base + int64_t(keys[std::min(t + u, n - 1)]) * dim;
      acc[u] = _mm256_setzero_ps();
    }
    int64_t c = 0;
    for (; c < full; c += 8) {
      const __m256 qv = _mm256_loadu_ps(q + c);
      for (int u = 0; u < 8; ++u) acc[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k_row[u] + c), acc[u]);
    }
    if (c < dim) {
      const __m256 qv = _mm256_maskload_ps(q + c, mask);
      for (int u = 0; u < 8; ++u) acc[u] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k_row[u] + c, mask), acc[u]);
    }
    const __m256 result = _mm256_mul_ps(horizontal_sums8(acc), scale_v);
    if (t + 8 <= n) {
      _mm256_storeu_ps(scores + t, result);
    } else {
      alignas(32) float last[8];
      _mm256_store_ps(last, result);
      std::copy(last, last + (n - t), scores + t);
      t = n;
      break;
    }
  }
#endif
  for (; t < n; ++t) {
    const float* kr = k_base + int64_t(keys[t]) * dim;
    float s = 0.0f;
    for (int64_t c = 0; c < dim; ++c) s += q[c] * kr[c];
    scores[t] = s * scale;
  }
}

// acc[0..dim) += sum_t p[t] * V[keys[t]]. Accumulator blocks stay in registers across keys.
inline void gathered_accumulate(float* acc, const float* p, const float* v_base, const int32_t* keys, int64_t n,
                                int64_t dim) {
  int64_t c = 0;
#if SATTN_FAST_AVX2
  // 64 floats = 8 independent FMA chains per key: enough to keep both FMA pipes busy.
  for (; c + 64 <= dim; c += 64) {
    __m256 a[8];
    for (int u = 0; u < 8; ++u) a[u] = _mm256_loadu_ps(acc + c + 8 * u);
    for (int64_t t = 0; t < n; ++t) {
      const float* vr = v_base + int64_t(keys[t]) * dim + c;
      const __m256 pv = _mm256_broadcast_ss(p + t);
      for (int u = 0; u < 8; ++u) a[u] = _mm256_fmadd_ps(pv, _mm256_loadu_ps(vr + 8 * u), a[u]);
    }
    for (int u = 0; u < 8; ++u) _mm256_storeu_ps(acc + c + 8 * u, a[u]);
  }
  for (; c + 8 <= dim; c += 8) {
    __m256 a0 = _mm256_loadu_ps(acc + c);
    for (int64_t t = 0; t < n; ++t)
      a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + t), _mm256_loadu_ps(v_base + int64_t(keys[t]) * dim + c), a0);
    _mm256_storeu_ps(acc + c, a0);
  }
  if (c < dim) {
    const __m256i mask = tail_mask(dim);
    __m256 a0 = _mm256_maskload_ps(acc + c, mask);
    for (int64_t t = 0; t < n; ++t)
      a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + t), _mm256_maskload_ps(v_base + int64_t(keys[t]) * dim + c, mask),
                           a0);
    _mm256_maskstore_ps(acc + c, mask, a0);
    c = dim;
  }
#endif
  for (; c < dim; ++c) {
    float a = acc[c];
    for (int64_t t = 0; t < n; ++t) a += p[t] * v_base[int64_t(keys[t]) * dim + c];
    acc[c] = a;
  }
}

// The FlashAttention update of one query row against a batch of n scores (exp2 domain; masked
// entries -inf): rescales the row's accumulator and sum to the new running max and turns the
// scores into probabilities in place. Returns false (scores zeroed) when no entry is allowed.
inline bool online_softmax_row(float* scores, int64_t n, float& running_max, float& running_sum, float* acc,
                               int64_t dim) {
  const float batch_max = row_max(scores, n);
  if (batch_max == kNegInf) {
    std::fill(scores, scores + n, 0.0f);
    return false;
  }
  const float new_max = std::max(running_max, batch_max);
  const float rescale = exp2_scalar(running_max - new_max);  // 0 on the first allowed batch
  const float batch_sum = exp2_shift_sum(scores, n, new_max);
  running_sum = running_sum * rescale + batch_sum;
  if (rescale != 1.0f) scale_inplace(acc, dim, rescale);
  running_max = new_max;
  return true;
}

// dot(a, b) over n floats (float accumulation in eight lanes).
inline float dot(const float* a, const float* b, int64_t n) {
  int64_t c = 0;
  float sum = 0.0f;
#if SATTN_FAST_AVX2
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  for (; c + 16 <= n; c += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + 8), _mm256_loadu_ps(b + c + 8), s1);
  }
  for (; c + 8 <= n; c += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
  sum = horizontal_sum(_mm256_add_ps(s0, s1));
#endif
  for (; c < n; ++c) sum += a[c] * b[c];
  return sum;
}

// y[0..n) += a * x[0..n).
inline void axpy(float* y, float a, const float* x, int64_t n) {
  int64_t c = 0;
#if SATTN_FAST_AVX2
  const __m256 av = _mm256_set1_ps(a);
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(y + c, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c)));
#endif
  for (; c < n; ++c) y[c] += a * x[c];
}

}  // inline namespace SATTN_CPU_ISA_NS
}  // namespace sattn::fast
