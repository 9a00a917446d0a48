// Memory guard: estimate an op's peak bytes from its shape and spec parameters before anything
// is allocated, and fail fast when they exceed --max-memory (docs/robustness.md "Resources").
#include "core/resources.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <variant>


#include "sattn/error.hpp"

namespace sattn {

namespace {

constexpr int64_t kDenseBlock = 64;  // the dense layout's block edge (layout_block.cpp)
constexpr double kDefaultFraction = 0.8;

int64_t ceil_div(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }

// Saturating arithmetic: absurd shapes must give a huge estimate, not a wrapped one.
double product(std::initializer_list<double> xs) {
  double p = 1;
  for (double x : xs) p *= x;
  return p;
}

// The spec's parameters, or its defaults when `params` holds another spec's (never throws).
template <class P>
P get(const SpecParams& params) {
  const P* p = std::get_if<P>(&params);
  return p ? *p : P{};
}

struct LayoutSize {
  double entries = 0;    // per layout: CSR key indices or BSR block indices
  double pointers = 0;   // per layout: row / block-row pointers
  double pairs = 0;      // per layout: (query, key) pairs covered
};

LayoutSize layout_size(const Op& op, Spec spec, const SpecParams& params) {
  const double rows = double(op.shape.seq_len), cols = double(op.shape.kv_len);
  LayoutSize s;
  auto rowwise = [&](double per_row) {
    s.entries = rows * std::min(cols, per_row);
    s.pointers = rows + 1;
    s.pairs = s.entries;
  };
  auto blockwise = [&](int64_t block, double per_block_row, double extra_entries) {
    const double br = double(ceil_div(op.shape.seq_len, block)), bc = double(ceil_div(op.shape.kv_len, block));
    s.entries = std::min(br * bc, br * std::min(bc, per_block_row) + extra_entries);
    s.pointers = br + 1;
    s.pairs = s.entries * double(block) * double(block);
  };
  switch (spec) {
    case Spec::dense: {
      const int64_t block = std::clamp<int64_t>(std::max(op.shape.seq_len, op.shape.kv_len), 1, kDenseBlock);
      blockwise(block, cols, 0);
      s.pairs = rows * cols;
      break;
    }
    case Spec::sliding_window: {
      const auto p = get<SlidingWindowParams>(params);
      rowwise(op.causal ? double(p.window_size) + 1 : 2.0 * double(p.window_size) + 1);
      break;
    }
    case Spec::block_local_global: {
      const auto p = get<BlockLocalGlobalParams>(params);
      const double gb = double(ceil_div(p.global_tokens, p.block_size));
      blockwise(p.block_size, 2.0 * double(p.window_blocks) + 1 + gb, gb * double(ceil_div(op.shape.kv_len, p.block_size)));
      break;
    }
    case Spec::bsr: {
      const auto p = get<BsrParams>(params);
      const double bc = double(ceil_div(op.shape.kv_len, p.block_size));
      const double keep = std::max(1.0, std::ceil(p.keep_ratio * bc));
      blockwise(p.block_size, keep + double(ceil_div(p.global_tokens, p.block_size)), 0);
      break;
    }
    case Spec::nm_structured: {
      const auto p = get<NmParams>(params);
      rowwise(double(ceil_div(op.shape.kv_len, p.nm_m)) * double(p.nm_n));
      break;
    }
    case Spec::topk_per_query: rowwise(double(get<TopkParams>(params).topk_k)); break;
    case Spec::lsh: {
      const auto p = get<LshParams>(params);  // expected bucket size, per round
      rowwise(double(p.lsh_rounds) * double(ceil_div(op.shape.kv_len, p.lsh_buckets)));
      break;
    }
    case Spec::landmark: rowwise(double(get<LandmarkParams>(params).num_landmarks)); break;
    case Spec::quest: {
      const auto p = get<QuestParams>(params);
      blockwise(p.page_size, double(p.top_pages), 0);
      // A decode step has fewer queries than a page: count the rows that exist.
      s.pairs = s.entries * double(std::min<int64_t>(p.page_size, op.shape.seq_len)) * double(p.page_size);
      break;
    }
  }
  return s;
}

int64_t clamp_bytes(double b) { return b >= 9.0e18 ? int64_t(9'000'000'000'000'000'000) : int64_t(b); }

int64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  int64_t bytes = pages > 0 && page > 0 ? int64_t(pages) * int64_t(page) : 0;
  // A container's cgroup v2 limit, when lower ("max" = none).
  std::ifstream cg("/sys/fs/cgroup/memory.max");
  std::string text;
  if (cg >> text && text != "max") {
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (end && *end == '\0' && v > 0 && (bytes == 0 || v < bytes)) bytes = v;
  }
  return bytes;
}

}  // namespace

