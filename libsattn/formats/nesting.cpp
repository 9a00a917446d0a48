#include "formats/nesting.hpp"

#include <algorithm>
#include <vector>

#include "core/op_attributes.hpp"
#include "sattn/error.hpp"

namespace sattn {

namespace {

[[noreturn]] void too_deep(std::string_view text, size_t offset, const std::string& file) {
  throw_input_error(detail::loc_at(text, offset, file),
                    "nested deeper than " + std::to_string(kMaxNesting) + " levels (no sattn document needs more)");
}

}  // namespace

void check_json_nesting(std::string_view text, const std::string& file) {
  if (const size_t at = json_nesting_violation(text); at != std::string_view::npos) too_deep(text, at, file);
}

size_t json_nesting_violation(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

void check_yaml_nesting(std::string_view text, const std::string& file) {
  int flow = 0;
  size_t line_start = 0;
  while (line_start < text.size()) {
    size_t end = text.find('\n', line_start);
    if (end == std::string_view::npos) end = text.size();
    // Block structure: indentation, then chained "- " / "? " indicators.
    size_t i = line_start;
    while (i < end) {
      const char c = text[i];
      if (c == ' ' || c == '\t') {
        ++i;
      } else if ((c == '-' || c == '?') && (i + 1 == end || text[i + 1] == ' ' || text[i + 1] == '\t')) {
        ++i;
      } else {
        break;
      }
    }
    if (i < end && text[i] != '#' && i - line_start > size_t(kMaxYamlIndent))
      throw_input_error(detail::loc_at(text, i, file),
                        "indented " + std::to_string(i - line_start) + " columns: YAML nested deeper than " +
                            std::to_string(kMaxYamlIndent) + " columns is refused");
    // Flow collections, outside quoted scalars and comments (a flow quote ends on its line here;
    // a multi-line quoted scalar only makes this count brackets it should not, never fewer).
    char quote = 0;
    for (; i < end; ++i) {
      const char c = text[i];
      if (quote) {
        if (quote == '"' && c == '\\')
          ++i;
        else if (c == quote)
          quote = 0;
        continue;
      }
      if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#' && (i == line_start || text[i - 1] == ' ' || text[i - 1] == '\t')) {
        break;
      } else if (c == '[' || c == '{') {
        if (++flow > kMaxNesting) too_deep(text, i, file);
      } else if ((c == ']' || c == '}') && flow > 0) {
        --flow;
      }
    }
    line_start = end + 1;
  }
}

void check_yaml_document(const YAML::Node& node, const std::function<SourceLoc(const YAML::Mark&)>& loc) {
  const std::string& tag = node.Tag();
  if (!tag.empty() && tag != "?" && tag != "!")
    throw_input_error(loc(node.Mark()), "YAML tags are not part of sattn's formats (got tag '" + tag + "')");
  if (node.IsMap()) {
    std::vector<std::string> keys;
    for (const auto& entry : node) {
      check_yaml_document(entry.first, loc);
      if (entry.first.IsScalar()) {
        const std::string& key = entry.first.Scalar();
        if (std::find(keys.begin(), keys.end(), key) != keys.end())
          throw_input_error(loc(entry.first.Mark()), "duplicate key '" + key + "'");
        keys.push_back(key);
      }
      check_yaml_document(entry.second, loc);
    }
  } else if (node.IsSequence()) {
    for (const auto& item : node) check_yaml_document(item, loc);
  }
}

}  // namespace sattn
