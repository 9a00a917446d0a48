// One op on the accelerator, as sattn-sim runs it: quantize, build the command stream, run the
// bit-exact model and the RTL, check RTL == model bit for bit and the output against the fp32
// reference, and describe it all as a sattn.result/v1 with a "sim" section (cycles, stalls,
// roofline, energy).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/rocc/accel.hpp"
#include "backends/rocc/energy.hpp"
#include "backends/backend.hpp"
#include "formats/data.hpp"

namespace sattn {

struct SimSettings {
  accel::Config config;
  accel::RtlOptions rtl;
  EnergyModel energy;
  std::optional<Precision> precision;  // --precision: overrides the op's
  bool model_only = false;             // skip the RTL
  bool grid_from_flag = false;         // the grid came from --grid, not a profile (run_sim)
};

struct SimRun {
  nlohmann::json result;            // sattn.result/v1
  Tensor out;                       // the decoded output
  bool model_match = true;          // RTL == model (output bits and counters); true when model-only
  bool within_tolerance = false;    // fp32 reference and quantized reference checks
  std::vector<std::string> failures;  // one line per failed check, for stderr
  std::vector<std::string> notes;     // e.g. "fp32 op run at i8"
  bool passed() const { return model_match && within_tolerance; }
};

// The settings a profile gives: the defaults, then its accel: and energy: sections (base first).
SimSettings sim_settings(const std::optional<std::string>& profile);

// The precision the accelerator runs `op` at: --precision, else the op's i8/i4, else i8 (the
// datapath is integer-only; `note` then says so).
Precision sim_precision(const Op&, const std::optional<Precision>& forced, std::string* note);

// Runs one op. `data` are the fp32 inputs (quantized here with the op's scales or absmax).
SimRun run_sim(const BackendInput&, const QKV& data, const nlohmann::json& data_desc, const SimSettings&,
               const std::string& tool);

// Where two output images first differ: "element [b, h, i, d] (index n): RTL x, model y", or ""
// when they are equal. Sizes that differ are reported as such.
std::string first_difference(const std::vector<int16_t>& rtl, const std::vector<int16_t>& model, const Shape&);
// The first counter that differs ("cycles: RTL 10, model 12"), or "".
std::string counter_difference(const accel::Counters& rtl, const accel::Counters& model);

// Tolerance of the check against a reference fed the same quantized inputs: what is left is the
// datapath's fixed-point softmax and its Q8.8 output (hw/README.md "Accuracy").
double quantized_reference_tolerance(Precision);

const Backend& rocc_backend();

}  // namespace sattn
