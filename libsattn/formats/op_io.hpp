// Readers and writers of ops: MLIR generic form, JSON (sattn.op/v1, JSON Lines) and YAML.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/formats.hpp"
#include "sattn/op.hpp"

namespace sattn {

std::vector<Op> parse_mlir_ops(std::string_view text, const std::string& filename,
                               std::vector<std::string>* warnings = nullptr);
// A single object, an array of objects, or JSON Lines (one object per line).
std::vector<Op> parse_json_ops(std::string_view text, const std::string& filename,
                               std::vector<std::string>* warnings = nullptr);
// A mapping, a sequence of mappings, or several documents separated by `---`.
std::vector<Op> parse_yaml_ops(std::string_view text, const std::string& filename,
                               std::vector<std::string>* warnings = nullptr);

// The text of an op, plan or artifacts input (a path, or "-" for stdin). What is clearly none of
// those is refused naming the file and what was expected: a directory (runtime error, with a hint
// when it holds artifacts.json or q.npy) and a .npy array (Error(invalid_input): data goes with
// --data DIR).
std::string read_op_input(const std::string& path);

// The op as a sattn.op/v1 JSON object (all shape fields, present attributes only).
nlohmann::json op_to_json(const Op&);
// Resolved spec parameters as a JSON object: {"spec": NAME, field: value, ...}.
nlohmann::json params_to_json(const SpecParams&);

}  // namespace sattn
