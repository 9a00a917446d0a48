// Fast kernel, CSR layouts (each query row has its own key list) and the integer datapath.
//
// A CSR task is task_rows rows of one (batch, head), cut into tiles of tile_rows rows:
// - a tile whose rows overlap (sliding windows, dense, shared landmarks) runs as GEMM tiles over
//   the key range or the union of its keys, each row masking the keys it lacks: packed fused
//   tiles with a lane mask per key (Problem::csr_fused, the default) or cblas tiles (legacy);
// - the other rows are grouped by their first keys, so rows with equal key sets from different
//   tiles (LSH buckets) still meet in a GEMM tile;
// - what is left (top-k, N:M, ...) runs row by row: gathered SIMD dot products, online softmax,
//   gathered accumulate (the AVX-512 copy: a 16-keys-per-step row kernel, gather_row_avx512),
//   over key windows that stay in L2 while all the rows read them.
// Work is proportional to the allowed pairs: GEMM tiles are taken only when their column space
// is at most kUnionSlack x the tile's pairs.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"

#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers pass _mm512_undefined_ps() as the unused merge source of unmasked
// intrinsics, which -Wuninitialized reports once inlined (as in kernel_fast_fused.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sattn::fast {
inline namespace SATTN_CPU_ISA_NS {

namespace {

// GEMM tiles are used when columns * rows <= kUnionSlack * allowed pairs of the tile.
constexpr int64_t kUnionSlack = 2;
// Rows a regrouped GEMM tile needs at least: its K/V columns are gathered, a cost that only
// pays off when enough rows share them.
constexpr int64_t kMinGroupRows = 8;
// A regrouped tile takes up to this many tiles' worth of rows, to share its gathered columns.
constexpr int64_t kGroupRowsPerTile = 4;
// Contiguous-range tiles (windows) of packed fused tiles: adjacent tiles are merged up to this
// many rows while columns x rows <= kMergeSlackPercent / 100 x the merged tile's pairs.
constexpr int64_t kMergeRows = 64;
constexpr int64_t kMergeSlackPercent = 115;
// Largest union whose gathered K and V rows are kept for the next tile.
constexpr int64_t kUnionCacheBytes = 4 << 20;
// Keys scored per batch on the row-by-row paths (bounds the score buffer).
constexpr int64_t kRowBatchKeys = 256;
// Bytes of K+V rows per key window of the row-by-row path: the window stays in L2 (512 KiB on the
// benchmark machine, shared with the rows' Q and accumulators) while every row reads its keys.
constexpr int64_t kKeyWindowBytes = 128 * 1024;

// Masks a chunk of a tile's column space: row r may use the keys of its list entries
// [first[r], last[r]); everything else is -inf. Columns are either a contiguous key range
// (column = key - key_base) or positions in a union (column = key_position[key] - key_base).
struct ListMask final : ScoreMask {
  const int32_t* idx;
  const int64_t* first;
  const int64_t* last;
  const int32_t* key_position;  // null: contiguous columns
  int64_t key_base;
  void apply(float* scores, int64_t ld, int64_t rows, int64_t n) const override {
    for (int64_t r = 0; r < rows; ++r) {
      float* row = scores + r * ld;
      if (first[r] < last[r] && !key_position && idx[last[r] - 1] - idx[first[r]] == last[r] - first[r] - 1) {
        // The row's keys are one contiguous range here (windows): mask both sides of it.
        std::fill(row, row + (idx[first[r]] - key_base), kNegInf);
        std::fill(row + (idx[last[r] - 1] - key_base + 1), row + n, kNegInf);
        continue;
      }
      int64_t next_free = 0;  // columns before this one are already decided
      for (int64_t e = first[r]; e < last[r]; ++e) {
        const int64_t col = (key_position ? key_position[idx[e]] : idx[e]) - key_base;
        std::fill(row + next_free, row + col, kNegInf);
        next_free = col + 1;
      }
      std::fill(row + next_free, row + n, kNegInf);
    }
  }
};

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Where one (batch, head) lives, for the tile functions.
struct HeadView {
  const HeadLayout* layout;
  const float* q;  // row 0 of the query head
  const float* k;  // row 0 of the KV head
  const float* v;
  float* out;      // row 0 of the output head
  float* lse;      // row 0 of the head's log-sum-exp, or null
  float* lse_of(int64_t row) const { return lse ? lse + row : nullptr; }
};

int64_t pairs_of(const HeadLayout& head, const int64_t* rows, int64_t count) {
  int64_t pairs = 0;
  for (int64_t r = 0; r < count; ++r) pairs += head.ptr[rows[r] + 1] - head.ptr[rows[r]];
  return pairs;
}

// Collects the distinct keys of `rows` into scratch.keys, sorted, giving up (false) as soon as
// there are more than max_keys of them.
bool collect_union(const HeadLayout& head, const int64_t* rows, int64_t count, int64_t kv_len, int64_t max_keys,
                   Scratch& scratch) {
  if (scratch.key_stamp.size() < static_cast<size_t>(kv_len) || scratch.stamp == INT32_MAX) {
    scratch.key_stamp.assign(kv_len, -1);
    scratch.stamp = 0;
  }
  const int32_t stamp = ++scratch.stamp;
  int32_t* key_stamp = scratch.key_stamp.data();
  std::vector<int32_t>& keys = scratch.keys;
  keys.clear();
  const int32_t* idx = head.idx.data();
  size_t sorted_prefix = 0;  // the first row's keys arrive sorted
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t e = head.ptr[rows[r]], end = head.ptr[rows[r] + 1]; e < end; ++e) {
      const int32_t key = idx[e];
      if (key_stamp[key] == stamp) continue;
      key_stamp[key] = stamp;
      keys.push_back(key);
      if (int64_t(keys.size()) > max_keys) return false;
    }
    if (r == 0) sorted_prefix = keys.size();
  }
  // Rows that share most keys add few: sort those and merge, instead of sorting everything.
  std::sort(keys.begin() + sorted_prefix, keys.end());
  std::inplace_merge(keys.begin(), keys.begin() + sorted_prefix, keys.end());
  return true;
}

