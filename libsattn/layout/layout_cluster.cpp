// Row (CSR) layouts that group keys: lsh (hash buckets) and landmark (representative keys).
// Semantics: layout.cpp.
#include <algorithm>
#include <limits>

#include "layout/layout_builders.hpp"
#include "core/synthetic.hpp"

namespace sattn::layout_detail {

namespace {

// One round of angular LSH: x -> argmax of [xR, -xR] (even bucket counts, R has buckets/2
// columns) or argmax of xR (odd counts, R has `buckets` columns).
class AngularHash {
 public:
  AngularHash(uint64_t seed, int64_t round, int64_t dim, int64_t buckets)
      : dim_(dim),
        mirrored_(buckets % 2 == 0),
        proj_cols_(mirrored_ ? buckets / 2 : buckets),
        proj_(static_cast<size_t>(dim * proj_cols_)),
        xr_(static_cast<size_t>(proj_cols_)) {
    // Rounds get unrelated streams; the golden-ratio multiple spreads consecutive rounds apart.
    Rng rng(seed ^ ((uint64_t(round) + 1) * 0x9E3779B97F4A7C15ull));
    for (double& x : proj_) x = rng.normal();  // row-major: dim rows, proj_cols_ columns
  }

  int64_t bucket(const double* x) {
    std::fill(xr_.begin(), xr_.end(), 0.0);
    for (int64_t c = 0; c < dim_; ++c)
      for (int64_t t = 0; t < proj_cols_; ++t) xr_[t] += x[c] * proj_[c * proj_cols_ + t];
    // Candidates in bucket order: xr_[0..cols) then, when mirrored, -xr_[0..cols); strict '>'
    // keeps the lower bucket on ties.
    int64_t best = 0;
    double best_value = xr_[0];
    for (int64_t t = 1; t < proj_cols_; ++t)
      if (xr_[t] > best_value) best = t, best_value = xr_[t];
    if (mirrored_)
      for (int64_t t = 0; t < proj_cols_; ++t)
        if (-xr_[t] > best_value) best = proj_cols_ + t, best_value = -xr_[t];
    return best;
  }

 private:
  int64_t dim_;
  bool mirrored_;
  int64_t proj_cols_;
  std::vector<double> proj_;
  std::vector<double> xr_;
};

void key_as_double(const TensorView& k, int64_t b, int64_t kvh, int64_t j, double* out) {
  const float* key = k.row(b, kvh, j);
  for (int64_t c = 0; c < k.dim(); ++c) out[c] = double(key[c]);
}

double squared_distance(const double* x, const float* y, int64_t d) {
  double s = 0;
  for (int64_t c = 0; c < d; ++c) {
    const double diff = x[c] - double(y[c]);
    s += diff * diff;
  }
  return s;
}

// Evenly spaced landmark keys floor(t * kv_len / m), deduplicated (they repeat when m > kv_len).
std::vector<int64_t> evenly_spaced_landmarks(int64_t kv_len, int64_t m) {
  std::vector<int64_t> pos;
  for (int64_t t = 0; t < m; ++t) pos.push_back(t * kv_len / m);
  pos.erase(std::unique(pos.begin(), pos.end()), pos.end());  // already ascending
  return pos;
}

// k-means-lite over the keys of one (batch, kv head), started from `initial` landmark keys;
// returns the keys nearest the final centroids, sorted and deduplicated.
std::vector<int64_t> refine_landmarks(const TensorView& k, int64_t b, int64_t kvh, const std::vector<int64_t>& initial,
                                      int64_t iters) {
  const int64_t d = k.dim(), n = k.len(), m = int64_t(initial.size());
  std::vector<double> centroid(m * d), sum(m * d);
  std::vector<int64_t> members(m);
  for (int64_t t = 0; t < m; ++t) key_as_double(k, b, kvh, initial[t], &centroid[t * d]);
  for (int64_t it = 0; it < iters; ++it) {
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(members.begin(), members.end(), 0);
    for (int64_t j = 0; j < n; ++j) {
      const float* key = k.row(b, kvh, j);
      int64_t nearest = 0;
      double nearest_dist = std::numeric_limits<double>::infinity();
      for (int64_t t = 0; t < m; ++t) {
        const double dist = squared_distance(&centroid[t * d], key, d);
        if (dist < nearest_dist) nearest = t, nearest_dist = dist;  // strict: ties to the lower centroid
      }
      for (int64_t c = 0; c < d; ++c) sum[nearest * d + c] += double(key[c]);
      ++members[nearest];
    }
    for (int64_t t = 0; t < m; ++t)  // a centroid that attracted no key stays where it was
      if (members[t] > 0)
        for (int64_t c = 0; c < d; ++c) centroid[t * d + c] = sum[t * d + c] / double(members[t]);
  }
  std::vector<int64_t> landmarks(m);
  for (int64_t t = 0; t < m; ++t) {
    double nearest_dist = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      const double dist = squared_distance(&centroid[t * d], k.row(b, kvh, j), d);
      if (dist < nearest_dist) landmarks[t] = j, nearest_dist = dist;  // ties to the lower key
    }
  }
  std::sort(landmarks.begin(), landmarks.end());
  landmarks.erase(std::unique(landmarks.begin(), landmarks.end()), landmarks.end());
  return landmarks;
}

// Every row attends the (sorted) landmark keys the causal rule allows: a prefix of the list.
void fill_landmark_rows(const Alignment& a, const std::vector<int64_t>& landmarks, HeadLayout& hl) {
  hl.ptr.assign(1, 0);
  for (int64_t i = 0; i < a.rows; ++i) {
    const int64_t end = a.key_end(i);
    for (int64_t j : landmarks) {
      if (j >= end) break;
      hl.idx.push_back(static_cast<int32_t>(j));
    }
    hl.ptr.push_back(int64_t(hl.idx.size()));
  }
}

}  // namespace

