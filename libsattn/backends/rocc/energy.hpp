// The analytic side of an accelerator run (sattn-sim): an energy estimate from event counts and
// per-event energies, and the roofline bound the measured cycles are compared with.
//
// Energy = MACs x pJ/MAC + scratchpad bytes x pJ/SRAM byte + DRAM bytes x pJ/DRAM byte
//          + cycles x static pJ/cycle.
// The defaults are Horowitz's 45 nm, 0.9 V figures (M. Horowitz, "Computing's energy problem
// (and what we can do about it)", ISSCC 2014, Fig. 1.1.9), turned into per-MAC and per-byte
// costs; energy.cpp shows the arithmetic. A profile's `energy:` section or `--energy FILE`
// replaces any of them (sattn-profile(5), sattn-sim(1)).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "sattn/op.hpp"

namespace sattn {

struct EnergyModel {
  double mac_i8_pj = 0.3;    // 8-bit multiply (0.2 pJ) + 32-bit accumulate (0.1 pJ)
  double mac_i4_pj = 0.15;   // 4-bit multiply (0.2 / 4: array multipliers grow with bits^2) + 0.1
  double sram_byte_pj = 1.25;  // 8 KB SRAM bank: 10 pJ per 64-bit access / 8 bytes
  double dram_byte_pj = 162.5; // DRAM: 1.3 nJ per 64-bit access / 8 bytes (low end of 1.3-2.6 nJ)
  double static_pj_per_cycle = 0;  // leakage and clock tree: not modelled unless a profile sets it
  std::string source = "defaults (Horowitz, ISSCC 2014, 45 nm)";  // where the values came from

  double mac_pj(Precision p) const { return p == Precision::i4 ? mac_i4_pj : mac_i8_pj; }

  // Replaces the fields `node` names (a mapping: mac_i8_pj, mac_i4_pj, sram_byte_pj,
  // dram_byte_pj, static_pj_per_cycle; each a number >= 0). Unknown keys, wrong types and
  // negative values are Error(invalid_input) with file:line:col. Applied in order, so a later
  // file overrides only what it names.
  void apply_yaml(const YAML::Node& node, const std::string& file);
  nlohmann::json to_json() const;
};

// Reads an energy file: either a bare mapping of the keys above, or a document with an
// `energy:` mapping (so a profile file can be passed as is; its other sections are then
// ignored). YAML syntax errors are Error(invalid_input) with file:line:col.
EnergyModel load_energy_file(const std::string& path, EnergyModel base = {});

// Registers the strict checker of the profile section `energy` (idempotent).
void register_energy_profile_section();

struct EnergyEvents {
  Precision precision = Precision::i8;
  int64_t macs = 0;        // multiply-accumulates performed
  int64_t sram_bytes = 0;  // scratchpad bytes read and written
  int64_t dram_bytes = 0;  // bytes moved to and from DRAM
  int64_t cycles = 0;
};

struct EnergyBreakdown {
  double mac = 0, sram = 0, dram = 0, static_ = 0;
  double total() const { return mac + sram + dram + static_; }
  nlohmann::json to_json() const;  // {"mac", "sram", "dram", "static", "total"} in pJ
};

EnergyBreakdown estimate_energy(const EnergyModel&, const EnergyEvents&);

// The roofline of one run: the accelerator cannot finish sooner than its MAC array allows
// (macs / lanes) nor sooner than DRAM can deliver its bytes (bytes / bandwidth, plus one
// exposed latency: with double buffering every later request overlaps the one before, but the
// first one cannot overlap anything).
struct RooflineInputs {
  int64_t macs = 0;
  int64_t lanes = 16;              // MACs per cycle
  int64_t dram_bytes = 0;
  double dram_bytes_per_cycle = 16;
  int64_t dram_latency_cycles = 0;
  int64_t actual_cycles = 0;
};

struct Roofline {
  double compute_cycles = 0;
  double memory_cycles = 0;
  double bound_cycles = 0;  // max(compute, memory)
  double ratio = 0;         // actual / bound (>= 1 for a correct simulator); 0 when bound is 0
  const char* bound_by() const { return compute_cycles >= memory_cycles ? "compute" : "memory"; }
  nlohmann::json to_json() const;
};

Roofline roofline(const RooflineInputs&);

}  // namespace sattn
