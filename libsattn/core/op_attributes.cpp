// The attribute vocabulary shared by the op readers: names, aliases, types, defaults.
#include "core/op_attributes.hpp"

#include <charconv>
#include <cstdlib>
#include <cmath>
#include <iostream>
#include <limits>

#include "support/process.hpp"
#include "support/suggest.hpp"

namespace sattn::detail {

AttrValue AttrValue::integer(uint64_t magnitude, bool negative) {
  AttrValue v;
  v.kind = Kind::integer;
  v.magnitude = magnitude;
  v.negative = negative && magnitude != 0;
  return v;
}
AttrValue AttrValue::floating(double x) {
  AttrValue v;
  v.kind = Kind::floating;
  v.number = x;
  return v;
}
AttrValue AttrValue::string(std::string s) {
  AttrValue v;
  v.kind = Kind::string;
  v.text = std::move(s);
  return v;
}
AttrValue AttrValue::boolean(bool b) {
  AttrValue v;
  v.kind = Kind::boolean;
  v.flag = b;
  return v;
}
AttrValue AttrValue::other(std::string source_text) {
  AttrValue v;
  v.kind = Kind::other;
  v.text = std::move(source_text);
  return v;
}

std::string AttrValue::describe() const {
  switch (kind) {
    case Kind::integer: return "integer " + std::string(negative ? "-" : "") + std::to_string(magnitude);
    case Kind::floating: {
      // Shortest round-trip form, with ".0" so that 8.0 does not read as an integer.
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, number);
      std::string s(buf, ec == std::errc() ? end : buf);
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return "float " + s;
    }
    case Kind::string: return "string \"" + text + "\"";
    case Kind::boolean: return flag ? "boolean true" : "boolean false";
    case Kind::other: break;
  }
  return "value " + text;
}

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// digits [. digits] [e [+-] digits], at least one mantissa digit, and a '.' or an exponent.
bool is_float_literal(std::string_view s) {
  size_t i = 0, mantissa_digits = 0;
  bool has_point = false, has_exponent = false;
  while (i < s.size() && is_digit(s[i])) ++i, ++mantissa_digits;
  if (i < s.size() && s[i] == '.') {
    has_point = true;
    ++i;
    while (i < s.size() && is_digit(s[i])) ++i, ++mantissa_digits;
  }
  if (mantissa_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    has_exponent = true;
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exponent_digits = 0;
    while (i < s.size() && is_digit(s[i])) ++i, ++exponent_digits;
    if (exponent_digits == 0) return false;
  }
  return i == s.size() && (has_point || has_exponent);
}

}  // namespace

std::optional<AttrValue> parse_number(std::string_view text, std::string* why) {
  auto bad = [&](std::string message) -> std::optional<AttrValue> {
    if (why) *why = std::move(message);
    return std::nullopt;
  };
  std::string_view body = text;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  int base = 10;
  std::string_view digits = body;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    base = 16;
    digits = body.substr(2);
  }
  bool all_digits = !digits.empty();
  for (char c : digits) all_digits = all_digits && (base == 16 ? is_hex_digit(c) : is_digit(c));
  if (all_digits) {
    uint64_t magnitude = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
    if (ec == std::errc::result_out_of_range) return bad("integer '" + std::string(text) + "' out of range");
    if (ec != std::errc() || end != digits.data() + digits.size()) return bad("bad number '" + std::string(text) + "'");
    return AttrValue::integer(magnitude, negative);
  }
  if (base == 10 && is_float_literal(body)) {
    double x = 0;
    auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), x);
    // from_chars leaves x alone when out of range: strtod says which way (HUGE_VAL or ~0).
    if (ec == std::errc::result_out_of_range) x = std::strtod(std::string(body).c_str(), nullptr);
    if (ec == std::errc::result_out_of_range && std::abs(x) > 1)
      return bad("number '" + std::string(text) + "' out of range");
    // Underflow to zero or a denormal is still the number the user meant, near enough.
    if ((ec != std::errc() && ec != std::errc::result_out_of_range) || end != body.data() + body.size())
      return bad("bad number '" + std::string(text) + "'");
    return AttrValue::floating(negative ? -x : x);
  }
  return bad("bad number '" + std::string(text) + "'");
}

SourceLoc loc_at(std::string_view text, size_t offset, const std::string& file) {
  offset = std::min(offset, text.size());
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  return SourceLoc{file, line, static_cast<int>(offset - line_start) + 1};
}