// GEMM tiles for `rows` over a column space of `columns` keys: the contiguous range
// [key_lo, key_lo + columns) when union_keys is null, else the sorted union_keys. identical_rows:
// every row's list is union_keys itself (no per-row cursor search).
void run_columns_tile(const Problem& p, Scratch& scratch, const HeadView& hv, const int64_t* rows, int64_t count,
                      const int32_t* union_keys, int64_t key_lo, int64_t columns,
                      bool identical_rows = false) {
  const int64_t dim = p.dim;
  const HeadLayout& head = *hv.layout;
  int32_t* key_position = nullptr;
  bool gathered_union = false;  // K/V of the whole union gathered in scratch.union_k/v
  if (union_keys) {
    grow(scratch.key_position, p.kv_len);
    key_position = scratch.key_position.data();
    for (int64_t c = 0; c < columns; ++c) key_position[union_keys[c]] = int32_t(c);
    // Consecutive tiles often share one union (landmarks: every row has the same keys); keep
    // the last gathered union and gather again only when it changes.
    const bool cacheable = columns * dim * int64_t(2 * sizeof(float)) <= kUnionCacheBytes;
    gathered_union = cacheable && scratch.union_head == hv.k && scratch.union_cached_keys.size() == size_t(columns) &&
                     std::equal(union_keys, union_keys + columns, scratch.union_cached_keys.begin());
    if (cacheable && !gathered_union) {
      grow(scratch.union_k, columns * dim);
      grow(scratch.union_v, columns * dim);
      for (int64_t c = 0; c < columns; ++c) {
        std::copy_n(hv.k + int64_t(union_keys[c]) * dim, dim, scratch.union_k.data() + c * dim);
        std::copy_n(hv.v + int64_t(union_keys[c]) * dim, dim, scratch.union_v.data() + c * dim);
      }
      scratch.union_cached_keys.assign(union_keys, union_keys + columns);
      scratch.union_head = hv.k;
      gathered_union = true;
    }
  }
  // Q rows: in place when consecutive, else gathered.
  const float* q_tile = hv.q + rows[0] * dim;
  if (rows[count - 1] - rows[0] != count - 1) {
    grow(scratch.q_gather, count * dim);
    for (int64_t r = 0; r < count; ++r) std::copy_n(hv.q + rows[r] * dim, dim, scratch.q_gather.data() + r * dim);
    q_tile = scratch.q_gather.data();
  }
  grow(scratch.cursor, 2 * count);
  int64_t* first = scratch.cursor.data();  // per row: first entry of the current chunk
  int64_t* last = first + count;           // per row: one past its last entry in the chunk
  for (int64_t r = 0; r < count; ++r) last[r] = head.ptr[rows[r]];
  const int32_t* idx = head.idx.data();

  // Equal chunks of at most kMaxChunkKeys columns (288 columns: 144 + 144, not 256 + 32).
  const int64_t chunks = std::max<int64_t>(1, (columns + kMaxChunkKeys - 1) / kMaxChunkKeys);  // rows may be empty
  const int64_t chunk_columns = (columns + chunks - 1) / chunks;
  // Packed fused tiles (Problem::csr_fused): the register-blocked tile of the block path, each
  // row's keys chosen by a lane mask (FusedTile allow bits); else cblas tiles with a ListMask.
  TileState state{};
  FusedTile fused{};
  const int64_t lanes = fused_lanes();
  if (p.csr_fused)
    fused = fused_begin(scratch, q_tile, count, dim, p.score_scale, 0, 0);
  else
    state = begin_tile(scratch, count, dim);
  for (int64_t c0 = 0; c0 < columns; c0 += chunk_columns) {
    const int64_t n = std::min(columns, c0 + chunk_columns) - c0;
    const int64_t first_key = union_keys ? union_keys[c0] : key_lo + c0;
    const int64_t last_key = union_keys ? union_keys[c0 + n - 1] : key_lo + c0 + n - 1;
    int64_t allowed = 0;
    for (int64_t r = 0; r < count; ++r) {  // rows read their sorted lists with a cursor
      first[r] = last[r];
      if (identical_rows) {  // every row's list is the union: this chunk's columns, in order
        last[r] = first[r] + n;
        allowed += n;
        continue;
      }
      const int64_t end = head.ptr[rows[r] + 1];
      // The row's entries up to last_key: a binary search, not a scan (a scan costs a compare
      // per allowed pair, as much as the packed tile's own work per pair at short rows); when
      // the rest of the row is one run of consecutive keys (windows), its length gives it.
      if (first[r] >= end || idx[first[r]] > last_key)
        last[r] = first[r];
      else if (idx[end - 1] - idx[first[r]] == end - 1 - first[r])
        last[r] = std::min<int64_t>(end, first[r] + (last_key - idx[first[r]]) + 1);
      else
        last[r] = std::upper_bound(idx + first[r], idx + end, int32_t(last_key)) - idx;
      allowed += last[r] - first[r];
    }
    if (allowed == 0) continue;
    const float* k_chunk = hv.k + first_key * dim;
    const float* v_chunk = hv.v + first_key * dim;
    if (last_key - first_key != n - 1) {  // scattered union keys: gathered contiguous
      if (gathered_union) {
        k_chunk = scratch.union_k.data() + c0 * dim;
        v_chunk = scratch.union_v.data() + c0 * dim;
      } else {
        grow(scratch.k_gather, n * dim);
        grow(scratch.v_gather, n * dim);
        for (int64_t c = 0; c < n; ++c) {
          std::copy_n(hv.k + int64_t(union_keys[c0 + c]) * dim, dim, scratch.k_gather.data() + c * dim);
          std::copy_n(hv.v + int64_t(union_keys[c0 + c]) * dim, dim, scratch.v_gather.data() + c * dim);
        }
        k_chunk = scratch.k_gather.data();
        v_chunk = scratch.v_gather.data();
      }
    }
    const int64_t key_base = union_keys ? c0 : first_key;
    if (p.csr_fused) {
      const uint64_t* allow = nullptr;
      if (allowed != count * n) {
        // Rows whose entries here fill a contiguous run of columns (windows, shared unions) set
        // their bit at the run's two ends of a difference array (bit flips), and one prefix XOR
        // over the columns turns it into the masks: O(rows + columns), not O(pairs). Other rows
        // set a bit per entry.
        const int64_t subs = fused.count;
        const auto words = size_t((n + 1) * subs);
        grow(scratch.lane_allow, words);
        uint64_t* bits = scratch.lane_allow.data();
        std::fill_n(bits, words, uint64_t{0});
        auto column = [&](int64_t e) { return (key_position ? key_position[idx[e]] : idx[e]) - key_base; };
        bool scattered = false;
        for (int64_t r = 0; r < count; ++r) {
          if (first[r] == last[r]) continue;
          const int64_t c0 = column(first[r]), c1 = column(last[r] - 1);
          if (c1 - c0 != last[r] - first[r] - 1) {
            scattered = true;
            continue;
          }
          const uint64_t bit = uint64_t{1} << (r % lanes);
          bits[c0 * subs + r / lanes] ^= bit;
          bits[(c1 + 1) * subs + r / lanes] ^= bit;
        }
        for (int64_t w = subs; w < n * subs; ++w) bits[w] ^= bits[w - subs];
        if (scattered)
          for (int64_t r = 0; r < count; ++r) {
            if (first[r] == last[r] || column(last[r] - 1) - column(first[r]) == last[r] - first[r] - 1) continue;
            const uint64_t bit = uint64_t{1} << (r % lanes);
            for (int64_t e = first[r]; e < last[r]; ++e) bits[column(e) * subs + r / lanes] |= bit;
          }
        allow = bits;
      }
      fused_step(fused, scratch, k_chunk, v_chunk, n, nullptr, false, p.softcap2, allow);
      continue;
    }
    ListMask mask;
    mask.idx = idx;
    mask.first = first;
    mask.last = last;
    mask.key_position = key_position;
    mask.key_base = key_base;
    tile_step(state, scratch, q_tile, k_chunk, v_chunk, n, p.score_scale, allowed == count * n ? nullptr : &mask,
              p.softcap2);
  }
  for (int64_t r = 0; r < count; ++r) {
    if (p.csr_fused)
      fused_finish_row(fused, r, hv.out + rows[r] * dim, hv.lse_of(rows[r]));
    else
      finish_row(state, r, hv.out + rows[r] * dim, hv.lse_of(rows[r]));
  }
}

