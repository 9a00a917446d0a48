// The op model: names, validation and per-spec parameter resolution.
#include "sattn/op.hpp"
#include "sattn/plan.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>

#include "support/process.hpp"

namespace sattn {

namespace {

struct SpecName {
  std::string_view name;
  Spec spec;
};
// Canonical names first; the rest are the earlier prototype's names, kept as aliases.
constexpr SpecName kSpecNames[] = {
    {"dense", Spec::dense},
    {"sliding_window", Spec::sliding_window},
    {"bsr", Spec::bsr},
    {"block_local_global", Spec::block_local_global},
    {"nm_structured", Spec::nm_structured},
    {"topk_per_query", Spec::topk_per_query},
    {"lsh", Spec::lsh},
    {"landmark", Spec::landmark},
    {"quest", Spec::quest},
    {"sw", Spec::sliding_window},
    {"block_topk", Spec::bsr},
    {"blg", Spec::block_local_global},
    {"sliding_global", Spec::block_local_global},
    {"nm", Spec::nm_structured},
    {"topk", Spec::topk_per_query},
};

[[noreturn]] void range_error(const Op& op, const std::string& attr, const std::string& what) {
  throw_input_error(op.loc_of(attr), "attribute '" + attr + "': " + what);
}

void require_positive(const Op& op, const std::string& attr, std::optional<int64_t> v) {
  if (v && *v < 1) range_error(op, attr, "must be >= 1 (got " + std::to_string(*v) + ")");
}
void require_non_negative(const Op& op, const std::string& attr, std::optional<int64_t> v) {
  if (v && *v < 0) range_error(op, attr, "must be >= 0 (got " + std::to_string(*v) + ")");
}
void require_positive_scale(const Op& op, const std::string& attr, std::optional<double> v) {
  if (v && !(std::isfinite(*v) && *v > 0)) range_error(op, attr, "must be a finite number > 0");
}

// Upper bounds that keep sizes sane (and int32 indices valid); far beyond any real model.
constexpr int64_t kMaxLen = int64_t(1) << 30;
constexpr int64_t kMaxHeadDim = 4096;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxTile = 65536;

// "0.5", "1e+300", "inf": a double as the user would write it (std::to_string prints 1e-300 as
// 0.000000).
std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string_view to_string(Spec s) {
  for (const auto& n : kSpecNames)
    if (n.spec == s) return n.name;
  return "?";
}

std::string_view to_string(Precision p) {
  switch (p) {
    case Precision::fp32: return "fp32";
    case Precision::bf16: return "bf16";
    case Precision::i8: return "i8";
    case Precision::i4: return "i4";
  }
  return "?";
}

std::optional<Spec> parse_spec(std::string_view s) {
  for (const auto& n : kSpecNames)
    if (n.name == s) return n.spec;
  return std::nullopt;
}

std::optional<Precision> parse_precision(std::string_view s) {
  if (s == "fp32" || s == "f32") return Precision::fp32;
  if (s == "bf16") return Precision::bf16;
  if (s == "i8" || s == "int8") return Precision::i8;
  if (s == "i4" || s == "int4") return Precision::i4;
  return std::nullopt;
}

bool is_data_dependent(Spec s) {
  switch (s) {
    case Spec::bsr:
    case Spec::nm_structured:
    case Spec::topk_per_query:
    case Spec::lsh:
    case Spec::landmark:
    case Spec::quest: return true;
    default: return false;
  }
}

bool is_block_spec(Spec s) {
  return s == Spec::dense || s == Spec::bsr || s == Spec::block_local_global || s == Spec::quest;
}

double Op::softmax_scale() const { return scale ? *scale : 1.0 / std::sqrt(double(shape.head_dim)); }

SourceLoc Op::loc_of(const std::string& attr) const {
  auto it = attr_loc.find(attr);
  return it != attr_loc.end() ? it->second : loc;
}

void validate(const Op& op) {
  const Shape& s = op.shape;
  auto bounded = [&](const char* attr, int64_t v, int64_t max) {
    if (v < 1) range_error(op, attr, "must be >= 1 (got " + std::to_string(v) + ")");
    if (v > max) range_error(op, attr, "must be <= " + std::to_string(max) + " (got " + std::to_string(v) + ")");
  };
  bounded("batch", s.batch, kMaxHeads);
  bounded("heads", s.heads, kMaxHeads);
  bounded("kv_heads", s.kv_heads, kMaxHeads);
  bounded("seq_len", s.seq_len, kMaxLen);
  bounded("kv_len", s.kv_len, kMaxLen);
  bounded("head_dim", s.head_dim, kMaxHeadDim);
  if (s.heads % s.kv_heads != 0)
    range_error(op, op.attr_loc.count("kv_heads") ? "kv_heads" : "gqa_group_size",
                "heads (" + std::to_string(s.heads) + ") must be divisible by kv_heads (" + std::to_string(s.kv_heads) + ")");
  if (op.scale && !(std::isfinite(*op.scale) && *op.scale > 0)) range_error(op, "scale", "must be a finite number > 0");
  if (op.softcap && !(std::isfinite(*op.softcap) && *op.softcap > 0))
    range_error(op, "softcap", "must be a finite number > 0 (the cap c of c * tanh(s / c))");
  require_positive_scale(op, "scale_q", op.scale_q);
  require_positive_scale(op, "scale_k", op.scale_k);
  require_positive_scale(op, "scale_v", op.scale_v);
  if (op.quant_scheme && op.quant_scheme->rotate && (s.head_dim & (s.head_dim - 1)) != 0)
    range_error(op, "quant_scheme",
                "rotate=1 needs a power-of-two head_dim (got " + std::to_string(s.head_dim) + ")");

  const PatternAttrs& a = op.attrs;
  require_positive(op, "window_size", a.window_size);
  require_positive(op, "dilation", a.dilation);
  require_positive(op, "block_size", a.block_size);
  require_non_negative(op, "comp_block_size", a.comp_block_size);
  require_non_negative(op, "window_blocks", a.window_blocks);
  require_non_negative(op, "global_tokens", a.global_tokens);
  if (a.keep_ratio && !(*a.keep_ratio > 0 && *a.keep_ratio <= 1))
    range_error(op, "keep_ratio", "must be in (0, 1] (got " + number_text(*a.keep_ratio) + ")");
  require_positive(op, "nm_n", a.nm_n);
  require_positive(op, "nm_m", a.nm_m);
  if (a.nm_n && a.nm_m && *a.nm_n > *a.nm_m)
    range_error(op, "nm_n", "nm_n (" + std::to_string(*a.nm_n) + ") must be <= nm_m (" + std::to_string(*a.nm_m) + ")");
  require_positive(op, "topk_k", a.topk_k);
  require_positive(op, "lsh_buckets", a.lsh_buckets);
  require_positive(op, "lsh_rounds", a.lsh_rounds);
  require_positive(op, "num_landmarks", a.num_landmarks);
  require_non_negative(op, "landmark_iters", a.landmark_iters);
  require_positive(op, "page_size", a.page_size);
  require_positive(op, "top_pages", a.top_pages);
  require_positive(op, "tile_M", a.tile_M);
  require_positive(op, "tile_S", a.tile_S);
  require_positive(op, "tile_D", a.tile_D);
  require_positive(op, "tile_rows", a.tile_rows);
  if (a.lsh_buckets && *a.lsh_buckets < 2) range_error(op, "lsh_buckets", "must be >= 2");
  // Upper bounds from the shape (sattn-select(1) ATTRIBUTES), so that no product the layouts
  // form (position + window * dilation, block +- window_blocks, group * nm_m, ...) can overflow
  // int64: every one of these is <= kv_len <= 2^30 (tiles: <= 65536).
  auto at_most_kv = [&](const char* attr, const std::optional<int64_t>& v, const char* what) {
    if (v && *v > s.kv_len)
      range_error(op, attr, "must be <= kv_len (" + std::to_string(s.kv_len) + ")" + what + " (got " + std::to_string(*v) + ")");
  };
  at_most_kv("dilation", a.dilation, ": a larger step leaves only the aligned key");
  at_most_kv("window_blocks", a.window_blocks, "");
  at_most_kv("nm_m", a.nm_m, ": one group already covers every key");
  if (a.lsh_buckets && *a.lsh_buckets > std::max<int64_t>(2, s.kv_len))
    range_error(op, "lsh_buckets", "must be <= kv_len (" + std::to_string(s.kv_len) + "): more buckets than keys leaves them empty (got " +
                                       std::to_string(*a.lsh_buckets) + ")");
  for (const auto& [attr, v] : {std::pair{"tile_M", a.tile_M}, {"tile_S", a.tile_S}, {"tile_D", a.tile_D}})
    if (v && *v > kMaxTile) range_error(op, attr, "must be <= " + std::to_string(kMaxTile) + " (got " + std::to_string(*v) + ")");
  if (a.tile_rows && *a.tile_rows > 4096) range_error(op, "tile_rows", "must be <= 4096 (got " + std::to_string(*a.tile_rows) + ")");
  if (a.lsh_rounds && *a.lsh_rounds > 64) range_error(op, "lsh_rounds", "must be <= 64");
  if (a.landmark_iters && *a.landmark_iters > 100) range_error(op, "landmark_iters", "must be <= 100");
}

SpecParams resolve_params(const Op& op, Spec spec) {
  const PatternAttrs& a = op.attrs;
  const Shape& s = op.shape;
  // Explicit values that exceed the sequence are errors; defaults are clamped to it.
  auto at_most = [&](const char* attr, int64_t v, bool explicit_value, int64_t max, const char* what) -> int64_t {
    if (v <= max) return v;
    if (explicit_value)
      range_error(op, attr, std::to_string(v) + " exceeds " + what + " (" + std::to_string(max) + ")");
    return max;
  };
  switch (spec) {
    case Spec::dense: return DenseParams{};
    case Spec::sliding_window: {
      SlidingWindowParams p;
      p.dilation = a.dilation.value_or(p.dilation);
      p.wrap = a.wrap.value_or(p.wrap);
      p.window_size = at_most("window_size", a.window_size.value_or(p.window_size), a.window_size.has_value(),
                              s.kv_len, "kv_len");
      return p;
    }
    case Spec::bsr: {
      BsrParams p;
      p.block_size = at_most("block_size", a.block_size.value_or(p.block_size), a.block_size.has_value(),
                             std::max(s.seq_len, s.kv_len), "the sequence length");
      p.keep_ratio = a.keep_ratio.value_or(p.keep_ratio);
      p.comp_block_size = a.comp_block_size.value_or(0);
      if (p.comp_block_size > p.block_size)
        range_error(op, "comp_block_size", "must be <= block_size (" + std::to_string(p.block_size) + ")");
      p.global_tokens = at_most("global_tokens", a.global_tokens.value_or(0), true, s.kv_len, "kv_len");
      return p;
    }
    case Spec::block_local_global: {
      BlockLocalGlobalParams p;
      p.block_size = at_most("block_size", a.block_size.value_or(p.block_size), a.block_size.has_value(),
                             std::max(s.seq_len, s.kv_len), "the sequence length");
      p.window_blocks = a.window_blocks.value_or(p.window_blocks);
      if (a.window_blocks) at_most("window_blocks", p.window_blocks, true, (s.kv_len + p.block_size - 1) / p.block_size,
                                   "the number of block columns");
      p.global_tokens = at_most("global_tokens", a.global_tokens.value_or(0), true, s.kv_len, "kv_len");
      return p;
    }
    case Spec::nm_structured: {
      NmParams p;
      p.nm_n = a.nm_n.value_or(p.nm_n);
      p.nm_m = a.nm_m.value_or(std::max(p.nm_m, p.nm_n));
      if (p.nm_n > p.nm_m)
        range_error(op, "nm_n", "nm_n (" + std::to_string(p.nm_n) + ") must be <= nm_m (" + std::to_string(p.nm_m) + ")");
      return p;
    }
    case Spec::topk_per_query: {
      TopkParams p;
      p.topk_k = at_most("topk_k", a.topk_k.value_or(p.topk_k), a.topk_k.has_value(), s.kv_len, "kv_len");
      return p;
    }
    case Spec::lsh: {
      LshParams p;
      p.lsh_buckets = a.lsh_buckets.value_or(p.lsh_buckets);
      p.lsh_rounds = a.lsh_rounds.value_or(p.lsh_rounds);
      p.seed = a.seed.value_or(p.seed);
      return p;
    }
    case Spec::landmark: {
      LandmarkParams p;
      p.num_landmarks = at_most("num_landmarks", a.num_landmarks.value_or(p.num_landmarks),
                                a.num_landmarks.has_value(), s.kv_len, "kv_len");
      p.landmark_iters = a.landmark_iters.value_or(p.landmark_iters);
      return p;
    }
    case Spec::quest: {
      QuestParams p;
      p.page_size = at_most("page_size", a.page_size.value_or(p.page_size), a.page_size.has_value(),
                            std::max(s.seq_len, s.kv_len), "the sequence length");
      const int64_t pages = (s.kv_len + p.page_size - 1) / p.page_size;
      p.top_pages = at_most("top_pages", a.top_pages.value_or(p.top_pages), a.top_pages.has_value(), pages,
                            "the number of pages (ceil(kv_len / page_size))");
      return p;
    }
  }
  return DenseParams{};
}

std::string_view to_string(Target b) {
  switch (b) {
    case Target::cpu: return "cpu";
    case Target::rvv: return "rvv";
    case Target::rocc: return "rocc";
    case Target::imc: return "imc";
  }
  return "?";
}

std::optional<std::string_view> deprecated_backend_alias(std::string_view name) {
  if (name == "sim" || name == "accel") return std::string_view("rocc");
  return std::nullopt;
}

std::string canonical_backend_name(std::string_view name, std::string_view where) {
  const auto canonical = deprecated_backend_alias(name);
  if (!canonical) return std::string(name);
  // One warning per alias and process: a name read by several backends or profile layers is
  // still one deprecation to fix.
  static std::atomic<bool> warned_sim{false}, warned_accel{false};
  std::atomic<bool>& warned = name == "sim" ? warned_sim : warned_accel;
  if (!warned.exchange(true))
    report_warning((where.empty() ? std::string() : std::string(where) + ": ") + "backend name '" + std::string(name) +
                   "' is deprecated and will be removed in the next release; use '" + std::string(*canonical) + "'");
  return std::string(*canonical);
}

std::optional<Target> parse_backend(std::string_view s) {
  const std::string name = canonical_backend_name(s);
  for (Target b : {Target::cpu, Target::rvv, Target::rocc, Target::imc})
    if (to_string(b) == name) return b;
  return std::nullopt;
}

}  // namespace sattn
