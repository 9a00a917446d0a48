// IMC parameters: the per-node presets, the strict YAML loader and validation (sattn-imc(1)).
#include <algorithm>
#include <cmath>
#include <sstream>

#include "sattn/error.hpp"
#include "backends/imc/imc.hpp"
#include "support/io.hpp"
#include "formats/profile.hpp"

namespace sattn {

namespace {

// Nominal core supply of a typical low-power process at each node (22ULP 0.8 V, 28HPC 0.9 V,
// 40LP 1.1 V, 65LP 1.2 V). Energies of capacitive (CV^2) circuits scale with node * V^2 from the
// 22 nm figures, areas with node^2, gate delays with node.
struct Node {
  int nm;
  double vdd;
  double clock_mhz;
};
constexpr Node kNodes[] = {{22, 0.8, 1000}, {28, 0.9, 800}, {40, 1.1, 550}, {65, 1.2, 350}};

const Node& node_of(int nm) {
  for (const Node& n : kNodes)
    if (n.nm == nm) return n;
  throw Error(ExitCode::invalid_input, "tech = " + std::to_string(nm) + " nm has no preset (use 22, 28, 40 or 65)");
}

}  // namespace

std::vector<int> imc_tech_nodes() {
  std::vector<int> v;
  for (const Node& n : kNodes) v.push_back(n.nm);
  return v;
}

double imc_default_clock_mhz(int tech_nm) { return node_of(tech_nm).clock_mhz; }

ImcFigures imc_preset(int tech_nm, ImcCell cell) {
  const Node& n = node_of(tech_nm);
  const double scale_len = n.nm / 22.0;
  const double scale_v2 = (n.vdd / 0.8) * (n.vdd / 0.8);
  const double scale_e = scale_len * scale_v2;  // C ~ feature size, E = C V^2
  const double scale_area = scale_len * scale_len;
  const bool rram = cell == ImcCell::rram;
  ImcFigures f;
  f.vdd_v = n.vdd;
  // Word line: ~0.1 fF of gate + wire per cell at 22 nm; RRAM access gates are driven at 1.1 V
  // through level shifters (NeuroSim V1.4 accessVoltage), SRAM word lines at VDD.
  f.row_energy_fj_per_col = rram ? 0.15 * scale_len : 0.1 * scale_e;
  // RRAM: V_read^2 * G_mean * t_read with CIM-grade conductances (NeuRRAM, Nature 2022:
  // 1-40 uS, so G_mean ~20 uS) and an assumed 0.2 V read for 1 ns: 0.04 * 2e-5 * 1e-9 = 0.8 fJ;
  // a device figure, not scaled with the node. (NeuroSim V1.4's memory device, 6 kOhm at 0.5 V,
  // would give 22 fJ: docs/imc-calibration.md.) SRAM: ~0.2 fF of read bit line per cell at
  // 22 nm, charged to VDD.
  f.cell_read_energy_fj = rram ? 0.8 : 0.2 * 0.64 * scale_e;
  // NeuroSim V1.4's 22 nm RRAM sensing clock is 2.23 ns with a 4-bit ADC: 1 ns of array read
  // plus 0.3 ns per ADC bit; scaled with gate delay.
  f.read_ns = 1.0 * scale_len;
  f.adc_ns_per_bit = 0.3 * scale_len;
  // Murmann's ADC survey: low-resolution SAR ADCs in 22-28 nm reach a Walden FoM of a few
  // fJ/conversion-step; 5 fJ at 22 nm.
  f.adc_fom_fj = 5.0 * scale_e;
  // Horowitz (ISSCC 2014, 45 nm, 0.9 V): 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8 KB SRAM 64-bit
  // read 10 pJ. A 16-bit shift-add + register ~0.08 pJ, a 24-bit add ~0.075 pJ, 0.156 pJ/bit
  // of buffer, scaled from 45 nm / 0.9 V to 22 nm / 0.8 V by (22/45) * (0.8/0.9)^2 = 0.386.
  f.shift_add_energy_pj = 0.031 * scale_e;
  f.accum_energy_pj = 0.029 * scale_e;
  f.buffer_energy_pj_per_bit = 0.06 * scale_e;
  f.buffer_bits_per_cycle = 1024;
  f.buffer_kib = 64;
  // Dally (2011, 28 nm): 256 pJ to move 64 bits 20 mm, 0.2 pJ/bit/mm at 0.9 V; wire capacitance
  // per mm barely scales, so only V^2.
  f.interconnect_energy_pj_per_bit_mm = 0.2 * (n.vdd / 0.9) * (n.vdd / 0.9);
  f.bus_bits_per_cycle = 1024;
  // RRAM programming: NeuroSim V1.4 write voltage 2 V; a typical 1T1R SET of 50 uA for 20 ns
  // is 2 pJ, with program-and-verify rows of 50 ns; 1e6 cycles of endurance (HfOx 1T1R).
  // SRAM: a full-swing write of a 128-cell bit line (~26 fF at 22 nm) at VDD, one cycle per row.
  f.write_energy_pj_per_cell = rram ? 2.0 : 0.016 * scale_e;
  f.write_ns_per_row = rram ? 50.0 : 1.0 * scale_len;
  f.endurance_cycles = rram ? 1e6 : 0;
  // Cell sizes from NeuroSim V1.4 (Param.cpp): SRAM 10F x 28F, 1T1R 4F x 12F.
  f.cell_area_f2 = rram ? 48 : 280;
  f.periphery_f2_per_line = 2000;
  // ADC area: NeuroSim V1.4's 22 nm VGG-8 run spends 5.06 mm^2 on the 4-bit sense ADCs of
  // ~9470 sub-arrays (3.61 mm^2 of 128x128 1T1R cells) with 16 ADCs each: ~33 um^2 per ADC.
  f.adc_area_um2 = 33 * scale_area;
  f.accum_area_um2 = 50 * scale_area;
  // 6T SRAM ~0.1 um^2/bit at 22 nm, x1.5 for periphery.
  f.buffer_area_um2_per_kib = 1230 * scale_area;
  // NeuroSim V1.4 22 nm VGG-8: interconnect 8.3 of 84.8 mm^2.
  f.interconnect_area_fraction = 0.1;
  f.write_driver_f2_per_col = rram ? 4000 : 500;
  return f;
}

const std::vector<ImcFigureField>& imc_figure_fields() {
  static const std::vector<ImcFigureField> fields = {
      {"vdd_v", &ImcFigures::vdd_v, 0.1, 5},
      {"row_energy_fj_per_col", &ImcFigures::row_energy_fj_per_col, 0, 1e6},
      {"cell_read_energy_fj", &ImcFigures::cell_read_energy_fj, 0, 1e6},
      {"read_ns", &ImcFigures::read_ns, 1e-3, 1e6},
      {"adc_fom_fj", &ImcFigures::adc_fom_fj, 0, 1e6},
      {"adc_ns_per_bit", &ImcFigures::adc_ns_per_bit, 0, 1e6},
      {"shift_add_energy_pj", &ImcFigures::shift_add_energy_pj, 0, 1e6},
      {"accum_energy_pj", &ImcFigures::accum_energy_pj, 0, 1e6},
      {"buffer_energy_pj_per_bit", &ImcFigures::buffer_energy_pj_per_bit, 0, 1e6},
      {"buffer_bits_per_cycle", &ImcFigures::buffer_bits_per_cycle, 1, 1e9},
      {"buffer_kib", &ImcFigures::buffer_kib, 0, 1e9},
      {"interconnect_energy_pj_per_bit_mm", &ImcFigures::interconnect_energy_pj_per_bit_mm, 0, 1e6},
      {"bus_bits_per_cycle", &ImcFigures::bus_bits_per_cycle, 1, 1e9},
      {"write_energy_pj_per_cell", &ImcFigures::write_energy_pj_per_cell, 0, 1e6},
      {"write_ns_per_row", &ImcFigures::write_ns_per_row, 0, 1e9},
      {"endurance_cycles", &ImcFigures::endurance_cycles, 0, 1e18},
      {"cell_area_f2", &ImcFigures::cell_area_f2, 1, 1e6},
      {"periphery_f2_per_line", &ImcFigures::periphery_f2_per_line, 0, 1e9},
      {"adc_area_um2", &ImcFigures::adc_area_um2, 0, 1e9},
      {"accum_area_um2", &ImcFigures::accum_area_um2, 0, 1e9},
      {"buffer_area_um2_per_kib", &ImcFigures::buffer_area_um2_per_kib, 0, 1e9},
      {"interconnect_area_fraction", &ImcFigures::interconnect_area_fraction, 0, 10},
      {"write_driver_f2_per_col", &ImcFigures::write_driver_f2_per_col, 0, 1e9},
  };
  return fields;
}

ImcFigures ImcParams::figures(ImcCell as) const {
  ImcFigures f = imc_preset(tech_nm, as);
  for (const ImcFigureField& field : imc_figure_fields()) {
    auto it = overrides.find(field.name);
    if (it != overrides.end()) f.*(field.member) = it->second;
  }
  return f;
}

std::string_view to_string(ImcCell c) { return c == ImcCell::sram ? "sram" : "rram"; }
std::string_view to_string(KvPlacement k) { return k == KvPlacement::sram ? "sram" : "write"; }

namespace {

const std::vector<std::string>& known_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k{"tech",          "cell",        "subarray",     "subarray_rows", "subarray_cols",
                               "cell_bits",     "adc_bits",    "cols_per_adc", "parallel_rows", "clock_mhz",
                               "kv_placement",  "input_bits",  "weight_bits",  "input_activity"};
    for (const ImcFigureField& f : imc_figure_fields()) k.push_back(f.name);
    return k;
  }();
  return keys;
}

