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

#include "layout_builders.hpp"

namespace sattn::layout_detail {

namespace {

constexpr int64_t kScoreTileFloats = int64_t(1) << 21;  // 8 MiB of approximate scores per tile
constexpr int64_t kMaxTileRows = 256;

// Approximate scores of one row with their error bound.
struct RowScores {
  const float* approx = nullptr;  // sgemm scores of keys [0, n)
  const double* query = nullptr;  // the group-summed query, exact
  const double* key_norm = nullptr;
  double error_scale = 0;  // |approx[j] - exact(j)| <= error_scale * key_norm[j] + kTinyError
  const Tensor* k = nullptr;
  int64_t b = 0, kvh = 0;

  // Covers values that underflow in the float products.
  static constexpr double kTinyError = 1e-30;

  double exact(int64_t j) const {
    const float* key = k->row(b, kvh, j);
    double s = 0;
    for (int64_t c = 0; c < k->dim(); ++c) s += query[c] * double(key[c]);
    return s;
  }
  double lower(int64_t j) const {
    const double a = approx[j];
    return std::isfinite(a) ? a - (error_scale * key_norm[j] + kTinyError) : -std::numeric_limits<double>::infinity();
  }
  double upper(int64_t j) const {
    const double a = approx[j];
    return std::isfinite(a) ? a + (error_scale * key_norm[j] + kTinyError) : std::numeric_limits<double>::infinity();
  }
};

struct Ranked {
  double score;
  int64_t key;
};

// Scratch buffers reused across rows.
struct SelectScratch {
  std::vector<double> lows, highs, sorted;
  std::vector<int64_t> chosen;
  std::vector<Ranked> doubtful;
};

// Appends to `out`, ascending, the `count` keys of [first, last) with the highest exact score
// (ties to the lower key), or all of them if there are no more than `count`.
void select_top(const RowScores& rs, int64_t first, int64_t last, int64_t count, SelectScratch& s,
                std::vector<int32_t>& out) {
  const int64_t n = last - first;
  if (n <= count) {
    for (int64_t j = first; j < last; ++j) out.push_back(static_cast<int32_t>(j));
    return;
  }
  s.lows.resize(n), s.highs.resize(n);
  for (int64_t t = 0; t < n; ++t) s.lows[t] = rs.lower(first + t), s.highs[t] = rs.upper(first + t);
  // At least `count` keys score >= the count-th largest lower bound: a key whose upper bound is
  // below it is out. At most `count` keys have an upper bound above the (count+1)-th largest
  // upper bound: a key whose lower bound exceeds it is beaten by fewer than `count` keys, so in.
  s.sorted = s.lows;
  std::nth_element(s.sorted.begin(), s.sorted.begin() + (count - 1), s.sorted.end(), std::greater<>());
  const double surely_in_threshold = s.sorted[count - 1];
  s.sorted = s.highs;
  std::nth_element(s.sorted.begin(), s.sorted.begin() + count, s.sorted.end(), std::greater<>());
  const double doubt_ceiling = s.sorted[count];

  s.chosen.clear();
  s.doubtful.clear();
  for (int64_t t = 0; t < n; ++t) {
    if (s.lows[t] > doubt_ceiling)
      s.chosen.push_back(first + t);
    else if (s.highs[t] >= surely_in_threshold)
      s.doubtful.push_back({rs.exact(first + t), first + t});
  }
  // The rest of the count comes from the doubtful keys, ranked by their exact score.
  const auto need = static_cast<size_t>(count) - s.chosen.size();
  std::partial_sort(s.doubtful.begin(), s.doubtful.begin() + need, s.doubtful.end(),
                    [](const Ranked& x, const Ranked& y) { return x.score != y.score ? x.score > y.score : x.key < y.key; });
  for (size_t t = 0; t < need; ++t) s.chosen.push_back(s.doubtful[t].key);
  std::sort(s.chosen.begin(), s.chosen.end());
  for (int64_t j : s.chosen) out.push_back(static_cast<int32_t>(j));
}

// Builds a per-(batch, kv head) CSR layout; select_row(key_end, scores, scratch, out) appends one
// row's keys, chosen among the allowed keys [0, key_end).
template <class SelectRow>
Layout build_scored_layout(const Op& op, Spec spec, const Tensor& q, const Tensor& k, SelectRow select_row) {
  const Shape& s = op.shape;
  const Alignment a = alignment_of(op);
  const int64_t d = s.head_dim, group = s.group_size();
  const int64_t tile_rows = std::clamp<int64_t>(kScoreTileFloats / a.cols, 1, kMaxTileRows);
  // Float dot products of length d (any summation order, FMA or not) err by at most
  // gamma_d = d*u/(1 - d*u) times sum |q_c k_c|; rounding the double query to float adds u.
  // Factor 2 and d + 2 cover both with room; sum |q_c k_c| <= |q| |k| (Cauchy-Schwarz).
  const double error_factor = 2.0 * double(d + 2) * std::ldexp(1.0, -24);

  Layout l = make_layout(op, spec, false, 1, false);
  std::vector<double> key_norm(a.cols), query(tile_rows * d);
  std::vector<float> query_f(tile_rows * d), approx(tile_rows * a.cols);
  SelectScratch scratch;

  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      for (int64_t j = 0; j < a.cols; ++j) {
        const float* key = k.row(b, kvh, j);
        double sq = 0;
        for (int64_t c = 0; c < d; ++c) sq += double(key[c]) * double(key[c]);
        key_norm[j] = std::sqrt(sq);
      }
      HeadLayout& hl = l.heads[b * s.kv_heads + kvh];
      hl.ptr.assign(1, 0);
      for (int64_t i0 = 0; i0 < a.rows; i0 += tile_rows) {
        const int64_t i1 = std::min(i0 + tile_rows, a.rows), rows = i1 - i0;
        const int64_t keys = a.key_end(i1 - 1);  // key_end grows with i: the tile's widest row
        if (keys > 0) {
          for (int64_t i = i0; i < i1; ++i) group_query_sum(q, b, kvh, group, i, &query[(i - i0) * d]);
          for (int64_t t = 0; t < rows * d; ++t) query_f[t] = static_cast<float>(query[t]);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(keys), int(d), 1.0f, query_f.data(),
                      int(d), k.row(b, kvh, 0), int(d), 0.0f, approx.data(), int(keys));
        }
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t end = a.key_end(i);
          if (end > 0) {
            const double* qi = &query[(i - i0) * d];
            double q_norm = 0;
            for (int64_t c = 0; c < d; ++c) q_norm += qi[c] * qi[c];
            RowScores rs{&approx[(i - i0) * keys], qi, key_norm.data(), error_factor * std::sqrt(q_norm), &k, b, kvh};
            select_row(end, rs, scratch, hl.idx);
          }
          hl.ptr.push_back(int64_t(hl.idx.size()));
        }
      }
    }
  return l;
}

}  // namespace

Layout build_nm_layout(const Op& op, const NmParams& p, const Tensor& q, const Tensor& k) {
  return build_scored_layout(op, Spec::nm_structured, q, k,
                             [&](int64_t end, const RowScores& rs, SelectScratch& scratch, std::vector<int32_t>& out) {
                               for (int64_t g = 0; g < end; g += p.nm_m)
                                 select_top(rs, g, std::min(g + p.nm_m, end), p.nm_n, scratch, out);
                             });
}

Layout build_topk_layout(const Op& op, const TopkParams& p, const Tensor& q, const Tensor& k) {
  return build_scored_layout(op, Spec::topk_per_query, q, k,
                             [&](int64_t end, const RowScores& rs, SelectScratch& scratch, std::vector<int32_t>& out) {
                               select_top(rs, 0, end, p.topk_k, scratch, out);
                             });
}

}  // namespace sattn::layout_detail