#if defined(__AVX512F__)
// ---- the AVX-512 row kernel of the gather path (issue 25) ----
// One query row against a list of scattered keys (head_dim = 16 * C), instead of the 8-wide
// gathered_scores / online_softmax_row / gathered_accumulate of kernel_fast_simd.hpp:
// - QK^T: per key C FMAs of 16 lanes into its own vector, then one transpose-reduce of 16 such
//   vectors into one vector of 16 scores (23 shuffles, 8 blends, 15 adds per 16 keys);
// - the online softmax once per batch of up to kRowBatchKeys keys, exp2 16 lanes at a time;
// - P V: a broadcast FMA per key and 16 output lanes, two accumulator sets (even and odd keys).
// Q and the accumulators stay in registers over the row's keys in one key window (one call).
// The kernel reads K and V rows 64-byte aligned: when the tensors are not (a Tensor's data is
// malloc'ed, 16 bytes past a page), run_gather_rows copies each key window to aligned scratch
// first; loads split across two cache lines cost 1.25x (L1) to 1.8x (L2-resident rows) per pair
// in a micro-benchmark, the copy is one sequential read of the window per task.
// Measured per pair at head_dim 64 on this machine's AVX-512 Xeon, one thread, 256 random keys of
// a 1 MiB K+V per row: 4.0-4.4 ns; the P V phase alone 2 ns of it (8 loads of 64 bytes per pair on 2
// load ports, from L2); the dense fused kernel: 1.7 ns a pair (docs/decisions.md, "CPU gather
// path").

