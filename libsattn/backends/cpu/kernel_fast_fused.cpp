// Fast kernel, fused block tiles (issue 25, docs/decisions.md "Fused dense/BSR CPU tile"): one
// FlashAttention step of a tile of query rows against a contiguous chunk of keys computed by
// register-blocked micro-kernels, without cblas and without a rows x keys score matrix in the
// caller's layout. The query rows of a tile are the SIMD lanes of every step:
//   S^T[key][q] = sum_d K[key][d] * Q^T[d][q]      (K broadcast from its rows, Q^T packed once)
//   softmax per lane (q): max and sum are vertical, no horizontal reductions
//   O^T[d][q]  = O^T[d][q] * rescale[q] + sum_key V[key][d] * P^T[key][q]   (V broadcast)
// so K and V are read in place from their row-major memory (no packing), S^T (keys x lanes) stays
// in L1, and O^T is transposed once when the tile finishes. The same source builds every ISA
// copy: AVX-512 (16 lanes, 4 vectors of queries), AVX2+FMA (8 lanes, 2 vectors) and a portable
// 4-lane GCC vector-extension body (the baseline x86-64 copy: SSE2).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers pass _mm512_undefined_ps() as the unused merge source of unmasked
// intrinsics (_mm512_max_ps, _mm512_roundscale_ps), which -Wuninitialized reports once inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sattn::fast {
inline namespace SATTN_CPU_ISA_NS {

namespace {

// ---- one SIMD vector of query lanes, per ISA ----
#if defined(__AVX512F__)
using vf = __m512;
constexpr int kLanes = 16;
// 64 query lanes; register blocks of 4 vectors x 6 rows: 24 accumulators, 4 query vectors and
// a broadcast of the 32 registers (measured against 4 x 4 and 2 x 8: docs/decisions.md).
constexpr int kMaxVecs = 4;
constexpr int kRows = 6;
inline vf vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vf x) { _mm512_storeu_ps(p, x); }
inline vf vset(float x) { return _mm512_set1_ps(x); }
inline vf vfma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
inline vf vmul(vf a, vf b) { return _mm512_mul_ps(a, b); }
inline vf vadd(vf a, vf b) { return _mm512_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm512_sub_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm512_max_ps(a, b); }
inline vf vmask_below(vf x, int64_t first, int64_t limit) { return mask_below_avx512(x, first, limit); }
// Lanes whose bit in `bits` (lane 0: bit 0) is clear set to -inf.
inline vf vmask_bits(vf x, uint64_t bits) {
  return _mm512_mask_mov_ps(_mm512_set1_ps(kNegInf), __mmask16(bits & 0xFFFF), x);
}
inline vf vfinite_or_zero(vf m) { return finite_or_zero_avx512(m); }
inline vf vexp2(vf x) { return exp2_avx512(x); }  // kernel_fast_simd.hpp
#elif defined(__AVX2__) && defined(__FMA__)
using vf = __m256;
constexpr int kLanes = 8;
// 16 query lanes; 2 vectors x 6 rows: 12 accumulators of 16 registers (6 measured faster than 4).
constexpr int kMaxVecs = 2;
constexpr int kRows = 6;
inline vf vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vf x) { _mm256_storeu_ps(p, x); }
inline vf vset(float x) { return _mm256_set1_ps(x); }
inline vf vfma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
inline vf vmul(vf a, vf b) { return _mm256_mul_ps(a, b); }
inline vf vadd(vf a, vf b) { return _mm256_add_ps(a, b); }
inline vf vsub(vf a, vf b) { return _mm256_sub_ps(a, b); }
inline vf vmax(vf a, vf b) { return _mm256_max_ps(a, b); }
inline vf vmask_below(vf x, int64_t first, int64_t limit) {
  const __m256i lane = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int32_t(first)));
  const __m256 below = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(limit)), lane));
  return _mm256_blendv_ps(x, _mm256_set1_ps(kNegInf), below);
}
inline vf vmask_bits(vf x, uint64_t bits) {
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i clear =
      _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int32_t(bits & 0xFF)), lane_bit), _mm256_setzero_si256());
  return _mm256_blendv_ps(x, _mm256_set1_ps(kNegInf), _mm256_castsi256_ps(clear));
}
inline vf vfinite_or_zero(vf m) {
  return _mm256_andnot_ps(_mm256_cmp_ps(m, _mm256_set1_ps(kNegInf), _CMP_EQ_OQ), m);
}
inline vf vexp2(vf x) { return exp2_avx2(x); }
#else
// Portable: GCC/clang vector extensions (SSE2 on x86-64, NEON elsewhere); no FMA contraction.
typedef float vf __attribute__((vector_size(16)));
typedef int32_t vi __attribute__((vector_size(16)));
constexpr int kLanes = 4;
constexpr int kMaxVecs = 2;  // 8 query lanes: 2 x 4 accumulators of 16 registers
constexpr int kRows = 4;
inline vf vload(const float* p) {
  vf x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline void vstore(float* p, vf x) { std::memcpy(p, &x, sizeof x); }
inline vf vset(float x) { return vf{x, x, x, x}; }
inline vf vfma(vf a, vf b, vf c) { return a * b + c; }
inline vf vmul(vf a, vf b) { return a * b; }
inline vf vadd(vf a, vf b) { return a + b; }
inline vf vsub(vf a, vf b) { return a - b; }
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmask_below(vf x, int64_t first, int64_t limit) {
  const vi lane = vi{0, 1, 2, 3} + int32_t(first);
  return lane < int32_t(limit) ? vset(kNegInf) : x;
}
inline vf vmask_bits(vf x, uint64_t bits) {
  const vi lane_bit = vi{1, 2, 4, 8};
  return ((vi{} + int32_t(bits & 0xF)) & lane_bit) == 0 ? vset(kNegInf) : x;
}
inline vf vfinite_or_zero(vf m) { return m == vset(kNegInf) ? vset(0.0f) : m; }
inline vf vexp2(vf x) {
  const auto ok = x >= vset(-126.0f);
  x = x > vset(-126.0f) ? x : vset(-126.0f);
  const vf n = (x + 12582912.0f) - 12582912.0f;  // round to nearest (|x| < 2^22)
  const vf f = x - n;
  vf p = vset(kExp2Poly[0]);
  for (int i = 1; i < 7; ++i) p = p * f + kExp2Poly[i];
  const vi exponent = (__builtin_convertvector(n, vi) + 127) << 23;
  vf two_n;
  std::memcpy(&two_n, &exponent, sizeof two_n);
  return ok ? p * two_n : vset(0.0f);
}
#endif

// kRows (per ISA above): the register block of the micro-kernels, kRows keys (S) or head-dim
// entries (O) per step, each against VECS vectors of query lanes.
// Keys per online-softmax step (kernel_fast_internal.hpp).
constexpr int64_t kFusedKeys = kFusedStepKeys;

// S^T[r][lanes] = sum_d K[r][d] * Q^T[d][lanes] for R keys (rows of K `k_stride` floats apart;
// Q^T's rows `ld` floats apart, S^T's VECS * kLanes).
template <int VECS, int R>
inline void qk_block(const float* q_t, int64_t ld, const float* k, int64_t k_stride, int64_t dim, float* s_t) {
  constexpr int M = VECS * kLanes;
  vf acc[R][VECS];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < VECS; ++v) acc[r][v] = vset(0.0f);
  for (int64_t d = 0; d < dim; ++d) {
    vf q[VECS];
    for (int v = 0; v < VECS; ++v) q[v] = vload(q_t + d * ld + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const vf kb = vset(k[r * k_stride + d]);
      for (int v = 0; v < VECS; ++v) acc[r][v] = vfma(q[v], kb, acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < VECS; ++v) vstore(s_t + r * M + v * kLanes, acc[r][v]);
}

// O^T[r][lanes] = O^T[r][lanes] * rescale + sum_t V[t][r] * P^T[t][lanes] for R head-dim entries
// (v points at V[0][d0]; rows `v_stride` floats apart; O^T's rows `ld` floats apart).
template <int VECS, int R>
inline void pv_block(float* o_t, int64_t ld, const float* v, int64_t v_stride, const float* p_t, int64_t n,
                     const vf* rescale) {
  constexpr int M = VECS * kLanes;
  // This step's sum starts from 0 and is added to the rescaled O^T at the end: a two-level sum
  // (within a step, then across steps), so fp32 rounding grows with sqrt(steps), not sqrt(keys).
  vf acc[R][VECS];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < VECS; ++w) acc[r][w] = vset(0.0f);
  for (int64_t t = 0; t < n; ++t) {
    vf p[VECS];
    for (int w = 0; w < VECS; ++w) p[w] = vload(p_t + t * M + w * kLanes);
    const float* vr = v + t * v_stride;
    for (int r = 0; r < R; ++r) {
      const vf vb = vset(vr[r]);
      for (int w = 0; w < VECS; ++w) acc[r][w] = vfma(p[w], vb, acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < VECS; ++w)
      vstore(o_t + r * ld + w * kLanes, vfma(vload(o_t + r * ld + w * kLanes), rescale[w], acc[r][w]));
}

// The remainder (< kRows) of a block loop, by count.
template <int VECS>
void qk_tail(int r, const float* q_t, int64_t ld, const float* k, int64_t k_stride, int64_t dim, float* s_t) {
  switch (r) {
    case 1: qk_block<VECS, 1>(q_t, ld, k, k_stride, dim, s_t); break;
    case 2: qk_block<VECS, 2>(q_t, ld, k, k_stride, dim, s_t); break;
    case 3: qk_block<VECS, 3>(q_t, ld, k, k_stride, dim, s_t); break;
    case 4: qk_block<VECS, 4>(q_t, ld, k, k_stride, dim, s_t); break;
    case 5: qk_block<VECS, 5>(q_t, ld, k, k_stride, dim, s_t); break;
    case 6: qk_block<VECS, 6>(q_t, ld, k, k_stride, dim, s_t); break;
    case 7: qk_block<VECS, 7>(q_t, ld, k, k_stride, dim, s_t); break;
    default: break;
  }
}
template <int VECS>
void pv_tail(int r, float* o_t, int64_t ld, const float* v, int64_t v_stride, const float* p_t, int64_t n,
             const vf* rescale) {
  switch (r) {
    case 1: pv_block<VECS, 1>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    case 2: pv_block<VECS, 2>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    case 3: pv_block<VECS, 3>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    case 4: pv_block<VECS, 4>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    case 5: pv_block<VECS, 5>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    case 6: pv_block<VECS, 6>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    case 7: pv_block<VECS, 7>(o_t, ld, v, v_stride, p_t, n, rescale); break;
    default: break;
  }
}

// One step of one sub-tile (VECS vectors of query lanes) against n keys. `st` may be a view of
// some of a sub-tile's vectors (split_step): its Q^T and O^T rows are `ld` floats apart, and lane
// q's allow bit is bit allow_shift + q of the allow words.
template <int VECS>
void subtile_step(FusedSubtile& st, int64_t ld, float* s_t, const float* k, const float* v, int64_t n, int64_t dim,
                  const int32_t* column_keys, int64_t mask_from_key, float softcap2, const uint64_t* allow,
                  int64_t allow_stride, int allow_shift, bool prefetch) {
  constexpr int M = VECS * kLanes;
  // Scores.
  int64_t t = 0;
  for (; t + kRows <= n; t += kRows) {
    // The K and V rows one step ahead (in memory order: the next step's rows in a dense or
    // contiguous chunk), into L2 while this step computes: at long kv_len they come from L3.
    // Only the tile's first sub-tile issues them (the others run the same step right after).
    // Not into L1: Q^T, S^T, O^T and this step's K and V already fill it (prefetching into L1
    // was 4% slower, none at all 1-2% slower: docs/decisions.md "CPU kernels: the fused tile's
    // overheads and the block-structured specs").
    // Prefetches never fault; the address is formed as an integer so no pointer leaves its array.
    if (prefetch)
      for (int64_t line = 0; line < kRows * dim; line += 16) {
        __builtin_prefetch(reinterpret_cast<const void*>(uintptr_t(k + line) + uintptr_t((t + kFusedKeys) * dim * 4)), 0, 2);
        __builtin_prefetch(reinterpret_cast<const void*>(uintptr_t(v + line) + uintptr_t((t + kFusedKeys) * dim * 4)), 0, 2);
      }
    qk_block<VECS, kRows>(st.q_t, ld, k + t * dim, dim, dim, s_t + t * M);
  }
  if (t < n) qk_tail<VECS>(int(n - t), st.q_t, ld, k + t * dim, dim, dim, s_t + t * M);
  if (softcap2 > 0) apply_softcap(s_t, n * M, softcap2);
  // Causal: key column_keys[c] is allowed for lane q iff q >= key - st.diag; only the keys from
  // mask_from_key on (past what the sub-tile's first row sees) need the mask.
  if (column_keys)
    for (int64_t c = mask_from_key; c < n; ++c) {
      const int64_t limit = int64_t(column_keys[c]) - st.diag;  // lanes below it do not see the key
      for (int w = 0; w < VECS; ++w) vstore(s_t + c * M + w * kLanes, vmask_below(vload(s_t + c * M + w * kLanes), w * kLanes, limit));
    }
  // Packed tiles of CSR rows: lane q may use key c iff bit q of allow[c * allow_stride] is set.
  if (allow) {
    constexpr uint64_t kAll = M == 64 ? ~uint64_t{0} : (uint64_t{1} << (M % 64)) - 1;
    for (int64_t c = 0; c < n; ++c) {
      const uint64_t bits = allow[c * allow_stride] >> allow_shift;
      if ((bits & kAll) == kAll) continue;
      for (int w = 0; w < VECS; ++w)
        vstore(s_t + c * M + w * kLanes, vmask_bits(vload(s_t + c * M + w * kLanes), bits >> (w * kLanes)));
    }
  }
  // Online softmax per lane. Keys outer, vectors inner: VECS independent max and sum chains (two
  // per vector for the max), so the loops run at the vector units' throughput, not at the
  // latency of one chain.
  vf mx[VECS], mx2[VECS];
  for (int w = 0; w < VECS; ++w) mx[w] = mx2[w] = vset(kNegInf);
  int64_t c = 0;
  for (; c + 2 <= n; c += 2)
    for (int w = 0; w < VECS; ++w) {
      mx[w] = vmax(mx[w], vload(s_t + c * M + w * kLanes));
      mx2[w] = vmax(mx2[w], vload(s_t + (c + 1) * M + w * kLanes));
    }
  if (c < n)
    for (int w = 0; w < VECS; ++w) mx[w] = vmax(mx[w], vload(s_t + c * M + w * kLanes));
  vf rescale[VECS], shift[VECS], sum[VECS];
  for (int w = 0; w < VECS; ++w) {
    const vf old_max = vload(st.row_max + w * kLanes);
    const vf new_max = vmax(old_max, vmax(mx[w], mx2[w]));
    shift[w] = vfinite_or_zero(new_max);  // a lane with no allowed key yet: p = 0, rescale 0
    rescale[w] = vexp2(vsub(old_max, shift[w]));
    sum[w] = vset(0.0f);
    vstore(st.row_max + w * kLanes, new_max);
  }
  for (c = 0; c < n; ++c)
    for (int w = 0; w < VECS; ++w) {
      const vf e = vexp2(vsub(vload(s_t + c * M + w * kLanes), shift[w]));
      vstore(s_t + c * M + w * kLanes, e);
      sum[w] = vadd(sum[w], e);
    }
  for (int w = 0; w < VECS; ++w)
    vstore(st.row_sum + w * kLanes, vfma(vload(st.row_sum + w * kLanes), rescale[w], sum[w]));
  // Values.
  int64_t d = 0;
  for (; d + kRows <= dim; d += kRows) pv_block<VECS, kRows>(st.o_t + d * ld, ld, v + d, dim, s_t, n, rescale);
  if (d < dim) pv_tail<VECS>(int(dim - d), st.o_t + d * ld, ld, v + d, dim, s_t, n, rescale);
}

// Q^T of `rows` query rows (q_rows: rows x dim) times `scale` into q_t (dim x m lanes); lanes
// past `rows` are 0 (finite scores, never written out). A lane group's rows are gathered per d
// (a strided scalar loop was 3% of a window tile's time).
void pack_q_t(float* q_t, const float* q_rows, int64_t rows, int64_t m, int64_t dim, float scale) {
  int64_t q0 = 0;
#if defined(__AVX512F__)
  const __m512i lane_rows =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(int32_t(dim)));
  for (; q0 < rows; q0 += 16) {
    const int64_t valid = std::min<int64_t>(16, rows - q0);
    const __mmask16 mask = __mmask16((uint32_t{1} << valid) - 1);
    for (int64_t d = 0; d < dim; ++d)
      _mm512_storeu_ps(q_t + d * m + q0,
                       _mm512_mul_ps(_mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, lane_rows, q_rows + q0 * dim + d, 4),
                                     _mm512_set1_ps(scale)));
  }
#elif defined(__AVX2__)
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lane_rows = _mm256_mullo_epi32(lane, _mm256_set1_epi32(int32_t(dim)));
  for (; q0 < rows; q0 += 8) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(rows - q0)), lane));
    for (int64_t d = 0; d < dim; ++d)
      _mm256_storeu_ps(q_t + d * m + q0,
                       _mm256_mul_ps(_mm256_mask_i32gather_ps(_mm256_setzero_ps(), q_rows + q0 * dim + d, lane_rows, mask, 4),
                                     _mm256_set1_ps(scale)));
  }
