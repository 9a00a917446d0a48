#include "backends/backend.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <thread>

#include "core/resources.hpp"
#include "core/quant_scheme.hpp"

#include "support/text_table.hpp"

namespace sattn {

std::string_view to_string(CheckMode m) {
  switch (m) {
    case CheckMode::automatic: return "auto";
    case CheckMode::full: return "full";
    case CheckMode::sample: return "sample";
    case CheckMode::none: return "none";
  }
  return "?";
}

std::optional<CheckMode> parse_check_mode(std::string_view s) {
  for (CheckMode m : {CheckMode::automatic, CheckMode::full, CheckMode::sample, CheckMode::none})
    if (to_string(m) == s) return m;
  return std::nullopt;
}

CheckMode resolve_check_mode(CheckMode mode, double reference_pairs) {
  if (mode != CheckMode::automatic) return mode;
  return reference_pairs > kCheckSampleAbovePairs ? CheckMode::sample : CheckMode::full;
}

namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// `count` distinct values of [0, n), always 0 and n - 1, the rest drawn with `seed`; sorted.
std::vector<int64_t> draw(int64_t n, int64_t count, uint64_t seed) {
  std::vector<int64_t> out;
  if (count >= n) {
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  std::set<int64_t> picked{0, n - 1};
  uint64_t state = seed;
  while (int64_t(picked.size()) < count) picked.insert(int64_t(splitmix64(state) % uint64_t(n)));
  return {picked.begin(), picked.end()};
}

}  // namespace

std::vector<int64_t> check_rows(const Layout& layout, CheckMode mode, const CheckOptions& options) {
  std::vector<int64_t> rows;
  if (mode == CheckMode::none || layout.rows == 0) return rows;
  if (mode != CheckMode::sample) {
    for (int64_t i = 0; i < layout.rows; ++i) rows.push_back(i);
    return rows;
  }
  const int64_t want = std::max<int64_t>(options.rows, 1);
  if (!layout.block) return draw(layout.rows, want, options.seed);
  // Block layouts: whole block rows (their rows share one key list), enough to cover `want` rows.
  const int64_t block_rows = layout.block_rows();
  for (int64_t br : draw(block_rows, (want + layout.block_size - 1) / layout.block_size, options.seed))
    for (int64_t i = br * layout.block_size; i < std::min(layout.rows, (br + 1) * layout.block_size); ++i) rows.push_back(i);
  return rows;
}

Layout restrict_rows(const Layout& layout, const std::vector<int64_t>& rows) {
  Layout r = layout;
  const int64_t step = layout.block ? layout.block_size : 1;
  const int64_t units = layout.block ? layout.block_rows() : layout.rows;
  std::vector<char> keep(size_t(units), 0);
  for (int64_t i : rows) keep[size_t(i / step)] = 1;
  for (HeadLayout& h : r.heads) {
    const HeadLayout& src = h;
    HeadLayout out;
    out.ptr.assign(size_t(units) + 1, 0);
    for (int64_t u = 0; u < units; ++u) {
      if (keep[size_t(u)])
        out.idx.insert(out.idx.end(), src.idx.begin() + src.ptr[size_t(u)], src.idx.begin() + src.ptr[size_t(u) + 1]);
      out.ptr[size_t(u) + 1] = int64_t(out.idx.size());
    }
    h = std::move(out);
  }
  return r;
}

namespace {

// max|out - ref| and max|ref| accumulated over rows: the same numbers compare() gives on whole
// tensors once every row was added; over a subset, the error on those rows.
struct ErrorAccumulator {
  double max_abs = 0, ref_max = 0, abs_diff = 0, abs_ref = 0, dot = 0, out_sq = 0, ref_sq = 0;
  bool finite = true;
  void add(const Tensor& out, const Tensor& ref, const Shape& s, const std::vector<int64_t>& rows) {
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t i : rows) {
          const float* o = out.row(b, h, i);
          const float* r = ref.row(b, h, i);
          for (int64_t c = 0; c < s.head_dim; ++c) {
            if (!std::isfinite(o[c])) finite = false;
            const double od = o[c], rd = r[c];
            max_abs = std::max(max_abs, std::abs(od - rd));
            ref_max = std::max(ref_max, std::abs(rd));
            abs_diff += std::abs(od - rd);
            abs_ref += std::abs(rd);
            dot += od * rd;
            out_sq += od * od;
            ref_sq += rd * rd;
          }
        }
  }
  ErrorStats stats() const {
    ErrorStats e;
    e.finite = finite;
    e.max_abs = max_abs;
    e.max_rel = ref_max > 0 ? max_abs / ref_max : max_abs;
    e.rel_l1 = abs_ref > 0 ? abs_diff / abs_ref : abs_diff;
    e.cosine = out_sq > 0 && ref_sq > 0 ? dot / std::sqrt(out_sq * ref_sq) : (out_sq == ref_sq ? 1.0 : 0.0);
    if (!finite) {
      e.max_abs = e.max_rel = e.rel_l1 = std::numeric_limits<double>::infinity();
      e.cosine = 0;
    }
    return e;
  }
};

// Allowed pairs of the whole layout over batch and query heads (what a full check visits).
double layout_pairs(const Op& op, const Layout& layout) {
  double pairs = 0;
  for (int64_t b = 0; b < op.shape.batch; ++b)
    for (int64_t kvh = 0; kvh < op.shape.kv_heads; ++kvh) pairs += double(layout.allowed_pairs(b, kvh));
  return pairs * double(op.shape.group_size());
}

}  // namespace