// 2^x for x <= 0, the kExp2Poly polynomial (as the fused tile's); x < -126 and -inf give 0.
inline __m512 gather_exp2(__m512 x) {
  const __mmask16 ok = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_GE_OQ);
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 poly = _mm512_set1_ps(kExp2Poly[0]);
  #pragma GCC unroll 16
  for (int i = 1; i < 7; ++i) poly = _mm512_fmadd_ps(poly, f, _mm512_set1_ps(kExp2Poly[i]));
  return _mm512_maskz_scalef_ps(ok, poly, n);
}

// Lane u of the result = the sum of the 16 lanes of a[u].
inline __m512 gather_reduce16(__m512 a[16]) {
  // 16 -> 8: [a.lo | b.lo] + [a.hi | b.hi] = the 8-lane partials of a (low half), b (high half).
  __m512 h[8];
  #pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    const __m512 x = a[2 * i], y = a[2 * i + 1];
    h[i] = _mm512_add_ps(_mm512_mask_blend_ps(__mmask16(0xFF00), x, y), _mm512_shuffle_f32x4(x, y, 0x4E));
  }
  // 8 -> 4: 128-bit blocks [x0 x2 y0 y2] + [x1 x3 y1 y3]: the 4-lane partials of 4 keys.
  __m512 g[4];
  #pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) {
    const __m512 x = h[2 * i], y = h[2 * i + 1];
    g[i] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
  }
  // 4 -> 2: within each block, [x0 x1 y0 y1] + [x2 x3 y2 y3].
  __m512 f[2];
  #pragma GCC unroll 16
  for (int i = 0; i < 2; ++i) {
    const __m512 x = g[2 * i], y = g[2 * i + 1];
    f[i] = _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x44), _mm512_shuffle_ps(x, y, 0xEE));
  }
  // 2 -> 1: within each block, [x0 x2 y0 y2] + [x1 x3 y1 y3].
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(f[0], f[1], 0x88), _mm512_shuffle_ps(f[0], f[1], 0xDD));
  // Lane 4b + j of r holds key 4j + b (a 4 x 4 transpose, its own inverse): put key u in lane u.
  static constexpr int32_t kTranspose[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
  return _mm512_permutexvar_ps(_mm512_loadu_si512(kTranspose), r);
}

// Floats from the previous 64-byte boundary (0..15).
inline int64_t misalignment(const float* p) { return int64_t((reinterpret_cast<uintptr_t>(p) / sizeof(float)) & 15); }

