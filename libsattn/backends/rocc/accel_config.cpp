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

const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::static_rr: return "static";
    case Schedule::zigzag: return "zigzag";
    case Schedule::dynamic: return "dynamic";
    case Schedule::lpt: return "lpt";
  }
  return "?";
}
std::optional<Schedule> parse_schedule(const std::string& s) {
  if (s == "static") return Schedule::static_rr;
  if (s == "zigzag") return Schedule::zigzag;
  if (s == "dynamic") return Schedule::dynamic;
  if (s == "lpt") return Schedule::lpt;
  return std::nullopt;
}
const char* arbitration_name(Arbitration a) { return a == Arbitration::fixed ? "fixed" : "round_robin"; }
std::optional<Arbitration> parse_arbitration(const std::string& s) {
  if (s == "round_robin") return Arbitration::round_robin;
  if (s == "fixed") return Arbitration::fixed;
  return std::nullopt;
}
std::optional<std::pair<int, int>> parse_grid(const std::string& s) {
  const size_t x = s.find_first_of("xX");
  if (x == std::string::npos || x == 0 || x + 1 >= s.size() || x > 4 || s.size() - x - 1 > 4) return std::nullopt;
  for (size_t i = 0; i < s.size(); ++i)
    if (i != x && (s[i] < '0' || s[i] > '9')) return std::nullopt;
  return std::pair<int, int>{std::stoi(s.substr(0, x)), std::stoi(s.substr(x + 1))};
}
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
  if (max_cycles < 0) bad("max_cycles must be >= 0 (0: scaled to the program)");
  if (!(clock_mhz > 0)) bad("clock_mhz must be > 0");
  if (q_tile_rows < 1 || q_tile_rows > kQRows) bad("q_tile_rows must be in 1.." + std::to_string(kQRows));
  if (grid.rows < 1 || grid.rows > isa::kGridMaxRows || grid.cols < 1 || grid.cols > isa::kGridMaxCols)
    bad("grid " + grid.shape() + " is outside the ISA's 1x1.." + std::to_string(isa::kGridMaxRows) + "x" +
        std::to_string(isa::kGridMaxCols));
  if (grid.dram_ports < 1 || grid.dram_ports > grid.tiles())
    bad("dram_ports must be in 1..tiles (" + std::to_string(grid.tiles()) + ")");
  if (grid.multicast_query_tiles < 1 || grid.multicast_query_tiles > isa::kGridMaxRows * isa::kGridMaxCols)
    bad("multicast_query_tiles must be in 1.." + std::to_string(isa::kGridMaxRows * isa::kGridMaxCols));
}

void Config::apply_yaml(const YAML::Node& node, const std::string& file) {
  yaml_require_map(file, node, "rocc");
  yaml_check_keys(file, node, "rocc",
                  {"lanes", "double_buffer", "dram_latency_cycles", "dram_bytes_per_cycle", "max_cycles", "clock_mhz",
                   "q_tile_rows", "grid", "multicast", "schedule", "dram_ports", "dram_arbitration"});
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
  if (const YAML::Node v = node["max_cycles"]) next.max_cycles = yaml_int(file, v, "rocc.max_cycles", 0, INT64_MAX);
  if (const YAML::Node v = node["clock_mhz"]) next.clock_mhz = yaml_real(file, v, "rocc.clock_mhz", 1e-3, 1e6);
  if (const YAML::Node v = node["q_tile_rows"]) next.q_tile_rows = int(yaml_int(file, v, "rocc.q_tile_rows", 1, kQRows));
  if (const YAML::Node v = node["grid"]) {
    const auto g = v.IsScalar() ? parse_grid(v.Scalar()) : std::nullopt;
    if (!g) yaml_fail(file, v, "rocc.grid must be ROWSxCOLS, e.g. 2x4");
    if (g->first < 1 || g->first > isa::kGridMaxRows || g->second < 1 || g->second > isa::kGridMaxCols)
      yaml_fail(file, v, "rocc.grid " + v.Scalar() + " is outside the ISA's 1x1.." + std::to_string(isa::kGridMaxRows) +
                             "x" + std::to_string(isa::kGridMaxCols));
    next.grid.rows = g->first;
    next.grid.cols = g->second;
  }
  if (const YAML::Node v = node["multicast"]) {
    // true (gangs of heads x query tiles), heads (the heads of one query tile only), false.
    const bool heads = v.IsScalar() && v.Scalar() == "heads";
    next.grid.multicast = heads || yaml_bool(file, v, "rocc.multicast");
    next.grid.multicast_query_tiles = heads ? 1 : GridConfig{}.multicast_query_tiles;
  }
  if (const YAML::Node v = node["schedule"]) {
    const auto sc = v.IsScalar() ? parse_schedule(v.Scalar()) : std::nullopt;
    if (!sc) yaml_fail(file, v, "rocc.schedule must be static, zigzag, dynamic or lpt");
    next.grid.schedule = *sc;
  }
  if (const YAML::Node v = node["dram_ports"])
    next.grid.dram_ports = int(yaml_int(file, v, "rocc.dram_ports", 1, isa::kGridMaxRows * isa::kGridMaxCols));
  if (const YAML::Node v = node["dram_arbitration"]) {
    const auto a = v.IsScalar() ? parse_arbitration(v.Scalar()) : std::nullopt;
    if (!a) yaml_fail(file, v, "rocc.dram_arbitration must be round_robin or fixed");
    next.grid.arbitration = *a;
  }
  *this = next;
}

nlohmann::json Config::to_json() const {
  return {{"lanes", lanes},
          {"double_buffer", double_buffer},
          {"dram_latency_cycles", dram_latency_cycles},
          {"dram_bytes_per_cycle", dram_bytes_per_cycle},
          {"max_cycles", max_cycles},
          {"clock_mhz", clock_mhz},
          {"q_tile_rows", q_tile_rows},
          {"grid", grid.shape()},
          {"multicast", grid.multicast},
          {"multicast_query_tiles", grid.multicast_query_tiles},
          {"schedule", schedule_name(grid.schedule)},
          {"dram_ports", grid.dram_ports},
          {"dram_arbitration", arbitration_name(grid.arbitration)}};
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
  c.max_head_dim = int(isa::kCapMaxHeadDim.get(w0)) * isa::kCapMaxHeadDimUnit;  // in units of 16 (ISA v2)
  c.double_buffer = isa::kCapDoubleBuffer.get(w0) != 0;
  c.causal = isa::kCapCausal.get(w0) != 0;
  c.gather = isa::kCapGather.get(w0) != 0;
  c.quant_scales = isa::kCapQuantScales.get(w0) != 0;
  c.pv_fix16 = isa::kCapPvFix16.get(w0) != 0;
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
          {"quant_scales", quant_scales},
          {"pv_fix16", pv_fix16},
          {"scratchpad_bytes", scratchpad_bytes}};
}

}  // namespace sattn::accel
