// The accelerator's PROBE, as sattn-sim --probe prints it (sattn.probe/v1) and as
// sattn-select --use-hw-probe folds it into selection.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "backends/rocc/accel.hpp"
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

// The selector's view of the accelerator (sattn-select --use-hw-probe): the specs it runs and its
// scratchpad size, as plain data (sattn/select.hpp HwCapabilities).
HwCapabilities hw_capabilities(const accel::Capabilities&, const std::string& harness);
// Runs the probe on the default accelerator configuration's harness.
HwCapabilities probe_hw_capabilities();

}  // namespace sattn