void emit_warning(std::vector<std::string>* sink, const SourceLoc& loc, const std::string& message) {
  std::string line = loc.str().empty() ? message : loc.str() + ": " + message;
  if (sink)
    sink->push_back(std::move(line));
  else
    report_warning(line);
}

DocumentKind check_schema(std::string_view schema, const SourceLoc& loc) {
  // "sattn.<kind>/v<major>"
  constexpr std::string_view prefix = "sattn.";
  size_t slash = schema.find("/v");
  if (schema.substr(0, prefix.size()) != prefix || slash == std::string_view::npos || slash + 2 >= schema.size())
    throw_input_error(loc, "bad schema '" + std::string(schema) + "' (expected \"sattn.op/v1\")");
  std::string_view kind = schema.substr(prefix.size(), slash - prefix.size());
  std::string_view major_text = schema.substr(slash + 2);
  int major = 0;
  auto [end, ec] = std::from_chars(major_text.data(), major_text.data() + major_text.size(), major);
  if (ec != std::errc() || end != major_text.data() + major_text.size())
    throw_input_error(loc, "bad schema '" + std::string(schema) + "' (expected \"sattn.op/v1\")");
  if (kind != "op" && kind != "plan")
    throw_input_error(loc, "expected an op (schema \"sattn.op/v1\") or a plan (\"sattn.plan/v1\"), got '" +
                               std::string(schema) + "'");
  if (major != 1)
    throw_input_error(loc, "unsupported schema major version " + std::to_string(major) + " in '" + std::string(schema) +
                               "' (this reader supports sattn." + std::string(kind) + "/v1)");
  return kind == "op" ? DocumentKind::op : DocumentKind::plan;
}

