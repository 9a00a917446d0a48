// The score-tile kernels of the score-selected layouts (score_kernels.hpp), written once with
// GCC/Clang vector extensions and compiled per ISA: the vector width follows the -march of the
// copy (16 floats with AVX-512, 8 with AVX2, 4 otherwise). Everything here is file-local except
// the kernel table, so no instantiation of this copy can be picked by another object.
#include "layout/score_kernels.hpp"

#include <cstring>
#include <limits>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifndef SATTN_LAYOUT_ISA_NS
#define SATTN_LAYOUT_ISA_NS baseline
#endif

// The 16-lane code needs AVX-512 F and DQ (x86-64-v4 has both).
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#define SATTN_LAYOUT_AVX512 1
#else
#define SATTN_LAYOUT_AVX512 0
#endif

namespace sattn::layout_detail::SATTN_LAYOUT_ISA_NS {

namespace {

#if SATTN_LAYOUT_AVX512
constexpr int kLanes = 16;
constexpr int kRowVectors = 2;  // 32 rows per tile
constexpr int kKeys = 8;        // 2 x 8 = 16 accumulators of 32 registers
#elif defined(__AVX2__)
constexpr int kLanes = 8;
constexpr int kRowVectors = 2;  // 16 rows
constexpr int kKeys = 6;        // 12 accumulators of 16 registers
#else
constexpr int kLanes = 4;
constexpr int kRowVectors = 2;  // 8 rows
constexpr int kKeys = 6;
#endif
constexpr int kTileRows = kLanes * kRowVectors;

typedef float Floats __attribute__((vector_size(4 * kLanes)));
typedef int32_t Ints __attribute__((vector_size(4 * kLanes)));

inline Floats load(const float* p) {
  Floats v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline Ints load_ints(const int32_t* p) {
  Ints v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Floats v) {
  std::memcpy(p, &v, sizeof v);
}
// (Not Floats{} + x: adding +0.0 is not an identity for -0.0, so it costs an add per use; a loop
// over the lanes becomes masked broadcasts.)
inline Floats splat(float x) {
#if SATTN_LAYOUT_AVX512
  return Floats(_mm512_set1_ps(x));
#elif defined(__AVX2__)  // the same conditions as kLanes
  return Floats(_mm256_set1_ps(x));
#elif defined(__SSE__)
  return Floats(_mm_set1_ps(x));
#else
  Floats v;
  for (int l = 0; l < kLanes; ++l) v[l] = x;
  return v;
#endif
}

// One bit per lane of a comparison result (-1 / 0 lanes).
inline uint32_t lane_bits(Ints m) {
#if SATTN_LAYOUT_AVX512
  return _mm512_movepi32_mask(__m512i(m));
#elif defined(__AVX2__)
  return uint32_t(_mm256_movemask_ps(__m256(m)));
#elif defined(__SSE2__)
  return uint32_t(_mm_movemask_ps(__m128(m)));
#else
  uint32_t bits = 0;
  for (int l = 0; l < kLanes; ++l) bits |= uint32_t(m[l] != 0) << l;
  return bits;
#endif
}

// kKeys keys x kRowVectors row vectors in registers; keys are broadcast, rows are the lanes.
template <int Keys>
inline void score_block(const ScoreTile& t, int64_t j, float* out) {
  Floats acc[Keys][kRowVectors];
#pragma GCC unroll 16
  for (int u = 0; u < Keys; ++u)
#pragma GCC unroll 4
    for (int v = 0; v < kRowVectors; ++v) acc[u][v] = Floats{};
  const float* key[Keys];
#pragma GCC unroll 16
  for (int u = 0; u < Keys; ++u) key[u] = t.keys + (j + u) * t.d;
  const float* q = t.qt;
  for (int64_t c = 0; c < t.d; ++c, q += kTileRows) {
    Floats qv[kRowVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kRowVectors; ++v) qv[v] = load(q + v * kLanes);
#pragma GCC unroll 16
    for (int u = 0; u < Keys; ++u) {
      const Floats kb = splat(key[u][c]);
#pragma GCC unroll 4
      for (int v = 0; v < kRowVectors; ++v) acc[u][v] += kb * qv[v];
    }
  }
#pragma GCC unroll 16
  for (int u = 0; u < Keys; ++u)
#pragma GCC unroll 4
    for (int v = 0; v < kRowVectors; ++v) store(out + u * kTileRows + v * kLanes, acc[u][v]);
}

void score(const ScoreTile& t, int64_t j0, int64_t j1, float* out) {
  int64_t j = j0;
  for (; j + kKeys <= j1; j += kKeys) score_block<kKeys>(t, j, out + (j - j0) * kTileRows);
  for (; j < j1; ++j) score_block<1>(t, j, out + (j - j0) * kTileRows);
}

// N:M with 2 <= N <= 4, in the lanes: the N + 1 best approximate scores of each full group in a
// descending list (a key enters above an equal one never: ties keep the earlier key higher)
// with the keys of the first N. The group is decided here when the N-th
// clears the (N+1)-th by the margin: those N keys are then the N best by exact score too. Their
// keys are sorted (a network on vectors) and written ascending. Returns the decided lanes.
template <int N>
uint32_t nm_top_lanes(const float* col, int64_t g, int64_t m, Floats margin, uint32_t full, int32_t* const* out,
                      int64_t slot) {
  Floats top[N + 1];
  Ints key[N];
  for (int r = 0; r <= N; ++r) top[r] = splat(-std::numeric_limits<float>::infinity());
  for (int r = 0; r < N; ++r) key[r] = Ints{};
  for (int64_t j = g; j < g + m; ++j, col += kTileRows) {
    Floats x = load(col);
    Ints xk = Ints{} + int32_t(j);
#pragma GCC unroll 5
    for (int r = 0; r <= N; ++r) {
      const Ints above = x > top[r];  // strictly: an equal later key stays below
      const Floats stays = above ? x : top[r];
      x = above ? top[r] : x;
      top[r] = stays;
      if (r < N) {
        const Ints kept = above ? xk : key[r];
        xk = above ? key[r] : xk;
        key[r] = kept;
      }
    }
  }
  const uint32_t decided = lane_bits((top[N - 1] - top[N]) > margin) & full;
  if (!decided) return 0;
  auto order = [&](int a, int b) {
    const Ints lo = key[a] < key[b] ? key[a] : key[b];
    key[b] = key[a] < key[b] ? key[b] : key[a];
    key[a] = lo;
  };
  if (N == 2) order(0, 1);
  if (N == 3) order(0, 1), order(1, 2), order(0, 1);
  if (N == 4) order(0, 1), order(2, 3), order(0, 2), order(1, 3), order(1, 2);
  int32_t keys[N][kLanes];
  std::memcpy(keys, key, sizeof keys);
  for (uint32_t bits = decided; bits; bits &= bits - 1) {
    const int l = __builtin_ctz(bits);
    for (int r = 0; r < N; ++r) out[l][slot + r] = keys[r][l];
  }
  return decided;
}

// N:M, in the lanes. N = 1: the best approximate score of each full group, the largest below it
// (a tie with the best counts as the runner-up) and the best's key; 2 <= N <= 4: nm_top_lanes.
// A group whose N-th best is more than the row's margin above the next is decided here
// (layout_scored.cpp proves the margin enough); the rest (ties, near-ties, partial groups,
// N > 4) go to the doubtful callback.
void nm(const ScoreTile& t, const NmTile& p, int64_t j0, int64_t j1, const float* scores) {
  const float low = -std::numeric_limits<float>::infinity();
  const int64_t m = p.m, n = p.n;
  for (int v = 0; v < kRowVectors; ++v) {
    const int r0 = v * kLanes;
    int32_t end32[kLanes];
    for (int l = 0; l < kLanes; ++l) end32[l] = int32_t(t.end[r0 + l] < j1 ? t.end[r0 + l] : j1);
    const Ints end = load_ints(end32);
    const Floats margin = load(p.margin + r0);
    int32_t* const* out = p.out + r0;
    // The rows' outputs lie kv_len * n / m keys apart (a different cache line per row, long
    // since evicted): ask for the lines of two chunks ahead now, so the stores below do not wait.
    const int64_t ahead = (j1 + 2 * (j1 - j0)) / m;
    for (int l = 0; l < kLanes; ++l)
      if (t.end[r0 + l] > (ahead + 1) * m) __builtin_prefetch(out[l] + ahead * n, 1);
    for (int64_t g = j0; g < j1; g += m) {
      const int64_t group = g / m;
      // Lanes whose group is complete / has at least one key (a row's end is at most j1, and
      // a complete group ends at or before j1).
      const uint32_t full = lane_bits(end >= (Ints{} + int32_t(g + m)));
      const uint32_t some = lane_bits(end > (Ints{} + int32_t(g)));
      if (!some) continue;
      uint32_t decided = 0;
      const float* col = scores + (g - j0) * kTileRows + r0;
      if (n == 1 && full) {
        Floats best = splat(low), runner = best;
        Ints key = Ints{};
        for (int64_t j = g; j < g + m; ++j, col += kTileRows) {
          const Floats x = load(col);
          const Ints above = x > best;
          const Floats lesser = x < best ? x : best;
          runner = runner > lesser ? runner : lesser;
          best = above ? x : best;
          key = above ? (Ints{} + int32_t(j)) : key;
        }
        decided = lane_bits((best - runner) > margin) & full;
        int32_t keys[kLanes];
        std::memcpy(keys, &key, sizeof keys);
        for (uint32_t bits = decided; bits; bits &= bits - 1) {
          const int l = __builtin_ctz(bits);
          out[l][group] = keys[l];
        }
      } else if (full && n < m) {
        if (n == 2) decided = nm_top_lanes<2>(col, g, m, margin, full, out, group * n);
        if (n == 3) decided = nm_top_lanes<3>(col, g, m, margin, full, out, group * n);
        if (n == 4) decided = nm_top_lanes<4>(col, g, m, margin, full, out, group * n);
      }
      for (uint32_t bits = some & ~decided; bits; bits &= bits - 1) {
        const int l = __builtin_ctz(bits);
        p.doubtful(p.ctx, r0 + l, g, scores + (g - j0) * kTileRows + r0 + l, kTileRows);
      }
    }
  }
}

// top-k: list every allowed key whose approximate score reaches the row's threshold. One vector
// compare rejects a key for a whole vector of rows. The keys that pass are first written as
// events (value, key, lane) in key order, without a branch per lane (AVX-512 compresses them),
// then appended to their rows' lists: per-lane branches on random scores would mispredict.
void topk(const ScoreTile& t, TopkTile& p, int64_t j0, int64_t j1, const float* scores) {
  float* ev_value = p.event_values;
  int32_t* ev_key = p.event_keys;
  int32_t* ev_lane = p.event_lanes;
  for (int v = 0; v < kRowVectors; ++v) {
    const int r0 = v * kLanes;
    int32_t end32[kLanes];
    int64_t last = 0;
    for (int l = 0; l < kLanes; ++l) {
      end32[l] = int32_t(t.end[r0 + l] < j1 ? t.end[r0 + l] : j1);
      last = end32[l] > last ? end32[l] : last;
    }
    const Ints end = load_ints(end32);
    const Floats threshold = load(p.threshold + r0);
    const float* col = scores + r0;
    int64_t n = 0;
#if SATTN_LAYOUT_AVX512
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
    for (int64_t j = j0; j < last; ++j) {
      const Floats s = load(col + (j - j0) * kTileRows);
      const uint32_t bits = lane_bits((s >= threshold) & ((Ints{} + int32_t(j)) < end));
#if SATTN_LAYOUT_AVX512
      _mm512_storeu_ps(ev_value + n, _mm512_maskz_compress_ps(__mmask16(bits), __m512(s)));
      _mm512_storeu_si512(ev_lane + n, _mm512_maskz_compress_epi32(__mmask16(bits), lanes));
      _mm512_storeu_si512(ev_key + n, _mm512_set1_epi32(int32_t(j)));
      n += __builtin_popcount(bits);
#else
      for (uint32_t b = bits; b; b &= b - 1) {
        const int l = __builtin_ctz(b);
        ev_value[n] = s[l], ev_key[n] = int32_t(j), ev_lane[n] = l;
        ++n;
      }
#endif
    }
    // Each lane's list: where its next entry goes and where the list ends (the list is full
    // there: `full` shrinks it and may raise the threshold, which the rest of this call's events
    // of that lane must then clear).
    float* value_at[kLanes];
    int32_t* key_at[kLanes];
    const float* value_end[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const int64_t r = r0 + l;
      value_at[l] = p.values + r * p.cap + p.count[r];
      key_at[l] = p.keys + r * p.cap + p.count[r];
      value_end[l] = p.values + (r + 1) * p.cap;
    }
    uint32_t raised = 0;
    for (int64_t e = 0; e < n; ++e) {
      const int l = ev_lane[e];
      const float x = ev_value[e];
      if ((raised >> l & 1u) && x < p.threshold[r0 + l]) continue;
      *value_at[l]++ = x;
      *key_at[l]++ = ev_key[e];
      if (value_at[l] == value_end[l]) {
        const int64_t r = r0 + l;
        p.count[r] = p.cap;
        p.full(p.ctx, r);
        value_at[l] = p.values + r * p.cap + p.count[r];
        key_at[l] = p.keys + r * p.cap + p.count[r];
        raised |= 1u << l;
      }
    }
    for (int l = 0; l < kLanes; ++l) p.count[r0 + l] = value_at[l] - (p.values + (r0 + l) * p.cap);
  }
}

}  // namespace

const ScoreKernels score_kernels = {
#define SATTN_STR2(x) #x
#define SATTN_STR(x) SATTN_STR2(x)
    SATTN_STR(SATTN_LAYOUT_ISA_NS), kTileRows, score, nm, topk};

}  // namespace sattn::layout_detail::SATTN_LAYOUT_ISA_NS
