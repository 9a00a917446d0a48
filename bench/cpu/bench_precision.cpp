// The fast CPU kernel's dense tile at one precision, timed in CPU seconds: sattn_bench_precision
// SEQ HEADS HEAD_DIM PRECISION REPS [THREADS] runs fast_attention_into REPS times on one dense op
// (batch 1, not causal, uniform random data in [-1, 1)) in this process, after one warm-up call,
// and prints one JSON line: the ISA copy that ran (SATTN_CPU_ISA picks it), whether the bf16 op ran
// on AMX tiles, the per-call process CPU time and wall time (every rep, and the median), and
// GFLOP/s per CPU second (4 * seq^2 * head_dim * heads flops). The error of the last call against
// the reference is not checked here (`sattn bench` does that); bench/cpu/precision.sh runs the
// configurations side by side. CPU time, not wall time: on a shared machine the wall time of one
// call swings with the load, its CPU time much less.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "../lib/process_cpu_time.hpp"
#include "backends/cpu/kernel_fast_internal.hpp"
#include "core/synthetic.hpp"
#include "sattn/attention.hpp"
#include "sattn/layout.hpp"
#include "sattn/op.hpp"

using namespace sattn;

namespace {

std::string list(const std::vector<double>& xs) {
  std::string s;
  for (double x : xs) s += (s.empty() ? "" : ", ") + std::to_string(x);
  return "[" + s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: sattn_bench_precision SEQ HEADS HEAD_DIM fp32|bf16 REPS [THREADS]\n");
    return 2;
  }
  const int64_t seq = std::atoll(argv[1]), heads = std::atoll(argv[2]), dim = std::atoll(argv[3]);
  const std::string precision = argv[4];
  const int reps = std::atoi(argv[5]);
  const int threads = argc > 6 ? std::atoi(argv[6]) : 1;
  Op op;
  op.shape = Shape{1, heads, heads, seq, seq, dim};
  op.precision = precision == "bf16" ? Precision::bf16 : Precision::fp32;
  const Layout layout = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
  Rng rng(25);
  Tensor q(1, heads, seq, dim), k(1, heads, seq, dim), v(1, heads, seq, dim), out(1, heads, seq, dim);
  for (Tensor* t : {&q, &k, &v})
    for (float& x : t->data) x = 2.0f * rng.uniform() - 1.0f;
  FastOptions options;
  options.threads = threads;
  fast_attention_into(op, layout, q, k, v, out, nullptr, options);  // warm-up: threads, pages, scratch
  std::vector<double> cpu_ms, wall_ms;
  for (int r = 0; r < reps; ++r) {
    const double c0 = process_cpu_seconds();
    const auto w0 = std::chrono::steady_clock::now();
    fast_attention_into(op, layout, q, k, v, out, nullptr, options);
    wall_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
    cpu_ms.push_back(1e3 * (process_cpu_seconds() - c0));
  }
  auto median = [](std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    return xs[xs.size() / 2];
  };
  const double flops = 4.0 * double(seq) * double(seq) * double(dim) * double(heads);
  std::printf(
      "{\"seq\": %lld, \"heads\": %lld, \"head_dim\": %lld, \"precision\": \"%s\", \"threads\": %d, \"cpu_isa\": \"%s\", "
      "\"amx_tiles\": %s, \"cpu_ms\": %s, \"wall_ms\": %s, \"median_cpu_ms\": %.3f, \"median_wall_ms\": %.3f, "
      "\"gflops_per_cpu_s\": %.2f}\n",
      (long long)seq, (long long)heads, (long long)dim, precision.c_str(), threads, std::string(to_string(cpu_isa())).c_str(),
      fast::amx_bf16_tiles(op, layout) ? "true" : "false", list(cpu_ms).c_str(), list(wall_ms).c_str(), median(cpu_ms),
      median(wall_ms), flops / (median(cpu_ms) * 1e-3) / 1e9);
  return 0;
}
