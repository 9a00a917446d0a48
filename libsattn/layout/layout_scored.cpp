// Score-selected row (CSR) layouts: nm_structured and topk_per_query. Semantics: layout.cpp.
//
// The score of (i, j) is defined in double (group-summed query . key, accumulated in index
// order). Computing it that way for every pair would be slow at long sequences, so rows are
// processed in tiles: float score kernels (score_kernels.cpp, one copy per ISA) give approximate
// scores, each with a rigorous error bound, and the double score is computed only for keys whose
// bound leaves their rank in doubt. The result is the selection the double scores define,
// independent of the ISA copy and the thread count.
//
// N:M: 1:M groups are decided in the vector lanes (the best clears the runner-up by 4 error
// bounds); other groups by select_top. top-k: each row gets a first threshold from a normal model
// of its scores (the key moments), keys reaching it are listed as the scores stream by, and the
// list decides the row when its (k+1)-th value less twice the error is still at or above the
// threshold; otherwise the row is scored again whole. A wrong guess costs time, never exactness.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "layout/layout_builders.hpp"
#include "layout/score_kernels.hpp"
#include "sattn/error.hpp"

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
inline Floats4 max4(Floats4 x, Floats4 y) {
  return x > y ? x : y;
}
inline Floats4 min4(Floats4 x, Floats4 y) {
  return x < y ? x : y;
}
inline Floats4 splat4(float x) {
  return Floats4{x, x, x, x};
}

// dst[r] = max(dst[r], src[r]) for r in [0, n).
void max_into(float* dst, const float* src, int64_t n) {
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const Floats4 m = max4(load4(dst + r), load4(src + r));
    std::memcpy(dst + r, &m, sizeof m);
  }
  for (; r < n; ++r) dst[r] = std::max(dst[r], src[r]);
}

