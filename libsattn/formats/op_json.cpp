// JSON ops (sattn.op/v1): a single object, an array of objects, or JSON Lines; and the op and
// spec parameters written back as JSON.
//
// nlohmann::json reads the values but keeps no positions, so a small structural scanner walks
// the (already validated) text to find where each key and value is written.
#include <string>

#include "core/op_attributes.hpp"
#include "formats/nesting.hpp"
#include "formats/op_io.hpp"

namespace sattn {

namespace {

using detail::AttrValue;
using nlohmann::json;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skip_space(std::string_view text, size_t pos) {
  while (pos < text.size() && is_space(text[pos])) ++pos;
  return pos;
}

void append_utf8(std::string& out, unsigned code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

// The string starting at text[pos] == '"': its decoded contents (keys only need the common
// escapes; surrogate pairs are left undecoded) and the offset just past its closing quote.
std::string scan_string(std::string_view text, size_t& pos) {
  std::string out;
  ++pos;
  while (pos < text.size() && text[pos] != '"') {
    if (text[pos] != '\\' || pos + 1 >= text.size()) {
      out += text[pos++];
      continue;
    }
    char e = text[pos + 1];
    pos += 2;
    switch (e) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'u':
        if (pos + 4 <= text.size()) {
          append_utf8(out, static_cast<unsigned>(std::stoul(std::string(text.substr(pos, 4)), nullptr, 16)));
          pos += 4;
        }
        break;
      default: out += e;  // \" \\ \/
    }
  }
  ++pos;
  return out;
}

// Offset just past the JSON value starting at `pos`.
size_t skip_value(std::string_view text, size_t pos) {
  int depth = 0;
  do {
    char c = text[pos];
    if (c == '"') {
      scan_string(text, pos);
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    ++pos;
    // A scalar ends at the first delimiter.
    if (depth == 0 && c != '}' && c != ']') {
      while (pos < text.size() && !is_space(text[pos]) && text[pos] != ',' && text[pos] != '}' && text[pos] != ']')
        ++pos;
    }
  } while (depth > 0 && pos < text.size());
  return pos;
}

struct Member {
  std::string key;
  size_t key_offset, value_offset;
};

// The members of the object at text[pos] == '{', in the order written.
std::vector<Member> scan_members(std::string_view text, size_t pos) {
  std::vector<Member> members;
  pos = skip_space(text, pos + 1);
  while (pos < text.size() && text[pos] == '"') {
    Member m;
    m.key_offset = pos;
    m.key = scan_string(text, pos);
    pos = skip_space(text, pos) + 1;  // ':'
    m.value_offset = skip_space(text, pos);
    pos = skip_space(text, skip_value(text, m.value_offset));
    members.push_back(std::move(m));
    if (pos < text.size() && text[pos] == ',') pos = skip_space(text, pos + 1);
  }
  return members;
}

// Offsets of the elements of the array at text[pos] == '['.
std::vector<size_t> scan_elements(std::string_view text, size_t pos) {
  std::vector<size_t> elements;
  pos = skip_space(text, pos + 1);
  while (pos < text.size() && text[pos] != ']') {
    elements.push_back(pos);
    pos = skip_space(text, skip_value(text, pos));
    if (pos < text.size() && text[pos] == ',') pos = skip_space(text, pos + 1);
  }
  return elements;
}

AttrValue to_attr_value(const json& v) {
  switch (v.type()) {
    case json::value_t::number_integer: {
      int64_t i = v.get<int64_t>();
      // Magnitude of a negative int64 without overflowing at INT64_MIN.
      return AttrValue::integer(i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i), i < 0);
    }
    case json::value_t::number_unsigned: return AttrValue::integer(v.get<uint64_t>(), false);
    case json::value_t::number_float: return AttrValue::floating(v.get<double>());
    case json::value_t::string: return AttrValue::string(v.get<std::string>());
    case json::value_t::boolean: return AttrValue::boolean(v.get<bool>());
    default: return AttrValue::other(v.dump());
  }
}

class JsonOpReader {
 public:
  JsonOpReader(std::string_view text, const std::string& file, std::vector<std::string>* warnings)
      : text_(text), file_(file), warnings_(warnings) {}