// One row against keys[0..n) (ascending; K / V row of key j at k_base / v_base + (j - key0) *
// dim, 64-byte aligned), in batches of kRowBatchKeys keys: (1) the batch's scores, 16 keys per
// step, the steps independent of each other (no step waits for the softmax of the one before);
// (2) one online-softmax update per batch; (3) P V with two accumulator sets (even and odd keys).
template <int C>
void gather_row_avx512(const float* q_row, const float* k_base, const float* v_base, int64_t key0, const int32_t* keys,
                       int64_t n, float score_scale, float softcap2, float& running_max, float& running_sum,
                       float* acc_mem) {
  constexpr int64_t dim = 16 * C;
  __m512 q[C], acc0[C], acc1[C];
  const __m512 scale = _mm512_set1_ps(score_scale);
  #pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    q[c] = _mm512_mul_ps(_mm512_loadu_ps(q_row + 16 * c), scale);
    acc0[c] = _mm512_loadu_ps(acc_mem + 16 * c);
    acc1[c] = _mm512_setzero_ps();
  }
  float m = running_max, sum = running_sum;
  alignas(64) float p[kRowBatchKeys];
  for (int64_t b0 = 0; b0 < n; b0 += kRowBatchKeys) {
    const int64_t nb = std::min(kRowBatchKeys, n - b0);
    const int32_t* key = keys + b0;
    for (int64_t t = 0; t < nb; t += 16) {
      const int64_t count = std::min<int64_t>(16, nb - t);
      __m512 part[16];
      #pragma GCC unroll 16
      for (int u = 0; u < 16; ++u) {
        const float* kr = k_base + (int64_t(key[t + std::min<int64_t>(u, count - 1)]) - key0) * dim;
        __m512 s = _mm512_mul_ps(q[0], _mm512_load_ps(kr));
        #pragma GCC unroll 16
        for (int c = 1; c < C; ++c) s = _mm512_fmadd_ps(q[c], _mm512_load_ps(kr + 16 * c), s);
        part[u] = s;
      }
      _mm512_store_ps(p + t, gather_reduce16(part));  // p has room for a whole last step
    }
    if (softcap2 > 0) apply_softcap(p, nb, softcap2);
    __m512 batch_max = _mm512_set1_ps(kNegInf);
    int64_t t = 0;
    for (; t + 16 <= nb; t += 16) batch_max = _mm512_max_ps(batch_max, _mm512_load_ps(p + t));
    if (t < nb)
      batch_max = _mm512_mask_max_ps(batch_max, __mmask16((1u << (nb - t)) - 1), batch_max, _mm512_load_ps(p + t));
    const float step_max = _mm512_reduce_max_ps(batch_max);
    if (step_max > m) {
      const float r = exp2_scalar(m - step_max);  // 0 on the first batch
      const __m512 rescale = _mm512_set1_ps(r);
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        acc0[c] = _mm512_mul_ps(acc0[c], rescale);
        acc1[c] = _mm512_mul_ps(acc1[c], rescale);
      }
      sum *= r;
      m = step_max;
    }
    const __m512 mv = _mm512_set1_ps(m);
    __m512 sv = _mm512_setzero_ps();
    for (t = 0; t < nb; t += 16) {
      const __mmask16 valid = nb - t >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nb - t)) - 1);
      const __m512 e = _mm512_maskz_mov_ps(valid, gather_exp2(_mm512_sub_ps(_mm512_load_ps(p + t), mv)));
      _mm512_store_ps(p + t, e);
      sv = _mm512_add_ps(sv, e);
    }
    sum += _mm512_reduce_add_ps(sv);
    int64_t u = 0;
    for (; u + 2 <= nb; u += 2) {
      const float* v0 = v_base + (int64_t(key[u]) - key0) * dim;
      const float* v1 = v_base + (int64_t(key[u + 1]) - key0) * dim;
      const __m512 p0 = _mm512_set1_ps(p[u]), p1 = _mm512_set1_ps(p[u + 1]);
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        acc0[c] = _mm512_fmadd_ps(p0, _mm512_load_ps(v0 + 16 * c), acc0[c]);
        acc1[c] = _mm512_fmadd_ps(p1, _mm512_load_ps(v1 + 16 * c), acc1[c]);
      }
    }
    if (u < nb) {
      const float* v0 = v_base + (int64_t(key[u]) - key0) * dim;
      const __m512 p0 = _mm512_set1_ps(p[u]);
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc0[c] = _mm512_fmadd_ps(p0, _mm512_load_ps(v0 + 16 * c), acc0[c]);
    }
  }
  #pragma GCC unroll 16
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc_mem + 16 * c, _mm512_add_ps(acc0[c], acc1[c]));
  running_max = m;
  running_sum = sum;
}

using GatherRowFn = void (*)(const float*, const float*, const float*, int64_t, const int32_t*, int64_t, float, float,
                             float&, float&, float*);
// The row kernel for head_dim `dim` (its K and V rows 64-byte aligned), or null (the generic
// gathered_scores path).
GatherRowFn gather_row_kernel(int64_t dim) {
  switch (dim) {
    case 16: return gather_row_avx512<1>;
    case 32: return gather_row_avx512<2>;
    case 64: return gather_row_avx512<4>;
    case 128: return gather_row_avx512<8>;
    default: return nullptr;
  }
}
#endif

