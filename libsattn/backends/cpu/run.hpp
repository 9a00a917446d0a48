// One op, end to end on the host CPU: data, layout, fast kernel, reference check, result JSON.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "backends/backend.hpp"
#include "formats/data.hpp"

namespace sattn {

// Runs a plan on the fast CPU kernel and checks it against the reference on the same layout.
// `layout` is the plan's layout when it came from artifacts (else it is built here); `data_desc`
// describes where `data` came from, for the result. `tool` names the producer.
CpuRun run_cpu(const Plan&, const Layout* layout, const QKV& data, const nlohmann::json& data_desc,
               const FastOptions&, const std::string& tool, const CheckOptions& check = {}, const ProgressFn& progress = {});

}  // namespace sattn

namespace sattn {
const Backend& cpu_backend();
}  // namespace sattn