  std::vector<Op> read() {
    size_t start = skip_space(text_, 0);
    if (start == text_.size()) throw_input_error(SourceLoc{file_}, "empty input: no op found");
    check_json_nesting(text_, file_);  // before nlohmann (and the scanner below) recurse into it
    if (text_[start] == '[') {
      json doc = parse_document(0, text_.size());
      for (size_t offset : scan_elements(text_, start)) {
        size_t i = ops_.size();
        read_op(doc.at(i), offset);
      }
    } else if (is_json_lines()) {
      for (size_t line = 0; line < text_.size();) {
        size_t end = std::min(text_.find('\n', line), text_.size());
        size_t first = skip_space(text_, line);
        if (first < end) read_op(parse_document(line, end), first);
        line = end + 1;
      }
    } else {
      read_op(parse_document(0, text_.size()), start);
    }
    if (ops_.empty()) throw_input_error(loc(start), "no op found");
    return std::move(ops_);
  }

 private:
  SourceLoc loc(size_t offset) const { return detail::loc_at(text_, offset, file_); }

  // Several values, one per line, where the whole text is not a single value.
  bool is_json_lines() const {
    if (json::accept(text_)) return false;
    size_t first = skip_space(text_, 0);
    size_t end = std::min(text_.find('\n', first), text_.size());
    return json::accept(text_.substr(first, end - first));
  }

  json parse_document(size_t begin, size_t end) {
    try {
      return json::parse(text_.substr(begin, end - begin));
    } catch (const json::parse_error& e) {
      // e.byte is 1-based: the character at which the parser gave up.
      size_t offset = begin + (e.byte > 0 ? e.byte - 1 : 0);
      std::string what = e.what();
      // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 6: ".
      if (size_t colon = what.find(": ", what.find("parse error")); colon != std::string::npos)
        what = what.substr(colon + 2);
      throw_input_error(loc(std::min(offset, end)), "invalid JSON: " + what);
    } catch (const json::exception& e) {
      // A syntactically valid value nlohmann cannot hold, e.g. a number overflow (out_of_range.406).
      throw_input_error(loc(begin), std::string("invalid JSON: ") + e.what());
    }
  }

  void read_op(const json& value, size_t offset) {
    if (!value.is_object()) throw_input_error(loc(offset), "expected a JSON object (an op), found " + value.dump());
    std::vector<Member> members = scan_members(text_, offset);
    if (auto schema = value.find("schema"); schema != value.end()) {
      SourceLoc schema_loc = loc(find_member(members, "schema", offset).value_offset);
      if (!schema->is_string()) throw_input_error(schema_loc, "'schema' must be a string like \"sattn.op/v1\"");
      if (detail::check_schema(schema->get<std::string>(), schema_loc) == detail::DocumentKind::plan) {
        const Member& op = find_member(members, "op", offset);
        if (!value.contains("op")) throw_input_error(loc(offset), "plan has no 'op' member");
        const json& inner = value.at("op");
        if (!inner.is_object()) throw_input_error(loc(op.value_offset), "the plan's 'op' must be an object");
        if (inner.contains("schema")) return read_op(inner, op.value_offset);
        return read_attributes(inner, op.value_offset, scan_members(text_, op.value_offset));
      }
    } else if (value.contains("op") && value.at("op").is_object()) {
      // A plan that lost its schema would otherwise run as a bare op with every default.
      throw_input_error(loc(offset), "an 'op' member but no 'schema': a plan needs \"schema\": \"sattn.plan/v1\"");
    }
    read_attributes(value, offset, members);
  }

  const Member& find_member(const std::vector<Member>& members, std::string_view key, size_t object_offset) {
    for (const Member& m : members)
      if (m.key == key) return m;
    // Only reachable if the scanner and nlohmann disagree on a key's spelling.
    fallback_ = Member{std::string(key), object_offset, object_offset};
    return fallback_;
  }

  void read_attributes(const json& object, size_t offset, const std::vector<Member>& members) {
    detail::OpBuilder builder(loc(offset), ops_.size(), warnings_);
    std::vector<std::string_view> seen;
    for (const Member& m : members) {
      if (m.key == "schema" || m.key == "producer") continue;
      // nlohmann keeps the last of repeated keys; report the repetition instead.
      for (std::string_view s : seen)
        if (s == m.key) throw_input_error(loc(m.key_offset), "duplicate attribute '" + m.key + "'");
      seen.push_back(m.key);
      auto value = object.find(m.key);
      if (value == object.end()) continue;
      builder.set(m.key, to_attr_value(*value), loc(m.key_offset), loc(m.value_offset));
    }
    ops_.push_back(builder.finish());
  }