#endif
  for (int64_t d = 0; d < dim; ++d)
    for (int64_t q = q0; q < m; ++q) q_t[d * m + q] = q < rows ? q_rows[q * dim + d] * scale : 0.0f;
}

// subtile_step for `vecs` vectors (a sub-tile, or a view of some of its vectors).
void run_subtile(FusedSubtile& st, int64_t vecs, int64_t ld, float* s_t, const float* k, const float* v, int64_t n,
                 int64_t dim, const int32_t* column_keys, int64_t mask_from, float softcap2, const uint64_t* allow,
                 int64_t allow_stride, int allow_shift, bool prefetch) {
  switch (vecs) {
    case 1: subtile_step<1>(st, ld, s_t, k, v, n, dim, column_keys, mask_from, softcap2, allow, allow_stride, allow_shift,
                            prefetch); break;
    case 2: subtile_step<2>(st, ld, s_t, k, v, n, dim, column_keys, mask_from, softcap2, allow, allow_stride, allow_shift,
                            prefetch); break;
#if defined(__AVX512F__)
    case 3: subtile_step<3>(st, ld, s_t, k, v, n, dim, column_keys, mask_from, softcap2, allow, allow_stride, allow_shift,
                            prefetch); break;
    case 4: subtile_step<4>(st, ld, s_t, k, v, n, dim, column_keys, mask_from, softcap2, allow, allow_stride, allow_shift,
                            prefetch); break;
#endif
    default: break;
  }
}

