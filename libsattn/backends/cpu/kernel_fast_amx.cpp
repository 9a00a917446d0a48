// Fast kernel, bf16 precision on AMX tiles (issue 25 "Low precision on the CPU"; docs/decisions.md
// "bf16 on AMX tiles"). Compiled once, with -march=x86-64-v4 -mamx-tile -mamx-bf16 -mavx512bf16,
// into namespace fast::amx, and called only by the avx512 copy's BSR driver (run_block_rows) when
// the process runs the amx copy (cpu_isa() == CpuIsa::amx, which checks CPUID, XCR0 and the
// kernel's permission for the tile data) and the op qualifies (amx_bf16_tiles()).
//
// The same transposed tile as the fused fp32 tile (kernel_fast_fused.cpp): query rows are the
// lanes, 64 per sub-tile, and the online softmax runs per lane in AVX-512. The two products run on
// tdpbf16ps (C[16 x 16] fp32 += A[16 x 32] bf16 . B[32 x 16] bf16, B in pairs of rows):
//   S^T[key][q] = sum_d K[key][d] Q^T[d][q]   A = K rows (bf16, in place), B = Q^T in d pairs
//   O^T[d][q]  += sum_key V^T[d][key] P^T[key][q]   A = V^T rows (bf16, transposed once per
//                 head by the driver), B = P^T in key pairs, written by the softmax as bf16
// Scores and the softmax are fp32; P is rounded to bf16 for P.V (as the CUDA tensor-core kernels
// do); the row sums use the fp32 P. O^T is rescaled in memory only when a lane's max moved, and
// the P.V tiles accumulate onto it in place.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"
#include "core/quant.hpp"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__AVX512BW__)
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers pass _mm512_undefined_ps() as the unused merge source (see
// kernel_fast_fused.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sattn::fast::amx {

namespace {

constexpr int kLanes = 16;
constexpr int64_t kSubRows = 64;            // query rows per sub-tile (4 vectors of 16 lanes)
// Keys per online-softmax step: 128, not the fused fp32 tile's 64 (kFusedStepKeys): P.V then runs 4
// key blocks per accumulator tile instead of 2, so the tiles' fill and drain (zero or load, store)
// weigh half as much; 64 keys measured 291, 128 keys 330, 256 keys 305 GFLOP/s per CPU second
// (seq 4096, head_dim 64, one thread). S^T of 128 keys x 64 lanes is 32 KiB.
constexpr int64_t kStep = 128;
// Scratch::amx_bf16: P^T pairs of one step first (kStep / 2 rows of kSubRows lanes x 2), then
// each sub-tile's Q^T pairs.
constexpr int64_t kPairsSize = kStep / 2 * kSubRows * 2;

// Palette 1, every tile 16 rows x 64 bytes: tmm0-3 accumulators (2 x 2 blocks of 16 x 16 fp32),
// tmm4-5 A operands, tmm6-7 B operands.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// C_ij (16 x 16 fp32; i < NA, j < NB) = sum over k_blocks of A_i(k) B_j(k) (ACC: plus C_ij as it is
// in memory, else from zero). A_i(k): 16 rows of
// 32 bf16 at a + i * a_next + k * a_step (rows a_ld elements apart); B_j(k): 16 rows of 16 bf16 pairs
// at b + j * b_next + k * 16 * b_ld (rows b_ld elements apart); C_ij at c + i * c_next_a +
// j * c_next_b (rows c_ld floats apart).
template <bool ACC, int NA, int NB>
inline void tile_gemm(const uint16_t* a, int64_t a_ld, int64_t a_next, int64_t a_step, const uint16_t* b, int64_t b_ld,
                      int64_t b_next, int64_t k_blocks, float* c, int64_t c_ld, int64_t c_next_a, int64_t c_next_b) {
  if constexpr (ACC) {
    _tile_loadd(0, c, c_ld * 4);
    if constexpr (NB > 1) _tile_loadd(1, c + c_next_b, c_ld * 4);
    if constexpr (NA > 1) _tile_loadd(2, c + c_next_a, c_ld * 4);
    if constexpr (NA > 1 && NB > 1) _tile_loadd(3, c + c_next_a + c_next_b, c_ld * 4);
  } else {
    _tile_zero(0);
    if constexpr (NB > 1) _tile_zero(1);
    if constexpr (NA > 1) _tile_zero(2);
    if constexpr (NA > 1 && NB > 1) _tile_zero(3);
  }
  for (int64_t k = 0; k < k_blocks; ++k) {
    const uint16_t* ak = a + k * a_step;
    const uint16_t* bk = b + k * 16 * b_ld;
    _tile_loadd(4, ak, a_ld * 2);
    _tile_loadd(6, bk, b_ld * 2);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NB > 1) {
      _tile_loadd(7, bk + b_next, b_ld * 2);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (NA > 1) {
      _tile_loadd(5, ak + a_next, a_ld * 2);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (NB > 1) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, c_ld * 4);
  if constexpr (NB > 1) _tile_stored(1, c + c_next_b, c_ld * 4);
  if constexpr (NA > 1) _tile_stored(2, c + c_next_a, c_ld * 4);
  if constexpr (NA > 1 && NB > 1) _tile_stored(3, c + c_next_a + c_next_b, c_ld * 4);
}

// C blocks [0, a_blocks) x [0, b_blocks) of tile_gemm, two by two.
template <bool ACC>
inline void tile_gemm_all(int64_t a_blocks, int64_t b_blocks, const uint16_t* a, int64_t a_ld, int64_t a_next,
                          int64_t a_step, const uint16_t* b, int64_t b_ld, int64_t b_next, int64_t k_blocks, float* c,
                          int64_t c_ld, int64_t c_next_a, int64_t c_next_b) {
  for (int64_t i = 0; i < a_blocks; i += 2)
    for (int64_t j = 0; j < b_blocks; j += 2) {
      const uint16_t* ai = a + i * a_next;
      const uint16_t* bj = b + j * b_next;
      float* cij = c + i * c_next_a + j * c_next_b;
      const bool two_a = i + 1 < a_blocks, two_b = j + 1 < b_blocks;
      if (two_a && two_b)
        tile_gemm<ACC, 2, 2>(ai, a_ld, a_next, a_step, bj, b_ld, b_next, k_blocks, cij, c_ld, c_next_a, c_next_b);
      else if (two_a)
        tile_gemm<ACC, 2, 1>(ai, a_ld, a_next, a_step, bj, b_ld, b_next, k_blocks, cij, c_ld, c_next_a, c_next_b);
      else if (two_b)
        tile_gemm<ACC, 1, 2>(ai, a_ld, a_next, a_step, bj, b_ld, b_next, k_blocks, cij, c_ld, c_next_a, c_next_b);
      else
        tile_gemm<ACC, 1, 1>(ai, a_ld, a_next, a_step, bj, b_ld, b_next, k_blocks, cij, c_ld, c_next_a, c_next_b);
    }
}

// The AVX-512 helpers of the fused tile (kernel_fast_simd.hpp).
inline __m512 vexp2(__m512 x) { return exp2_avx512(x); }
inline __m512 vmask_below(__m512 x, int64_t first, int64_t limit) { return mask_below_avx512(x, first, limit); }
inline __m512 vfinite_or_zero(__m512 m) { return finite_or_zero_avx512(m); }

// Interleaves two rows of 16 bf16 (a vector whose low half is key c and high half key c + 1)
// into 16 pairs (key c, key c + 1) per lane: the B operand's row layout.
alignas(64) constexpr uint16_t kPairIndex[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

// One step of one sub-tile (VECS vectors of query lanes) against n keys: k (n rows of dim bf16,
// rows up to the next multiple of 16 readable), vt (V^T panels, see prepare_head: keys up to the
// next multiple of 32 past n readable and finite).
template <int VECS>
void subtile_step(FusedSubtile& st, float* s_t, uint16_t* p_pairs, const uint16_t* k, const uint16_t* vt,
                  int64_t n, int64_t dim, const int32_t* column_keys, int64_t mask_from_key,
                  float scale, float softcap2, bool prefetch) {
  constexpr int M = VECS * kLanes;
  if (prefetch)  // the next step's K rows and V^T panels (both kStep x dim codes) into L2
    for (int64_t line = 0; line < kStep * dim; line += 32) {
      __builtin_prefetch(reinterpret_cast<const void*>(uintptr_t(k) + uintptr_t((kStep * dim + line) * 2)), 0, 2);
      __builtin_prefetch(reinterpret_cast<const void*>(uintptr_t(vt) + uintptr_t((kStep * dim + line) * 2)), 0, 2);
    }
  // S^T (keys x lanes, unscaled) = K Q^T.
  tile_gemm_all<false>((n + 15) / 16, VECS, k, dim, 16 * dim, 32, st.q_pairs, 2 * M, 32, dim / 32, s_t, M, 16 * M, 16);
  // The scale folds into the exp's FMA (scale > 0: the max of scaled scores is the scaled max,
  // and -inf stays -inf), except under a soft cap, which needs the scaled scores first.
  float s_scale = scale;
  if (softcap2 > 0) {
    for (int64_t c = 0; c < n; ++c)
      for (int64_t q = 0; q < M; ++q) s_t[c * M + q] *= scale;
    apply_softcap(s_t, n * M, softcap2);
    s_scale = 1.0f;
  }
  if (column_keys)
    for (int64_t c = mask_from_key; c < n; ++c) {
      const int64_t limit = int64_t(column_keys[c]) - st.diag;
      for (int w = 0; w < VECS; ++w)
        _mm512_storeu_ps(s_t + c * M + w * kLanes, vmask_below(_mm512_loadu_ps(s_t + c * M + w * kLanes), w * kLanes, limit));
    }
  // Online softmax per lane, as the fused tile.
  __m512 mx[VECS], mx2[VECS];
  for (int w = 0; w < VECS; ++w) mx[w] = mx2[w] = _mm512_set1_ps(kNegInf);
  int64_t c = 0;
  for (; c + 2 <= n; c += 2)
    for (int w = 0; w < VECS; ++w) {
      mx[w] = _mm512_max_ps(mx[w], _mm512_loadu_ps(s_t + c * M + w * kLanes));
      mx2[w] = _mm512_max_ps(mx2[w], _mm512_loadu_ps(s_t + (c + 1) * M + w * kLanes));
    }
  if (c < n)
    for (int w = 0; w < VECS; ++w) mx[w] = _mm512_max_ps(mx[w], _mm512_loadu_ps(s_t + c * M + w * kLanes));
  const __m512 vscale = _mm512_set1_ps(s_scale);
  __m512 rescale[VECS], neg_shift[VECS], sum[VECS];
  for (int w = 0; w < VECS; ++w) {
    const __m512 old_max = _mm512_loadu_ps(st.row_max + w * kLanes);
    const __m512 new_max = _mm512_max_ps(old_max, _mm512_mul_ps(_mm512_max_ps(mx[w], mx2[w]), vscale));
    const __m512 shift = vfinite_or_zero(new_max);
    rescale[w] = vexp2(_mm512_sub_ps(old_max, shift));
    neg_shift[w] = _mm512_sub_ps(_mm512_setzero_ps(), shift);
    sum[w] = _mm512_setzero_ps();
    _mm512_storeu_ps(st.row_max + w * kLanes, new_max);
  }
  // P in bf16 pairs of keys (the B operand of P.V); the sums from the fp32 P.
  const __m512i pair_index = _mm512_load_si512(kPairIndex);
  for (c = 0; c < n; c += 2)
    for (int w = 0; w < VECS; ++w) {
      const __m512 e0 = vexp2(_mm512_fmadd_ps(_mm512_loadu_ps(s_t + c * M + w * kLanes), vscale, neg_shift[w]));
      const __m512 e1 = c + 1 < n
                            ? vexp2(_mm512_fmadd_ps(_mm512_loadu_ps(s_t + (c + 1) * M + w * kLanes), vscale, neg_shift[w]))
                            : _mm512_setzero_ps();
      sum[w] = _mm512_add_ps(_mm512_add_ps(sum[w], e0), e1);
      const __m512i halves = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(e1, e0));
      _mm512_storeu_si512(p_pairs + c * M + w * 2 * kLanes, _mm512_permutexvar_epi16(pair_index, halves));
    }
  const int64_t n_pad = (n + 31) / 32 * 32;  // P.V runs 32 keys per tile: the pairs past n are 0
  const int64_t pairs_done = (n + 1) / 2;
  std::memset(p_pairs + pairs_done * 2 * M, 0, size_t((n_pad / 2 - pairs_done) * 2 * M) * sizeof(uint16_t));
  for (int w = 0; w < VECS; ++w)
    _mm512_storeu_ps(st.row_sum + w * kLanes,
                     _mm512_fmadd_ps(_mm512_loadu_ps(st.row_sum + w * kLanes), rescale[w], sum[w]));
  // O^T = O^T * rescale + V^T P^T: the rescale only when a lane's max moved (after the first steps
  // of a row rarely), then the tiles accumulate onto O^T in place (one running fp32 sum: its
  // rounding stays far below P's rounding to bf16).
  __mmask16 moved = 0;
  for (int w = 0; w < VECS; ++w) moved |= _mm512_cmp_ps_mask(rescale[w], _mm512_set1_ps(1.0f), _CMP_NEQ_UQ);
  if (moved)
    for (int64_t d = 0; d < dim; ++d)
      for (int w = 0; w < VECS; ++w) {
        float* o = st.o_t + d * M + w * kLanes;
        _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_loadu_ps(o), rescale[w]));
      }
  tile_gemm_all<true>(dim / 16, VECS, vt, 32, 16 * 32, 32 * dim, p_pairs, 2 * M, 32, n_pad / 32, st.o_t, M, 16 * M, 16);
}

// float_to_bf16 (core/quant.cpp) on 16 floats: round to nearest even, NaN kept quiet.
inline __m256i to_bf16(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
  const __m512i lowest_kept = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lowest_kept), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
  return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(rounded, nan, quiet));
}

}  // namespace

