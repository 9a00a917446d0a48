// Readers and writers of ops: MLIR generic form, JSON (sattn.op/v1, JSON Lines) and YAML.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/op.hpp"

namespace sattn {

enum class OpFormat { automatic, mlir, json, yaml };

// Parse every op in `text`. `filename` is used in error locations only. With `automatic`, the
// format is guessed from the content: a `"sattn.sparse_attention"` op (or any op of the sattn
// dialect, generic or custom form: sattn-opt's lowered sattn.rvv_call / sattn.rocc_call are
// read as ops with their spec forced) or `module` -> MLIR,
// a leading `{` or `[` -> JSON, otherwise YAML. Each op is validated. Errors throw
// Error(invalid_input) with file:line:col and, where it applies, the attribute's name.
//
// Attribute names and aliases (all optional): name, batch, heads (num_heads), kv_heads
// (num_kv_heads; default heads), seq_len, kv_len (default seq_len), head_dim, causal, scale,
// precision, scale_q/k/v, spec (force_spec), the pattern attributes of PatternAttrs, and
// gqa_group_size (the prototype's name: kv_heads = heads / gqa_group_size). An op without a name
// is named "op<N>", N its 0-based index in the input. Op::loc and Op::attr_loc (keyed by the
// canonical name) are filled. JSON and YAML ops may carry "schema" ("sattn.op/v1"; a
// "sattn.plan/v1" document's "op" member is read instead) and "producer".
//
// Warnings (an unknown attribute, which is ignored) are appended to `*warnings` as
// "FILE:LINE:COL: message" when `warnings` is given (the CLI prints them with its prefix);
// otherwise they are printed to stderr as "warning: FILE:LINE:COL: message".
std::vector<Op> parse_ops(std::string_view text, const std::string& filename, OpFormat = OpFormat::automatic,
                          std::vector<std::string>* warnings = nullptr);
// Reads a file ("-" = stdin, named "<stdin>" in messages) and parses it. With `automatic`, the
// extension decides (.mlir, .json/.jsonl, .yaml/.yml), else the content as in parse_ops().
std::vector<Op> read_ops(const std::string& path, OpFormat = OpFormat::automatic,
                         std::vector<std::string>* warnings = nullptr);

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
