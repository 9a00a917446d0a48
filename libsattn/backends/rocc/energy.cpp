// Per-event energies and the roofline of an accelerator run (see energy.hpp).
//
// Defaults, from Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V):
//   8-bit integer multiply 0.2 pJ, 32-bit integer add 0.1 pJ  -> int8 MAC with an int32
//   accumulator 0.3 pJ. A 4-bit array multiplier has a quarter of the 8-bit one's partial
//   products (bits^2), so 0.05 pJ, and the same 32-bit accumulate: 0.15 pJ.
//   8 KB SRAM, 64-bit access 10 pJ -> 1.25 pJ per byte (the scratchpad banks are a few KB each).
//   DRAM, 64-bit access 1.3-2.6 nJ -> 162.5 pJ per byte at the low end.
// Leakage is left at 0: it depends on the process and the floorplan, which the figures above do
// not give; a profile sets static_pj_per_cycle from a synthesis report.
#include "backends/rocc/energy.hpp"

#include <algorithm>
#include <limits>
#include <mutex>

#include "sattn/error.hpp"
#include "formats/profile.hpp"

namespace sattn {

namespace {

struct EnergyKey {
  const char* name;
  double EnergyModel::*field;
};

const EnergyKey kEnergyKeys[] = {
    {"mac_i8_pj", &EnergyModel::mac_i8_pj},
    {"mac_i4_pj", &EnergyModel::mac_i4_pj},
    {"sram_byte_pj", &EnergyModel::sram_byte_pj},
    {"dram_byte_pj", &EnergyModel::dram_byte_pj},
    {"static_pj_per_cycle", &EnergyModel::static_pj_per_cycle},
};

std::vector<std::string> energy_key_names() {
  std::vector<std::string> names;
  for (const EnergyKey& k : kEnergyKeys) names.push_back(k.name);
  return names;
}

// An upper limit that still catches unit mistakes (fJ or J typed as pJ) without refusing
// exotic technologies: 1 uJ per event.
constexpr double kMaxPicojoules = 1e6;

}  // namespace

void EnergyModel::apply_yaml(const YAML::Node& node, const std::string& file) {
  yaml_check_keys(file, node, "energy", energy_key_names());
  EnergyModel next = *this;  // all or nothing: a bad key leaves the model as it was
  for (const EnergyKey& k : kEnergyKeys)
    if (const YAML::Node v = node[k.name]) next.*k.field = yaml_real(file, v, std::string("energy.") + k.name, 0, kMaxPicojoules);
  next.source = source.rfind("defaults", 0) == 0 ? file : source + ", " + file;
  *this = next;
}

nlohmann::json EnergyModel::to_json() const {
  nlohmann::json j;
  for (const EnergyKey& k : kEnergyKeys) j[k.name] = this->*k.field;
  j["source"] = source;
  return j;
}

EnergyModel load_energy_file(const std::string& path, EnergyModel base) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error(ExitCode::runtime, "cannot read energy file '" + path + "'");
  } catch (const YAML::Exception& e) {
    throw Error(ExitCode::invalid_input, "YAML syntax error: " + e.msg,
                SourceLoc{path, e.mark.line < 0 ? 0 : e.mark.line + 1, e.mark.column < 0 ? 0 : e.mark.column + 1});
  }
  if (!root.IsMap()) throw Error(ExitCode::invalid_input, "an energy file must be a mapping of key: value", yaml_loc(path, root));
  // A profile (or any document with an energy: section) contributes that section only.
  const YAML::Node section = root["energy"] ? root["energy"] : root;
  base.apply_yaml(section, path);
  return base;
}

void register_energy_profile_section() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_profile_section("energy", [](const YAML::Node& node, const std::string& file) {
      EnergyModel scratch;
      scratch.apply_yaml(node, file);
    });
  });
}

nlohmann::json EnergyBreakdown::to_json() const {
  return {{"mac", mac}, {"sram", sram}, {"dram", dram}, {"static", static_}, {"total", total()}};
}

EnergyBreakdown estimate_energy(const EnergyModel& m, const EnergyEvents& e) {
  EnergyBreakdown b;
  b.mac = double(e.macs) * m.mac_pj(e.precision);
  b.sram = double(e.sram_bytes) * m.sram_byte_pj;
  b.dram = double(e.dram_bytes) * m.dram_byte_pj;
  b.static_ = double(e.cycles) * m.static_pj_per_cycle;
  return b;
}

nlohmann::json Roofline::to_json() const {
  return {{"compute_cycles", compute_cycles}, {"memory_cycles", memory_cycles}, {"bound_cycles", bound_cycles},
          {"bound_by", bound_by()},         {"ratio", ratio}};
}

Roofline roofline(const RooflineInputs& in) {
  if (in.lanes < 1) throw Error(ExitCode::usage, "roofline: lanes must be at least 1");
  if (!(in.dram_bytes_per_cycle > 0)) throw Error(ExitCode::usage, "roofline: DRAM bandwidth must be positive");
  Roofline r;
  r.compute_cycles = double(in.macs) / double(in.lanes);
  r.memory_cycles = double(in.dram_bytes) / in.dram_bytes_per_cycle + (in.dram_bytes > 0 ? double(in.dram_latency_cycles) : 0.0);
  r.bound_cycles = std::max(r.compute_cycles, r.memory_cycles);
  r.ratio = r.bound_cycles > 0 ? double(in.actual_cycles) / r.bound_cycles : 0.0;
  return r;
}

}  // namespace sattn