void prepare_head(const float* k, const float* v, int64_t kv_len, int64_t dim, uint16_t* k_out, uint16_t* vt_out) {
  // dim is a multiple of 32 (amx_bf16_tiles): whole vectors.
  for (int64_t e = 0; e < kv_len * dim; e += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(k_out + e), to_bf16(_mm512_loadu_ps(k + e)));
  // V^T in panels of 32 keys, through a block of 32 rows converted row-major into `block`.
  alignas(64) uint16_t block[32 * 512];
  const int64_t dims_per_pass = std::min<int64_t>(dim, 512);
  for (int64_t d0 = 0; d0 < dim; d0 += dims_per_pass) {
    const int64_t dn = std::min(dims_per_pass, dim - d0);
    for (int64_t j0 = 0; j0 < kv_len; j0 += 32) {
      const int64_t jn = std::min<int64_t>(32, kv_len - j0);
      for (int64_t j = 0; j < jn; ++j)
        for (int64_t d = 0; d < dn; d += 16)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(block + j * dn + d),
                              to_bf16(_mm512_loadu_ps(v + (j0 + j) * dim + d0 + d)));
      uint16_t* panel = vt_out + j0 * dim;  // panel j0 / 32
      for (int64_t d = 0; d < dn; ++d) {
        uint16_t* row = panel + (d0 + d) * 32;
        for (int64_t j = 0; j < 32; ++j) row[j] = j < jn ? block[j * dn + d] : uint16_t{0};
      }
    }
  }
}