// Packed tiles whose lane masks leave whole vectors of a sub-tile out for some keys (the two edge
// steps of a window tile: a triangle of the 64 x 64 slots): the step's keys are cut into runs
// that each run only the vectors [lo, hi] some key of the run uses, through a view of the
// sub-tile (the other lanes see those keys as masked, so the result is the same softmax; the
// sums group differently). Runs are merged while one run costs no more than two; a step whose
// keys all use every vector returns false (run whole, as before). Keys no lane uses are skipped.
bool split_step(FusedSubtile& st, float* s_t, const float* k, const float* v, int64_t n, int64_t dim, float softcap2,
                const uint64_t* allow, int64_t allow_stride, bool prefetch) {
  struct Run {
    int64_t begin, end;
    int lo, hi;  // vectors; lo > hi: no lane uses these keys
  };
  constexpr int64_t kRunOverheadKeys = 4;  // a sub-step's fixed work (O^T rescale, softmax set-up) in keys
  auto range_of = [&](int64_t c) {
    const uint64_t bits = allow[c * allow_stride];
    if (bits == 0) return std::pair<int, int>(1, 0);
    return std::pair<int, int>(__builtin_ctzll(bits) / kLanes, (63 - __builtin_clzll(bits)) / kLanes);
  };
  auto cost = [](const Run& r) { return r.lo > r.hi ? 0 : (r.end - r.begin + kRunOverheadKeys) * (r.hi - r.lo + 1); };
  Run runs[kFusedKeys];
  int count = 0;
  bool narrower = false;  // some key leaves a vector out
  for (int64_t c = 0; c < n; ++c) {
    const auto [lo, hi] = range_of(c);
    narrower |= lo != 0 || hi != st.vecs - 1;
    if (count > 0 && runs[count - 1].lo == lo && runs[count - 1].hi == hi)
      runs[count - 1].end = c + 1;
    else
      runs[count++] = Run{c, c + 1, lo, hi};
  }
  if (!narrower) return false;
  // Merge neighbours while the merged run costs no more than the two (keys no lane uses join any
  // neighbour for free).
  int merged = 0;
  for (int r = 0; r < count; ++r) {
    if (merged > 0) {
      Run& prev = runs[merged - 1];
      const Run& cur = runs[r];
      Run both{prev.begin, cur.end, std::min(prev.lo, cur.lo), std::max(prev.hi, cur.hi)};
      if (prev.lo > prev.hi) both.lo = cur.lo, both.hi = cur.hi;
      else if (cur.lo > cur.hi) both.lo = prev.lo, both.hi = prev.hi;
      if (cost(both) <= cost(prev) + cost(cur)) {
        prev = both;
        continue;
      }
    }
    runs[merged++] = runs[r];
  }
  for (int r = 0; r < merged; ++r) {
    const Run& run = runs[r];
    if (run.lo > run.hi) continue;
    const int64_t lane0 = run.lo * kLanes;
    FusedSubtile view = st;
    view.q_t += lane0;
    view.o_t += lane0;
    view.row_max += lane0;
    view.row_sum += lane0;
    view.diag += lane0;
    run_subtile(view, run.hi - run.lo + 1, st.vecs * kLanes, s_t, k + run.begin * dim, v + run.begin * dim,
                run.end - run.begin, dim, nullptr, 0, softcap2, allow + run.begin * allow_stride, allow_stride, int(lane0),
                prefetch);
  }
  return true;
}

}  // namespace