// "RxC" (e.g. 128x128) as written in a config file or on the command line.
bool parse_rxc(const std::string& s, int64_t& r, int64_t& c) {
  const size_t x = s.find_first_of("xX");
  if (x == std::string::npos || x == 0 || x + 1 >= s.size()) return false;
  try {
    size_t u1 = 0, u2 = 0;
    r = std::stoll(s.substr(0, x), &u1);
    c = std::stoll(s.substr(x + 1), &u2);
    return u1 == x && u2 == s.size() - x - 1;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

void apply_yaml(ImcParams& p, const YAML::Node& node, const std::string& file) {
  yaml_check_keys(file, node, "imc", known_keys());
  if (node["tech"]) {
    const YAML::Node n = node["tech"];
    const int64_t t = yaml_int(file, n, "imc.tech", 1, 1000);
    const auto nodes = imc_tech_nodes();
    if (std::find(nodes.begin(), nodes.end(), int(t)) == nodes.end())
      yaml_fail(file, n, "imc.tech = " + std::to_string(t) + " has no preset (use 22, 28, 40 or 65)");
    p.tech_nm = int(t);
  }
  if (node["cell"]) {
    const std::string s = yaml_string(file, node["cell"], "imc.cell");
    if (s != "sram" && s != "rram") yaml_fail(file, node["cell"], "imc.cell must be sram or rram (got '" + s + "')");
    p.cell = s == "sram" ? ImcCell::sram : ImcCell::rram;
  }
  if (node["subarray"]) {
    const std::string s = yaml_string(file, node["subarray"], "imc.subarray");
    int64_t r = 0, c = 0;
    if (!parse_rxc(s, r, c)) yaml_fail(file, node["subarray"], "imc.subarray must be ROWSxCOLS, e.g. 128x128 (got '" + s + "')");
    if (r < 8 || r > 4096 || c < 8 || c > 4096)
      yaml_fail(file, node["subarray"], "imc.subarray = " + s + " is out of range [8, 4096] in each dimension");
    p.rows = r;
    p.cols = c;
  }
  if (node["subarray_rows"]) p.rows = yaml_int(file, node["subarray_rows"], "imc.subarray_rows", 8, 4096);
  if (node["subarray_cols"]) p.cols = yaml_int(file, node["subarray_cols"], "imc.subarray_cols", 8, 4096);
  if (node["cell_bits"]) p.cell_bits = int(yaml_int(file, node["cell_bits"], "imc.cell_bits", 1, 4));
  if (node["adc_bits"]) p.adc_bits = int(yaml_int(file, node["adc_bits"], "imc.adc_bits", 1, 12));
  if (node["cols_per_adc"]) p.cols_per_adc = yaml_int(file, node["cols_per_adc"], "imc.cols_per_adc", 1, 4096);
  if (node["parallel_rows"]) p.parallel_rows = yaml_int(file, node["parallel_rows"], "imc.parallel_rows", 0, 4096);
  if (node["clock_mhz"]) p.clock_mhz = yaml_real(file, node["clock_mhz"], "imc.clock_mhz", 1, 10000);
  if (node["kv_placement"]) {
    const std::string s = yaml_string(file, node["kv_placement"], "imc.kv_placement");
    if (s != "write" && s != "sram")
      yaml_fail(file, node["kv_placement"], "imc.kv_placement must be write or sram (got '" + s + "')");
    p.kv_placement = s == "sram" ? KvPlacement::sram : KvPlacement::write;
  }
  if (node["input_bits"]) p.input_bits = int(yaml_int(file, node["input_bits"], "imc.input_bits", 0, 16));
  if (node["weight_bits"]) p.weight_bits = int(yaml_int(file, node["weight_bits"], "imc.weight_bits", 0, 16));
  if (node["input_activity"]) p.input_activity = yaml_real(file, node["input_activity"], "imc.input_activity", 0, 1);
  for (const ImcFigureField& f : imc_figure_fields())
    if (node[f.name]) p.overrides[f.name] = yaml_real(file, node[f.name], std::string("imc.") + f.name, f.lo, f.hi);
}

void load_imc_config(ImcParams& p, const std::string& path) {
  const std::string text = read_text(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(ExitCode::invalid_input, e.msg, SourceLoc{path, e.mark.line + 1, e.mark.column + 1});
  }
  if (!root.IsMap())
    throw Error(ExitCode::invalid_input, "an IMC config must be a YAML mapping of parameter: value (sattn-imc(1))",
                SourceLoc{path, 1, 1});
  apply_yaml(p, root, path);
}

void validate(const ImcParams& p, int weight_bits) {
  auto fail = [](const std::string& m) { throw Error(ExitCode::invalid_input, m); };
  if (p.rows < 8 || p.rows > 4096 || p.cols < 8 || p.cols > 4096)
    fail("sub-array " + std::to_string(p.rows) + "x" + std::to_string(p.cols) + " is out of range [8, 4096] in each dimension");
  if (p.cell == ImcCell::sram && p.cell_bits != 1)
    fail("cell_bits = " + std::to_string(p.cell_bits) + " with an SRAM cell: SRAM cells hold 1 bit (use --cell rram)");
  if (p.cell_bits < 1 || p.cell_bits > 4) fail("cell_bits = " + std::to_string(p.cell_bits) + " is out of range [1, 4]");
  if (p.adc_bits < 1 || p.adc_bits > 12) fail("adc_bits = " + std::to_string(p.adc_bits) + " is out of range [1, 12]");
  if (p.cols_per_adc < 1 || p.cols_per_adc > p.cols)
    fail("cols_per_adc = " + std::to_string(p.cols_per_adc) + " is out of range [1, " + std::to_string(p.cols) +
         "] (the sub-array's columns)");
  if (p.parallel_rows < 0 || p.parallel_rows > p.rows)
    fail("parallel_rows = " + std::to_string(p.parallel_rows) + " is out of range [0 (all), " + std::to_string(p.rows) +
         "] (the sub-array's rows)");
  if (p.clock() < 1 || p.clock() > 10000) fail("clock_mhz is out of range [1, 10000]");
  if (p.input_activity < 0 || p.input_activity > 1) fail("input_activity is out of range [0, 1]");
  const int cpw = (weight_bits + p.cell_bits - 1) / p.cell_bits;
  if (cpw > p.cols)
    fail("a " + std::to_string(weight_bits) + "-bit weight needs " + std::to_string(cpw) + " cells of " +
         std::to_string(p.cell_bits) + " bit(s), more than the sub-array's " + std::to_string(p.cols) + " columns");
  node_of(p.tech_nm);
}

nlohmann::json to_json(const ImcParams& p) {
  nlohmann::json j{{"tech_nm", p.tech_nm},
                   {"cell", std::string(to_string(p.cell))},
                   {"subarray_rows", p.rows},
                   {"subarray_cols", p.cols},
                   {"cell_bits", p.cell_bits},
                   {"adc_bits", p.adc_bits},
                   {"cols_per_adc", p.cols_per_adc},
                   {"parallel_rows", p.parallel()},
                   {"clock_mhz", p.clock()},
                   {"kv_placement", std::string(to_string(p.kv_placement))},
                   {"input_activity", p.input_activity}};
  nlohmann::json figs;
  const ImcFigures f = p.figures();
  for (const ImcFigureField& field : imc_figure_fields()) figs[field.name] = f.*(field.member);
  j["figures"] = figs;
  nlohmann::json over = nlohmann::json::array();
  for (const auto& [k, v] : p.overrides) over.push_back(k);
  j["overridden"] = over;
  return j;
}

// Profiles validate their `imc:` section with the same loader the tool applies.
void register_imc_profile_section() {
  register_profile_section("imc", [](const YAML::Node& node, const std::string& file) {
    ImcParams scratch;
    apply_yaml(scratch, node, file);
  });
}

}  // namespace sattn
