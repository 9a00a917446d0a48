// Fidelity of sparse layouts against dense attention (definitions: include/sattn/fidelity.hpp).
//
// One KV head at a time: its keys are transposed once into double blocks of kBlockKeys keys
// ([block][dim][key], O(kv_len * head_dim)), so that the scores of one query row against a block
// are a loop the compiler vectorizes. Then every query row of the group, on worker threads: the
// dense scores and probabilities of the row (O(kv_len)), and for each layout its kept keys, kept
// mass, the oracle's mass for the same count, and the sparse output. Nothing seq_len * kv_len is
// ever held.
#include "sattn/fidelity.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

constexpr int64_t kBlockKeys = 32;
constexpr int64_t kRowsPerItem = 16;  // query rows handed to a worker at a time

// Keys of one (batch, kv head) transposed into double blocks.
struct KeyBlocks {
  int64_t dim = 0, len = 0;
  std::vector<double> data;  // [ceil(len / kBlockKeys)][dim][kBlockKeys], zero-padded

  KeyBlocks(const Tensor& k, int64_t b, int64_t kvh) : dim(k.dim()), len(k.len()) {
    const int64_t blocks = (len + kBlockKeys - 1) / kBlockKeys;
    data.assign(size_t(blocks * dim * kBlockKeys), 0.0);
    for (int64_t j = 0; j < len; ++j) {
      const float* row = k.row(b, kvh, j);
      double* base = data.data() + (j / kBlockKeys) * dim * kBlockKeys + j % kBlockKeys;
      for (int64_t c = 0; c < dim; ++c) base[c * kBlockKeys] = row[c];
    }
  }
  // s[j] = scale * q . k_j for j in [0, end).
  void scores(const double* q, int64_t end, double scale, double* s) const {
    double acc[kBlockKeys];
    for (int64_t j0 = 0; j0 < end; j0 += kBlockKeys) {
      const double* blk = data.data() + (j0 / kBlockKeys) * dim * kBlockKeys;
      for (int64_t t = 0; t < kBlockKeys; ++t) acc[t] = 0;
      for (int64_t c = 0; c < dim; ++c) {
        const double qc = q[c];
        const double* kc = blk + c * kBlockKeys;
        for (int64_t t = 0; t < kBlockKeys; ++t) acc[t] += qc * kc[t];
      }
      const int64_t n = std::min(kBlockKeys, end - j0);
      for (int64_t t = 0; t < n; ++t) s[j0 + t] = acc[t] * scale;
    }
  }
};

// The keys layout `l` keeps in row i, restricted to [0, end), ascending.
void kept_keys(const Layout& l, int64_t b, int64_t kvh, int64_t i, int64_t end, std::vector<int64_t>& keys) {
  keys.clear();
  const HeadLayout& hl = l.head(b, kvh);
  if (!l.block) {
    for (int64_t t = hl.ptr[i]; t < hl.ptr[i + 1]; ++t)
      if (hl.idx[t] >= 0 && hl.idx[t] < end) keys.push_back(hl.idx[t]);
    return;
  }
  const int64_t br = i / l.block_size;
  for (int64_t t = hl.ptr[br]; t < hl.ptr[br + 1]; ++t) {
    const int64_t j0 = int64_t(hl.idx[t]) * l.block_size;
    for (int64_t j = std::max<int64_t>(j0, 0); j < std::min(j0 + l.block_size, end); ++j) keys.push_back(j);
  }
}

// Accumulators of one (layout, head), filled by rows in order.
struct HeadAccum {
  std::vector<double> recall, oracle;       // per counted row
  std::vector<double> rel, ref_norm;        // per counted row: ||sparse - dense||_2 and ||dense||_2
  std::vector<double> abs_err;              // per counted row: max |sparse - dense|
  std::vector<double> ref_max;              // per counted row: max |dense|
  std::vector<int64_t> kept, dense;         // per counted row
  std::vector<uint8_t> counted;             // per row: dense attention gives it a key
};