std::string format_bytes(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

MemoryEstimate estimate_memory(const Op& op, Spec spec, const SpecParams& params, const MemoryUse& use) {
  const Shape& sh = op.shape;
  MemoryEstimate e;
  const double q = product({double(sh.batch), double(sh.heads), double(sh.seq_len), double(sh.head_dim), 4});
  const double kv = product({double(sh.batch), double(sh.kv_heads), double(sh.kv_len), double(sh.head_dim), 4});
  const LayoutSize ls = layout_size(op, spec, params);
  // One layout shared by every head, or one per (batch, kv head) when it depends on the data
  // (landmark only when it refines its landmarks over K).
  const bool per_head = is_data_dependent(spec) && !(spec == Spec::landmark && get<LandmarkParams>(params).landmark_iters == 0);
  const double layouts = per_head ? double(sh.batch) * double(sh.kv_heads) : 1.0;
  double total = 0;
  auto add = [&](const char* name, double bytes) {
    e.parts.emplace_back(name, clamp_bytes(bytes));
    total += bytes;
  };
  if (use.data) add("q, k, v", q + 2 * kv);
  if (use.outputs) add("o and the reference's o", 2 * q);
  if (use.layout) {
    const bool streamed = use.layout_streamed && spec == Spec::sliding_window;
    add("layout", layouts * ((streamed ? 0.0 : ls.entries * 4) + ls.pointers * 8));
    if (spec == Spec::lsh) {
      // Every builder thread holds each round's projection (head_dim x buckets/2 doubles, or x
      // buckets when odd), its product row and its bucket lists (layout_cluster.cpp).
      const auto p = get<LshParams>(params);
      const double cols = p.lsh_buckets % 2 == 0 ? double(p.lsh_buckets) / 2 : double(p.lsh_buckets);
      const double threads = std::clamp<double>(std::thread::hardware_concurrency(), 1, std::max(layouts, 1.0));
      add("lsh hashing", threads * double(p.lsh_rounds) * (double(sh.head_dim) * cols * 8 + cols * 8 + double(p.lsh_buckets) * 24));
    }
  }
  e.bytes = clamp_bytes(total);
  e.index_entries = clamp_bytes(layouts * ls.entries);
  e.pairs = ls.pairs * double(sh.batch) * double(sh.heads);
  return e;
}

int64_t parse_memory_size(const std::string& text, const std::string& what) {
  auto bad = [&] {
    return Error(ExitCode::usage, what + " '" + text + "': expected bytes with an optional unit (K, M, G, T; KiB.. also "
                                                       "accepted; powers of 1024) or a percentage of physical memory (80%)");
  };
  const char* s = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || !std::isfinite(v) || v < 0) throw bad();
  std::string unit(end);
  unit.erase(0, unit.find_first_not_of(' '));
  if (unit == "%") {
    if (v > 100) throw bad();
    return clamp_bytes(double(physical_memory()) * v / 100);
  }
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  for (const char* suffix : {"IB", "B"})
    if (unit.size() > std::string(suffix).size() && unit.ends_with(suffix)) {
      unit.resize(unit.size() - std::string(suffix).size());
      break;
    }
  double scale = 1;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "K") scale = 1024.0;
  else if (unit == "M") scale = 1024.0 * 1024;
  else if (unit == "G") scale = 1024.0 * 1024 * 1024;
  else if (unit == "T") scale = 1024.0 * 1024 * 1024 * 1024;
  else throw bad();
  return clamp_bytes(v * scale);
}

MemoryLimit memory_limit(const std::optional<std::string>& flag) {
  if (flag) return {parse_memory_size(*flag, "--max-memory"), "--max-memory " + *flag};
  if (const char* env = std::getenv("SATTN_MAX_MEMORY"); env && *env)
    return {parse_memory_size(env, "SATTN_MAX_MEMORY"), std::string("SATTN_MAX_MEMORY=") + env};
  const int64_t phys = physical_memory();
  const int64_t bytes = clamp_bytes(double(phys) * kDefaultFraction);
  return {bytes, "the default, 80% of physical memory (" + format_bytes(double(phys)) + ")"};
}

void check_memory(const Op& op, Spec spec, const MemoryEstimate& e, const MemoryLimit& limit) {
  if (limit.bytes <= 0 || e.bytes <= limit.bytes) return;
  std::string parts;
  for (const auto& [name, bytes] : e.parts) {
    if (bytes == 0) continue;
    parts += (parts.empty() ? "" : ", ") + name + " " + format_bytes(double(bytes));
  }
  char pairs[64];
  std::snprintf(pairs, sizeof pairs, "%.3g", e.pairs);
  throw MemoryRefused(
              "op '" + op.name + "' (" + std::string(to_string(spec)) + ", seq_len " + std::to_string(op.shape.seq_len) +
                  "): estimated peak memory " + format_bytes(double(e.bytes)) + " (" + parts + "; " + pairs +
                  " query-key pairs) exceeds " + format_bytes(double(limit.bytes)) + " (" + limit.source +
                  "); nothing was allocated. Use a sparser spec or a shorter seq_len, or raise --max-memory",
              op.loc);
}

void guard_memory(const Op& op, Spec spec, const SpecParams& params, const MemoryUse& use, const MemoryLimit& limit) {
  check_memory(op, spec, estimate_memory(op, spec, params, use), limit);
}

}  // namespace sattn
