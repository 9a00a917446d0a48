// YAML ops: a mapping, a sequence of mappings, or several documents separated by `---`. The
// keys are those of the JSON form; locations come from yaml-cpp's marks (0-based there).
#include <algorithm>

#include <yaml-cpp/yaml.h>

#include "core/op_attributes.hpp"
#include "formats/nesting.hpp"
#include "formats/op_io.hpp"

namespace sattn {

namespace {

using detail::AttrValue;

// YAML 1.2 core-schema booleans.
std::optional<bool> yaml_bool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

class YamlOpReader {
 public:
  YamlOpReader(const std::string& file, std::vector<std::string>* warnings) : file_(file), warnings_(warnings) {}

  std::vector<Op> read(std::string_view text) {
    check_yaml_nesting(text, file_);  // yaml-cpp recurses once per level
    for (const Chunk& chunk : split_documents(text)) {
      line_offset_ = chunk.first_line;
      chunk_text_ = chunk.text;
      YAML::Node doc;
      try {
        doc = YAML::Load(std::string(chunk.text));
      } catch (const YAML::Exception& e) {
        throw_input_error(loc(e.mark), "invalid YAML: " + e.msg);
      }
      check_yaml_document(doc, [this](const YAML::Mark& m) { return loc(m); });
      if (doc.IsNull()) {
        // yaml-cpp gives up silently on some junk (a leading ','): only an empty document is fine.
        if (chunk.first_content_line >= 0)
          throw_input_error(SourceLoc{file_, chunk.first_content_line + 1, 1},
                            "invalid YAML: expected a mapping of op attributes");
        continue;
      }
      if (doc.IsMap()) {
        read_op(doc);
      } else if (doc.IsSequence()) {
        for (const YAML::Node& item : doc) {
          if (!item.IsMap()) throw_input_error(loc(item.Mark()), "expected a mapping of op attributes");
          read_op(item);
        }
      } else {
        throw_input_error(loc(doc.Mark()), "expected a mapping of op attributes, or a sequence of them");
      }
    }
    if (ops_.empty()) throw_input_error(SourceLoc{file_}, "no op found");
    return std::move(ops_);
  }

 private:
  // One YAML document of the input and where it starts (0-based lines).
  struct Chunk {
    std::string_view text;
    int first_line = 0;
    int first_content_line = -1;  // first line that is not blank, a comment, a directive or a marker
  };

  // yaml-cpp 0.7's LoadAll() can loop forever, allocating, on malformed input (a leading ',':
  // jbeder/yaml-cpp#1040, fixed upstream in #1319), so documents are split here and loaded one at
  // a time. A `---` or `...` line at column 0 always delimits documents in YAML.
  static std::vector<Chunk> split_documents(std::string_view text) {
    auto is_marker = [](std::string_view line, std::string_view marker) {
      return line.substr(0, 3) == marker && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    };
    std::vector<Chunk> chunks(1);
    size_t chunk_start = 0;
    int line_number = 0;
    for (size_t pos = 0; pos < text.size(); ++line_number) {
      size_t end = std::min(text.find('\n', pos), text.size());
      std::string_view line = text.substr(pos, end - pos);
      const bool starts_document = is_marker(line, "---") && chunks.back().first_content_line >= 0;
      if (starts_document) {
        chunks.back().text = text.substr(chunk_start, pos - chunk_start);
        chunks.push_back(Chunk{{}, line_number, -1});
        chunk_start = pos;
      }
      // Content may follow a `---` on its line: `--- {a: 1}`.
      std::string_view body = is_marker(line, "---") ? line.substr(3) : line;
      size_t first = body.find_first_not_of(" \t\r");
      const bool content =
          first != std::string_view::npos && body[first] != '#' && line[0] != '%' && !is_marker(line, "...");
      if (content && chunks.back().first_content_line < 0) chunks.back().first_content_line = line_number;
      pos = end + 1;
      if (is_marker(line, "...")) {  // document end: what follows is a new document
        chunks.back().text = text.substr(chunk_start, std::min(pos, text.size()) - chunk_start);
        chunks.push_back(Chunk{{}, line_number + 1, -1});
        chunk_start = std::min(pos, text.size());
      }
    }
    chunks.back().text = text.substr(chunk_start);
    return chunks;
  }