// Row by row for scattered keys. Keys are visited in windows of ascending key index whose K and V
// rows fit in L2, and every row reads its keys of a window before the next window, so the rows
// share the window's cache lines.
void run_gather_rows(const Problem& p, Scratch& scratch, const HeadView& hv, const int64_t* rows, int64_t count) {
  const int64_t dim = p.dim;
  const int64_t window_keys = std::max<int64_t>(64, kKeyWindowBytes / (2 * dim * int64_t(sizeof(float))));
  grow(scratch.cursor, count);
  int64_t* cursor = scratch.cursor.data();
  const int64_t* ptr = hv.layout->ptr.data();
  const int32_t* idx = hv.layout->idx.data();
  for (int64_t r = 0; r < count; ++r) cursor[r] = ptr[rows[r]];
  grow(scratch.scores, kRowBatchKeys);
  float* scores = scratch.scores.data();
  TileState state = begin_tile(scratch, count, dim);
#if defined(__AVX512F__)
  // K and V rows that are not 64-byte aligned: each window is first copied to aligned scratch (a
  // sequential read, which also brings the window into L2 ahead of the rows' random reads) and
  // the row kernel reads the copy.
  const bool copy_windows = misalignment(hv.k) != 0 || misalignment(hv.v) != 0;
  float* k_window = nullptr;
  float* v_window = nullptr;
  if (copy_windows) {
    grow(scratch.k_gather, window_keys * dim + 16);
    grow(scratch.v_gather, window_keys * dim + 16);
    k_window = scratch.k_gather.data() + (16 - misalignment(scratch.k_gather.data())) % 16;
    v_window = scratch.v_gather.data() + (16 - misalignment(scratch.v_gather.data())) % 16;
  }
  const GatherRowFn row_kernel = gather_row_kernel(dim);
#endif
  for (;;) {
    // Next key window: starts at the smallest unread key of any row.
    int64_t window_begin = INT64_MAX;
    for (int64_t r = 0; r < count; ++r)
      if (cursor[r] < ptr[rows[r] + 1]) window_begin = std::min<int64_t>(window_begin, idx[cursor[r]]);
    if (window_begin == INT64_MAX) break;
    const int64_t window_end = window_begin + window_keys;
#if defined(__AVX512F__)
    const float* k_rows = hv.k;
    const float* v_rows = hv.v;
    int64_t key0 = 0;
    if (row_kernel && copy_windows) {
      const int64_t n = std::min(window_end, p.kv_len) - window_begin;
      std::copy_n(hv.k + window_begin * dim, n * dim, k_window);
      std::copy_n(hv.v + window_begin * dim, n * dim, v_window);
      k_rows = k_window;
      v_rows = v_window;
      key0 = window_begin;
    }
#endif
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row_end = ptr[rows[r] + 1];
      const float* q_row = hv.q + rows[r] * dim;
      float* acc = state.acc + r * dim;
      int64_t e = cursor[r];
#if defined(__AVX512F__)
      if (row_kernel) {
        // The list entries of the row after next (this window's part of it: read from L3, one
        // stream per row, which the hardware prefetchers do not follow).
        if (r + 2 < count) {
          const int32_t* next = idx + cursor[r + 2];
          const int64_t entries = std::min<int64_t>(ptr[rows[r + 2] + 1] - cursor[r + 2], window_keys);
          for (int64_t x = 0; x < entries; x += 16) _mm_prefetch(reinterpret_cast<const char*>(next + x), _MM_HINT_T0);
        }
        // The row's entries below window_end: a forward scan, 16 entries per compare (the
        // kernel reads these entries next; a binary search missed the cache at every step).
        int64_t segment_end = e;
        const __m512i limit = _mm512_set1_epi32(int32_t(std::min<int64_t>(window_end, INT32_MAX)));
        for (;;) {
          const int64_t left = row_end - segment_end;
          if (left <= 0) break;
          const __mmask16 valid = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
          const __mmask16 below =
              _mm512_mask_cmplt_epi32_mask(valid, _mm512_maskz_loadu_epi32(valid, idx + segment_end), limit);
          segment_end += __builtin_popcount(unsigned(below));  // the list ascends: a prefix
          if (below != valid) break;
        }
        if (segment_end > e)
          row_kernel(q_row, k_rows, v_rows, key0, idx + e, segment_end - e, p.score_scale, p.softcap2,
                     state.row_max[r], state.row_sum[r], acc);
        cursor[r] = segment_end;
        continue;
      }
#endif
      while (e < row_end && idx[e] < window_end) {
        const int64_t batch_limit = std::min(row_end, e + kRowBatchKeys);
        int64_t batch_end = e;
        while (batch_end < batch_limit && idx[batch_end] < window_end) ++batch_end;
        const int64_t n = batch_end - e;
        gathered_scores(q_row, hv.k, idx + e, n, dim, p.score_scale, scores);
        apply_softcap(scores, n, p.softcap2);
        if (online_softmax_row(scores, n, state.row_max[r], state.row_sum[r], acc, dim))
          gathered_accumulate(acc, scores, hv.v, idx + e, n, dim);
        e = batch_end;
      }
      cursor[r] = e;
    }
  }
  for (int64_t r = 0; r < count; ++r) finish_row(state, r, hv.out + rows[r] * dim, hv.lse_of(rows[r]));
}

inline int32_t dot_int8(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t sum = 0;  // exact: |a|,|b| <= 127, so n < 133000 cannot overflow
  for (int64_t c = 0; c < n; ++c) sum += int32_t(a[c]) * int32_t(b[c]);
  return sum;
}

