// CPU benchmark: the fast sparse kernel on every spec against the fast dense kernel, a dense
// attention built from OpenBLAS sgemm, and the reference oracle. Prints a markdown table and the
// machine it ran on. See bench/cpu/README.md.
#include <cblas.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sattn/attention.hpp"
#include "bench.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "core/synthetic.hpp"

using namespace sattn;

namespace {

// ---- options ----

struct Options {
  std::vector<int64_t> seqs{1024, 4096, 16384};
  int reps = 3;
  int threads = 0;                 // fast kernel threads; 0 = hardware concurrency
  int64_t reference_max_seq = 4096;  // the oracle is O(pairs) in double, single-threaded: slow
  std::vector<Spec> specs{std::begin(kAllSpecs), std::end(kAllSpecs)};
  std::string out;
};

[[noreturn]] void usage(const std::string& message) {
  std::cerr << "sattn_bench_cpu: error: " << message << "\n"
            << "usage: sattn_bench_cpu [--seq 1024,4096,16384] [--reps 3] [--threads N] [--specs dense,bsr,...]\n"
               "                       [--reference-max-seq 4096] [--out FILE.md]\n";
  std::exit(2);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

int64_t parse_int(const std::string& flag, const std::string& text) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used != text.size() || v < 0) throw std::invalid_argument(text);
    return v;
  } catch (const std::exception&) {
    usage(flag + ": not a non-negative integer: '" + text + "'");
  }
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    const std::string flag = argv[a];
    auto value = [&]() -> std::string {
      if (a + 1 >= argc) usage(flag + " needs a value");
      return argv[++a];
    };
    if (flag == "--seq") {
      o.seqs.clear();
      for (const std::string& s : split(value(), ',')) o.seqs.push_back(std::max<int64_t>(1, parse_int(flag, s)));
    } else if (flag == "--reps") {
      o.reps = int(std::max<int64_t>(1, parse_int(flag, value())));
    } else if (flag == "--threads") {
      o.threads = int(parse_int(flag, value()));
    } else if (flag == "--reference-max-seq") {
      o.reference_max_seq = parse_int(flag, value());
    } else if (flag == "--specs") {
      o.specs.clear();
      for (const std::string& s : split(value(), ',')) {
        const auto spec = parse_spec(s);
        if (!spec) usage("--specs: unknown spec '" + s + "'");
        o.specs.push_back(*spec);
      }
    } else if (flag == "--out" || flag == "-o") {
      o.out = value();
    } else if (flag == "--help" || flag == "-h") {
      usage("help requested");
    } else {
      usage("unknown option " + flag);
    }
  }
  return o;
}

// ---- the problems ----

constexpr int64_t kHeads = 8, kHeadDim = 64;

// Parameters aim at density 1/16 at every length (0.0625 <= 0.1 at 16384): window and top-k
// counts scale with seq_len; block top-k keeps 1/16 of the blocks; N:M keeps 1 of 16.
Op make_op(int64_t seq, Spec spec) {
  Op op;
  op.name = std::string(to_string(spec));
  op.shape = Shape{1, kHeads, kHeads, seq, seq, kHeadDim};
  op.causal = false;
  op.precision = Precision::fp32;
  PatternAttrs& a = op.attrs;
  switch (spec) {
    case Spec::dense: break;
    case Spec::sliding_window: a.window_size = std::max<int64_t>(1, seq / 32); break;  // 2w+1 keys
    case Spec::bsr:
      a.block_size = 64;
      a.keep_ratio = 1.0 / 16;
      break;
    case Spec::block_local_global: {
      // 2*window+1 local blocks plus one global block column (and row): about seq/16 keys.
      const int64_t block_cols = std::max<int64_t>(1, seq / 64);
      a.block_size = 64;
      a.window_blocks = std::max<int64_t>(0, (block_cols / 16 - 2) / 2);
      a.global_tokens = 64;
      break;
    }
    case Spec::nm_structured:
      a.nm_n = 1;
      a.nm_m = 16;
      break;
    case Spec::topk_per_query: a.topk_k = std::max<int64_t>(1, seq / 16); break;
    case Spec::lsh:
      a.lsh_buckets = 16;
      a.lsh_rounds = 1;
      break;
    case Spec::landmark:
      a.num_landmarks = std::max<int64_t>(1, seq / 16);
      a.landmark_iters = 0;
      break;
    case Spec::quest:  // pages of 64 keys, the top 1/16 of them per query
      a.page_size = 64;
      a.top_pages = std::max<int64_t>(1, seq / 64 / 16);
      break;
  }
  return op;
}

