// Fast kernel, CSR layouts (each query row has its own key list) and the integer datapath.
//
// A CSR task is task_rows rows of one (batch, head), cut into tiles of tile_rows rows:
// - a tile whose rows overlap (sliding windows, dense, shared landmarks) runs as GEMM tiles over
//   the key range or the union of its keys, each row masking the keys it lacks: packed fused
//   tiles with a lane mask per key (Problem::csr_fused, the default) or cblas tiles (legacy);
// - the other rows are grouped by their first keys, so rows with equal key sets from different
//   tiles (LSH buckets) still meet in a GEMM tile;
// - what is left (top-k, N:M, ...) runs row by row: gathered SIMD dot products, online softmax,
//   gathered accumulate, over key windows that stay in L2 while all the rows read them.
// Work is proportional to the allowed pairs: GEMM tiles are taken only when their column space
// is at most kUnionSlack x the tile's pairs.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"

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
  for (;;) {
    // Next key window: starts at the smallest unread key of any row.
    int64_t window_begin = INT64_MAX;
    for (int64_t r = 0; r < count; ++r)
      if (cursor[r] < ptr[rows[r] + 1]) window_begin = std::min<int64_t>(window_begin, idx[cursor[r]]);
    if (window_begin == INT64_MAX) break;
    const int64_t window_end = window_begin + window_keys;
    for (int64_t r = 0; r < count; ++r) {
      const int64_t row_end = ptr[rows[r] + 1];
      const float* q_row = hv.q + rows[r] * dim;
      float* acc = state.acc + r * dim;
      int64_t e = cursor[r];
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
    if (count >= kMinGroupRows && collect_union(head, group, count, p.kv_len, kUnionSlack * pairs_of(head, group, count) / count,
                                   scratch))
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