int64_t fused_lanes() { return kLanes * kMaxVecs; }

FusedTile fused_begin(Scratch& scratch, const float* q_tile, int64_t rows, int64_t dim, float score_scale,
                      int64_t first_query, int64_t causal_offset) {
  FusedTile tile;
  tile.rows = rows;
  tile.dim = dim;
  // Sub-tiles of kMaxVecs vectors; the last one only as wide as its rows need.
  const int64_t full = kLanes * kMaxVecs;
  tile.count = (rows + full - 1) / full;
  size_t need = 0;
  for (int64_t s = 0; s < tile.count; ++s) {
    const int64_t sub_rows = std::min(full, rows - s * full);
    const int64_t vecs = (sub_rows + kLanes - 1) / kLanes;
    need += size_t(vecs * kLanes * (2 * dim + 2));
  }
  if (scratch.fused.size() < need) scratch.fused.resize(need);
  if (scratch.fused_scores.size() < size_t(kFusedKeys * full)) scratch.fused_scores.resize(kFusedKeys * full);
  if (scratch.fused_sub.size() < size_t(tile.count)) scratch.fused_sub.resize(size_t(tile.count));
  tile.sub = scratch.fused_sub.data();
  // The next tile's query rows (usually the rows right after these: the next block row, window
  // tile or task) into L2 while this tile computes; its packing then reads L2, not memory (the
  // gathers below waited on memory for 3-4% of a window tile's time). Prefetches never fault; the
  // address is formed as an integer so no pointer leaves its array.
  for (int64_t line = 0; line < rows * dim; line += 16)
    __builtin_prefetch(reinterpret_cast<const void*>(uintptr_t(q_tile) + uintptr_t((rows * dim + line) * 4)), 0, 2);
  float* base = scratch.fused.data();
  for (int64_t s = 0; s < tile.count; ++s) {
    FusedSubtile& st = tile.sub[s];
    st.first_row = s * full;
    st.rows = std::min(full, rows - st.first_row);
    st.vecs = (st.rows + kLanes - 1) / kLanes;
    const int64_t m = st.vecs * kLanes;
    st.q_t = base;
    st.o_t = base + m * dim;
    st.row_max = base + 2 * m * dim;
    st.row_sum = st.row_max + m;
    base += m * (2 * dim + 2);
    // Q^T, scaled into the exp2 domain; padding lanes are 0 (finite scores, never written out).
    pack_q_t(st.q_t, q_tile + st.first_row * dim, st.rows, m, dim, score_scale);
    std::fill(st.o_t, st.o_t + m * dim, 0.0f);
    std::fill(st.row_max, st.row_max + m, kNegInf);
    std::fill(st.row_sum, st.row_sum + m, 0.0f);
    // Lane q (query first_query + first_row + q) sees keys <= first_query + first_row + q + causal_offset.
    st.diag = first_query + st.first_row + causal_offset;
  }
  return tile;
}