namespace {

// The offset of the first byte that is not part of well-formed UTF-8 (no overlongs, no
// surrogates, nothing past U+10FFFF), or npos.
size_t invalid_utf8_offset(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0, cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

// One attribute's value checked against the type the attribute needs. Errors name the
// attribute and point at the value.
class TypedValue {
 public:
  TypedValue(const std::string& name, const AttrValue& value, const SourceLoc& loc)
      : name_(name), value_(value), loc_(loc) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw_input_error(loc_, "attribute '" + name_ + "': " + what);
  }

  int64_t integer() const {
    if (value_.kind != AttrValue::Kind::integer) mismatch("an integer");
    constexpr uint64_t max_positive = uint64_t(std::numeric_limits<int64_t>::max());
    if (!value_.negative && value_.magnitude > max_positive) fail(value_.describe() + " out of range");
    if (value_.negative && value_.magnitude > max_positive + 1) fail(value_.describe() + " out of range");
    // Two's complement negation in unsigned arithmetic: exact for every magnitude <= 2^63.
    return value_.negative ? static_cast<int64_t>(0 - value_.magnitude) : static_cast<int64_t>(value_.magnitude);
  }
  uint64_t unsigned_integer() const {
    if (value_.kind != AttrValue::Kind::integer) mismatch("a non-negative integer");
    if (value_.negative) fail("expected a non-negative integer, got " + value_.describe());
    return value_.magnitude;
  }
  double number() const {
    if (value_.kind == AttrValue::Kind::floating) return value_.number;
    if (value_.kind == AttrValue::Kind::integer)
      return value_.negative ? -double(value_.magnitude) : double(value_.magnitude);
    mismatch("a number");
  }
  bool boolean() const {
    if (value_.kind == AttrValue::Kind::boolean) return value_.flag;
    if (value_.kind == AttrValue::Kind::integer && value_.magnitude <= 1 && !value_.negative)
      return value_.magnitude == 1;
    mismatch("a boolean (true/false or 0/1)");
  }
  const std::string& string() const {
    if (value_.kind != AttrValue::Kind::string) mismatch("a string");
    // Strings end up in JSON (plans, envelopes, results), which holds only UTF-8.
    if (const size_t bad = invalid_utf8_offset(value_.text); bad != std::string_view::npos)
      fail("not valid UTF-8 (byte " + std::to_string(bad) + " of the string)");
    return value_.text;
  }

 private:
  [[noreturn]] void mismatch(const char* expected) const {
    fail(std::string("expected ") + expected + ", got " + value_.describe());
  }
  const std::string& name_;
  const AttrValue& value_;
  const SourceLoc& loc_;
};

// What an attribute's setter may change: the op, and gqa_group_size (which is folded into
// kv_heads once all attributes are known).
struct Target {
  Op& op;
  std::optional<int64_t>& gqa_group_size;
};

void set_spec(Target t, const TypedValue& v) {
  auto spec = parse_spec(v.string());
  if (!spec) {
    std::string valid;
    for (Spec s : kAllSpecs) valid += (valid.empty() ? "" : ", ") + std::string(to_string(s));
    v.fail("unknown spec '" + v.string() + "' (valid: " + valid + ")");
  }
  t.op.forced_spec = *spec;
}

void set_precision(Target t, const TypedValue& v) {
  auto precision = parse_precision(v.string());
  if (!precision) v.fail("unknown precision '" + v.string() + "' (valid: fp32, bf16, i8, i4)");
  t.op.precision = *precision;
}

void set_quant_scheme(Target t, const TypedValue& v) {
  std::string error;
  auto scheme = parse_quant_scheme(v.string(), &error);
  if (!scheme) v.fail("quant_scheme: " + error);
  t.op.quant_scheme = *scheme;
}

struct AttrDef {
  std::string_view name;
  void (*apply)(Target, const TypedValue&);
};

// Canonical names. Range checks live in validate(); these check types only.
const AttrDef kAttrDefs[] = {
    {"name", [](Target t, const TypedValue& v) { t.op.name = v.string(); }},
    {"batch", [](Target t, const TypedValue& v) { t.op.shape.batch = v.integer(); }},
    {"heads", [](Target t, const TypedValue& v) { t.op.shape.heads = v.integer(); }},
    {"kv_heads", [](Target t, const TypedValue& v) { t.op.shape.kv_heads = v.integer(); }},
    {"seq_len", [](Target t, const TypedValue& v) { t.op.shape.seq_len = v.integer(); }},
    {"kv_len", [](Target t, const TypedValue& v) { t.op.shape.kv_len = v.integer(); }},
    {"head_dim", [](Target t, const TypedValue& v) { t.op.shape.head_dim = v.integer(); }},
    {"causal", [](Target t, const TypedValue& v) { t.op.causal = v.boolean(); }},
    {"scale", [](Target t, const TypedValue& v) { t.op.scale = v.number(); }},
    {"softcap", [](Target t, const TypedValue& v) { t.op.softcap = v.number(); }},
    {"precision", set_precision},
    {"scale_q", [](Target t, const TypedValue& v) { t.op.scale_q = v.number(); }},
    {"scale_k", [](Target t, const TypedValue& v) { t.op.scale_k = v.number(); }},
    {"scale_v", [](Target t, const TypedValue& v) { t.op.scale_v = v.number(); }},
    {"quant_scheme", set_quant_scheme},
    {"spec", set_spec},
    {"window_size", [](Target t, const TypedValue& v) { t.op.attrs.window_size = v.integer(); }},
    {"dilation", [](Target t, const TypedValue& v) { t.op.attrs.dilation = v.integer(); }},
    {"wrap", [](Target t, const TypedValue& v) { t.op.attrs.wrap = v.boolean(); }},
    {"block_size", [](Target t, const TypedValue& v) { t.op.attrs.block_size = v.integer(); }},
    {"comp_block_size", [](Target t, const TypedValue& v) { t.op.attrs.comp_block_size = v.integer(); }},
    {"window_blocks", [](Target t, const TypedValue& v) { t.op.attrs.window_blocks = v.integer(); }},
    {"global_tokens", [](Target t, const TypedValue& v) { t.op.attrs.global_tokens = v.integer(); }},
    {"keep_ratio", [](Target t, const TypedValue& v) { t.op.attrs.keep_ratio = v.number(); }},
    {"nm_n", [](Target t, const TypedValue& v) { t.op.attrs.nm_n = v.integer(); }},
    {"nm_m", [](Target t, const TypedValue& v) { t.op.attrs.nm_m = v.integer(); }},
    {"topk_k", [](Target t, const TypedValue& v) { t.op.attrs.topk_k = v.integer(); }},
    {"lsh_buckets", [](Target t, const TypedValue& v) { t.op.attrs.lsh_buckets = v.integer(); }},
    {"lsh_rounds", [](Target t, const TypedValue& v) { t.op.attrs.lsh_rounds = v.integer(); }},
    {"seed", [](Target t, const TypedValue& v) { t.op.attrs.seed = v.unsigned_integer(); }},
    {"num_landmarks", [](Target t, const TypedValue& v) { t.op.attrs.num_landmarks = v.integer(); }},
    {"landmark_iters", [](Target t, const TypedValue& v) { t.op.attrs.landmark_iters = v.integer(); }},
    {"page_size", [](Target t, const TypedValue& v) { t.op.attrs.page_size = v.integer(); }},
    {"top_pages", [](Target t, const TypedValue& v) { t.op.attrs.top_pages = v.integer(); }},
    {"gqa_group_size", [](Target t, const TypedValue& v) { t.gqa_group_size = v.integer(); }},
    {"tile_M", [](Target t, const TypedValue& v) { t.op.attrs.tile_M = v.integer(); }},
    {"tile_S", [](Target t, const TypedValue& v) { t.op.attrs.tile_S = v.integer(); }},
    {"tile_D", [](Target t, const TypedValue& v) { t.op.attrs.tile_D = v.integer(); }},
    {"tile_rows", [](Target t, const TypedValue& v) { t.op.attrs.tile_rows = v.integer(); }},
};

// Other names users know for the same attribute.
struct Alias {
  std::string_view alias, canonical;
};
constexpr Alias kAliases[] = {{"num_heads", "heads"}, {"num_kv_heads", "kv_heads"}, {"force_spec", "spec"},
                                {"attn_logit_softcapping", "softcap"}};

const AttrDef* find_attr(std::string_view name) {
  for (const Alias& a : kAliases)
    if (a.alias == name) name = a.canonical;
  for (const AttrDef& def : kAttrDefs)
    if (def.name == name) return &def;
  return nullptr;
}

}  // namespace

