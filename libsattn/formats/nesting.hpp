// Bounds on how deeply an input may nest, checked on the raw text before any parser sees it.
// nlohmann's and yaml-cpp's parsers, and the code that walks their trees (copies, dump(),
// JSON_DIAGNOSTICS' parent links), recurse once per level, so a document nested deeply enough
// (100,000 '[') overflows the stack. Real sattn documents nest at most 5 levels.
#pragma once
#include <functional>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "sattn/error.hpp"

namespace sattn {

// The deepest nesting accepted: JSON arrays/objects, YAML flow collections, MLIR attribute values.
constexpr int kMaxNesting = 64;
// YAML block collections nest by indentation: the column at which a line's content starts, after
// its indentation and its "- " / "? " indicators, bounds the block depth (each level indents at
// least one column further). Lines whose content starts further right are refused.
constexpr int kMaxYamlIndent = 256;

// JSON or JSON Lines: '[' and '{' outside strings. Throws an input error (exit 3) at the first
// bracket past kMaxNesting, with its file:line:col.
void check_json_nesting(std::string_view text, const std::string& file);
// The offset of the first bracket past kMaxNesting, or npos.
size_t json_nesting_violation(std::string_view text);
// YAML: flow collections as JSON (outside quotes and comments), block collections by
// kMaxYamlIndent. Throws an input error at the offending position.
void check_yaml_nesting(std::string_view text, const std::string& file);

// What the YAML readers (ops, profiles) refuse in a loaded document, at the node's position
// (`loc` turns a yaml-cpp mark into file:line:col): a key given twice in one mapping (yaml-cpp
// keeps one silently; the JSON readers already refuse it), and an explicit tag (!!int, !foo):
// sattn's formats have no tags, and a tag that is read but ignored would mislead.
void check_yaml_document(const YAML::Node& node, const std::function<SourceLoc(const YAML::Mark&)>& loc);

}  // namespace sattn
