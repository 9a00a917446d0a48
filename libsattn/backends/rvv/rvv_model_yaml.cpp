// The core model's YAML form (sattn-run-rvv(1), CORE MODEL): a strict loader that profiles reuse.
#include <mutex>

#include <yaml-cpp/yaml.h>

#include "sattn/error.hpp"
#include "formats/profile.hpp"
#include "backends/rvv/rvv_model.hpp"

namespace sattn::rvv {

namespace {

// Every key a core model file may set, with the member it sets and its range.
struct IntKey {
  const char* name;
  int CoreModel::*field;
  int64_t lo, hi;
};
struct RealKey {
  const char* name;
  double CoreModel::*field;
  double lo, hi;
};
constexpr IntKey kIntKeys[] = {
    {"vlen", &CoreModel::vlen, 128, 1024},       {"dlen", &CoreModel::dlen, 8, 65536},
    {"mem_bits", &CoreModel::mem_bits, 8, 65536}, {"lanes", &CoreModel::lanes, 1, 1024},
    {"element_bits", &CoreModel::element_bits, 8, 64},
};
constexpr double kMaxCost = 1e6;
constexpr RealKey kRealKeys[] = {
    {"scalar_ipc", &CoreModel::scalar_ipc, 1e-3, 64},
    {"vsetvl_cycles", &CoreModel::vsetvl_cycles, 0, kMaxCost},
    {"vector_issue_cycles", &CoreModel::vector_issue_cycles, 0, kMaxCost},
    {"arith_cycles_per_beat", &CoreModel::arith_cycles_per_beat, 0, kMaxCost},
    {"load_cycles_per_beat", &CoreModel::load_cycles_per_beat, 0, kMaxCost},
    {"store_cycles_per_beat", &CoreModel::store_cycles_per_beat, 0, kMaxCost},
    {"reduction_cycles_per_beat", &CoreModel::reduction_cycles_per_beat, 0, kMaxCost},
    {"reduction_step_cycles", &CoreModel::reduction_step_cycles, 0, kMaxCost},
    {"strided_cycles_per_element", &CoreModel::strided_cycles_per_element, 0, kMaxCost},
    {"indexed_cycles_per_element", &CoreModel::indexed_cycles_per_element, 0, kMaxCost},
};

std::vector<std::string> known_keys() {
  std::vector<std::string> keys{"name"};
  for (const IntKey& k : kIntKeys) keys.push_back(k.name);
  for (const RealKey& k : kRealKeys) keys.push_back(k.name);
  return keys;
}

bool is_power_of_two(int v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

void CoreModel::apply_yaml(const YAML::Node& node, const std::string& file) {
  yaml_check_keys(file, node, "the core model", known_keys());
  if (const YAML::Node n = node["name"]) name = yaml_string(file, n, "name");
  for (const IntKey& k : kIntKeys) {
    const YAML::Node n = node[k.name];
    if (!n) continue;
    const int v = int(yaml_int(file, n, k.name, k.lo, k.hi));
    if ((k.field == &CoreModel::vlen || k.field == &CoreModel::element_bits) && !is_power_of_two(v))
      yaml_fail(file, n, std::string(k.name) + " = " + std::to_string(v) + " must be a power of two");
    this->*k.field = v;
  }
  for (const RealKey& k : kRealKeys)
    if (const YAML::Node n = node[k.name]) this->*k.field = yaml_real(file, n, k.name, k.lo, k.hi);
}

void CoreModel::apply_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(ExitCode::invalid_input, "cannot read the core model file (does it exist?)", SourceLoc{path});
  } catch (const YAML::Exception& e) {
    throw Error(ExitCode::invalid_input, "YAML syntax error: " + e.msg,
                SourceLoc{path, e.mark.line < 0 ? 0 : e.mark.line + 1, e.mark.column < 0 ? 0 : e.mark.column + 1});
  }
  if (!root.IsMap())
    throw Error(ExitCode::invalid_input, "a core model must be a mapping of key: value", yaml_loc(path, root));
  apply_yaml(root["rvv"] ? root["rvv"] : root, path);
  source = source == "built-in" ? path : source + ", " + path;
}

nlohmann::json CoreModel::to_json() const {
  nlohmann::json j{{"name", name}, {"source", source}};
  for (const IntKey& k : kIntKeys) j[k.name] = this->*k.field;
  for (const RealKey& k : kRealKeys) j[k.name] = this->*k.field;
  return j;
}

void register_rvv_profile_section() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_profile_section("rvv", [](const YAML::Node& node, const std::string& file) {
      CoreModel scratch;
      scratch.apply_yaml(node, file);
    });
  });
}

}  // namespace sattn::rvv