// How many rows from row0 on (the tile's `count`, then whole tiles of tile_rows up to kMergeRows
// rows, not past task_end) have exactly row0's key list; 0 when a row of the first tile differs.
// same_as_previous: the head's flags from check_layout (row r's list equals row r - 1's).
int64_t shared_list_rows(const uint8_t* same_as_previous, int64_t row0, int64_t count, int64_t task_end,
                         int64_t tile_rows) {
  auto same = [&](int64_t r) { return same_as_previous[r] != 0; };
  for (int64_t r = row0 + 1; r < row0 + count; ++r)
    if (!same(r)) return 0;
  while (row0 + count < task_end) {
    const int64_t next = std::min({tile_rows, task_end - (row0 + count), kMergeRows - count});
    if (next <= 0) break;
    for (int64_t r = row0 + count; r < row0 + count + next; ++r)
      if (!same(r)) return count;
    count += next;
  }
  return count;
}

}  // namespace

void run_csr_task(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t task) {
  const int64_t task_begin = task * p.task_rows;
  const int64_t task_end = std::min(p.seq_len, task_begin + p.task_rows);
  const int64_t kvh = h / p.group;
  const HeadLayout& head = p.layout->head(b, kvh);
  const HeadView hv{&head, p.q_row(b, h, 0), p.k + p.kv_offset(b, kvh), p.v + p.kv_offset(b, kvh), p.out_row(b, h, 0),
                    p.lse_row(b, h, 0)};
  const int64_t* ptr = head.ptr.data();
  const int32_t* idx = head.idx.data();
  std::vector<int64_t>& pending = scratch.gather_rows;  // rows no tile took
  pending.clear();
  std::vector<int64_t>& tile = scratch.tile_rows;
  for (int64_t row0 = task_begin; row0 < task_end; row0 += int64_t(tile.size())) {
    int64_t count = std::min(p.tile_rows, task_end - row0);
    tile.resize(count);
    std::iota(tile.begin(), tile.end(), row0);
    const int64_t pairs = ptr[row0 + count] - ptr[row0];
    if (pairs == 0) {
      std::fill(hv.out + row0 * p.dim, hv.out + (row0 + count) * p.dim, 0.0f);
      if (hv.lse) std::fill(hv.lse + row0, hv.lse + row0 + count, kNegInf);
      continue;
    }
    // Sorted lists: the first and last entries of the rows bound the tile's keys.
    int64_t key_lo = INT64_MAX, key_hi = -1;
    for (int64_t r = row0; r < row0 + count; ++r) {
      if (ptr[r] == ptr[r + 1]) continue;
      key_lo = std::min<int64_t>(key_lo, idx[ptr[r]]);
      key_hi = std::max<int64_t>(key_hi, idx[ptr[r + 1] - 1]);
    }
    const int64_t max_columns = kUnionSlack * pairs / count;
    // A small union needs rows that share keys; when fewer than half the rows start with the
    // first row's first key, skip building it (LSH, top-k: the tile goes to the later paths).
    int64_t same_start = 0;
    for (int64_t r = row0; r < row0 + count; ++r)
      same_start += ptr[r] < ptr[r + 1] && ptr[row0] < ptr[row0 + 1] && idx[ptr[r]] == idx[ptr[row0]];
    if (key_hi - key_lo + 1 <= max_columns) {
      // Packed tiles: the next tiles join this one (up to kMergeRows rows) while the column
      // range of the whole stays within kMergeSlack of its pairs (long windows: a 64-row tile
      // reads each K/V step once for 64 rows instead of twice for 32).
      for (int64_t pairs_all = pairs; p.csr_fused && row0 + count < task_end;) {
        const int64_t next = std::min({p.tile_rows, task_end - (row0 + count), kMergeRows - count});
        if (next <= 0) break;
        int64_t lo = key_lo, hi = key_hi;
        for (int64_t r = row0 + count; r < row0 + count + next; ++r) {
          if (ptr[r] == ptr[r + 1]) continue;
          lo = std::min<int64_t>(lo, idx[ptr[r]]);
          hi = std::max<int64_t>(hi, idx[ptr[r + 1] - 1]);
        }
        const int64_t merged_pairs = ptr[row0 + count + next] - ptr[row0];
        if (merged_pairs == pairs_all || (hi - lo + 1) * (count + next) * 100 > kMergeSlackPercent * merged_pairs) break;
        key_lo = lo;
        key_hi = hi;
        pairs_all = merged_pairs;
        count += next;
      }
      tile.resize(count);
      std::iota(tile.begin(), tile.end(), row0);
      run_columns_tile(p, scratch, hv, tile.data(), count, nullptr, key_lo, key_hi - key_lo + 1);
    }
    else if (const int64_t shared = p.csr_fused && p.same_as_previous
                                        ? shared_list_rows(p.same_as_previous + size_t(&head - p.layout->heads.data()) *
                                                                                    size_t(p.seq_len),
                                                           row0, count, task_end, p.tile_rows)
                                        : 0;
             shared > 0) {
      // Rows with one and the same list (landmarks): that list is the union, read in place, and
      // up to kMergeRows such rows form one tile.
      tile.resize(shared);
      std::iota(tile.begin(), tile.end(), row0);
      run_columns_tile(p, scratch, hv, tile.data(), shared, idx + ptr[row0], 0, ptr[row0 + 1] - ptr[row0], true);
    } else if (2 * same_start >= count && collect_union(head, tile.data(), count, p.kv_len, max_columns, scratch))
      run_columns_tile(p, scratch, hv, tile.data(), count, scratch.keys.data(), 0, int64_t(scratch.keys.size()));
    else
      pending.insert(pending.end(), tile.begin(), tile.end());
  }
  if (pending.empty()) return;

  // Second chance: rows with equal key sets need not be neighbours (LSH buckets). Sorted by their
  // first two keys, such rows become neighbours; each run of rows that agree on them (at most
  // kGroupRowsPerTile * tile_rows) runs as a GEMM tile when its union is small.
  auto first_keys = [&](int64_t row) {
    const int64_t n = ptr[row + 1] - ptr[row];
    return std::pair<int64_t, int64_t>(n > 0 ? idx[ptr[row]] : -1, n > 1 ? idx[ptr[row] + 1] : -1);
  };
  std::sort(pending.begin(), pending.end(), [&](int64_t a, int64_t c) {
    return std::pair(first_keys(a), a) < std::pair(first_keys(c), c);
  });
  std::vector<int64_t>& gather = scratch.tile_rows;  // reused: the rows left to the gather path
  gather.clear();
  for (size_t g0 = 0; g0 < pending.size();) {
    size_t g1 = g0 + 1;
    while (g1 < pending.size() && g1 - g0 < size_t(kGroupRowsPerTile * p.tile_rows) &&
           first_keys(pending[g1]) == first_keys(pending[g0]))
      ++g1;
    const int64_t* group = pending.data() + g0;
    const auto count = int64_t(g1 - g0);
    g0 = g1;
    if (count < kMinGroupRows) {
      gather.insert(gather.end(), group, group + count);
      continue;
    }
    // Rows with one and the same list (bucket layouts whose rows add no keys of their own): that
    // list is the union, read in place (no union to build and sort) and needs no lane masks.
    const int64_t first_len = ptr[group[0] + 1] - ptr[group[0]];
    bool identical = first_len > 0;
    for (int64_t r = 1; identical && r < count; ++r)
      identical = ptr[group[r] + 1] - ptr[group[r]] == first_len &&
                  std::equal(idx + ptr[group[r]], idx + ptr[group[r] + 1], idx + ptr[group[0]]);
    if (identical)
      run_columns_tile(p, scratch, hv, group, count, idx + ptr[group[0]], 0, first_len, true);
    else if (collect_union(head, group, count, p.kv_len, kUnionSlack * pairs_of(head, group, count) / count, scratch))
      run_columns_tile(p, scratch, hv, group, count, scratch.keys.data(), 0, int64_t(scratch.keys.size()));
    else
      gather.insert(gather.end(), group, group + count);
  }
  if (!gather.empty()) run_gather_rows(p, scratch, hv, gather.data(), int64_t(gather.size()));
}

