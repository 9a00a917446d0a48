#include "backends/rocc/sim_probe.hpp"

#include <algorithm>
#include <cstdio>

#include "backends/rocc/accel_grid.hpp"
#include "formats/data.hpp"

namespace sattn {

namespace {

std::string hex2(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v & 0xffu);
  return buf;
}

std::string list_text(const nlohmann::json& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n.get<std::string>();
  return s.empty() ? "none" : s;
}

// The grid shapes built in RTL (hw/CMakeLists.txt) and the largest one's tile count.
nlohmann::json rtl_grids() {
  nlohmann::json a = nlohmann::json::array();
  for (const char* s : accel::kRtlGridShapes) a.push_back(s);
  return a;
}
int rtl_max_tiles() {
  int most = 1;
  for (const char* s : accel::kRtlGridShapes)
    if (const auto g = accel::parse_grid(s)) most = std::max(most, g->first * g->second);
  return most;
}

// The --multicast mode as sattn-sim(1) names it: off, heads (a GQA group's heads share a load),
// or on (the group's heads times up to multicast_query_tiles query tiles share it).
std::string multicast_text(const accel::GridConfig& g) {
  if (!g.multicast) return "off";
  if (g.multicast_query_tiles <= 1) return "heads (a GQA group's heads share each K/V load)";
  return "on (a GQA group's heads x up to " + std::to_string(g.multicast_query_tiles) +
         " query tiles share each K/V load)";
}

}  // namespace

nlohmann::json probe_json(const accel::Capabilities& c, const std::string& harness, const std::string& tool) {
  nlohmann::json j = envelope("probe", tool);
  nlohmann::json specs = nlohmann::json::array(), precisions = nlohmann::json::array();
  for (Spec s : kAllSpecs)
    if (c.supports(s)) specs.push_back(std::string(to_string(s)));
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::i8, Precision::i4})
    if (c.supports(p)) precisions.push_back(std::string(to_string(p)));
  j["version"] = c.version;
  j["lanes"] = c.lanes;
  j["specs"] = specs;
  j["spec_mask"] = c.spec_mask;
  j["precisions"] = precisions;
  j["precision_mask"] = c.precision_mask;
  j["q_rows"] = c.q_rows;
  j["k_slots"] = c.k_slots;
  j["max_head_dim"] = c.max_head_dim;
  j["double_buffer"] = c.double_buffer;
  j["causal"] = c.causal;
  j["gather"] = c.gather;
  j["quant_scales"] = c.quant_scales;
  j["pv_fix16"] = c.pv_fix16;
  j["scratchpad_bytes"] = c.scratchpad_bytes;
  j["harness"] = harness;
  return j;
}

ProbeReport probe_accelerator(const accel::Config& config, const accel::RtlOptions& rtl, const std::string& tool) {
  ProbeReport r;
  r.harness = rtl.harness.empty() ? accel::harness_path(config.lanes) : rtl.harness;
  r.caps = accel::probe_rtl(config, rtl);
  r.json = probe_json(r.caps, r.harness, tool);
  // The grid (hw/README.md "Grid"): the configured one, the ISA's limit, and what the RTL is.
  const accel::GridConfig& g = config.grid;
  r.json["grid"] = {{"rows", g.rows},
                    {"cols", g.cols},
                    {"tiles", g.tiles()},
                    {"max_rows", accel::isa::kGridMaxRows},
                    {"max_cols", accel::isa::kGridMaxCols},
                    {"multicast", g.multicast},
                    {"multicast_query_tiles", g.multicast_query_tiles},
                    {"schedule", accel::schedule_name(g.schedule)},
                    {"dram_ports", g.dram_ports},
                    {"dram_arbitration", accel::arbitration_name(g.arbitration)},
                    {"rtl_tiles", rtl_max_tiles()},
                    {"rtl_grids", rtl_grids()}};
  const auto yes = [](bool b) { return std::string(b ? "yes" : "no"); };
  const accel::Capabilities& c = r.caps;
  r.text = "version           " + std::to_string(c.version) + "\n" +
           "lanes             " + std::to_string(c.lanes) + "\n" +
           "specs             " + list_text(r.json["specs"]) + " (mask " + hex2(c.spec_mask) + ")\n" +
           "precisions        " + list_text(r.json["precisions"]) + " (mask " + hex2(c.precision_mask) + ")\n" +
           "q_rows            " + std::to_string(c.q_rows) + "\n" +
           "k_slots           " + std::to_string(c.k_slots) + "\n" +
           "max_head_dim      " + std::to_string(c.max_head_dim) + "\n" +
           "double_buffer     " + yes(c.double_buffer) + "\n" +
           "causal            " + yes(c.causal) + "\n" +
           "gather            " + yes(c.gather) + "\n" +
           "quant_scales      " + yes(c.quant_scales) + "\n" +
           "pv_fix16          " + yes(c.pv_fix16) + "\n" +
           "scratchpad_bytes  " + std::to_string(c.scratchpad_bytes) + "\n" +
           "harness           " + r.harness + "\n" +
           "grid              " + g.shape() + " (" + std::to_string(g.tiles()) + " tiles; ISA limit " +
           std::to_string(accel::isa::kGridMaxRows) + "x" + std::to_string(accel::isa::kGridMaxCols) +
           "; RTL grids " + list_text(r.json["grid"]["rtl_grids"]) + ", larger grids run in the model)\n" +
           "grid_multicast    " + multicast_text(g) + "\n" +
           "grid_schedule     " + accel::schedule_name(g.schedule) + "\n";
  return r;
}

HwCapabilities hw_capabilities(const accel::Capabilities& c, const std::string& harness) {
  HwCapabilities hw;
  for (Spec s : kAllSpecs)
    if (c.supports(s)) hw.specs.insert(s);
  hw.scratchpad_bytes = c.scratchpad_bytes;
  hw.description = "LANES " + std::to_string(c.lanes) + ", spec mask " + hex2(c.spec_mask);
  hw.where = "spec mask " + hex2(c.spec_mask) + ", " + harness;
  return hw;
}

HwCapabilities probe_hw_capabilities() {
  const accel::Config config;
  const accel::RtlOptions rtl;
  return hw_capabilities(accel::probe_rtl(config, rtl), accel::harness_path(config.lanes));
}

}  // namespace sattn