void run_workers(int64_t items, int threads, const std::function<void(int64_t)>& work) {
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&] {
    try {
      for (int64_t item; (item = next.fetch_add(1)) < items;) {
        throw_if_interrupted();
        work(item);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = items;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

void check_layout(const Op& op, const Layout& l) {
  const Shape& s = op.shape;
  if (l.rows != s.seq_len || l.cols != s.kv_len || l.batch != s.batch || l.kv_heads != s.kv_heads ||
      l.causal != op.causal)
    throw_input_error(op.loc, "fidelity: the layout of " + std::string(to_string(l.spec)) +
                                  " does not match op '" + op.name + "' (rows, cols, batch, kv_heads or causal)");
  const size_t want = l.shared ? 1 : size_t(s.batch * s.kv_heads);
  if (l.heads.size() < want) throw_input_error(op.loc, "fidelity: the layout holds too few heads for op '" + op.name + "'");
}

}  // namespace

RowStats row_stats(std::vector<double> values) {
  RowStats r;
  if (values.empty()) return r;
  std::sort(values.begin(), values.end());
  r.min = values.front();
  const size_t rank = size_t(std::ceil(0.1 * double(values.size())));
  r.p10 = values[std::max<size_t>(rank, 1) - 1];
  double sum = 0;
  for (double v : values) sum += v;
  r.mean = sum / double(values.size());
  return r;
}

std::vector<std::vector<HeadFidelity>> evaluate_fidelity(const Op& op, const QKV& data,
                                                         const std::vector<const Layout*>& layouts,
                                                         const FidelityOptions& options) {
  const Shape& s = op.shape;
  const std::array<int64_t, 4> q_shape{s.batch, s.heads, s.seq_len, s.head_dim};
  const std::array<int64_t, 4> kv_shape{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  if (data.q.shape != q_shape || data.k.shape != kv_shape || (options.with_output && data.v.shape != kv_shape))
    throw_input_error(op.loc, "fidelity: the data's shape does not match op '" + op.name + "'");
  for (const Layout* l : layouts) check_layout(op, *l);

  const int64_t L = int64_t(layouts.size()), G = s.group_size(), d = s.head_dim;
  const int64_t offset = s.kv_len - s.seq_len;
  const double scale = op.softmax_scale();
  const int threads = options.threads > 0 ? options.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  auto key_end = [&](int64_t i) {
    return op.causal ? std::clamp<int64_t>(i + offset + 1, 0, s.kv_len) : s.kv_len;
  };

  std::vector<std::vector<HeadFidelity>> out(size_t(L), std::vector<HeadFidelity>(size_t(s.batch * s.heads)));
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      const KeyBlocks keys(data.k, b, kvh);
      // Accumulators per (layout, query head of the group), rows written by index.
      std::vector<HeadAccum> acc(size_t(L * G));
      for (HeadAccum& a : acc) {
        const size_t n = size_t(s.seq_len);
        a.recall.assign(n, 0), a.oracle.assign(n, 0), a.rel.assign(n, 0), a.ref_norm.assign(n, 0), a.abs_err.assign(n, 0);
        a.ref_max.assign(n, 0), a.kept.assign(n, 0), a.dense.assign(n, 0), a.counted.assign(n, 0);
      }
      const int64_t tiles = (s.seq_len + kRowsPerItem - 1) / kRowsPerItem;
      run_workers(G * tiles, std::min<int64_t>(threads, G * tiles), [&](int64_t item) {
        const int64_t g = item / tiles, h = kvh * G + g;
        const int64_t i0 = (item % tiles) * kRowsPerItem, i1 = std::min(i0 + kRowsPerItem, s.seq_len);
        const size_t dim = static_cast<size_t>(d), keys_len = static_cast<size_t>(s.kv_len);
        std::vector<double> q(dim), sc(keys_len), p(keys_len), sorted, prefix;
        std::vector<double> od(dim), os(dim);
        std::vector<int64_t> kept;
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t end = key_end(i);
          if (end == 0) continue;  // no key for dense attention either: output 0, not counted
          const float* qr = data.q.row(b, h, i);
          for (int64_t c = 0; c < d; ++c) q[size_t(c)] = qr[c];
          keys.scores(q.data(), end, scale, sc.data());
          double m = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < end; ++j) m = std::max(m, sc[size_t(j)]);
          double z = 0;
          for (int64_t j = 0; j < end; ++j) z += (p[size_t(j)] = std::exp(sc[size_t(j)] - m));
          double ref_max = 0, ref_norm = 0;
          if (options.with_output) {
            std::fill(od.begin(), od.end(), 0.0);
            for (int64_t j = 0; j < end; ++j) {
              const float* vr = data.v.row(b, kvh, j);
              const double w = p[size_t(j)];
              for (int64_t c = 0; c < d; ++c) od[size_t(c)] += w * vr[c];
            }
            for (double& x : od) {
              x /= z;
              ref_max = std::max(ref_max, std::abs(x));
              ref_norm += x * x;
            }
          }
          // The oracle: the largest probabilities first; one layout needs one partial sort.
          bool have_sorted = false;
          for (int64_t l = 0; l < L; ++l) {
            HeadAccum& a = acc[size_t(l * G + g)];
            kept_keys(*layouts[size_t(l)], b, kvh, i, end, kept);
            const int64_t n = int64_t(kept.size());
            double mass = 0;
            for (int64_t j : kept) mass += p[size_t(j)];
            double oracle_mass = 0;
            if (n >= end) {
              oracle_mass = z;
            } else if (n > 0) {
              if (L == 1) {
                sorted.assign(p.begin(), p.begin() + end);
                std::nth_element(sorted.begin(), sorted.begin() + (n - 1), sorted.end(), std::greater<double>());
                for (int64_t t = 0; t < n; ++t) oracle_mass += sorted[size_t(t)];
              } else {
                if (!have_sorted) {
                  sorted.assign(p.begin(), p.begin() + end);
                  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
                  prefix.assign(size_t(end) + 1, 0.0);
                  for (int64_t t = 0; t < end; ++t) prefix[size_t(t) + 1] = prefix[size_t(t)] + sorted[size_t(t)];
                  have_sorted = true;
                }
                oracle_mass = prefix[size_t(n)];
              }
            }
            a.counted[size_t(i)] = 1;
            a.recall[size_t(i)] = std::min(1.0, mass / z);
            // The top-n sum is >= the kept sum in exact arithmetic; the max absorbs rounding.
            a.oracle[size_t(i)] = std::min(1.0, std::max(oracle_mass / z, mass / z));
            a.kept[size_t(i)] = n;
            a.dense[size_t(i)] = end;
            if (!options.with_output) continue;
            std::fill(os.begin(), os.end(), 0.0);
            if (n > 0) {
              double mk = -std::numeric_limits<double>::infinity();
              for (int64_t j : kept) mk = std::max(mk, sc[size_t(j)]);
              double zk = 0;
              for (int64_t j : kept) {
                const double w = std::exp(sc[size_t(j)] - mk);
                zk += w;
                const float* vr = data.v.row(b, kvh, j);
                for (int64_t c = 0; c < d; ++c) os[size_t(c)] += w * vr[c];
              }
              for (double& x : os) x /= zk;
            }
            double err_max = 0, err_norm = 0;
            for (int64_t c = 0; c < d; ++c) {
              const double e = os[size_t(c)] - od[size_t(c)];
              err_max = std::max(err_max, std::abs(e));
              err_norm += e * e;
            }
            a.abs_err[size_t(i)] = err_max;
            a.ref_max[size_t(i)] = ref_max;
            a.rel[size_t(i)] = std::sqrt(err_norm);
            a.ref_norm[size_t(i)] = std::sqrt(ref_norm);
          }
        }
      });
      // Per-head statistics, rows in order.
      for (int64_t l = 0; l < L; ++l)
        for (int64_t g = 0; g < G; ++g) {
          const HeadAccum& a = acc[size_t(l * G + g)];
          HeadFidelity& f = out[size_t(l)][size_t(b * s.heads + kvh * G + g)];
          f.batch = b, f.head = kvh * G + g, f.kv_head = kvh;
          f.with_output = options.with_output;
          double err_max = 0, ref_max = 0, err_sum = 0, ref_sum = 0;
          for (int64_t i = 0; i < s.seq_len; ++i) {
            if (!a.counted[size_t(i)]) continue;
            ++f.rows;
            f.kept_pairs += a.kept[size_t(i)];
            f.dense_pairs += a.dense[size_t(i)];
            f.row_recall.push_back(a.recall[size_t(i)]);
            f.row_oracle.push_back(a.oracle[size_t(i)]);
            err_max = std::max(err_max, a.abs_err[size_t(i)]);
            ref_max = std::max(ref_max, a.ref_max[size_t(i)]);
            err_sum += a.rel[size_t(i)];
            ref_sum += a.ref_norm[size_t(i)];
          }
          f.density = f.dense_pairs > 0 ? double(f.kept_pairs) / double(f.dense_pairs) : 0;
          f.recall = row_stats(f.row_recall);
          f.oracle = row_stats(f.row_oracle);
          f.ratio = f.oracle.mean > 0 ? f.recall.mean / f.oracle.mean : 1;
          if (options.with_output) {
            f.max_abs = err_max;
            f.max_rel = ref_max > 0 ? err_max / ref_max : err_max;
            f.mean_rel = ref_sum > 0 ? err_sum / ref_sum : err_sum;
          }
        }
    }
  return out;
}

