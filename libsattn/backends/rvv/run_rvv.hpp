// One op on the RVV backend, as sattn-run-rvv runs it: the riscv64 runner under qemu-riscv64 with
// the instruction-counting plugin, modelled cycles, the check against the reference, optionally
// an autotune sweep of tile_rows x LMUL (sattn-run-rvv(1)).
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.hpp"
#include "backends/rvv/rvv.hpp"
#include "backends/rvv/rvv_model.hpp"
#include "formats/data.hpp"

namespace sattn {

struct RvvSettings {
  rvv::Kernel kernel = rvv::Kernel::rvv;
  int vlen = 0;                         // 0: the core model's
  std::optional<Precision> precision;   // run at this precision instead of the op's
  std::optional<int> tile_rows, lmul;   // fixed by the caller (else the op's tile_rows / the kernel's)
  bool autotune = false;                // sweep tile_rows x LMUL (those not fixed)
  std::string qemu = "qemu-riscv64";
  double timeout_s = 600;
  bool keep_workdir = false;
  rvv::CoreModel core;
  // Where progress and notes go (the caller decides whether to show them); may be empty.
  std::function<void(const std::string&)> progress, note;
};

// The settings a profile gives (its rvv: sections applied to the core model, base first).
RvvSettings rvv_settings(const std::optional<std::string>& profile);

// Fails fast, before any work, when qemu or the counting plugin is missing (Error(external_tool)).
// Returns the plugin's path.
std::string require_rvv_tools(const RvvSettings&);

struct RvvRun {
  nlohmann::json result;  // sattn.result/v1 with an "rvv" section
  Op op;                  // as run (the precision may be overridden)
  int vlen = 0, tile_rows = 0, lmul = 0;
  uint64_t instructions = 0, vector_instructions = 0;
  double cycles = 0;
  ErrorStats error;
  double tolerance = 0;
  Tolerance tol;  // the check's criteria (quantization schemes: tolerance_of)
  bool passed = false;
  Tensor out;
};

// Runs one op. `label` prefixes the autotune progress line.
RvvRun run_rvv(const BackendInput&, const QKV& data, const DataSource&, const RvvSettings&, const std::string& tool,
               const std::string& label = "");

const Backend& rvv_backend();

}  // namespace sattn