nlohmann::json check_against_reference(const Op& op, const Layout& layout, const QKV& data, CpuRun& r,
                                       double& reference_ms, const CheckOptions& options, const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const CheckMode mode = resolve_check_mode(options.mode, layout_pairs(op, layout));
  const QuantScheme scheme = quant_scheme_of(op);
  const bool integer = op.precision == Precision::i8 || op.precision == Precision::i4;
  r.tol = tolerance_of(op.precision, scheme);
  r.tolerance = std::isfinite(r.tol.max_rel) ? r.tol.max_rel : r.tol.rel_l1;
  // The check's reference: the fp32 oracle, or (i4 per-tensor) the same-quantized one.
  auto reference = [&](const Layout& l) {
    return r.tol.same_quantized ? reference_attention_quantized(op, scheme, l, data.q, data.k, data.v)
                                : reference_attention(op, l, data.q, data.k, data.v);
  };
  auto criteria = [&](nlohmann::json& j) {
    j["metric"] = std::isfinite(r.tol.max_rel) ? "max_rel" : "rel_l1";
    j["criteria"] = describe(r.tol);
    if (r.tol.min_cosine > -1) j["min_cosine"] = r.tol.min_cosine;
    if (integer) j["quant_scheme"] = to_string(scheme);
  };
  if (mode == CheckMode::none) {
    reference_ms = 0;
    r.error = ErrorStats{};
    r.passed = true;
    nlohmann::json none = {{"mode", "none"}, {"reference", nullptr}, {"tolerance", r.tolerance}, {"passed", nullptr},
                           {"rows_checked", 0}, {"rows", op.shape.seq_len}};
    criteria(none);
    return none;
  }
  const std::vector<int64_t> rows = check_rows(layout, mode, options);
  if (progress) progress({"check", 0, double(rows.size())});
  if (mode == CheckMode::full && !(progress && layout_pairs(op, layout) > kCheckSampleAbovePairs)) {
    r.error = compare(r.out, reference(layout));
  } else {
    // A sample, or a long full check that reports progress: the reference on the layout
    // restricted to ~50 consecutive slices of the rows (whole block rows on block layouts), the
    // error accumulated as compare() would over the whole tensors.
    const int64_t unit = layout.block ? layout.block_size : 1;
    const size_t slices = mode == CheckMode::full ? 50 : 1;
    const size_t per_slice = std::max<size_t>(1, (rows.size() / size_t(unit) + slices - 1) / slices) * size_t(unit);
    ErrorAccumulator acc;
    for (size_t first = 0; first < rows.size(); first += per_slice) {
      const std::vector<int64_t> slice(rows.begin() + first, rows.begin() + std::min(rows.size(), first + per_slice));
      acc.add(r.out, reference(restrict_rows(layout, slice)), op.shape, slice);
      if (progress) progress({"check", double(first + slice.size()), double(rows.size())});
    }
    r.error = acc.stats();
  }
  if (progress) progress({"check", double(rows.size()), double(rows.size())});
  reference_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.passed = within(r.error, r.tol);
  auto number = [&](double x) { return r.error.finite ? nlohmann::json(x) : nlohmann::json("inf"); };
  nlohmann::json check = {{"mode", std::string(to_string(mode))},
                          {"reference", r.tol.same_quantized
                                            ? "cpu same-quantized reference: the scheme's integer codes, double accumulation"
                                            : "cpu reference: fp32 inputs, double accumulation"},
                          {"max_abs_error", number(r.error.max_abs)},
                          {"max_rel_error", number(r.error.max_rel)},
                          {"rel_l1", number(r.error.rel_l1)},
                          {"cosine", r.error.cosine},
                          {"tolerance", r.tolerance},
                          {"passed", r.passed},
                          {"rows_checked", int64_t(rows.size())},
                          {"rows", op.shape.seq_len}};
  criteria(check);
  if (r.tol.same_quantized && mode == CheckMode::full) {
    // Not gated, reported: how far this scheme is from the fp32 reference.
    const ErrorStats f = compare(r.out, reference_attention(op, layout, data.q, data.k, data.v));
    check["fp32_reference"] = {{"max_rel_error", f.finite ? nlohmann::json(f.max_rel) : nlohmann::json("inf")},
                               {"rel_l1", f.finite ? nlohmann::json(f.rel_l1) : nlohmann::json("inf")},
                               {"cosine", f.cosine}};
  }
  if (mode == CheckMode::sample) check["sample"] = {{"rows", options.rows}, {"seed", options.seed}};
  return check;
}

