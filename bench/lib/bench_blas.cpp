// The OpenBLAS dense attention that `sattn bench` measures the CPU kernels against, and the
// point that runs it (`sattn bench --blas-dense OP`, one subprocess like every other point).
// Built with -march=native beside the fast kernel (libsattn/CMakeLists.txt) so that its softmax
// uses the same vector exp: the comparison is about the attention schedule, not about libm.
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <iostream>
#include <thread>
#include <vector>

#include "backends/cpu/kernel_fast_simd.hpp"
#include "bench.hpp"
#include "sattn/error.hpp"
#include "sattn/layout.hpp"
#include "formats/op_io.hpp"
#include "formats/data.hpp"
#include "sattn/attention.hpp"

namespace sattn {

namespace {

// e^x in place, vectorized like the fast kernel's exp.
void exp_inplace(float* x, int64_t n) {
  int64_t c = 0;
#if SATTN_FAST_AVX2
  const __m256 log2e = _mm256_set1_ps(fast::kLog2e);
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(x + c, fast::exp2_avx2(_mm256_mul_ps(_mm256_loadu_ps(x + c), log2e)));
#endif
  for (; c < n; ++c) x[c] = std::exp(x[c]);
}

// Softmax of one score row over its first `keys` columns (the causally allowed ones); the rest
// become 0. A row without keys is all zeros (DESIGN: an empty row gives output 0).
void softmax_row(float* row, int64_t keys, int64_t cols) {
  if (keys <= 0) {
    std::fill(row, row + cols, 0.0f);
    return;
  }
  const float m = *std::max_element(row, row + keys);
  for (int64_t c = 0; c < keys; ++c) row[c] -= m;
  exp_inplace(row, keys);
  float sum = 0;
  for (int64_t c = 0; c < keys; ++c) sum += row[c];
  const float inv = 1.0f / sum;
  for (int64_t c = 0; c < keys; ++c) row[c] *= inv;
  std::fill(row + keys, row + cols, 0.0f);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Tensor blas_dense_attention(const Op& op, const Tensor& q, const Tensor& k, const Tensor& v, int threads) {
  const Shape& s = op.shape;
  const int64_t chunk_rows = 256, L = s.kv_len, D = s.head_dim, offset = s.kv_len - s.seq_len;
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  Tensor out(s.batch, s.heads, s.seq_len, D);
  // Not when it is 1 already: setting it restarts OpenBLAS's worker threads after a tool stopped
  // them (stop_idle_blas_threads), and they would spin beside this point's own threads.
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  std::atomic<int64_t> next_head{0};
  auto worker = [&] {
    std::vector<float> scores(size_t(std::min(chunk_rows, s.seq_len) * L));
    for (int64_t bh = next_head++; bh < s.batch * s.heads; bh = next_head++) {
      const int64_t b = bh / s.heads, h = bh % s.heads, kvh = h / s.group_size();
      for (int64_t r0 = 0; r0 < s.seq_len; r0 += chunk_rows) {
        const int64_t m = std::min(chunk_rows, s.seq_len - r0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(L), int(D), float(op.softmax_scale()),
                    q.row(b, h, r0), int(D), k.row(b, kvh, 0), int(D), 0.0f, scores.data(), int(L));
        for (int64_t r = 0; r < m; ++r)
          softmax_row(scores.data() + r * L, op.causal ? std::min(L, r0 + r + offset + 1) : L, L);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(D), int(L), 1.0f, scores.data(), int(L),
                    v.row(b, kvh, 0), int(D), 0.0f, out.row(b, h, r0), int(D));
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& th : pool) th.join();
  return out;
}

nlohmann::json run_blas_point(const std::string& op_file, uint64_t seed, int threads) {
  std::vector<std::string> warnings;
  const std::vector<Op> ops = read_ops(op_file, OpFormat::automatic, &warnings);
  if (ops.size() != 1) throw Error(ExitCode::invalid_input, op_file + ": --blas-dense needs exactly one op");
  Op op = ops[0];
  op.precision = Precision::fp32;  // OpenBLAS sgemm: the baseline is fp32 whatever the sweep's precision
  const QKV data = synthetic_qkv(op.shape, seed);
  const Layout dense = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);

  auto t0 = std::chrono::steady_clock::now();
  const Tensor out = blas_dense_attention(op, data.q, data.k, data.v, threads);
  const double kernel_ms = ms_since(t0);

  // The baseline must compute attention, not only take time: it is checked against the fast
  // dense kernel (which the sweep's cpu dense point checks against the reference).
  t0 = std::chrono::steady_clock::now();
  const Tensor fast = fast_attention(op, dense, data.q, data.k, data.v, FastOptions{threads});
  const double check_ms = ms_since(t0);
  const ErrorStats e = compare(out, fast);
  const double tol = tolerance(Precision::fp32);
  const bool passed = e.finite && e.max_rel <= tol;

  nlohmann::json j = envelope("result", "sattn bench");
  j["op"] = op_to_json(op);
  j["spec"] = "dense";
  j["params"] = nlohmann::json::object();
  j["backend"] = "cpu-openblas";
  j["precision"] = "fp32";
  j["data"] = {{"source", "synthetic"}, {"seed", seed}};
  j["kernel"] = {{"name", "openblas"},
                 {"description", "per (batch, head): 256-row chunks, S = scale Q K^T (cblas_sgemm), row softmax, "
                                 "O = P V (cblas_sgemm); threads take heads in turn, each with single-threaded OpenBLAS"},
                 {"openblas", openblas_get_config()},
                 {"threads", threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()))}};
  j["layout"] = layout_summary(op, dense);
  j["check"] = {{"reference", "the fast dense kernel (fp32)"},
                {"max_abs_error", e.finite ? nlohmann::json(e.max_abs) : nlohmann::json("inf")},
                {"max_rel_error", e.finite ? nlohmann::json(e.max_rel) : nlohmann::json("inf")},
                {"tolerance", tol},
                {"passed", passed}};
  j["timing"] = {{"kernel_ms", kernel_ms}, {"check_ms", check_ms}};
  return j;
}

}  // namespace sattn
