// sattn::accel: counters, run configuration (profile section `rocc`, formerly `accel`) and PROBE capabilities.
#include <mutex>

#include "backends/rocc/accel.hpp"
#include "sattn/error.hpp"
#include "formats/profile.hpp"

namespace sattn::accel {

namespace {
constexpr const auto& kEventNames = isa::kEventNames;

int64_t Counters::* const kEventFields[kEventCount] = {
    &Counters::cycles,        &Counters::busy,          &Counters::stall_dma,   &Counters::stall_index,
    &Counters::stall_softmax, &Counters::stall_bank,    &Counters::stall_other, &Counters::macs_issued,
    &Counters::macs_skipped,  &Counters::dma_bytes_in,  &Counters::dma_bytes_out, &Counters::gathers,
    &Counters::commands};
}  // namespace

const char* event_name(Event e) { return kEventNames[int(e)]; }
int64_t Counters::get(Event e) const { return this->*kEventFields[int(e)]; }
void Counters::set(Event e, int64_t v) { this->*kEventFields[int(e)] = v; }

nlohmann::json Counters::to_json() const {
  nlohmann::ordered_json j;
  for (int i = 0; i < kEventCount; ++i) j[kEventNames[i]] = get(Event(i));
  return nlohmann::json(j);
}

void Config::validate() const {
  auto bad = [](const std::string& m) { throw Error(ExitCode::invalid_input, "rocc configuration: " + m); };
  if (lanes != 8 && lanes != 16 && lanes != 32) bad("lanes must be 8, 16 or 32, not " + std::to_string(lanes));
  if (dram_latency_cycles < 0 || dram_latency_cycles > 100000) bad("dram_latency_cycles must be in 0..100000");
  if (dram_bytes_per_cycle < 1 || dram_bytes_per_cycle > kBeatBytes)
    bad("dram_bytes_per_cycle must be in 1.." + std::to_string(kBeatBytes) + " (the DMA bus is " +
        std::to_string(kBeatBytes) + " bytes wide)");
  if (max_cycles < 1) bad("max_cycles must be >= 1");
  if (!(clock_mhz > 0)) bad("clock_mhz must be > 0");
  if (q_tile_rows < 1 || q_tile_rows > kQRows) bad("q_tile_rows must be in 1.." + std::to_string(kQRows));
}

void Config::apply_yaml(const YAML::Node& node, const std::string& file) {
  yaml_require_map(file, node, "rocc");
  yaml_check_keys(file, node, "rocc",
                  {"lanes", "double_buffer", "dram_latency_cycles", "dram_bytes_per_cycle", "max_cycles", "clock_mhz",
                   "q_tile_rows"});
  Config next = *this;
  if (const YAML::Node v = node["lanes"]) {
    next.lanes = int(yaml_int(file, v, "rocc.lanes", 8, 32));
    if (next.lanes != 8 && next.lanes != 16 && next.lanes != 32) yaml_fail(file, v, "rocc.lanes must be 8, 16 or 32");
  }
  if (const YAML::Node v = node["double_buffer"]) next.double_buffer = yaml_bool(file, v, "rocc.double_buffer");
  if (const YAML::Node v = node["dram_latency_cycles"])
    next.dram_latency_cycles = int(yaml_int(file, v, "rocc.dram_latency_cycles", 0, 100000));
  if (const YAML::Node v = node["dram_bytes_per_cycle"])
    next.dram_bytes_per_cycle = int(yaml_int(file, v, "rocc.dram_bytes_per_cycle", 1, kBeatBytes));
  if (const YAML::Node v = node["max_cycles"]) next.max_cycles = yaml_int(file, v, "rocc.max_cycles", 1, INT64_MAX);
  if (const YAML::Node v = node["clock_mhz"]) next.clock_mhz = yaml_real(file, v, "rocc.clock_mhz", 1e-3, 1e6);
  if (const YAML::Node v = node["q_tile_rows"]) next.q_tile_rows = int(yaml_int(file, v, "rocc.q_tile_rows", 1, kQRows));
  *this = next;
}

nlohmann::json Config::to_json() const {
  return {{"lanes", lanes},
          {"double_buffer", double_buffer},
          {"dram_latency_cycles", dram_latency_cycles},
          {"dram_bytes_per_cycle", dram_bytes_per_cycle},
          {"max_cycles", max_cycles},
          {"clock_mhz", clock_mhz},
          {"q_tile_rows", q_tile_rows}};
}

void register_accel_profile_section() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_profile_section("rocc", [](const YAML::Node& node, const std::string& file) {
      Config scratch;
      scratch.apply_yaml(node, file);
    });
  });
}

// ------------------------------------------------------------------------------------- PROBE
std::pair<uint64_t, uint64_t> capability_words(int lanes) {
  return {isa::capability_word0(lanes), isa::kScratchpadBytes};
}

Capabilities decode_capabilities(uint64_t w0, uint64_t w1) {
  Capabilities c;
  c.version = int(isa::kCapVersion.get(w0));
  c.lanes = int(isa::kCapLanes.get(w0));
  c.spec_mask = uint8_t(isa::kCapSpecMask.get(w0));
  c.precision_mask = uint8_t(isa::kCapPrecisionMask.get(w0));
  c.q_rows = int(isa::kCapQRows.get(w0));
  c.k_slots = int(isa::kCapKSlots.get(w0));
  c.max_head_dim = int(isa::kCapMaxHeadDim.get(w0));
  c.double_buffer = isa::kCapDoubleBuffer.get(w0) != 0;
  c.causal = isa::kCapCausal.get(w0) != 0;
  c.gather = isa::kCapGather.get(w0) != 0;
  c.scratchpad_bytes = int64_t(w1);
  return c;
}

// The mask has 8 bits (codes 0..7). A later spec runs through the layout format of an earlier
// one, and the datapath sees only that format: quest (code 8) is a BSR layout of pages, so it
// runs wherever bsr's block layouts do.
bool Capabilities::supports(Spec s) const {
  if (s == Spec::quest) return supports(Spec::bsr);
  return (spec_mask >> int(s) & 1) != 0;
}
bool Capabilities::supports(Precision p) const { return (precision_mask >> int(p) & 1) != 0; }

nlohmann::json Capabilities::to_json() const {
  nlohmann::json specs = nlohmann::json::array(), precisions = nlohmann::json::array();
  for (Spec s : kAllSpecs)
    if (supports(s)) specs.push_back(std::string(to_string(s)));
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::i8, Precision::i4})
    if (supports(p)) precisions.push_back(std::string(to_string(p)));
  return {{"version", version},
          {"lanes", lanes},
          {"specs", specs},
          {"precisions", precisions},
          {"spec_mask", spec_mask},
          {"precision_mask", precision_mask},
          {"q_rows", q_rows},
          {"k_slots", k_slots},
          {"max_head_dim", max_head_dim},
          {"double_buffer", double_buffer},
          {"causal", causal},
          {"gather", gather},
          {"scratchpad_bytes", scratchpad_bytes}};
}

}  // namespace sattn::accel