FidelitySummary summarize_fidelity(const std::vector<HeadFidelity>& heads) {
  FidelitySummary sum;
  std::vector<double> recall, oracle;
  int64_t kept = 0, dense = 0;
  double mean_rel = 0;
  sum.with_output = !heads.empty();
  for (const HeadFidelity& h : heads) {
    ++sum.heads;
    sum.rows += h.rows;
    kept += h.kept_pairs, dense += h.dense_pairs;
    recall.insert(recall.end(), h.row_recall.begin(), h.row_recall.end());
    oracle.insert(oracle.end(), h.row_oracle.begin(), h.row_oracle.end());
    if (h.rows > 0) sum.worst_head_recall = std::min(sum.worst_head_recall, h.recall.mean);
    sum.with_output = sum.with_output && h.with_output;
    sum.max_rel = std::max(sum.max_rel, h.max_rel);
    mean_rel += h.mean_rel;
  }
  sum.density = dense > 0 ? double(kept) / double(dense) : 0;
  sum.recall = row_stats(std::move(recall));
  sum.oracle = row_stats(std::move(oracle));
  sum.ratio = sum.oracle.mean > 0 ? sum.recall.mean / sum.oracle.mean : 1;
  if (!heads.empty()) sum.mean_rel = mean_rel / double(heads.size());
  if (!sum.with_output) sum.max_rel = sum.mean_rel = 0;
  return sum;
}

}  // namespace sattn
