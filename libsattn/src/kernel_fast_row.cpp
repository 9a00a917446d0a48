// Fast kernel, CSR layouts (each query row has its own key list) and the integer datapath.
//
// A tile of rows whose keys overlap a lot (sliding windows, dense) runs as GEMM tiles over the
// union of its keys, with an element mask; a tile with scattered keys (top-k, N:M, LSH, ...)
// runs row by row: gathered SIMD dot products, online softmax, gathered accumulate. Either way the
// work is proportional to the allowed pairs (the union path does at most 2x the tile's pairs).
#include <algorithm>
#include <cstring>

#include "kernel_fast_internal.hpp"
#include "kernel_fast_simd.hpp"

namespace sattn::fast {

namespace {

// The union path is used when union_size * rows <= kUnionSlack * allowed pairs of the tile.
constexpr int64_t kUnionSlack = 2;
// Keys scored per batch on the row-by-row paths (bounds the score buffer).
constexpr int64_t kRowBatchKeys = 256;
// Bytes of K+V rows a row-by-row tile touches per key window: small enough to stay in L2 while
// every row of the tile reads them, so neighbouring rows reuse each other's keys.
constexpr int64_t kKeyWindowBytes = 384 * 1024;

// allowed[r * n + c] says whether union column c0 + c is in row r's list.
struct AllowedMask final : ScoreMask {
  const uint8_t* allowed;
  explicit AllowedMask(const uint8_t* a) : allowed(a) {}
  void apply(float* scores, int64_t ld, int64_t rows, int64_t n) const override {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < n; ++c)
        if (!allowed[r * n + c]) scores[r * ld + c] = kNegInf;
  }
};

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Collects the distinct keys of rows [row0, row0 + rows) into scratch.keys (unsorted); returns
// the smallest and largest key.
std::pair<int32_t, int32_t> collect_union(const HeadLayout& head, int64_t row0, int64_t rows, int64_t kv_len,
                                          Scratch& scratch) {
  if (scratch.key_stamp.size() < static_cast<size_t>(kv_len) || scratch.stamp == INT32_MAX) {
    scratch.key_stamp.assign(kv_len, -1);
    scratch.stamp = 0;
  }
  const int32_t stamp = ++scratch.stamp;
  scratch.keys.clear();
  int32_t lo = INT32_MAX, hi = -1;
  for (int64_t e = head.ptr[row0]; e < head.ptr[row0 + rows]; ++e) {
    const int32_t key = head.idx[e];
    if (scratch.key_stamp[key] == stamp) continue;
    scratch.key_stamp[key] = stamp;
    scratch.keys.push_back(key);
    lo = std::min(lo, key);
    hi = std::max(hi, key);
  }
  return {lo, hi};
}

void run_union_tile(const Problem& p, Scratch& scratch, const HeadLayout& head, const float* q_tile,
                    const float* k_head, const float* v_head, int64_t row0, int64_t rows, int32_t lo, int32_t hi,
                    float* out) {
  const int64_t dim = p.dim;
  // Sort the union: a scan of the stamped range is linear when the union is dense in it.
  std::vector<int32_t>& keys = scratch.keys;
  const int64_t union_size = int64_t(keys.size());
  if (int64_t(hi) - lo + 1 <= 4 * union_size) {
    keys.clear();
    for (int32_t key = lo; key <= hi; ++key)
      if (scratch.key_stamp[key] == scratch.stamp) keys.push_back(key);
  } else {
    std::sort(keys.begin(), keys.end());
  }
  grow(scratch.key_position, p.kv_len);
  for (int64_t c = 0; c < union_size; ++c) scratch.key_position[keys[c]] = int32_t(c);
  grow(scratch.cursor, rows);
  for (int64_t r = 0; r < rows; ++r) scratch.cursor[r] = head.ptr[row0 + r];

  TileState state = begin_tile(scratch, rows, dim);
  for (int64_t c0 = 0; c0 < union_size; c0 += kMaxChunkKeys) {
    const int64_t c1 = std::min(union_size, c0 + kMaxChunkKeys);
    const int64_t n = c1 - c0;
    const int32_t last_key = keys[c1 - 1];
    // Mark each row's keys of this chunk; rows read their sorted lists with a cursor.
    grow(scratch.allowed, rows * n);
    std::memset(scratch.allowed.data(), 0, rows * n);
    int64_t allowed_count = 0;
    for (int64_t r = 0; r < rows; ++r) {
      int64_t e = scratch.cursor[r];
      const int64_t end = head.ptr[row0 + r + 1];
      for (; e < end && head.idx[e] <= last_key; ++e) scratch.allowed[r * n + scratch.key_position[head.idx[e]] - c0] = 1;
      allowed_count += e - scratch.cursor[r];
      scratch.cursor[r] = e;
    }
    if (allowed_count == 0) continue;
    const float* k_chunk;
    const float* v_chunk;
    if (last_key - keys[c0] == n - 1) {  // contiguous keys: use K and V in place
      k_chunk = k_head + int64_t(keys[c0]) * dim;
      v_chunk = v_head + int64_t(keys[c0]) * dim;
    } else {
      grow(scratch.k_gather, n * dim);
      grow(scratch.v_gather, n * dim);
      for (int64_t c = 0; c < n; ++c) {
        std::memcpy(scratch.k_gather.data() + c * dim, k_head + int64_t(keys[c0 + c]) * dim, dim * sizeof(float));
        std::memcpy(scratch.v_gather.data() + c * dim, v_head + int64_t(keys[c0 + c]) * dim, dim * sizeof(float));
      }
      k_chunk = scratch.k_gather.data();
      v_chunk = scratch.v_gather.data();
    }
    const AllowedMask mask(scratch.allowed.data());
    tile_step(state, scratch, q_tile, k_chunk, v_chunk, n, p.score_scale, allowed_count == rows * n ? nullptr : &mask);
  }
  finish_tile(state, out);
}

void run_gather_tile(const Problem& p, Scratch& scratch, const HeadLayout& head, const float* q_tile,
                     const float* k_head, const float* v_head, int64_t row0, int64_t rows, float* out) {
  const int64_t dim = p.dim;
  const int64_t window_keys = std::max<int64_t>(64, kKeyWindowBytes / (2 * dim * int64_t(sizeof(float))));
  grow(scratch.cursor, rows);
  for (int64_t r = 0; r < rows; ++r) scratch.cursor[r] = head.ptr[row0 + r];
  grow(scratch.scores, kRowBatchKeys);
  float* scores = scratch.scores.data();
  TileState state = begin_tile(scratch, rows, dim);
  for (;;) {
    // Next key window: starts at the smallest unread key of any row.
    int64_t window_begin = INT64_MAX;
    for (int64_t r = 0; r < rows; ++r)
      if (scratch.cursor[r] < head.ptr[row0 + r + 1])
        window_begin = std::min<int64_t>(window_begin, head.idx[scratch.cursor[r]]);
    if (window_begin == INT64_MAX) break;
    const int64_t window_end = window_begin + window_keys;
    for (int64_t r = 0; r < rows; ++r) {
      int64_t e = scratch.cursor[r];
      const int64_t row_end = head.ptr[row0 + r + 1];
      while (e < row_end && head.idx[e] < window_end) {
        int64_t batch_end = e;
        while (batch_end < row_end && batch_end - e < kRowBatchKeys && head.idx[batch_end] < window_end) ++batch_end;
        const int32_t* keys = head.idx.data() + e;
        const int64_t n = batch_end - e;
        float* acc = state.acc + r * dim;
        gathered_scores(q_tile + r * dim, k_head, keys, n, dim, p.score_scale, scores);
        if (online_softmax_row(scores, n, state.row_max[r], state.row_sum[r], acc, dim))
          gathered_accumulate(acc, scores, v_head, keys, n, dim);
        e = batch_end;
      }
      scratch.cursor[r] = e;
    }
  }
  finish_tile(state, out);
}

inline int32_t dot_int8(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t sum = 0;  // exact: |a|,|b| <= 127, so n < 133000 cannot overflow
  for (int64_t c = 0; c < n; ++c) sum += int32_t(a[c]) * int32_t(b[c]);
  return sum;
}

}  // namespace