void run_integer_tile(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t tile) {
  const Layout& layout = *p.layout;
  const int64_t tile_height = layout.block ? layout.block_size : p.tile_rows;
  const int64_t row0 = tile * tile_height;
  const int64_t rows = std::min(tile_height, p.seq_len - row0);
  const int64_t kvh = h / p.group;
  const HeadLayout& head = layout.head(b, kvh);
  const int8_t* k_head = p.k_int + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  grow(scratch.scores, kRowBatchKeys);
  float* scores = scratch.scores.data();
  TileState state = begin_tile(scratch, rows, p.dim);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = row0 + r;
    const int8_t* q_row = p.q_int + ((b * p.heads + h) * p.seq_len + i) * p.dim;
    // The row's keys: its CSR list, or its kept blocks expanded with the causal/bounds rule.
    const auto [keys, key_count] = row_keys(layout, head, tile, i, scratch);
    float* acc = state.acc + r * p.dim;
    for (int64_t e = 0; e < key_count; e += kRowBatchKeys) {
      const int64_t n = std::min(kRowBatchKeys, key_count - e);
      // int8 x int8 -> int32 is exact; one fp32 scaling per score.
      for (int64_t t = 0; t < n; ++t)
        scores[t] = float(dot_int8(q_row, k_head + int64_t(keys[e + t]) * p.dim, p.dim)) * p.int_score_scale;
      apply_softcap(scores, n, p.softcap2);
      if (online_softmax_row(scores, n, state.row_max[r], state.row_sum[r], acc, p.dim))
        gathered_accumulate(acc, scores, v_head, keys + e, n, p.dim);
    }
  }
  finish_tile(state, p.out_row(b, h, row0), p.lse_row(b, h, row0));
}

}  // inline namespace SATTN_CPU_ISA_NS
}  // namespace sattn::fast