  SourceLoc loc(const YAML::Mark& m) const {
    if (m.is_null()) return SourceLoc{file_};
    return SourceLoc{file_, line_offset_ + m.line + 1, m.column + 1};
  }

  void read_op(const YAML::Node& map) {
    if (const YAML::Node schema = map["schema"]) {
      if (!schema.IsScalar()) throw_input_error(loc(schema.Mark()), "'schema' must be a string like \"sattn.op/v1\"");
      if (detail::check_schema(schema.Scalar(), loc(schema.Mark())) == detail::DocumentKind::plan) {
        const YAML::Node op = map["op"];
        if (!op) throw_input_error(loc(map.Mark()), "plan has no 'op' member");
        if (!op.IsMap()) throw_input_error(loc(op.Mark()), "the plan's 'op' must be a mapping");
        return read_op(op);
      }
    }
    detail::OpBuilder builder(loc(map.Mark()), ops_.size(), warnings_);
    for (const auto& entry : map) {
      const YAML::Node& key = entry.first;
      const YAML::Node& value = entry.second;
      if (!key.IsScalar()) throw_input_error(loc(key.Mark()), "expected an attribute name");
      const std::string& name = key.Scalar();
      if (name == "schema" || name == "producer") continue;
      // A key with nothing after the colon has no mark of its own: point at the key.
      SourceLoc value_loc = value.IsNull() ? loc(key.Mark()) : loc(value.Mark());
      builder.set(name, to_attr_value(name, value, value_loc), loc(key.Mark()), value_loc);
    }
    ops_.push_back(builder.finish());
  }

  // Quoted scalars are strings; plain ones are booleans, numbers, or else strings.
  AttrValue to_attr_value(const std::string& name, const YAML::Node& value, const SourceLoc& value_loc) {
    if (value.IsNull()) throw_input_error(value_loc, "attribute '" + name + "': missing value");
    if (!value.IsScalar()) {
      YAML::Emitter out;
      out << YAML::Flow << value;
      return AttrValue::other(out.c_str());
    }
    const std::string& s = value.Scalar();
    if (value.Tag() == "!") {
      check_closing_quote(name, value, value_loc);
      return AttrValue::string(s);
    }
    if (auto b = yaml_bool(s)) return AttrValue::boolean(*b);
    // Anything else ("12abc") stays a string; the attribute's type check then names it.
    if (auto number = detail::parse_number(s, nullptr)) return *number;
    return AttrValue::string(s);
  }

  // yaml-cpp reads a quoted scalar with no closing quote up to the end of the document
  // (`precision: "bf16` gives "bf16 "): say so instead of reporting the value it made up.
  void check_closing_quote(const std::string& name, const YAML::Node& value, const SourceLoc& value_loc) const {
    const size_t pos = size_t(std::max(0, value.Mark().pos));
    if (pos >= chunk_text_.size()) return;
    const char quote = chunk_text_[pos];
    if (quote != '"' && quote != '\'') return;
    for (size_t i = pos + 1; i < chunk_text_.size(); ++i) {
      if (quote == '"' && chunk_text_[i] == '\\') {
        ++i;  // an escape: \" does not close
      } else if (chunk_text_[i] == quote) {
        if (quote == '\'' && i + 1 < chunk_text_.size() && chunk_text_[i + 1] == '\'') {
          ++i;  // '' inside single quotes is a quote
          continue;
        }
        return;
      }
    }
    throw_input_error(value_loc, "attribute '" + name + "': unterminated string (no closing " + std::string(1, quote) +
                                     " before the end of the document)");
  }

  const std::string& file_;
  std::string_view chunk_text_;
  std::vector<std::string>* warnings_;
  std::vector<Op> ops_;
  int line_offset_ = 0;  // first line of the document being read
};

}  // namespace

std::vector<Op> parse_yaml_ops(std::string_view text, const std::string& filename, std::vector<std::string>* warnings) {
  return YamlOpReader(filename, warnings).read(text);
}

}  // namespace sattn