Layout build_lsh_layout(const Op& op, const LshParams& p, const TensorView& q, const TensorView& k) {
  const Shape& s = op.shape;
  const Alignment a = alignment_of(op);
  const int64_t d = s.head_dim, group = s.group_size(), heads = s.batch * s.kv_heads;
  const int64_t threads = worker_threads(heads);
  // Per worker: the hashes (they hold scratch) and the bucket lists.
  struct Worker {
    std::vector<AngularHash> hashes;
    std::vector<std::vector<std::vector<int32_t>>> bucket_keys;  // [round][bucket]: keys, ascending
    std::vector<double> x;
    std::vector<int32_t> keys;
  };
  std::vector<Worker> workers(threads);
  for (Worker& w : workers) {
    for (int64_t r = 0; r < p.lsh_rounds; ++r) w.hashes.emplace_back(p.seed, r, d, p.lsh_buckets);
    w.bucket_keys.resize(p.lsh_rounds);
    w.x.resize(d);
  }

  Layout l = make_layout(op, Spec::lsh, false, 1, false);
  parallel_items(heads, threads, [&](int64_t worker, int64_t head) {
    Worker& w = workers[worker];
    const int64_t b = head / s.kv_heads, kvh = head % s.kv_heads;
    for (int64_t r = 0; r < p.lsh_rounds; ++r) {
      w.bucket_keys[r].assign(p.lsh_buckets, {});
      for (int64_t j = 0; j < a.cols; ++j) {
        key_as_double(k, b, kvh, j, w.x.data());
        w.bucket_keys[r][w.hashes[r].bucket(w.x.data())].push_back(static_cast<int32_t>(j));
      }
    }
    HeadLayout& hl = l.heads[head];
    hl.ptr.assign(1, 0);
    for (int64_t i = 0; i < a.rows; ++i) {
      poll_interrupt(i);
      const int64_t end = a.key_end(i), diagonal = a.aligned(i);
      w.keys.clear();
      group_query_sum(q, b, kvh, group, i, w.x.data());
      for (int64_t r = 0; r < p.lsh_rounds; ++r) {
        const std::vector<int32_t>& same = w.bucket_keys[r][w.hashes[r].bucket(w.x.data())];
        w.keys.insert(w.keys.end(), same.begin(), std::lower_bound(same.begin(), same.end(), end));
      }
      // The row's own position, so no row loses its diagonal to the hash.
      if (diagonal >= 0 && diagonal < end) w.keys.push_back(static_cast<int32_t>(diagonal));
      std::sort(w.keys.begin(), w.keys.end());
      w.keys.erase(std::unique(w.keys.begin(), w.keys.end()), w.keys.end());
      hl.idx.insert(hl.idx.end(), w.keys.begin(), w.keys.end());
      hl.ptr.push_back(int64_t(hl.idx.size()));
    }
  });
  return l;
}

Layout build_landmark_layout(const Op& op, const LandmarkParams& p, const TensorView* k) {
  const Shape& s = op.shape;
  const Alignment a = alignment_of(op);
  const std::vector<int64_t> initial = evenly_spaced_landmarks(a.cols, p.num_landmarks);
  const bool refined = p.landmark_iters > 0;
  Layout l = make_layout(op, Spec::landmark, false, 1, !refined);
  if (!refined) {
    fill_landmark_rows(a, initial, l.heads[0]);
    return l;
  }
  const int64_t heads = s.batch * s.kv_heads;
  parallel_items(heads, worker_threads(heads), [&](int64_t, int64_t head) {
    const std::vector<int64_t> landmarks =
        refine_landmarks(*k, head / s.kv_heads, head % s.kv_heads, initial, p.landmark_iters);
    fill_landmark_rows(a, landmarks, l.heads[head]);
  });
  return l;
}

}  // namespace sattn::layout_detail