  std::string_view text_;
  const std::string& file_;
  std::vector<std::string>* warnings_;
  std::vector<Op> ops_;
  Member fallback_;
};

template <class T>
void put_if(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

}  // namespace

std::vector<Op> parse_json_ops(std::string_view text, const std::string& filename, std::vector<std::string>* warnings) {
  return JsonOpReader(text, filename, warnings).read();
}

json op_to_json(const Op& op) {
  json j;
  j["schema"] = "sattn.op/v1";
  j["name"] = op.name;
  j["batch"] = op.shape.batch;
  j["heads"] = op.shape.heads;
  j["kv_heads"] = op.shape.kv_heads;
  j["seq_len"] = op.shape.seq_len;
  j["kv_len"] = op.shape.kv_len;
  j["head_dim"] = op.shape.head_dim;
  j["causal"] = op.causal;
  j["precision"] = std::string(to_string(op.precision));
  put_if(j, "scale", op.scale);
  put_if(j, "softcap", op.softcap);
  put_if(j, "scale_q", op.scale_q);
  put_if(j, "scale_k", op.scale_k);
  put_if(j, "scale_v", op.scale_v);
  if (op.quant_scheme) j["quant_scheme"] = to_string(*op.quant_scheme);
  if (op.forced_spec) j["spec"] = std::string(to_string(*op.forced_spec));
  const PatternAttrs& a = op.attrs;
  put_if(j, "window_size", a.window_size);
  put_if(j, "dilation", a.dilation);
  put_if(j, "wrap", a.wrap);
  put_if(j, "block_size", a.block_size);
  put_if(j, "comp_block_size", a.comp_block_size);
  put_if(j, "window_blocks", a.window_blocks);
  put_if(j, "global_tokens", a.global_tokens);
  put_if(j, "keep_ratio", a.keep_ratio);
  put_if(j, "nm_n", a.nm_n);
  put_if(j, "nm_m", a.nm_m);
  put_if(j, "topk_k", a.topk_k);
  put_if(j, "lsh_buckets", a.lsh_buckets);
  put_if(j, "lsh_rounds", a.lsh_rounds);
  put_if(j, "seed", a.seed);
  put_if(j, "num_landmarks", a.num_landmarks);
  put_if(j, "landmark_iters", a.landmark_iters);
  put_if(j, "page_size", a.page_size);
  put_if(j, "top_pages", a.top_pages);
  put_if(j, "tile_M", a.tile_M);
  put_if(j, "tile_S", a.tile_S);
  put_if(j, "tile_D", a.tile_D);
  put_if(j, "tile_rows", a.tile_rows);
  return j;
}

namespace {

// One overload per parameter struct; std::visit picks it.
struct ParamsToJson {
  json operator()(const DenseParams&) const { return {{"spec", "dense"}}; }
  json operator()(const SlidingWindowParams& p) const {
    return {{"spec", "sliding_window"}, {"window_size", p.window_size}, {"dilation", p.dilation}, {"wrap", p.wrap}};
  }
  json operator()(const BsrParams& p) const {
    return {{"spec", "bsr"},
            {"block_size", p.block_size},
            {"keep_ratio", p.keep_ratio},
            {"comp_block_size", p.comp_block_size},
            {"global_tokens", p.global_tokens}};
  }
  json operator()(const BlockLocalGlobalParams& p) const {
    return {{"spec", "block_local_global"},
            {"block_size", p.block_size},
            {"window_blocks", p.window_blocks},
            {"global_tokens", p.global_tokens}};
  }
  json operator()(const NmParams& p) const { return {{"spec", "nm_structured"}, {"nm_n", p.nm_n}, {"nm_m", p.nm_m}}; }
  json operator()(const TopkParams& p) const { return {{"spec", "topk_per_query"}, {"topk_k", p.topk_k}}; }
  json operator()(const LshParams& p) const {
    return {{"spec", "lsh"}, {"lsh_buckets", p.lsh_buckets}, {"lsh_rounds", p.lsh_rounds}, {"seed", p.seed}};
  }
  json operator()(const LandmarkParams& p) const {
    return {{"spec", "landmark"}, {"num_landmarks", p.num_landmarks}, {"landmark_iters", p.landmark_iters}};
  }
  json operator()(const QuestParams& p) const {
    return {{"spec", "quest"}, {"page_size", p.page_size}, {"top_pages", p.top_pages}};
  }
};

}  // namespace

json params_to_json(const SpecParams& params) {
  return std::visit(ParamsToJson{}, params);
}

}  // namespace sattn