// The largest float not above x.
float float_below(double x) {
  float f = static_cast<float>(x);
  if (double(f) > x) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

// Approximate scores of one row and the bound on their error.
struct RowScores {
  const float* approx = nullptr;  // approximate score of key j at approx[j - approx_first]
  int64_t approx_first = 0;
  const double* query = nullptr;  // the group-summed query, exact
  double error = 0;               // |approx[j] - exact(j)| <= error for every key of the row
  bool approx_finite = true;      // false (float could overflow): rank every key by its exact score
  const TensorView* k = nullptr;
  int64_t b = 0, kvh = 0;

  const float* approx_at(int64_t j) const { return approx + (j - approx_first); }
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
  std::vector<int64_t> doubt_at;  // select_listed: positions of the doubtful keys
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

// The sure keys chosen[0, kept) (ascending) plus the best count - kept of s.doubtful by exact
// score (ties to the lower key), ascending, to out; returns the end.
int32_t* finish_selection(const int64_t* chosen, int64_t kept, int64_t count, SelectScratch& s, int32_t* out) {
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
  std::sort(s.doubtful.begin(), s.doubtful.begin() + need,
            [](const Ranked& x, const Ranked& y) { return x.key < y.key; });
  int64_t u = 0, w = 0;
  while (u < kept || w < need) {
    const bool take_chosen = w == need || (u < kept && chosen[u] < s.doubtful[w].key);
    *out++ = static_cast<int32_t>(take_chosen ? chosen[u++] : s.doubtful[w++].key);
  }
  return out;
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
    const float* v = rs.approx_at(first);
    Floats4 best4 = splat4(kLow);
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) best4 = max4(best4, load4(v + t));
    float top = best4[0];
    for (int u = 1; u < 4; ++u) top = std::max(top, best4[u]);
    for (; t < n; ++t) top = std::max(top, v[t]);
    Floats4 below4 = splat4(kLow);
    Ints4 reach4 = {};         // counts down: a true comparison is -1
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
    const Thresholds th = kth_and_next(rs.approx_at(first), n, count, s);
    const double in_above = th.next + 2 * rs.error, out_below = th.kth - 2 * rs.error;
    auto classify = [&](int64_t j) {
      const double a = *rs.approx_at(j);
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
  return finish_selection(chosen, kept, count, s, out);
}

// The listed keys of a row (listed[t] ascending, approximate score values[t]; n > count): every
// key not listed scores below `floor` in approximation. Writes the `count` best keys of the row
// (select_top's rule) and returns the end, or returns nullptr when the list cannot decide (fewer
// than count + 1 keys, or a doubtful key may lie below the floor): the caller then scores the row.
int32_t* select_listed(const RowScores& rs, const float* values, const int32_t* listed, int64_t n, int64_t count,
                       double floor, SelectScratch& s, int32_t* out) {
  if (n <= count) return nullptr;
  Thresholds th;
  if (count >= 16 && n < 4 * (count + 1)) {
    // A list not much longer than the count (the usual case): one bucket select over its range.
    Floats4 lo4 = splat4(values[0]), hi4 = lo4;
    int64_t t = 0;
    for (; t + 4 <= n; t += 4) {
      const Floats4 x = load4(values + t);
      lo4 = min4(lo4, x), hi4 = max4(hi4, x);
    }
    float lo = lo4[0], hi = hi4[0];
    for (int u = 1; u < 4; ++u) lo = std::min(lo, lo4[u]), hi = std::max(hi, hi4[u]);
    for (; t < n; ++t) lo = std::min(lo, values[t]), hi = std::max(hi, values[t]);
    th = kth_and_next_bucketed(values, n, count, lo, hi, s);
  } else {
    th = kth_and_next(values, n, count, s);
  }
  const double in_above = th.next + 2 * rs.error, out_below = th.kth - 2 * rs.error;
  if (out_below < floor) return nullptr;
  // The same tests on floats: for a float a, a > x iff a > (the largest float <= x), and a >= y
  // iff a >= (the smallest float >= y).
  const float in_above_f = float_below(in_above), out_below_f = -float_below(-out_below);
  s.doubtful.clear();
  if (s.chosen.size() < size_t(n)) s.chosen.resize(n);
  int64_t* chosen = s.chosen.data();
  int64_t kept = 0;
  // Branch-free (in or not is a coin toss on the list's lower end): the doubtful positions are
  // collected the same way and rescored after.
  if (s.doubt_at.size() < size_t(n)) s.doubt_at.resize(n);
  int64_t* doubt = s.doubt_at.data();
  int64_t doubts = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float a = values[t];
    const int in = a > in_above_f;
    chosen[kept] = listed[t];
    kept += in;
    doubt[doubts] = t;
    doubts += (1 - in) & int(a >= out_below_f);
  }
  for (int64_t u = 0; u < doubts; ++u) s.doubtful.push_back({rs.exact(listed[doubt[u]]), listed[doubt[u]]});
  return finish_selection(chosen, kept, count, s, out);
}

// The score kernels for this CPU: the widest copy it runs, or the one SATTN_CPU_ISA names (the
// variable that picks the fast attention kernels' copy; read on every build, so a test can compare
// the copies in one process).
const ScoreKernels& score_kernels_for_cpu() {
#if SATTN_CPU_DISPATCH
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                        __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl");
#else
  const bool has_avx2 = false, has_avx512 = false;
#endif
  const char* env = std::getenv("SATTN_CPU_ISA");
  const std::string want = env ? env : "";
  if (want.empty()) {
#if SATTN_CPU_DISPATCH
    if (has_avx512) return avx512::score_kernels;
    if (has_avx2) return avx2::score_kernels;
#endif
    return baseline::score_kernels;
  }
  if (want == "baseline") return baseline::score_kernels;
  if (want != "avx2" && want != "avx512" && want != "amx")
    throw Error(ErrorKind::invalid_input,
                "SATTN_CPU_ISA=" + want + ": unknown ISA (expected baseline, avx2, avx512 or amx)");
#if SATTN_CPU_DISPATCH
  if (want == "avx2" && has_avx2) return avx2::score_kernels;
  // amx: the attention kernels' avx512 copy plus AMX tiles for bf16 (cpu_isa() checks the AMX
  // part); the score kernels have no AMX variant and run the avx512 copy.
  if ((want == "avx512" || want == "amx") && has_avx512) return avx512::score_kernels;
  throw Error(ErrorKind::invalid_input, "SATTN_CPU_ISA=" + want + ": this CPU does not support " + want +
                                            " (available: baseline" + (has_avx2 ? ", avx2" : "") + ")");
#else
  throw Error(ErrorKind::invalid_input,
              "SATTN_CPU_ISA=" + want + ": this build has no " + want + " kernels (baseline only)");
#endif
}

// The lower-tail quantile of the standard normal distribution (Acklam's rational approximation,
// relative error 1e-9: plenty for a first guess of a threshold), p in (0, 1).
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549671010229528e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double low = 0.02425;
  if (p < low) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - low) return -normal_quantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// What a layout keeps per row: nm (n of every group of m keys) or top-k.
