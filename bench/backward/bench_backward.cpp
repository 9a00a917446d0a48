// sattn_bench_backward: the fast CPU backward (fast_attention_backward) against the fast forward
// (fast_attention_into with lse) of the same op, measured side by side in one run, for every spec
// at one shape; and, at a small shape, the backward's error against the double reference
// backward. Prints a markdown table with the machine and its load (bench/backward/README.md).
//
//   sattn_bench_backward [--seq N] [--heads H] [--dim D] [--reps R] [--threads T] [--out FILE.md]
#include <sys/utsname.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/synthetic.hpp"
#include "sattn/attention.hpp"
#include "sattn/layout.hpp"

using namespace sattn;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <class F>
double median_seconds(int reps, F f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string first_line(const char* path, const char* key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return line.substr(line.find(':') + 2);
  return "?";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Attributes giving a density near 0.1 at seq 4096 where the spec has a knob.
Op op_for(int64_t seq, int64_t heads, int64_t dim) {
  Op op;
  op.shape = Shape{1, heads, heads, seq, seq, dim};
  op.causal = true;
  op.attrs.window_size = seq / 10;
  op.attrs.block_size = 64;
  op.attrs.keep_ratio = 0.2;  // of the causal candidates: about 0.1 of the square
  op.attrs.window_blocks = std::max<int64_t>(1, seq / 64 / 20);
  op.attrs.topk_k = seq / 10;
  op.attrs.nm_n = 1;
  op.attrs.nm_m = 5;
  op.attrs.lsh_buckets = 8;
  op.attrs.num_landmarks = seq / 5;
  return op;
}

double max_rel(const Tensor& out, const Tensor& ref) { return compare(out, ref).max_rel; }

}  // namespace

int main(int argc, char** argv) {
  int64_t seq = 4096, heads = 8, dim = 64;
  int reps = 3, threads = 0;
  std::string out_path;
  for (int a = 1; a + 1 < argc; a += 2) {
    const std::string flag = argv[a], value = argv[a + 1];
    if (flag == "--seq") seq = std::stoll(value);
    else if (flag == "--heads") heads = std::stoll(value);
    else if (flag == "--dim") dim = std::stoll(value);
    else if (flag == "--reps") reps = std::stoi(value);
    else if (flag == "--threads") threads = std::stoi(value);
    else if (flag == "--out") out_path = value;
    else {
      std::fprintf(stderr, "sattn_bench_backward: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  std::ostringstream md;
  utsname u{};
  uname(&u);
  md << "# Fast CPU backward against the fast forward\n\n"
     << "Machine: " << first_line("/proc/cpuinfo", "model name") << ", " << std::thread::hardware_concurrency()
     << " hardware threads, " << u.sysname << " " << u.release << "; load average before: " << load_average()
     << "; threads " << (threads ? std::to_string(threads) : std::string("all")) << ", median of " << reps
     << " runs.\n\n"
     << "Shape: batch 1, " << heads << " heads, seq_len = kv_len = " << seq << ", head_dim " << dim
     << ", causal, fp32. Error: max-norm relative error of dq/dk/dv against the double reference "
     << "backward at seq 256 with the same attributes.\n\n"
     << "| spec | density | forward s | backward s | backward / forward | error dq | error dk | error dv |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (Spec spec : kAllSpecs) {
    const Op op = op_for(seq, heads, dim);
    const QKV d = synthetic_qkv(op.shape, 1);
    const Layout layout = build_layout(op, spec, resolve_params(op, spec), &d.q, &d.k);
    Tensor out(1, heads, seq, dim), dout = d.q, dq = d.q, dk = d.k, dv = d.v;
    for (float& x : dout.data) x *= 0.5f;
    std::vector<float> lse(size_t(heads * seq));
    const FastOptions fo{threads};
    const double fwd = median_seconds(reps, [&] { fast_attention_into(op, layout, d.q, d.k, d.v, out, lse.data(), fo); });
    const double bwd = median_seconds(
        reps, [&] { fast_attention_backward(op, layout, d.q, d.k, d.v, out, dout, lse.data(), dq, dk, dv, fo); });
    // The error at a small shape (the reference is O(pairs * dim) in double, single-threaded).
    const Op small = op_for(256, 2, dim);
    const QKV s = synthetic_qkv(small.shape, 2);
    const Layout sl = build_layout(small, spec, resolve_params(small, spec), &s.q, &s.k);
    Tensor so(1, 2, 256, dim), sg = s.q, sdq = s.q, sdk = s.k, sdv = s.v;
    std::vector<float> slse(2 * 256);
    fast_attention_into(small, sl, s.q, s.k, s.v, so, slse.data(), fo);
    fast_attention_backward(small, sl, s.q, s.k, s.v, so, sg, slse.data(), sdq, sdk, sdv, fo);
    const Gradients ref = reference_attention_backward(small, sl, s.q, s.k, s.v, sg);
    char row[512];
    std::snprintf(row, sizeof row, "| %s | %.3f | %.4f | %.4f | %.2f | %.1e | %.1e | %.1e |\n",
                  std::string(to_string(spec)).c_str(), layout.density(), fwd, bwd, bwd / fwd, max_rel(sdq, ref.dq),
                  max_rel(sdk, ref.dk), max_rel(sdv, ref.dv));
    md << row;
    std::fprintf(stderr, "%s", row);
  }
  md << "\nLoad average after: " << load_average() << ".\n";
  std::printf("%s", md.str().c_str());
  if (!out_path.empty()) {
    const std::string tmp = out_path + ".tmp";
    std::ofstream(tmp) << md.str();
    if (std::rename(tmp.c_str(), out_path.c_str()) != 0) {
      std::fprintf(stderr, "sattn_bench_backward: cannot write %s\n", out_path.c_str());
      return 1;
    }
  }
  return 0;
}
