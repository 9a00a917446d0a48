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

// The op as a sattn.op/v1 JSON object (all shape fields, present attributes only).
nlohmann::json op_to_json(const Op&);
// Resolved spec parameters as a JSON object: {"spec": NAME, field: value, ...}.
nlohmann::json params_to_json(const SpecParams&);

}  // namespace sattn