OpBuilder::OpBuilder(SourceLoc op_loc, size_t index, std::vector<std::string>* warnings)
    : index_(index), warnings_(warnings) {
  op_.loc = std::move(op_loc);
}

void OpBuilder::set(const std::string& name, const AttrValue& value, const SourceLoc& key_loc,
                    const SourceLoc& value_loc) {
  const AttrDef* def = find_attr(name);
  if (!def) {
    std::vector<std::string> known;
    for (const AttrDef& d : kAttrDefs) known.emplace_back(d.name);
    for (const Alias& a : kAliases) known.emplace_back(a.alias);
    emit_warning(warnings_, key_loc, "unknown attribute '" + name + "' ignored" + did_you_mean(name, known));
    return;
  }
  std::string canonical(def->name);
  if (auto it = op_.attr_loc.find(canonical); it != op_.attr_loc.end()) {
    const std::string& first = written_as_[canonical];
    std::string where = it->second.line > 0 ? " (first given at " + std::to_string(it->second.line) + ":" +
                                                  std::to_string(it->second.col) + ")"
                                            : "";
    if (first == name) throw_input_error(key_loc, "duplicate attribute '" + name + "'" + where);
    throw_input_error(key_loc, "attribute '" + name + "' repeats '" + first + "'" + where);
  }
  def->apply(Target{op_, gqa_group_size_}, TypedValue(name, value, value_loc));
  op_.attr_loc[canonical] = key_loc;
  written_as_[canonical] = name;
}

Op OpBuilder::finish() {
  Shape& shape = op_.shape;
  if (!op_.attr_loc.count("kv_len")) shape.kv_len = shape.seq_len;
  const bool kv_heads_given = op_.attr_loc.count("kv_heads") > 0;
  if (gqa_group_size_) {
    const int64_t group = *gqa_group_size_;
    const SourceLoc& loc = op_.attr_loc.at("gqa_group_size");
    auto fail = [&](const std::string& what) { throw_input_error(loc, "attribute 'gqa_group_size': " + what); };
    if (group < 1) fail("must be >= 1 (got " + std::to_string(group) + ")");
    if (kv_heads_given) {
      // Both given: they must describe the same grouping (validate() checks divisibility).
      if (shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0 && shape.heads / shape.kv_heads != group)
        fail(std::to_string(group) + " disagrees with heads / kv_heads = " + std::to_string(shape.heads) + " / " +
             std::to_string(shape.kv_heads));
    } else {
      if (shape.heads % group != 0)
        fail("heads (" + std::to_string(shape.heads) + ") is not divisible by gqa_group_size (" +
             std::to_string(group) + ")");
      shape.kv_heads = shape.heads / group;
    }
  } else if (!kv_heads_given) {
    shape.kv_heads = shape.heads;
  }
  if (op_.name.empty()) op_.name = "op" + std::to_string(index_);
  validate(op_);
  return op_;
}

}  // namespace sattn::detail