std::string params_text(const Op& op, Spec spec) {
  const PatternAttrs& a = op.attrs;
  switch (spec) {
    case Spec::dense: return "-";
    case Spec::sliding_window: return "w=" + std::to_string(*a.window_size);
    case Spec::bsr: return "B=64 keep=1/16";
    case Spec::block_local_global:
      return "B=64 wb=" + std::to_string(*a.window_blocks) + " g=" + std::to_string(*a.global_tokens);
    case Spec::nm_structured: return "1:16";
    case Spec::topk_per_query: return "k=" + std::to_string(*a.topk_k);
    case Spec::lsh: return "buckets=16 rounds=1";
    case Spec::landmark: return "m=" + std::to_string(*a.num_landmarks);
    case Spec::quest: return "page=64 top=" + std::to_string(*a.top_pages);
  }
  return "";
}

int64_t total_allowed_pairs(const Op& op, const Layout& layout) {
  int64_t pairs = 0;
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t h = 0; h < op.shape.heads; ++h) pairs += layout.allowed_pairs(b, h / op.shape.group_size());
  return pairs;
}

// ---- dense attention from OpenBLAS sgemm: libsattn's blas_dense_attention (sattn/bench.hpp),
// the same baseline `sattn bench` measures against ----

// ---- measurement ----

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// User + system CPU time of this process (all threads), in seconds.
double process_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto sec = [](const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); };
  return sec(usage.ru_utime) + sec(usage.ru_stime);
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t vm_hwm_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// What one kernel measurement sends back from its child process.
struct Measured {
  bool ok = false;
  double build_seconds = -1, seconds = -1, cpu_seconds = -1, reference_seconds = -1, peak_mib = -1,
         layout_mib = -1, density = 0;
  int64_t pairs = 0;
  char error[200] = {};
};

// Runs `measure` in a fresh child (fork) and returns what it filled in. Each kernel gets its own
// process so peak-RSS figures do not mix: the child's high-water mark starts at the RSS it
// inherits (the shared inputs), and only what the measured code allocates moves it.
Measured in_child(const std::function<void(Measured&)>& measure) {
  Measured m;
  int fds[2];
  if (pipe(fds) != 0) throw_runtime_error("pipe: " + std::string(std::strerror(errno)));
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid < 0) throw_runtime_error("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    close(fds[0]);
    try {
      measure(m);
      m.ok = true;
    } catch (const std::exception& e) {
      std::snprintf(m.error, sizeof m.error, "%s", e.what());
    }
    const bool sent = write(fds[1], &m, sizeof m) == sizeof m;
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  const bool received = read(fds[0], &m, sizeof m) == sizeof m;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!received) throw_runtime_error("benchmark child process died (status " + std::to_string(status) + ")");
  if (!m.ok) throw_runtime_error(m.error);
  return m;
}

// One untimed run whose peak memory growth is recorded (it also warms caches and pools), then
// `reps` timed runs (wall time, and CPU time of all threads: less sensitive to other load).
void time_runs(Measured& m, int reps, const std::function<void()>& run, int64_t hwm_before) {
  run();
  m.peak_mib = double(vm_hwm_kib() - hwm_before) / 1024.0;
  std::vector<double> times, cpu_times;
  for (int r = 0; r < reps; ++r) {
    const double cpu_before = process_cpu_seconds();
    times.push_back(seconds_of(run));
    cpu_times.push_back(process_cpu_seconds() - cpu_before);
  }
  m.seconds = median_of(times);
  m.cpu_seconds = median_of(cpu_times);
}

// ---- report ----

