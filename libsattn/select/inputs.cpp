// What every backend tool reads: ops, plans or artifacts (DESIGN §2: a tool that needs artifacts
// also accepts a plan, and a tool that reads a plan also accepts a bare op).
#include <filesystem>
#include <sstream>

#include "formats/emit.hpp"
#include "formats/nesting.hpp"
#include "formats/op_io.hpp"
#include "support/io.hpp"
#include "select/inputs.hpp"

namespace sattn {

namespace {

// The artifacts envelopes a JSON text names, if it is made of them: a whole artifacts.json, or
// envelope lines of sattn-emit's stdout (each carries its directory).
std::vector<std::string> artifact_envelopes(const std::string& text, const std::string& input) {
  std::vector<std::string> paths;
  auto is_artifacts = [](const nlohmann::json& j) {
    return j.is_object() && j.value("schema", std::string()).rfind("sattn.artifacts/", 0) == 0;
  };
  if (json_nesting_violation(text) != std::string::npos) return paths;  // the op reader reports it
  auto whole = nlohmann::json::parse(text, nullptr, false);
  if (!whole.is_discarded()) {
    if (is_artifacts(whole))
      paths.push_back(whole.contains("dir") ? (std::filesystem::path(whole.value("dir", "")) / "artifacts.json").string()
                                            : input);
    return paths;
  }
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !is_artifacts(j)) return {};  // not (only) envelopes: read as plans/ops
    if (!j.contains("dir")) return {};
    paths.push_back((std::filesystem::path(j.value("dir", "")) / "artifacts.json").string());
  }
  return paths;
}

}  // namespace

std::vector<BackendInput> read_backend_inputs(const std::string& input, const SelectOptions& selection) {
  const std::string text = read_op_input(input);
  const std::string filename = input == "-" ? "<stdin>" : input;
  std::vector<BackendInput> items;
  const auto envelopes = artifact_envelopes(text, input);
  if (!envelopes.empty()) {
    for (const std::string& path : envelopes) {
      Artifacts a = read_artifacts(path);
      items.push_back({input, std::move(a.plan), std::move(a.layout), std::move(a.data)});
    }
    return items;
  }
  for (Plan& p : parse_plans(text, filename, selection)) items.push_back({input, std::move(p), std::nullopt, std::nullopt});
  return items;
}

void guard_memory(const std::vector<BackendInput>& items, const MemoryUse& use, const MemoryLimit& limit) {
  for (const BackendInput& item : items) {
    MemoryUse u = use;
    u.data = u.data && !item.data;
    u.layout = u.layout && !item.layout;
    guard_memory(item.plan.op, item.plan.spec, item.plan.params, u, limit);
  }
}

std::string artifacts_data_mismatch(const BackendInput& item, const QKV& given, const std::string& data_dir) {
  if (!item.layout || !item.data || !layout_uses_data(item.plan.spec, item.plan.params)) return "";
  if (given.q.data == item.data->q.data && given.k.data == item.data->k.data) return "";
  const std::string which = given.q.data != item.data->q.data ? (given.k.data != item.data->k.data ? "Q and K" : "Q") : "K";
  return item.input + ": op '" + item.plan.op.name + "': its " + std::string(to_string(item.plan.spec)) +
         " layout was chosen from the data emitted with it, and the " + which + " of --data " + data_dir +
         " differ; the artifacts' layout is used as it is, not recomputed (give the plan or the op instead, or "
         "re-run sattn emit --data " + data_dir + ", to choose it from this data)";
}

}  // namespace sattn