void run_csr_tile(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t tile) {
  const int64_t row0 = tile * p.tile_rows;
  const int64_t rows = std::min(p.tile_rows, p.seq_len - row0);
  const int64_t kvh = h / p.group;
  const HeadLayout& head = p.layout->head(b, kvh);
  const float* q_tile = p.q_row(b, h, row0);
  const float* k_head = p.k + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  float* out = p.out_row(b, h, row0);
  const int64_t pairs = head.ptr[row0 + rows] - head.ptr[row0];
  if (pairs == 0) {
    std::fill(out, out + rows * p.dim, 0.0f);
    return;
  }
  const auto [lo, hi] = collect_union(head, row0, rows, p.kv_len, scratch);
  if (int64_t(scratch.keys.size()) * rows <= kUnionSlack * pairs)
    run_union_tile(p, scratch, head, q_tile, k_head, v_head, row0, rows, lo, hi, out);
  else
    run_gather_tile(p, scratch, head, q_tile, k_head, v_head, row0, rows, out);
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
    const int32_t* keys;
    int64_t key_count;
    if (layout.block) {
      scratch.keys.clear();
      for (int64_t t = head.ptr[tile]; t < head.ptr[tile + 1]; ++t)
        for (int64_t j = int64_t(head.idx[t]) * layout.block_size, j_end = j + layout.block_size; j < j_end; ++j)
          if (layout.causal_ok(i, j)) scratch.keys.push_back(int32_t(j));
      keys = scratch.keys.data();
      key_count = int64_t(scratch.keys.size());
    } else {
      keys = head.idx.data() + head.ptr[i];
      key_count = head.ptr[i + 1] - head.ptr[i];
    }
    float* acc = state.acc + r * p.dim;
    for (int64_t e = 0; e < key_count; e += kRowBatchKeys) {
      const int64_t n = std::min(kRowBatchKeys, key_count - e);
      // int8 x int8 -> int32 is exact; one fp32 scaling per score.
      for (int64_t t = 0; t < n; ++t)
        scores[t] = float(dot_int8(q_row, k_head + int64_t(keys[e + t]) * p.dim, p.dim)) * p.int_score_scale;
      if (online_softmax_row(scores, n, state.row_max[r], state.row_sum[r], acc, p.dim))
        gathered_accumulate(acc, scores, v_head, keys + e, n, p.dim);
    }
  }
  finish_tile(state, p.out_row(b, h, row0));
}

}  // namespace sattn::fast