namespace {

// Wall-time rates of each backend, from the committed bench results on the reference machine
// (2-core AMD EPYC VM; docs/decisions.md "Work estimates"): seconds per (pair x head_dim) of the
// backend's run on one thread, the fixed cost of one run (starting qemu or the harness), and how
// many full reference checks the run makes (rvv and rocc also check the quantized reference).
struct Rates {
  double per_pair_dim;
  double fixed;
  double checks;
  bool threaded;
};
constexpr double kReferenceSecondsPerPairDim = 2.1e-9;  // the double reference, one thread

// Dense attention's allowed pairs over batch and query heads, exactly: under causal, query i
// (aligned with key i + kv_len - seq_len) keeps keys 0 .. i + offset, clamped to [0, kv_len].
double dense_pairs(const Op& op) {
  const double rows = double(op.shape.seq_len), cols = double(op.shape.kv_len);
  double per_head = rows * cols;
  if (op.causal) {
    const double a = double(op.shape.kv_len - op.shape.seq_len) + 1;  // row i keeps clamp(i + a, 0, cols)
    const double i0 = std::clamp(1 - a, 0.0, rows);                     // first row with a key
    const double i1 = std::max(i0, std::clamp(cols - a, 0.0, rows));    // first row with every key
    per_head = (i1 - i0) * (i0 + i1 - 1) / 2 + a * (i1 - i0) + (rows - i1) * cols;
  }
  return per_head * double(op.shape.batch) * double(op.shape.heads);
}

Rates rates_of(std::string_view backend) {
  if (backend == "cpu") return {5e-10, 0, 1, true};      // fast kernel: 0.2-0.5 ns per pair x dim and thread
  if (backend == "cuda") return {2e-11, 1.0, 1, false};   // GPU kernel + context start
  if (backend == "rvv") return {5e-8, 0.5, 2, false};     // QEMU with the counting plugin, autotune trials
  if (backend == "rocc") return {5e-8, 1.0, 2, false};    // Verilator RTL + the bit-exact model
  return {1e-11, 0, 0, false};                            // imc: a cost model over the layout
}

}  // namespace

WorkEstimate Backend::estimate(const Plan& plan, const BackendRunOptions& o) const {
  const Op& op = plan.op;
  WorkEstimate w;
  w.pairs = plan.spec == Spec::dense ? dense_pairs(op) : estimate_memory(op, plan.spec, plan.params, MemoryUse{}).pairs;
  w.macs = w.pairs * 2 * double(op.shape.head_dim);
  const Rates r = rates_of(name());
  const double d = double(op.shape.head_dim);
  const int threads = r.threaded ? (o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()))) : 1;
  w.kernel_seconds = r.fixed + w.pairs * d * r.per_pair_dim / threads;
  if (!capabilities().checks_output) {
    w.check = CheckMode::none;
  } else {
    // Only cpu and cuda sample (check_against_reference); rvv and rocc check every row, their
    // simulation dwarfing the reference.
    const bool samples = name() == "cpu" || name() == "cuda";
    w.check = samples ? resolve_check_mode(o.check.mode, w.pairs) : CheckMode::full;
    const double rows = double(op.shape.seq_len);
    const double fraction = w.check == CheckMode::none ? 0
                            : w.check == CheckMode::full || rows <= 0
                                ? 1
                                : std::min(1.0, double(std::max<int64_t>(o.check.rows, 1)) / rows);
    w.check_pairs = w.pairs * fraction;
    w.check_seconds = r.checks * w.check_pairs * d * kReferenceSecondsPerPairDim;
  }
  w.basis = std::string(name()) + " rates of the reference machine (bench/results), pairs from the spec's parameters";
  return w;
}

std::string check_failure(const ErrorStats& e, double tolerance) {
  return "output differs from the reference: max relative error " + (e.finite ? format_sci(e.max_rel) : std::string("inf")) +
         " > tolerance " + format_sci(tolerance);
}

BackendResult checked_result(const nlohmann::json& result, const Tensor& out, const ErrorStats& error, double tolerance,
                             bool passed) {
  BackendResult b;
  b.json = result.dump();
  b.passed = passed;
  if (!passed) b.failures.push_back(check_failure(error, tolerance));
  b.out = out;
  return b;
}

BackendResult backend_result(const CpuRun& r) {
  BackendResult b = checked_result(r.result, r.out, r.error, r.tolerance, r.passed);
  if (!r.passed) b.failures = {check_failure(r.error, r.tol)};
  return b;
}

std::string check_failure(const ErrorStats& e, const Tolerance& t) {
  if (std::isfinite(t.max_rel) && std::isinf(t.rel_l1)) return check_failure(e, t.max_rel);
  auto num = [&](double x) { return e.finite ? format_sci(x) : std::string("inf"); };
  return "output differs from the reference: max relative error " + num(e.max_rel) + ", relative L1 " + num(e.rel_l1) +
         ", cosine " + format_fixed(e.cosine, 4) + " (asked: " + describe(t) + ")";
}

}  // namespace sattn
