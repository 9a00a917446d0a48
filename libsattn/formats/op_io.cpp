// Op input: picks the reader (MLIR, JSON, YAML) from the file name or the content.
#include "formats/op_io.hpp"

#include <filesystem>

#include "sattn/error.hpp"
#include "support/io.hpp"

namespace sattn {

namespace {

constexpr const char* kExpected = "expected an op file (MLIR, JSON or YAML), a plan or an artifacts.json";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The first thing that is neither whitespace nor a comment decides: MLIR starts with `module`,
// a quoted op name, a custom-form `sattn.` op (or a `//` comment), JSON with `{` or `[`;
// anything else is YAML.
OpFormat sniff_format(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    char c = text[pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++pos;
      continue;
    }
    std::string_view rest = text.substr(pos);
    if (rest.starts_with("//") || rest.starts_with("\"") || rest.starts_with("module") ||
        rest.starts_with("builtin.module") || rest.starts_with("sattn."))
      return OpFormat::mlir;
    if (c == '{' || c == '[') return OpFormat::json;
    return OpFormat::yaml;
  }
  return OpFormat::mlir;  // empty input: the MLIR reader reports "no ... op found"
}

OpFormat format_from_extension(std::string_view path) {
  if (ends_with(path, ".mlir")) return OpFormat::mlir;
  if (ends_with(path, ".json") || ends_with(path, ".jsonl")) return OpFormat::json;
  if (ends_with(path, ".yaml") || ends_with(path, ".yml")) return OpFormat::yaml;
  return OpFormat::automatic;
}

}  // namespace

std::vector<Op> parse_ops(std::string_view text, const std::string& filename, OpFormat format,
                          std::vector<std::string>* warnings) {
  if (format == OpFormat::automatic) format = sniff_format(text);
  switch (format) {
    case OpFormat::json: return parse_json_ops(text, filename, warnings);
    case OpFormat::yaml: return parse_yaml_ops(text, filename, warnings);
    case OpFormat::mlir:
    case OpFormat::automatic: break;
  }
  return parse_mlir_ops(text, filename, warnings);
}

std::string read_op_input(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path != "-" && fs::is_directory(path, ec)) {
    std::string hint;
    if (fs::exists(fs::path(path) / "artifacts.json", ec))
      hint = " (it holds artifacts: give " + (fs::path(path) / "artifacts.json").string() + ")";
    else if (fs::exists(fs::path(path) / "q.npy", ec))
      hint = " (it holds q.npy: give a data directory with --data " + path + ")";
    throw Error(ExitCode::runtime, std::string("cannot read: is a directory; ") + kExpected + hint, {path});
  }
  std::string text = read_text(path);
  if (text.rfind("\x93NUMPY", 0) == 0)
    throw_input_error({path == "-" ? "<stdin>" : path},
                      std::string("is a .npy array, not an op; ") + kExpected +
                          " (Q/K/V arrays go in a directory given with --data DIR: DIR/q.npy, k.npy, v.npy)");
  return text;
}

std::vector<Op> read_ops(const std::string& path, OpFormat format, std::vector<std::string>* warnings) {
  std::string text = read_op_input(path);
  if (format == OpFormat::automatic) format = format_from_extension(path);
  return parse_ops(text, path == "-" ? "<stdin>" : path, format, warnings);
}

}  // namespace sattn
