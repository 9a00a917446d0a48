// IMC cost: event counts -> energy, latency and area breakdowns (equations in sattn-imc(1)).
#include <algorithm>
#include <cmath>

#include "backends/imc/imc.hpp"

namespace sattn {

namespace {

constexpr double kScaleMultiplyAdds = 16;

double ceil_div(double a, double b) { return std::ceil(a / b); }

nlohmann::json breakdown_json(const ImcBreakdown& b) {
  return {{"array", b.array},   {"adc", b.adc},       {"accumulation", b.accumulation}, {"buffer", b.buffer},
          {"interconnect", b.interconnect}, {"writes", b.writes}, {"total", b.total()}};
}

}  // namespace

double ImcCost::tops() const {
  const double ns = latency_ns.total();
  return ns > 0 ? ops / ns / 1e3 : 0;  // ops / (ns * 1e-9) / 1e12
}
double ImcCost::tops_per_w() const {
  const double pj = energy_pj.total();
  return pj > 0 ? ops / pj : 0;  // ops / (pJ * 1e-12) / 1e12
}
double ImcCost::tops_per_mm2() const {
  const double a = area_mm2.total();
  return a > 0 ? tops() / a : 0;
}

ImcCost imc_cost(const ImcCounts& c, const ImcParams& p, ImcCell cell) {
  const ImcFigures f = p.figures(cell);
  ImcCost r;
  r.counts = c;
  r.ops = 2 * c.macs;
  const double cycle_ns = 1e3 / p.clock();
  const double adcs_per_array = std::ceil(double(p.cols) / double(p.cols_per_adc));
  const double arrays = double(c.arrays_allocated);
  const double f2_um2 = (p.tech_nm * 1e-3) * (p.tech_nm * 1e-3);  // F^2 in um^2

  // Area (mm^2). The H-tree is a fraction of everything else.
  ImcBreakdown& a = r.area_mm2;
  a.array = arrays * (double(p.rows * p.cols) * f.cell_area_f2 + double(p.rows + p.cols) * f.periphery_f2_per_line) *
            f2_um2 * 1e-6;
  a.adc = arrays * adcs_per_array * f.adc_area_um2 * std::pow(2.0, p.adc_bits - 4) * 1e-6;
  a.accumulation = arrays * adcs_per_array * f.accum_area_um2 * 1e-6;
  a.buffer = f.buffer_kib * f.buffer_area_um2_per_kib * 1e-6;
  a.writes = c.cells_written > 0 ? arrays * double(p.cols) * f.write_driver_f2_per_col * f2_um2 * 1e-6 : 0;
  a.interconnect = f.interconnect_area_fraction * (a.array + a.adc + a.accumulation + a.buffer + a.writes);

  // Energy (pJ). Rows and cells draw only for input bits that are 1 (input_activity).
  ImcBreakdown& e = r.energy_pj;
  e.array = p.input_activity *
            (c.row_activations * f.row_energy_fj_per_col * double(p.cols) + c.cell_reads * f.cell_read_energy_fj) * 1e-3;
  e.adc = c.adc_conversions * f.adc_fom_fj * std::pow(2.0, p.adc_bits) * 1e-3;
  // A quantization scheme's peripheral work (ImcScheme) is digital: an addition costs one
  // partial-sum addition, a scale multiply kScaleMultiplyAdds of them (a 16-bit multiplier; about
  // the multiply/add energy ratio of 16-bit integer units in Horowitz, ISSCC 2014); its tables
  // move through the global buffer.
  e.accumulation = c.shift_adds * f.shift_add_energy_pj + c.partial_sum_adds * f.accum_energy_pj +
                   (c.scale_adds + kScaleMultiplyAdds * c.scale_multiplies) * f.accum_energy_pj;
  e.buffer = (c.buffer_bits + c.scale_bits) * f.buffer_energy_pj_per_bit;
  // An H-tree leaf is on average half the chip's side from the root.
  const double distance_mm = 0.5 * std::sqrt(a.total());
  e.interconnect = c.interconnect_bits * f.interconnect_energy_pj_per_bit_mm * distance_mm;
  e.writes = c.cells_written * f.write_energy_pj_per_cell;

  // Latency (ns): the phases and the stages within them run one after another.
  ImcBreakdown& t = r.latency_ns;
  t.array = c.critical_read_ns;
  t.adc = c.critical_adc_ns;
  t.accumulation = ceil_div(c.partial_sum_adds + c.scale_adds + c.scale_multiplies, std::max(1.0, arrays)) *
                   cycle_ns;  // one adder (and scale multiplier) per sub-array
  t.buffer = ceil_div(c.buffer_bits + c.scale_bits, f.buffer_bits_per_cycle) * cycle_ns;
  t.interconnect = ceil_div(c.interconnect_bits, f.bus_bits_per_cycle) * cycle_ns;
  t.writes = double(c.critical_write_rows) * f.write_ns_per_row;
  return r;
}

nlohmann::json to_json(const ImcCost& r, const ImcParams& p, ImcCell cell) {
  const ImcCounts& c = r.counts;
  nlohmann::json j;
  j["cell"] = std::string(to_string(cell));
  j["counts"] = {{"arrays_allocated", c.arrays_allocated},
                 {"array_activations", c.array_activations},
                 {"row_activations", c.row_activations},
                 {"cell_reads", c.cell_reads},
                 {"adc_conversions", c.adc_conversions},
                 {"shift_adds", c.shift_adds},
                 {"partial_sum_adds", c.partial_sum_adds},
                 {"buffer_bits", c.buffer_bits},
                 {"interconnect_bits", c.interconnect_bits},
                 {"cells_written", c.cells_written},
                 {"macs", c.macs}};
  if (c.scale_multiplies > 0 || c.scale_adds > 0 || c.scale_bits > 0) {
    j["counts"]["scale_multiplies"] = c.scale_multiplies;
    j["counts"]["scale_adds"] = c.scale_adds;
    j["counts"]["scale_bits"] = c.scale_bits;
    j["counts"]["mean_vectors"] = c.mean_vectors;
  }
  j["energy_pj"] = breakdown_json(r.energy_pj);
  j["latency_ns"] = breakdown_json(r.latency_ns);
  j["area_mm2"] = breakdown_json(r.area_mm2);
  j["ops"] = r.ops;
  j["tops"] = r.tops();
  j["tops_per_w"] = r.tops_per_w();
  j["tops_per_mm2"] = r.tops_per_mm2();
  const ImcFigures f = p.figures(cell);
  if (c.cells_written > 0) {
    nlohmann::json e{{"writes_per_cell_per_op", 1}};
    if (f.endurance_cycles > 0) {
      e["endurance_cycles"] = f.endurance_cycles;
      e["ops_to_wearout"] = f.endurance_cycles;
      e["lifetime_s_back_to_back"] = f.endurance_cycles * r.latency_ns.total() * 1e-9;
    } else {
      e["endurance_cycles"] = nullptr;  // unlimited (SRAM)
    }
    j["endurance"] = e;
  }
  return j;
}

int imc_input_bits(Precision prec, const ImcParams& p) {
  if (p.input_bits > 0) return p.input_bits;
  return prec == Precision::i4 ? 4 : 8;
}

int imc_weight_bits(Precision prec, const ImcParams& p) {
  if (p.weight_bits > 0) return p.weight_bits;
  return prec == Precision::i4 ? 4 : 8;
}

}  // namespace sattn