void round_to_bf16(const float* in, int64_t n, float* out) {
  int64_t e = 0;
  for (; e + 16 <= n; e += 16)
    _mm512_storeu_ps(out + e, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(to_bf16(_mm512_loadu_ps(in + e))), 16)));
  for (; e < n; ++e) out[e] = bf16_to_float(float_to_bf16(in[e]));
}

FusedTile begin(Scratch& scratch, const float* q_tile, int64_t rows, int64_t dim, int64_t first_query,
                int64_t causal_offset) {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
  FusedTile tile;
  tile.rows = rows;
  tile.dim = dim;
  tile.count = (rows + kSubRows - 1) / kSubRows;
  size_t need_f = 0, need_h = size_t(kPairsSize);
  for (int64_t s = 0; s < tile.count; ++s) {
    const int64_t m = (std::min(kSubRows, rows - s * kSubRows) + kLanes - 1) / kLanes * kLanes;
    need_f += size_t(m * (dim + 2));
    need_h += size_t(m * dim);
  }
  if (scratch.fused.size() < need_f) scratch.fused.resize(need_f);
  if (scratch.amx_bf16.size() < need_h) scratch.amx_bf16.resize(need_h);
  // S^T of one step (kStep keys x 64 lanes).
  const size_t need_s = size_t(kStep * kSubRows);
  if (scratch.fused_scores.size() < need_s) scratch.fused_scores.resize(need_s);
  if (scratch.fused_sub.size() < size_t(tile.count)) scratch.fused_sub.resize(size_t(tile.count));
  tile.sub = scratch.fused_sub.data();
  for (int64_t line = 0; line < rows * dim; line += 16)  // the next tile's query rows, as the fused tile
    __builtin_prefetch(reinterpret_cast<const void*>(uintptr_t(q_tile) + uintptr_t((rows * dim + line) * 4)), 0, 2);
  float* base = scratch.fused.data();
  uint16_t* pairs = scratch.amx_bf16.data() + kPairsSize;
  for (int64_t s = 0; s < tile.count; ++s) {
    FusedSubtile& st = tile.sub[s];
    st.first_row = s * kSubRows;
    st.rows = std::min(kSubRows, rows - st.first_row);
    st.vecs = (st.rows + kLanes - 1) / kLanes;
    const int64_t m = st.vecs * kLanes;
    st.q_t = nullptr;
    st.o_t = base;
    st.row_max = base + m * dim;
    st.row_sum = st.row_max + m;
    base += m * (dim + 2);
    st.q_pairs = pairs;
    pairs += m * dim;
    // Q^T in pairs of d: word (dp, q) = (Q[q][2dp], Q[q][2dp + 1]) as bf16. The rows hold
    // bf16-rounded values, so the upper 16 bits are the codes (exact, denormals included).
    const float* q_rows = q_tile + st.first_row * dim;
    for (int64_t q = 0; q < m; ++q)
      for (int64_t d = 0; d < dim; ++d) {
        uint32_t bits = 0;
        if (q < st.rows) std::memcpy(&bits, q_rows + q * dim + d, 4);
        st.q_pairs[(d / 2 * m + q) * 2 + d % 2] = uint16_t(bits >> 16);
      }
    std::fill(st.o_t, st.o_t + m * dim, 0.0f);
    std::fill(st.row_max, st.row_max + m, kNegInf);
    std::fill(st.row_sum, st.row_sum + m, 0.0f);
    st.diag = first_query + st.first_row + causal_offset;
  }
  return tile;
}

