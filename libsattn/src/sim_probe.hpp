// The accelerator's PROBE, as sattn-sim --probe prints it (sattn.probe/v1) and as
// sattn-select --use-hw-probe folds it into selection.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "sattn/accel.hpp"
#include "sattn/select.hpp"

namespace sattn {

struct ProbeReport {
  accel::Capabilities caps;
  std::string harness;
  nlohmann::json json;  // sattn.probe/v1 (schemas/probe.schema.json)
  std::string text;     // the same as aligned "key  value" lines
};

// Runs PROBE on the RTL harness of config.lanes. Errors as accel::probe_rtl (a missing harness
// is Error(external_tool) with the command that installs Verilator).
ProbeReport probe_accelerator(const accel::Config&, const accel::RtlOptions&, const std::string& tool);
// The sattn.probe/v1 document of decoded capabilities.
nlohmann::json probe_json(const accel::Capabilities&, const std::string& harness, const std::string& tool);

// --use-hw-probe: specs the accelerator does not support become disabled with the reason
// "not supported by the accelerator (probe)" (a forced one is Error(usage)), and its scratchpad
// size becomes the l1_bytes hint unless a flag or the environment set one. Each decision is
// recorded in options.source ("probe", "unsupported:<spec>", "l1_bytes").
void fold_probe(SelectOptions& options, const accel::Capabilities&, const std::string& harness);
// Runs the probe (default accelerator configuration) and folds it.
void fold_hw_probe(SelectOptions& options);

}  // namespace sattn
