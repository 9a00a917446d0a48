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
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include "layout/blas_threads.hpp"
#include "layout/layout_builders.hpp"

namespace sattn::layout_detail {

namespace {

// Four floats as one value (GCC/Clang vector extensions: SSE on x86-64, NEON on AArch64).
// The scalar std::max of a loop does not vectorize without -ffinite-math-only; these do, and
// `x > y ? x : y` on them keeps std::max's semantics for the finite scores used here.
typedef float Floats4 __attribute__((vector_size(16)));
typedef int32_t Ints4 __attribute__((vector_size(16)));
typedef uint32_t Unsigned4 __attribute__((vector_size(16)));

inline Floats4 load4(const float* p) {
  Floats4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline Floats4 max4(Floats4 x, Floats4 y) { return x > y ? x : y; }
inline Floats4 min4(Floats4 x, Floats4 y) { return x < y ? x : y; }
inline Floats4 splat4(float x) { return Floats4{x, x, x, x}; }

// dst[r] = max(dst[r], src[r]) for r in [0, n).
void max_into(float* dst, const float* src, int64_t n) {
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const Floats4 m = max4(load4(dst + r), load4(src + r));
    std::memcpy(dst + r, &m, sizeof m);
  }
  for (; r < n; ++r) dst[r] = std::max(dst[r], src[r]);
}

// 2 MiB of approximate scores per tile (32 rows at seq 16384): the tile that sgemm zeroes and
// writes and the selection then reads stays in L2 (2 MiB per core on the benchmark machine)
// rather than going out to L3 and memory (8 MiB before: nm at 16384 used ~17% less CPU time with
// 2 MiB; 1 MiB repacks K too often). bench/results/layout.md.
constexpr int64_t kScoreTileFloats = int64_t(1) << 19;
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
  std::vector<float> values, lane_max, listed_values;
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

// The rank-th and (rank+1)-th largest of v[0, m), m > rank >= 1, all finite and within [lo, hi]
// (bounds of the values, not necessarily attained). Bucket select instead of nth_element: random
// scores make nth_element's partitions mispredict on nearly every element. The values are
// counted into equal-width buckets of [lo, hi]; only the buckets holding the two ranks are
// collected and ordered. The bucket of a value is a monotone function of it (rounded subtraction
// and multiplication by a positive factor never reverse an order), so every value of a higher
// bucket is at least every value of a lower one.
Thresholds kth_and_next_bucketed(const float* v, int64_t m, int64_t rank, float lo, float hi, SelectScratch& s) {
  if (!(hi > lo)) return {hi, hi};  // all values equal
  constexpr int64_t kMaxBuckets = 1024;
  const int64_t buckets = std::clamp<int64_t>(m / 4, 16, kMaxBuckets);
  const double scale = double(buckets) / (double(hi) - double(lo));  // finite: the values are floats
  const double dlo = lo;
  auto bucket_of = [&](float x) { return std::min<int64_t>(buckets - 1, int64_t((double(x) - dlo) * scale)); };
  // Two interleaved counters per bucket: consecutive equal buckets would serialize on one.
  uint32_t count[2][kMaxBuckets];
  std::fill_n(count[0], buckets, 0u), std::fill_n(count[1], buckets, 0u);
  int64_t t = 0;
  for (; t + 1 < m; t += 2) ++count[0][bucket_of(v[t])], ++count[1][bucket_of(v[t + 1])];
  if (t < m) ++count[0][bucket_of(v[t])];
  // From the top: the buckets holding the rank-th and (rank+1)-th largest, and how many values
  // lie above the upper one.
  int64_t above = 0, upper = buckets - 1;
  for (; upper > 0; --upper) {
    const int64_t c = count[0][upper] + count[1][upper];
    if (above + c >= rank) break;
    above += c;
  }
  int64_t lower = upper;
  for (int64_t cum = above + count[0][upper] + count[1][upper]; cum < rank + 1 && lower > 0;) {
    --lower;
    cum += count[0][lower] + count[1][lower];
  }
  // Collect the values of buckets [lower, upper]; ranks rank - above and rank + 1 - above
  // (1-based) among them are the answer.
  if (s.values.size() < size_t(m)) s.values.resize(m);
  float* c = s.values.data();
  int64_t n = 0;
  for (int64_t u = 0; u < m; ++u) {
    const int64_t b = bucket_of(v[u]);
    c[n] = v[u];
    n += b >= lower && b <= upper;
  }
  const int64_t r0 = rank - above - 1;  // 0-based, descending
  std::nth_element(c, c + r0, c + n, std::greater<>());
  const float kth = c[r0];
  const float next = *std::max_element(c + r0 + 1, c + n);  // n > r0 + 1: the (rank+1)-th is in
  return {kth, next};
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
  // select among the few values at or above it.
  const int64_t lanes = std::min(n, 4 * (count + 1));
  s.lane_max.assign(a, a + lanes);
  for (int64_t base = lanes; base < n; base += lanes) max_into(s.lane_max.data(), a + base, std::min(lanes, n - base));
  // Their range.
  Floats4 lo4 = splat4(s.lane_max[0]), hi4 = lo4;
  int64_t r = 0;
  for (; r + 4 <= lanes; r += 4) {
    const Floats4 x = load4(&s.lane_max[r]);
    lo4 = min4(lo4, x), hi4 = max4(hi4, x);
  }
  float lo = lo4[0], hi = hi4[0];
  for (int u = 1; u < 4; ++u) lo = std::min(lo, lo4[u]), hi = std::max(hi, hi4[u]);
  for (; r < lanes; ++r) lo = std::min(lo, s.lane_max[r]), hi = std::max(hi, s.lane_max[r]);
  const float floor =
      lanes > count + 1 ? kth_and_next_bucketed(s.lane_max.data(), lanes, count + 1, lo, hi, s).kth : lo;
  // Branch-free filter: write every value, advance only past those at or above the floor.
  if (s.listed.size() < size_t(n)) s.listed.resize(n), s.listed_values.resize(n);  // grow only: no refill
  float* listed_values = s.listed_values.data();
  int64_t listed = 0;
  for (int64_t t = 0; t < n; ++t) {
    listed_values[listed] = a[t], s.listed[listed] = t;
    listed += a[t] >= floor;
  }
  s.listed_count = listed;
  // The row's maximum is the largest lane maximum.
  const Thresholds th = kth_and_next_bucketed(listed_values, listed, count, floor, hi, s);
  return {th.kth, th.next, true, floor};
}

// Writes to out[0, min(count, last - first)), ascending, the `count` keys of [first, last) with
// the highest exact score (ties to the lower key), or all of them if there are no more than
// `count`; returns the end of what it wrote.
int32_t* select_top(const RowScores& rs, int64_t first, int64_t last, int64_t count, SelectScratch& s, int32_t* out) {
  const int64_t n = last - first;
  if (n <= count) {
    for (int64_t j = first; j < last; ++j) *out++ = static_cast<int32_t>(j);
    return out;
  }
  if (count == 1 && rs.approx_finite) {
    // N:M's common 1:M, in two vectorized passes: the best approximation, then the largest one
    // below it, how many keys reach the best and the sum of their positions (the best's position
    // when only one key reaches it). When the best is unique and more than 4 error above the
    // runner-up it is the answer of the general rule below, which decides every other case.
    constexpr float kLow = -std::numeric_limits<float>::infinity();
    const float* v = rs.approx + first;
    Floats4 best4 = splat4(kLow);
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) best4 = max4(best4, load4(v + t));
    float top = best4[0];
    for (int u = 1; u < 4; ++u) top = std::max(top, best4[u]);
    for (; t < n; ++t) top = std::max(top, v[t]);
    Floats4 below4 = splat4(kLow);
    Ints4 reach4 = {};  // counts down: a true comparison is -1
    Unsigned4 position4 = {};  // unsigned: the sum over many ties may wrap, harmlessly
    const Floats4 top4 = splat4(top), low4 = splat4(kLow);
    Unsigned4 index4 = {0, 1, 2, 3};
    for (t = 0; t + 4 <= n; t += 4, index4 += 4) {
      const Floats4 x = load4(v + t);
      const Ints4 is_top = x == top4;
      below4 = max4(below4, is_top ? low4 : x);
      reach4 += is_top;
      position4 += Unsigned4(is_top) & index4;
    }
    float runner_up = below4[0];
    int64_t reached = 0;
    uint32_t top_position = 0;
    for (int u = 0; u < 4; ++u)
      runner_up = std::max(runner_up, below4[u]), reached -= reach4[u], top_position += position4[u];
    for (; t < n; ++t) {
      const bool is_top = v[t] == top;
      runner_up = std::max(runner_up, is_top ? kLow : v[t]);
      reached += is_top;
      top_position += is_top ? uint32_t(t) : 0;
    }
    const int64_t top_key = first + top_position;
    if (reached == 1 && double(top) - double(runner_up) > 4 * rs.error) {
      *out++ = static_cast<int32_t>(top_key);
      return out;
    }
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
  if (s.doubtful.empty()) {
    for (int64_t t = 0; t < kept; ++t) *out++ = static_cast<int32_t>(chosen[t]);
    return out;
  }
  // The rest of the count comes from the doubtful keys, ranked by their exact score; both lists
  // are ascending by key once the few doubtful winners are sorted, so a merge orders the row.
  const int64_t need = count - kept;
  std::partial_sort(
      s.doubtful.begin(), s.doubtful.begin() + need, s.doubtful.end(),
      [](const Ranked& x, const Ranked& y) { return x.score != y.score ? x.score > y.score : x.key < y.key; });
  std::sort(s.doubtful.begin(), s.doubtful.begin() + need, [](const Ranked& x, const Ranked& y) { return x.key < y.key; });
  int64_t u = 0, w = 0;
  while (u < kept || w < need) {
    const bool take_chosen = w == need || (u < kept && chosen[u] < s.doubtful[w].key);
    *out++ = static_cast<int32_t>(take_chosen ? chosen[u++] : s.doubtful[w++].key);
  }
  return out;
}

// Buffers of one worker thread.
struct TileWorker {
  std::vector<double> query;
  std::vector<float> query_f, approx;
  SelectScratch select;
};

// Builds a per-(batch, kv head) CSR layout. row_size(key_end) is how many keys a row with allowed
// keys [0, key_end) keeps (known before scoring, so every row tile writes its keys straight into
// the layout); select_row(key_end, scores, scratch, out) writes them and returns the end. Row
// tiles of one head run in parallel; the memory beyond the layout is one score tile per thread.
template <class RowSize, class SelectRow>
Layout build_scored_layout(const Op& op, Spec spec, const TensorView& q, const TensorView& k, RowSize row_size,
                           SelectRow select_row) {
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
  // The row pointers depend only on the geometry: the same for every head.
  std::vector<int64_t> ptr(a.rows + 1, 0);
  for (int64_t i = 0; i < a.rows; ++i) ptr[i + 1] = ptr[i] + row_size(a.key_end(i));

  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      HeadLayout& hl = l.heads[b * s.kv_heads + kvh];
      hl.ptr = ptr;
      hl.idx.resize(size_t(ptr[a.rows]));
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
        const int64_t tile = tiles - 1 - item;
        const int64_t i0 = tile * tile_rows, i1 = std::min(i0 + tile_rows, a.rows), rows = i1 - i0;
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
          if (end == 0) continue;
          RowScores rs;
          rs.approx = &w.approx[(i - i0) * keys];
          rs.query = &w.query[(i - i0) * d];
          double q_norm = 0;
          for (int64_t c = 0; c < d; ++c) q_norm += rs.query[c] * rs.query[c];
          const double magnitude = std::sqrt(q_norm) * max_key_norm;  // bounds every partial sum
          rs.error = error_factor * magnitude + kTinyError;
          rs.approx_finite = magnitude < kFloatSafe;
          rs.k = &k, rs.b = b, rs.kvh = kvh;
          int32_t* const row = hl.idx.data() + ptr[i];
          int32_t* const row_end = select_row(end, rs, w.select, row);
          if (row_end - row != ptr[i + 1] - ptr[i])
            throw std::logic_error("scored layout: a row selected a different number of keys than counted");
        }
      });
    }
  return l;
}

}  // namespace

Layout build_nm_layout(const Op& op, const NmParams& p, const TensorView& q, const TensorView& k) {
  return build_scored_layout(
      op, Spec::nm_structured, q, k,
      [&](int64_t end) {
        // Full groups keep nm_n each; the last, partial group keeps at most its size.
        return (end / p.nm_m) * std::min(p.nm_n, p.nm_m) + std::min(p.nm_n, end % p.nm_m);
      },
      [&](int64_t end, const RowScores& rs, SelectScratch& scratch, int32_t* out) {
        for (int64_t g = 0; g < end; g += p.nm_m) out = select_top(rs, g, std::min(g + p.nm_m, end), p.nm_n, scratch, out);
        return out;
      });
}

Layout build_topk_layout(const Op& op, const TopkParams& p, const TensorView& q, const TensorView& k) {
  return build_scored_layout(
      op, Spec::topk_per_query, q, k, [&](int64_t end) { return std::min(p.topk_k, end); },
      [&](int64_t end, const RowScores& rs, SelectScratch& scratch, int32_t* out) {
        return select_top(rs, 0, end, p.topk_k, scratch, out);
      });
}

}  // namespace sattn::layout_detail