struct Selection {
  bool nm = false;
  int64_t n = 0, m = 0;  // nm
  int64_t k = 0;         // topk
  // Keys a row with allowed keys [0, end) keeps.
  int64_t row_size(int64_t end) const {
    if (!nm) return std::min(k, end);
    return (end / m) * std::min(n, m) + std::min(n, end % m);
  }
};

// Mean and covariance of a head's keys (from at most 2048 of them, evenly spaced): the first
// guess of a top-k row's threshold treats its scores as normal with these moments. A guess only:
// a wrong one costs time (the row is rescored), never a different layout.
struct KeyMoments {
  std::vector<double> mean, cov;     // cov[a * d + b]
  std::vector<float> mean_f, cov_f;  // the same in float: the guess needs no more
  void compute(const TensorView& k, int64_t b, int64_t kvh, int64_t cols) {
    const int64_t d = k.dim(), step = std::max<int64_t>(1, cols / 2048);
    mean.assign(d, 0.0), cov.assign(d * d, 0.0);
    int64_t n = 0;
    for (int64_t j = 0; j < cols; j += step, ++n) {
      const float* key = k.row(b, kvh, j);
      for (int64_t c = 0; c < d; ++c) mean[c] += key[c];
    }
    for (double& m : mean) m /= double(std::max<int64_t>(n, 1));
    std::vector<double> x(d);
    for (int64_t j = 0; j < cols; j += step) {
      const float* key = k.row(b, kvh, j);
      for (int64_t c = 0; c < d; ++c) x[c] = key[c] - mean[c];
      for (int64_t a = 0; a < d; ++a)
        for (int64_t c = a; c < d; ++c) cov[a * d + c] += x[a] * x[c];
    }
    for (int64_t a = 0; a < d; ++a)
      for (int64_t c = a; c < d; ++c) cov[c * d + a] = cov[a * d + c] /= double(std::max<int64_t>(n - 1, 1));
    mean_f.assign(mean.begin(), mean.end()), cov_f.assign(cov.begin(), cov.end());
  }
  // A threshold that about `want` of `n` scores of query q reach.
  float guess(const float* q, int64_t d, double want, int64_t n) const {
    if (want >= double(n)) return -std::numeric_limits<float>::infinity();
    float mf = 0, vf = 0;
    for (int64_t a = 0; a < d; ++a) {
      const float* cov_row = cov_f.data() + a * d;
      float row = 0;
      for (int64_t c = 0; c < d; ++c) row += cov_row[c] * q[c];
      mf += q[a] * mean_f[a], vf += q[a] * row;
    }
    const double m = mf, var = vf;
    const double t = m - std::sqrt(std::max(var, 0.0)) * normal_quantile(want / double(n));
    return std::isfinite(t) ? float_below(t) : -std::numeric_limits<float>::infinity();
  }
};

// Buffers of one worker thread (sized for one row tile).
struct TileWorker {
  std::vector<double> query;  // [tile_rows][d], group-summed, exact
  std::vector<float> qt, scores, margin, threshold, values, row_approx, row_query, group_approx;
  std::vector<int64_t> end, count;
  std::vector<int32_t> keys, event_keys, event_lanes;
  std::vector<float> event_values;
  std::vector<int32_t*> out;
  std::vector<RowScores> rows;
  std::vector<uint8_t> overflow;
  SelectScratch select;
};

// What the kernels' callbacks need.
struct TileContext {
  TileWorker* w = nullptr;
  const Selection* sel = nullptr;
  int64_t cap = 0;
  int64_t row0 = 0;  // the kernel's row r is the tile's row row0 + r
};

// N:M group the vector path left: gather its approximate scores and decide it by the general rule.
void nm_doubtful(void* ctx, int64_t r, int64_t g, const float* col, int64_t stride) {
  const TileContext& c = *static_cast<TileContext*>(ctx);
  TileWorker& w = *c.w;
  r += c.row0;
  const int64_t last = std::min(g + c.sel->m, w.end[r]);
  for (int64_t j = g; j < last; ++j) w.group_approx[j - g] = col[(j - g) * stride];
  RowScores rs = w.rows[r];
  rs.approx = w.group_approx.data(), rs.approx_first = g;
  const int64_t want = std::min(c.sel->n, last - g);
  int32_t* const out = w.out[r] + (g / c.sel->m) * std::min(c.sel->n, c.sel->m);
  if (select_top(rs, g, last, c.sel->n, w.select, out) - out != want)
    throw std::logic_error("scored layout: an N:M group selected a different number of keys than counted");
}