void step(FusedTile& tile, Scratch& scratch, const uint16_t* k_rows, const uint16_t* vt, int64_t n,
          const int32_t* column_keys, bool causal, float score_scale, float softcap2) {
  if (n > kStep) {
    for (int64_t c = 0; c < n; c += kStep)
      step(tile, scratch, k_rows + c * tile.dim, vt + c * tile.dim, std::min(kStep, n - c), causal ? column_keys + c : nullptr,
           causal, score_scale, softcap2);
    return;
  }
  float* s_t = scratch.fused_scores.data();
  uint16_t* p_pairs = scratch.amx_bf16.data();
  for (int64_t s = 0; s < tile.count; ++s) {
    FusedSubtile& st = tile.sub[s];
    int64_t keys = n, mask_from = n;
    if (causal) {  // as fused_step: keys past the last row's limit cut, past the first row's masked
      const int64_t last_allowed = st.diag + st.rows - 1;
      while (keys > 0 && column_keys[keys - 1] > last_allowed) --keys;
      mask_from = 0;
      while (mask_from < keys && column_keys[mask_from] <= st.diag) ++mask_from;
      if (keys == 0) continue;
    }
    const int32_t* mask_keys = mask_from < keys ? column_keys : nullptr;
    switch (st.vecs) {
      case 1: subtile_step<1>(st, s_t, p_pairs, k_rows, vt, keys, tile.dim, mask_keys, mask_from, score_scale, softcap2, s == 0); break;
      case 2: subtile_step<2>(st, s_t, p_pairs, k_rows, vt, keys, tile.dim, mask_keys, mask_from, score_scale, softcap2, s == 0); break;
      case 3: subtile_step<3>(st, s_t, p_pairs, k_rows, vt, keys, tile.dim, mask_keys, mask_from, score_scale, softcap2, s == 0); break;
      default: subtile_step<4>(st, s_t, p_pairs, k_rows, vt, keys, tile.dim, mask_keys, mask_from, score_scale, softcap2, s == 0); break;
    }
  }
}

void end() { _tile_release(); }

}  // namespace sattn::fast::amx

#endif
