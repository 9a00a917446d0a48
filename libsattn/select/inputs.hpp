// What every backend tool reads: ops, plans or artifacts, turned into plans (bare ops are
// selected in-process).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/resources.hpp"
#include "sattn/layout.hpp"
#include "sattn/select.hpp"
#include "sattn/backend.hpp"

namespace sattn {

// Reads one input file the way every backend tool does: artifacts (an artifacts.json, or the
// envelope lines sattn-emit prints), plans (sattn.plan/v1 JSON Lines) or bare ops (MLIR, JSON,
// YAML: selected in-process with `selection`). Errors name the file, line and column.
std::vector<BackendInput> read_backend_inputs(const std::string& input, const SelectOptions& selection);
// The memory guard over every input, before any data or layout is made (sattn/resources.hpp):
// what an input already carries (artifacts' layout and data) is not counted again.
void guard_memory(const std::vector<BackendInput>& items, const MemoryUse& use, const MemoryLimit& limit);
// Artifacts given with --data (docs/decisions.md, "Artifacts read with other data"): their layout
// is used as it is, never recomputed. When it was chosen from Q/K (bsr, topk, nm, lsh, landmark
// with refinement...) and the Q or K given differ from the ones the artifacts carry (the data it
// was chosen from), this returns the one-line warning to print; else "".
std::string artifacts_data_mismatch(const BackendInput& item, const QKV& given, const std::string& data_dir);

}  // namespace sattn