// A full top-k list: keep the keys that can still be among the best (at or above the
// (k+1)-th listed value less twice the error, which only grows as keys are added) and raise the
// threshold to that; a list that stays over half full (many ties) stops listing: rescored later.
void topk_full(void* ctx, int64_t r) {
  const TileContext& c = *static_cast<TileContext*>(ctx);
  TileWorker& w = *c.w;
  r += c.row0;
  float* values = w.values.data() + r * c.cap;
  int32_t* keys = w.keys.data() + r * c.cap;
  int64_t& n = w.count[r];
  const Thresholds th = kth_and_next(values, n, c.sel->k, w.select);
  const float floor = std::max(w.threshold[r], float_below(th.next - 2 * w.rows[r].error));
  int64_t kept = 0;
  for (int64_t t = 0; t < n; ++t) {
    values[kept] = values[t], keys[kept] = keys[t];
    kept += values[t] >= floor;
  }
  n = kept;
  w.threshold[r] = floor;
  if (2 * n > c.cap) w.overflow[r] = 1, w.threshold[r] = std::numeric_limits<float>::infinity();
}

// Builds a per-(batch, kv head) CSR layout of nm_structured / topk_per_query. Row sizes are
// known before scoring, so every row tile writes its keys straight into the layout. Row tiles of
// one head run in parallel; the memory beyond the layout is a few score chunks and lists per thread.
Layout build_scored_layout(const Op& op, Spec spec, const TensorView& q, const TensorView& k, const Selection& sel) {
  const Shape& s = op.shape;
  const Alignment a = alignment_of(op);
  const int64_t d = s.head_dim, group = s.group_size();
  const ScoreKernels& kern = score_kernels_for_cpu();
  // Keys per score chunk: about 256 (32 KiB of scores at 32 rows: L1), whole N:M groups.
  const int64_t chunk = sel.nm ? sel.m * std::max<int64_t>(1, 256 / sel.m) : 256;
  // top-k: the first threshold aims at this many listed keys; a list holds `cap`.
  const double topk_want = double(sel.k + 1) + std::max(0.25 * double(sel.k + 1), 4 * std::sqrt(double(sel.k + 1))) + 8;
  const int64_t cap =
      sel.nm ? 0 : std::min<int64_t>(std::max<int64_t>(2 * (sel.k + 1) + 64, 256), std::max<int64_t>(a.cols, 1));
  // A row tile is up to kMaxSubtiles of the kernels' tiles, run one key chunk at a time: the
  // chunk's keys are read from memory once for all of them (the keys of a head, 4 MiB at 16384 x
  // 64, do not stay in L2 across tiles). Fewer when the top-k lists of more would pass 16 MiB
  // per thread (k in the thousands), so the lists, not the tiles, bound the memory.
  constexpr int64_t kMaxSubtiles = 4;
  const int64_t sub_rows = kern.tile_rows;
  const int64_t subtiles =
      std::clamp<int64_t>((int64_t(16) << 20) / std::max<int64_t>(1, sub_rows * cap * 8), 1, kMaxSubtiles);
  const int64_t tile_rows = sub_rows * subtiles;
  const int64_t tiles = (a.rows + tile_rows - 1) / tile_rows;
  const int64_t threads = worker_threads(op.shape.batch * op.shape.kv_heads * tiles);
  // Float dot products of length d (any summation order, FMA or not) err by at most
  // gamma_d = d*u/(1 - d*u) times sum |q_c k_c|; rounding the double query to float adds u.
  // Factor 2 and d + 2 cover both with room; sum |q_c k_c| <= |q| |k| (Cauchy-Schwarz), and
  // kTinyError covers products that underflow in float.
  const double error_factor = 2.0 * double(d + 2) * std::ldexp(1.0, -24);
  constexpr double kTinyError = 1e-30;
  // Below this, no float product or partial sum of a score can overflow (FLT_MAX ~ 3.4e38).
  constexpr double kFloatSafe = 1e37;

  Layout l = make_layout(op, spec, false, 1, false);
  std::vector<TileWorker> workers(threads);
  for (TileWorker& w : workers) {
    w.query.resize(tile_rows * d), w.qt.resize(tile_rows * d), w.scores.resize(chunk * sub_rows);
    w.margin.resize(tile_rows), w.threshold.resize(tile_rows), w.end.resize(tile_rows), w.count.resize(tile_rows);
    w.out.resize(tile_rows), w.rows.resize(tile_rows), w.overflow.resize(tile_rows);
    w.group_approx.resize(sel.nm ? sel.m : 0);
    w.values.resize(tile_rows * cap), w.keys.resize(tile_rows * cap);
    if (!sel.nm) {
      const int64_t events = (chunk + 16) * sub_rows;
      w.event_values.resize(events), w.event_keys.resize(events), w.event_lanes.resize(events);
    }
  }
  // The row pointers depend only on the geometry: the same for every head.
  std::vector<int64_t> ptr(a.rows + 1, 0);
  for (int64_t i = 0; i < a.rows; ++i) ptr[i + 1] = ptr[i] + sel.row_size(a.key_end(i));
  const bool keep_all = sel.nm && sel.n >= sel.m;  // every allowed key: no scores needed

  // Per (batch, kv head), in parallel: the layout's arrays (the index array is most of the
  // memory; zeroing it is not free) and the key statistics the tiles need.
  const int64_t heads = s.batch * s.kv_heads;
  std::vector<double> max_key_norms(heads, 0.0);
  std::vector<KeyMoments> moments(sel.nm ? 0 : heads);
  parallel_items(heads, std::min(threads, heads), [&](int64_t, int64_t head) {
    const int64_t b = head / s.kv_heads, kvh = head % s.kv_heads;
    HeadLayout& hl = l.heads[head];
    hl.ptr = ptr;
    hl.idx.resize(size_t(ptr[a.rows]));
    for (int64_t j = 0; j < a.cols && !keep_all; ++j) {
      const float* key = k.row(b, kvh, j);
      double sq = 0;
      for (int64_t c = 0; c < d; ++c) sq += double(key[c]) * double(key[c]);
      max_key_norms[head] = std::max(max_key_norms[head], std::sqrt(sq));
    }
    if (!sel.nm && a.cols > 0) moments[head].compute(k, b, kvh, a.cols);
  });
  // Every row tile of every head, one pool: causal tiles grow with the row index, so each head's
  // last (largest) tiles are handed out first for balance.
  parallel_items(heads * tiles, threads, [&](int64_t worker, int64_t item) {
    const int64_t head = item / tiles, b = head / s.kv_heads, kvh = head % s.kv_heads;
    HeadLayout& hl = l.heads[head];
    const double max_key_norm = max_key_norms[head];
    TileWorker& w = workers[worker];
    const int64_t tile = tiles - 1 - item % tiles;
    const int64_t i0 = tile * tile_rows, i1 = std::min(i0 + tile_rows, a.rows);
    TileContext ctx{&w, &sel, cap};
    // Queries transposed per subtile: row r's component c at qt_at(r, c).
    auto qt_at = [&](int64_t r, int64_t c) -> float& {
      return w.qt[(r / sub_rows) * sub_rows * d + c * sub_rows + r % sub_rows];
    };
    int64_t keys[kMaxSubtiles] = {};  // the widest row of each subtile the kernels see
    std::fill(w.qt.begin(), w.qt.end(), 0.0f);
    for (int64_t r = 0; r < tile_rows; ++r) {
      const int64_t i = i0 + r;
      w.end[r] = 0, w.count[r] = 0, w.overflow[r] = 0;
      w.margin[r] = 0, w.threshold[r] = std::numeric_limits<float>::infinity();
      if (i >= i1) continue;
      const int64_t end = a.key_end(i);
      int32_t* const row = hl.idx.data() + ptr[i];
      w.out[r] = row;
      if (end == 0) continue;
      if (keep_all || sel.row_size(end) == end) {  // every allowed key
        for (int64_t j = 0; j < end; ++j) row[j] = static_cast<int32_t>(j);
        continue;
      }
      double* query = &w.query[r * d];
      group_query_sum(q, b, kvh, group, i, query);
      double q_norm = 0;
      for (int64_t c = 0; c < d; ++c) q_norm += query[c] * query[c];
      const double magnitude = std::sqrt(q_norm) * max_key_norm;  // bounds every partial sum
      RowScores& rs = w.rows[r];
      rs = RowScores{};
      rs.query = query;
      rs.error = error_factor * magnitude + kTinyError;
      rs.approx_finite = magnitude < kFloatSafe;
      rs.k = &k, rs.b = b, rs.kvh = kvh;
      if (!rs.approx_finite) {  // rank every key by its exact score
        if (sel.nm) {
          for (int64_t g = 0; g < end; g += sel.m)
            select_top(rs, g, std::min(g + sel.m, end), sel.n, w.select, row + (g / sel.m) * std::min(sel.n, sel.m));
        } else {
          select_top(rs, 0, end, sel.k, w.select, row);
        }
        continue;
      }
      for (int64_t c = 0; c < d; ++c) qt_at(r, c) = static_cast<float>(query[c]);
      // A sure best must clear the runner-up by 4 errors; rounded up, so the float test
      // (best - runner, itself rounded) still implies it.
      w.margin[r] = static_cast<float>(4 * rs.error * (1 + 1e-6));
      if (!sel.nm) {
        w.row_query.resize(d);
        for (int64_t c = 0; c < d; ++c) w.row_query[c] = static_cast<float>(query[c]);
        w.threshold[r] = moments[head].guess(w.row_query.data(), d, topk_want, end);
      }
      w.end[r] = end;
      keys[r / sub_rows] = std::max(keys[r / sub_rows], end);
    }
    const int64_t widest = *std::max_element(keys, keys + subtiles);
    for (int64_t j0 = 0; j0 < widest; j0 += chunk) {
      for (int64_t sub = 0; sub < subtiles; ++sub) {
        if (keys[sub] <= j0) continue;
        const int64_t j1 = std::min(j0 + chunk, keys[sub]), row0 = sub * sub_rows;
        ctx.row0 = row0;
        ScoreTile t;
        t.qt = w.qt.data() + sub * sub_rows * d, t.keys = k.row(b, kvh, 0), t.d = d, t.end = w.end.data() + row0;
        kern.score(t, j0, j1, w.scores.data());
        if (sel.nm) {
          NmTile nm;
          nm.m = sel.m, nm.n = sel.n, nm.margin = w.margin.data() + row0, nm.out = w.out.data() + row0;
          nm.doubtful = nm_doubtful, nm.ctx = &ctx;
          kern.nm(t, nm, j0, j1, w.scores.data());
        } else {
          TopkTile tk;
          tk.threshold = w.threshold.data() + row0, tk.values = w.values.data() + row0 * cap;
          tk.keys = w.keys.data() + row0 * cap, tk.count = w.count.data() + row0, tk.cap = cap;
          tk.full = topk_full, tk.ctx = &ctx;
          tk.event_values = w.event_values.data(), tk.event_keys = w.event_keys.data();
          tk.event_lanes = w.event_lanes.data();
          kern.topk(t, tk, j0, j1, w.scores.data());
        }
      }
    }
    if (sel.nm) return;
    for (int64_t r = 0; r < tile_rows; ++r) {
      if (w.end[r] == 0) continue;
      const RowScores& rs = w.rows[r];
      const int64_t end = w.end[r];
      int32_t* done = nullptr;
      if (!w.overflow[r])
        done = select_listed(rs, w.values.data() + r * cap, w.keys.data() + r * cap, w.count[r], sel.k, w.threshold[r],
                             w.select, w.out[r]);
      if (!done) {  // the list could not decide: score the whole row and select from it
        w.row_approx.resize(end), w.row_query.resize(d);
        for (int64_t c = 0; c < d; ++c) w.row_query[c] = qt_at(r, c);
        const float* qf = w.row_query.data();
        for (int64_t j = 0; j < end; ++j) {
          const float* key = k.row(b, kvh, j);
          float acc = 0;
          for (int64_t c = 0; c < d; ++c) acc += qf[c] * key[c];
          w.row_approx[j] = acc;
        }
        RowScores full = rs;
        full.approx = w.row_approx.data(), full.approx_first = 0;
        done = select_top(full, 0, end, sel.k, w.select, w.out[r]);
      }
      if (done - w.out[r] != sel.k)
        throw std::logic_error("scored layout: a row selected a different number of keys than counted");
    }
  });
  return l;
}

}  // namespace

Layout build_nm_layout(const Op& op, const NmParams& p, const TensorView& q, const TensorView& k) {
  Selection sel;
  sel.nm = true, sel.n = p.nm_n, sel.m = p.nm_m;
  return build_scored_layout(op, Spec::nm_structured, q, k, sel);
}

Layout build_topk_layout(const Op& op, const TopkParams& p, const TensorView& q, const TensorView& k) {
  Selection sel;
  sel.k = p.topk_k;
  return build_scored_layout(op, Spec::topk_per_query, q, k, sel);
}

}  // namespace sattn::layout_detail