void fused_step(FusedTile& tile, Scratch& scratch, const float* k_chunk, const float* v_chunk, int64_t n,
                const int32_t* column_keys, bool causal, float softcap2, const uint64_t* allow) {
  // Steps of at most kFusedKeys keys, so that S^T (keys x lanes) stays in L1 while P V reads it
  // once per register block of head-dim entries.
  if (n > kFusedKeys) {
    for (int64_t c = 0; c < n; c += kFusedKeys)
      fused_step(tile, scratch, k_chunk + c * tile.dim, v_chunk + c * tile.dim, std::min(kFusedKeys, n - c),
                 causal ? column_keys + c : nullptr, causal, softcap2, allow ? allow + c * tile.count : nullptr);
    return;
  }
  float* s_t = scratch.fused_scores.data();
  for (int64_t s = 0; s < tile.count; ++s) {
    FusedSubtile& st = tile.sub[s];
    int64_t keys = n;
    int64_t mask_from = n;
    if (causal) {
      // Keys past the sub-tile's last row's limit are cut; keys past its first row's are masked.
      const int64_t last_allowed = st.diag + st.rows - 1;
      while (keys > 0 && column_keys[keys - 1] > last_allowed) --keys;
      mask_from = 0;
      while (mask_from < keys && column_keys[mask_from] <= st.diag) ++mask_from;
      if (keys == 0) continue;
    }
    const int32_t* mask_keys = mask_from < keys ? column_keys : nullptr;
    const uint64_t* sub_allow = allow ? allow + s : nullptr;
    if (sub_allow && st.vecs > 1 && split_step(st, s_t, k_chunk, v_chunk, keys, tile.dim, softcap2, sub_allow, tile.count, s == 0))
      continue;
    run_subtile(st, st.vecs, st.vecs * kLanes, s_t, k_chunk, v_chunk, keys, tile.dim, mask_keys, mask_from, softcap2,
                sub_allow, tile.count, 0, s == 0);
  }
}