std::string first_line_of(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) {
      const auto colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "unknown";
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string fmt(double v, int decimals) {
  if (v < 0 || !std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

struct Row {
  int64_t seq = 0;
  std::string name, params;
  double density = 0;
  int64_t pairs = 0;
  double seconds = -1, cpu_seconds = -1, reference_seconds = -1, layout_mib = -1, peak_mib = -1, build_seconds = -1;
  bool sparse = false;
  double gflops() const { return seconds > 0 ? 4.0 * kHeadDim * double(pairs) / seconds / 1e9 : -1; }
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options opt = parse_options(argc, argv);
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = opt.threads > 0 ? opt.threads : hw;
  const std::string load_before = read_first_line("/proc/loadavg");
  std::vector<Row> rows;

  for (const int64_t seq : opt.seqs) {
    const Op dense_op = make_op(seq, Spec::dense);
    const QKV data = synthetic_qkv(dense_op.shape);
    const bool with_reference = seq <= opt.reference_max_seq;

    // The baseline must compute attention, not just take time: check it against the fast dense
    // kernel (itself tested against the reference) where that is quick.
    if (with_reference) {
      const Layout full = build_layout(dense_op, Spec::dense, DenseParams{}, nullptr, nullptr);
      const ErrorStats e = compare(blas_dense_attention(dense_op, data.q, data.k, data.v, threads),
                                   fast_attention(dense_op, full, data.q, data.k, data.v, FastOptions{threads}));
      if (!e.finite || e.max_rel > tolerance(Precision::fp32))
        throw std::runtime_error("the OpenBLAS baseline differs from the fast dense kernel: max relative error " +
                                 std::to_string(e.max_rel));
      std::cerr << "seq " << seq << " OpenBLAS baseline vs fast dense: max relative error " << e.max_rel << "\n";
    }

    // (b) Dense attention from OpenBLAS sgemm.
    {
      Row r;
      r.seq = seq;
      r.name = "dense (OpenBLAS sgemm)";
      r.params = std::to_string(threads) + " threads x 1-thread BLAS";
      r.density = 1;
      r.pairs = kHeads * seq * seq;
      const Measured m = in_child([&](Measured& out) {
        const int64_t hwm = vm_hwm_kib();
        time_runs(out, opt.reps, [&] { blas_dense_attention(dense_op, data.q, data.k, data.v, threads); }, hwm);
      });
      r.seconds = m.seconds;
      r.cpu_seconds = m.cpu_seconds;
      r.peak_mib = m.peak_mib;
      rows.push_back(r);
      std::cerr << "seq " << seq << " " << r.name << ": " << fmt(r.seconds * 1e3, 1) << " ms\n";
    }

    // The fast kernel on every spec ((a): the dense spec), and the reference.
    for (const Spec spec : opt.specs) {
      const Op op = make_op(seq, spec);
      const SpecParams params = resolve_params(op, spec);
      Row r;
      r.seq = seq;
      r.name = spec == Spec::dense ? "dense (fast kernel)" : std::string(to_string(spec));
      r.params = params_text(op, spec);
      r.sparse = spec != Spec::dense;
      const Measured m = in_child([&](Measured& out) {
        const int64_t hwm = vm_hwm_kib();
        Layout layout;
        out.build_seconds = seconds_of([&] { layout = build_layout(op, spec, params, &data.q, &data.k); });
        out.density = layout.density();
        out.pairs = total_allowed_pairs(op, layout);
        out.layout_mib = double(layout.index_bytes()) / (1024.0 * 1024.0);
        const FastOptions fast{threads};
        time_runs(out, opt.reps, [&] { fast_attention(op, layout, data.q, data.k, data.v, fast); }, hwm);
        if (with_reference)  // one run: it takes seconds to minutes
          out.reference_seconds = seconds_of([&] { reference_attention(op, layout, data.q, data.k, data.v); });
      });
      r.build_seconds = m.build_seconds;
      r.density = m.density;
      r.pairs = m.pairs;
      r.layout_mib = m.layout_mib;
      r.seconds = m.seconds;
      r.cpu_seconds = m.cpu_seconds;
      r.peak_mib = m.peak_mib;
      r.reference_seconds = m.reference_seconds;
      rows.push_back(r);
      std::cerr << "seq " << seq << " " << r.name << ": " << fmt(r.seconds * 1e3, 2) << " ms, density "
                << fmt(r.density, 4) << "\n";
    }
  }
  const std::string load_after = read_first_line("/proc/loadavg");

  // ---- table ----
  std::ostringstream md;
  md << "# sattn CPU benchmark\n\n";
  md << "- date: " << utc_now() << "\n";
  md << "- cpu: " << first_line_of("/proc/cpuinfo", "model name") << ", " << hw << " hardware threads\n";
  md << "- compiler: " <<
#if defined(__clang__)
      "clang "
#else
      "gcc "
#endif
     << __VERSION__ << "\n";
  md << "- OpenBLAS: " << openblas_get_config() << "\n";
  md << "- problem: batch 1, heads 8 (kv_heads 8), head_dim 64, fp32, not causal, synthetic_qkv (seed 0x5A77)\n";
  md << "- threads: fast kernel " << threads << "; OpenBLAS dense: " << threads
     << " threads over (batch, head), each calling single-threaded OpenBLAS on 256-row chunks\n";
  md << "- time: median of " << opt.reps << " runs after one untimed run; reference: one run, "
     << "single-threaded, only up to seq " << opt.reference_max_seq << "\n";
  md << "- GFLOP/s: 4 * head_dim * allowed pairs (summed over heads) / time; CPU ms: CPU time of all threads "
        "(median), for reading the table when other jobs share the machine (OpenBLAS threads spin while waiting, "
        "which counts)\n";
  md << "- memory: each row runs in a fresh forked process; peak RSS growth (VmHWM) covers the layout build "
        "and one kernel run (inputs are shared with the parent and not counted)\n";
  md << "- load average before / after: " << load_before << " / " << load_after << "\n\n";

  md << "| seq | kernel | params | density | allowed pairs | time ms | CPU ms | GFLOP/s | vs fast dense | target 0.6/density "
        "| reference ms | fast / reference | layout build s | layout MiB | peak RSS growth MiB |\n";
  md << "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::vector<std::string> notes;
  bool dense_target_met = true, sparse_target_met = true, reference_target_met = true;
  for (const Row& r : rows) {
    double dense_seconds = -1, blas_seconds = -1;
    for (const Row& o : rows)
      if (o.seq == r.seq) {
        if (o.name == "dense (fast kernel)") dense_seconds = o.seconds;
        if (o.name == "dense (OpenBLAS sgemm)") blas_seconds = o.seconds;
      }
    const double vs_dense = dense_seconds > 0 ? dense_seconds / r.seconds : -1;
    const double target = r.sparse && r.density > 0 ? 0.6 / r.density : -1;
    const double vs_reference = r.reference_seconds > 0 ? r.reference_seconds / r.seconds : -1;
    std::string target_cell = "-";
    if (r.sparse && r.density <= 0.1 && r.seq == opt.seqs.back() && r.seq >= 16384) {
      const bool met = vs_dense >= target;
      sparse_target_met &= met;
      target_cell = fmt(target, 1) + (met ? " (met)" : " (NOT met)");
    } else if (r.sparse) {
      target_cell = fmt(target, 1);
    }
    if (r.name == "dense (fast kernel)" && blas_seconds > 0) dense_target_met &= blas_seconds / r.seconds >= 0.8;
    if (vs_reference > 0) reference_target_met &= vs_reference >= 20;
    md << "| " << r.seq << " | " << r.name << " | " << r.params << " | " << fmt(r.density, 4) << " | " << r.pairs
       << " | " << fmt(r.seconds * 1e3, 2) << " | " << fmt(r.cpu_seconds * 1e3, 1) << " | " << fmt(r.gflops(), 1) << " | " << fmt(vs_dense, 2) << "x | "
       << target_cell << " | " << fmt(r.reference_seconds * 1e3, 0) << " | "
       << (vs_reference > 0 ? fmt(vs_reference, 0) + "x" : "-") << " | " << fmt(r.build_seconds, 2) << " | "
       << fmt(r.layout_mib, 2) << " | "
       << fmt(r.peak_mib, 1) << " |\n";
  }
  md << "\nTargets:\n";
  for (const Row& r : rows)
    if (r.name == "dense (fast kernel)")
      for (const Row& o : rows)
        if (o.seq == r.seq && o.name == "dense (OpenBLAS sgemm)")
          md << "- seq " << r.seq << ": fast dense / OpenBLAS dense speed = " << fmt(o.seconds / r.seconds, 2)
             << " (target >= 0.8)\n";
  md << "- fast dense >= 0.8x OpenBLAS dense at every seq: " << (dense_target_met ? "met" : "NOT met") << "\n";
  if (opt.seqs.back() >= 16384)
    md << "- every sparse spec >= 0.6/density x faster than fast dense at seq " << opt.seqs.back() << ": "
       << (sparse_target_met ? "met" : "NOT met") << "\n";
  md << "- fast >= 20x reference (where measured): " << (reference_target_met ? "met" : "NOT met") << "\n";
  md << "- peak memory vs allowed pairs: see the last two columns (layout index bytes are "
        "8 B per row pointer + 4 B per key or block index; the kernel itself only adds fixed per-thread scratch "
        "and the output)\n";

  std::cout << md.str();
  std::cout.flush();
  if (!opt.out.empty()) write_atomic(opt.out, md.str());
  return 0;
} catch (const Error& e) {
  std::cout.flush();
  std::cerr << "sattn_bench_cpu: error: " << e.what() << "\n";
  return int(e.code());
} catch (const std::exception& e) {
  std::cout.flush();
  std::cerr << "sattn_bench_cpu: error: " << e.what() << "\n";
  return 1;
}
