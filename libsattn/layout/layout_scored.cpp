// Score-selected row (CSR) layouts: nm_structured and topk_per_query. Semantics: layout.cpp.
//
// The score of (i, j) is defined in double (group-summed query . key, accumulated in index
// order). Computing it that way for every pair would be slow at long sequences, so rows are
// processed in tiles: one float sgemm gives approximate scores, each with a rigorous error bound,
// and the double score is computed only for keys whose bound leaves their rank in doubt. The
// result is the selection the double scores define, independent of the BLAS build.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "layout/blas_threads.hpp"
#include "layout/layout_builders.hpp"

namespace sattn::layout_detail {

namespace {

constexpr int64_t kScoreTileFloats = int64_t(1) << 21;  // 8 MiB of approximate scores per tile
constexpr int64_t kMaxTileRows = 256;

// Approximate scores of one row and the bound on their error.
struct RowScores {
  const float* approx = nullptr;  // sgemm scores of keys [0, n)
  const double* query = nullptr;  // the group-summed query, exact
  double error = 0;               // |approx[j] - exact(j)| <= error for every key of the row
  bool approx_finite = true;      // false (float could overflow): rank every key by its exact score
  const TensorView* k = nullptr;
  int64_t b = 0, kvh = 0;

  double exact(int64_t j) const {
    const float* key = k->row(b, kvh, j);
    double s = 0;
    for (int64_t c = 0; c < k->dim(); ++c) s += query[c] * double(key[c]);
    return s;
  }
};

struct Ranked {
  double score;
  int64_t key;
};

// Scratch buffers reused across rows.
struct SelectScratch {
  std::vector<float> values, lane_max;
  std::vector<int64_t> listed;  // [0, listed_count): offsets of the values >= Thresholds::floor
  int64_t listed_count = 0;
  std::vector<int64_t> chosen;
  std::vector<Ranked> doubtful;
};

// The count-th and (count+1)-th largest approximate scores. For large counts the values at or
// above `floor` are also listed (SelectScratch::listed) so later passes can skip the rest.
struct Thresholds {
  double kth = 0, next = 0;
  bool listed = false;
  double floor = 0;
};

// The count-th and (count+1)-th largest of a[0, n) for a small count: a short descending list
// updated without branches (each level keeps the larger value and passes the smaller one down),
// since random scores defeat branch prediction. Count = 0 means "given at run time"; the common
// N:M counts are compile-time constants so the list stays in registers.
template <int64_t kCount>
Thresholds kth_and_next_short(const float* a, int64_t n, int64_t count) {
  constexpr int64_t kMaxList = 16;
  float top[kMaxList + 1];
  auto push = [&top](float x, int64_t levels) {
#pragma GCC unroll 8
    for (int64_t r = 0; r < levels; ++r) {
      const float larger = std::max(top[r], x);
      x = std::min(top[r], x);
      top[r] = larger;
    }
  };
  if constexpr (kCount > 0) count = kCount;
  std::fill(top, top + count + 1, -std::numeric_limits<float>::infinity());
  for (int64_t t = 0; t < n; ++t) {
    if constexpr (kCount > 0)
      push(a[t], kCount + 1);  // unrolled: the list lives in registers
    else
      push(a[t], count + 1);
  }
  return {top[count - 1], top[count]};
}

// The count-th and (count+1)-th largest of the finite values a[0, n), n > count >= 1.
Thresholds kth_and_next(const float* a, int64_t n, int64_t count, SelectScratch& s) {
  switch (count) {
    case 1: return kth_and_next_short<1>(a, n, count);
    case 2: return kth_and_next_short<2>(a, n, count);
    case 3: return kth_and_next_short<3>(a, n, count);
    case 4: return kth_and_next_short<4>(a, n, count);
    default:
      if (count < 16) return kth_and_next_short<0>(a, n, count);
  }
  // Larger counts: first a floor that the count + 1 largest surely reach: the (count+1)-th
  // largest of the maxima of `lanes` disjoint strided samples (those count + 1 maxima are
  // distinct values that reach it). More lanes than count + 1 make the floor tighter. Then
  // nth_element over the few values at or above it.
  const int64_t lanes = std::min(n, 4 * (count + 1));
  s.lane_max.assign(a, a + lanes);
  for (int64_t base = lanes; base < n; base += lanes) {
    const int64_t width = std::min(lanes, n - base);
    for (int64_t r = 0; r < width; ++r) s.lane_max[r] = std::max(s.lane_max[r], a[base + r]);
  }
  std::nth_element(s.lane_max.begin(), s.lane_max.begin() + count, s.lane_max.end(), std::greater<>());
  const float floor = s.lane_max[count];
  // Branch-free filter: write every value, advance only past those at or above the floor.
  if (s.values.size() < size_t(n)) s.values.resize(n), s.listed.resize(n);  // grow only: no refill
  int64_t listed = 0;
  for (int64_t t = 0; t < n; ++t) {
    s.values[listed] = a[t], s.listed[listed] = t;
    listed += a[t] >= floor;
  }
  s.listed_count = listed;
  const auto values_end = s.values.begin() + listed;
  std::nth_element(s.values.begin(), s.values.begin() + (count - 1), values_end, std::greater<>());
  return {s.values[count - 1], *std::max_element(s.values.begin() + count, values_end), true, floor};
}

// Appends to `out`, ascending, the `count` keys of [first, last) with the highest exact score
// (ties to the lower key), or all of them if there are no more than `count`.
void select_top(const RowScores& rs, int64_t first, int64_t last, int64_t count, SelectScratch& s,
                std::vector<int32_t>& out) {
  const int64_t n = last - first;
  if (n <= count) {
    for (int64_t j = first; j < last; ++j) out.push_back(static_cast<int32_t>(j));
    return;
  }
  s.doubtful.clear();
  if (s.chosen.size() < size_t(n)) s.chosen.resize(n);
  int64_t* chosen = s.chosen.data();
  int64_t kept = 0;
  if (rs.approx_finite) {
    // Exact scores lie within `error` of the approximations. At least `count` keys score at
    // least kth - error, so a key approximated below kth - 2 error is out. Only keys
    // approximated above `next` (at most `count`, itself included) can score above next + error,
    // so a key approximated above next + 2 error is beaten by fewer than `count` keys: in.
    const Thresholds th = kth_and_next(rs.approx + first, n, count, s);
    const double in_above = th.next + 2 * rs.error, out_below = th.kth - 2 * rs.error;
    auto classify = [&](int64_t j) {
      const double a = rs.approx[j];
      const bool in = a > in_above;
      chosen[kept] = j;  // written always, kept only if in: no branch on a random outcome
      kept += in;
      if (!in && a >= out_below) s.doubtful.push_back({rs.exact(j), j});
    };
    if (th.listed && out_below >= th.floor) {
      for (int64_t t = 0; t < s.listed_count; ++t) classify(first + s.listed[t]);  // the rest are out
    } else {
      for (int64_t j = first; j < last; ++j) classify(j);
    }
  } else {
    for (int64_t j = first; j < last; ++j) s.doubtful.push_back({rs.exact(j), j});
  }
  if (!s.doubtful.empty()) {
    // The rest of the count comes from the doubtful keys, ranked by their exact score.
    const int64_t need = count - kept;
    std::partial_sort(
        s.doubtful.begin(), s.doubtful.begin() + need, s.doubtful.end(),
        [](const Ranked& x, const Ranked& y) { return x.score != y.score ? x.score > y.score : x.key < y.key; });
    for (int64_t t = 0; t < need; ++t) chosen[kept++] = s.doubtful[t].key;
    std::sort(chosen, chosen + kept);
  }
  for (int64_t t = 0; t < kept; ++t) out.push_back(static_cast<int32_t>(chosen[t]));
}


// Buffers of one worker thread.
struct TileWorker {
  std::vector<double> query;
  std::vector<float> query_f, approx;
  SelectScratch select;
};

// The keys a tile of rows selected: idx, and idx.size() after each row.
struct TileOutput {
  std::vector<int32_t> idx;
  std::vector<int64_t> row_end;
};

// Builds a per-(batch, kv head) CSR layout; select_row(key_end, scores, scratch, out) appends one
// row's keys, chosen among the allowed keys [0, key_end). Row tiles of one head run in parallel.
template <class SelectRow>
Layout build_scored_layout(const Op& op, Spec spec, const TensorView& q, const TensorView& k, SelectRow select_row) {
  const Shape& s = op.shape;
  const Alignment a = alignment_of(op);
  const int64_t d = s.head_dim, group = s.group_size();
  const int64_t tile_rows = std::clamp<int64_t>(kScoreTileFloats / a.cols, 1, kMaxTileRows);
  const int64_t tiles = (a.rows + tile_rows - 1) / tile_rows;
  const int64_t threads = worker_threads(tiles);
  // Float dot products of length d (any summation order, FMA or not) err by at most
  // gamma_d = d*u/(1 - d*u) times sum |q_c k_c|; rounding the double query to float adds u.
  // Factor 2 and d + 2 cover both with room; sum |q_c k_c| <= |q| |k| (Cauchy-Schwarz), and
  // kTinyError covers products that underflow in float.
  const double error_factor = 2.0 * double(d + 2) * std::ldexp(1.0, -24);
  constexpr double kTinyError = 1e-30;
  // Below this, no float product or partial sum of a score can overflow (FLT_MAX ~ 3.4e38).
  constexpr double kFloatSafe = 1e37;

  Layout l = make_layout(op, spec, false, 1, false);
  const BlasSingleThreaded blas_scope(threads > 1);
  std::vector<TileWorker> workers(threads);
  std::vector<TileOutput> outputs(tiles);

  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      double max_key_norm = 0;
      for (int64_t j = 0; j < a.cols; ++j) {
        const float* key = k.row(b, kvh, j);
        double sq = 0;
        for (int64_t c = 0; c < d; ++c) sq += double(key[c]) * double(key[c]);
        max_key_norm = std::max(max_key_norm, std::sqrt(sq));
      }
      // Causal tiles grow with the row index: hand out the last (largest) first for balance.
      parallel_items(tiles, threads, [&](int64_t worker, int64_t item) {
        TileWorker& w = workers[worker];
        TileOutput& out = outputs[tiles - 1 - item];
        out.idx.clear();
        out.row_end.clear();
        const int64_t i0 = (tiles - 1 - item) * tile_rows, i1 = std::min(i0 + tile_rows, a.rows), rows = i1 - i0;
        const int64_t keys = a.key_end(i1 - 1);  // key_end grows with i: the tile's widest row
        if (keys > 0) {
          w.query.resize(rows * d), w.query_f.resize(rows * d), w.approx.resize(rows * keys);
          for (int64_t i = i0; i < i1; ++i) group_query_sum(q, b, kvh, group, i, &w.query[(i - i0) * d]);
          for (int64_t t = 0; t < rows * d; ++t) w.query_f[t] = static_cast<float>(w.query[t]);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(d), 1.0f, w.query_f.data(),
                      int(d), k.row(b, kvh, 0), int(d), 0.0f, w.approx.data(), int(keys));
        }
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t end = a.key_end(i);
          if (end > 0) {
            RowScores rs;
            rs.approx = &w.approx[(i - i0) * keys];
            rs.query = &w.query[(i - i0) * d];
            double q_norm = 0;
            for (int64_t c = 0; c < d; ++c) q_norm += rs.query[c] * rs.query[c];
            const double magnitude = std::sqrt(q_norm) * max_key_norm;  // bounds every partial sum
            rs.error = error_factor * magnitude + kTinyError;
            rs.approx_finite = magnitude < kFloatSafe;
            rs.k = &k, rs.b = b, rs.kvh = kvh;
            select_row(end, rs, w.select, out.idx);
          }
          out.row_end.push_back(int64_t(out.idx.size()));
        }
      });
      HeadLayout& hl = l.heads[b * s.kv_heads + kvh];
      size_t total = 0;
      for (const TileOutput& out : outputs) total += out.idx.size();
      hl.idx.reserve(total);
      hl.ptr.reserve(a.rows + 1);
      hl.ptr.assign(1, 0);
      for (const TileOutput& out : outputs) {
        const auto base = int64_t(hl.idx.size());
        hl.idx.insert(hl.idx.end(), out.idx.begin(), out.idx.end());
        for (int64_t end : out.row_end) hl.ptr.push_back(base + end);
      }
    }
  return l;
}

}  // namespace

Layout build_nm_layout(const Op& op, const NmParams& p, const TensorView& q, const TensorView& k) {
  return build_scored_layout(op, Spec::nm_structured, q, k,
                             [&](int64_t end, const RowScores& rs, SelectScratch& scratch, std::vector<int32_t>& out) {
                               for (int64_t g = 0; g < end; g += p.nm_m)
                                 select_top(rs, g, std::min(g + p.nm_m, end), p.nm_n, scratch, out);
                             });
}

Layout build_topk_layout(const Op& op, const TopkParams& p, const TensorView& q, const TensorView& k) {
  return build_scored_layout(op, Spec::topk_per_query, q, k,
                             [&](int64_t end, const RowScores& rs, SelectScratch& scratch, std::vector<int32_t>& out) {
                               select_top(rs, 0, end, p.topk_k, scratch, out);
                             });
}

}  // namespace sattn::layout_detail