void fused_finish_row(const FusedTile& tile, int64_t row, float* o, float* l) {
  const int64_t dim = tile.dim;
  const FusedSubtile& st = tile.sub[row / (kLanes * kMaxVecs)];
  const int64_t m = st.vecs * kLanes, q = row - st.first_row;
  const float sum = st.row_sum[q];
  if (sum == 0.0f) {  // no allowed key (log-sum-exp -inf): output exactly 0
    std::fill(o, o + dim, 0.0f);
    if (l) *l = kNegInf;
    return;
  }
  if (l) *l = float(0.6931471805599453 * (double(st.row_max[q]) + std::log2(double(sum))));
  const float inv = 1.0f / sum;
  int64_t d = 0;
#if defined(__AVX512F__)
  // Column q of O^T, 16 entries per gather (a strided scalar loop was 1-2% of a window tile).
  const __m512i stride = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(int32_t(m)));
  for (; d + 16 <= dim; d += 16)
    _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_i32gather_ps(stride, st.o_t + d * m + q, 4), _mm512_set1_ps(inv)));
#elif defined(__AVX2__)
  const __m256i stride = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(int32_t(m)));
  for (; d + 8 <= dim; d += 8)
    _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_i32gather_ps(st.o_t + d * m + q, stride, 4), _mm256_set1_ps(inv)));
#endif
  for (; d < dim; ++d) o[d] = st.o_t[d * m + q] * inv;
}

void fused_finish(const FusedTile& tile, float* out, float* lse) {
  for (int64_t r = 0; r < tile.rows; ++r) fused_finish_row(tile, r, out + r * tile.dim, lse ? lse + r : nullptr);
}

}  // inline namespace SATTN_CPU_ISA_NS
}  // namespace sattn::fast
