// The backends behind one interface (ARCHITECTURE.md): cpu (host kernels), cuda (GPU kernels),
// rvv (RVV 1.0 kernels under QEMU), sim (the RoCC accelerator's RTL under Verilator) and imc (the
// crossbar cost model). Each one runs an op and checks it against the double-precision reference
// (imc, a cost model, reports without a check); `sattn run --backend all` loops over the registry.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sattn/formats.hpp"
#include "sattn/layout.hpp"
#include "sattn/select.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

// One op for a backend: its plan and, when it came from artifacts, their layout and data.
struct BackendInput {
  std::string input;  // the file it was read from ("-" = stdin)
  Plan plan;
  std::optional<Layout> layout;
  std::optional<QKV> data;
};

struct BackendCapabilities {
  std::vector<Precision> precisions;  // what it runs natively (others are converted, with a note)
  bool checks_output = true;          // compares its output with the reference (imc: a cost model, no output)
  bool in_all = true;                 // one of `sattn run --backend all` (cuda is not: it needs a GPU)
  std::string needs;                  // what it needs at run time, for messages ("" = nothing)
  bool softcap = false;               // runs logit soft-capping (Op::softcap)
};

// What a caller gives every backend run.
struct BackendRunOptions {
  std::string tool = "sattn";           // the producer named in results and messages
  std::optional<std::string> profile;   // the profile whose backend sections apply (sattn-profile(5))
  int threads = 0;                      // host threads (cpu; 0 = all cores)
  bool progress = false;                // a progress line on stderr (the caller decides: TTY, not -q)
};

struct BackendResult {
  std::string json;                    // the result document: sattn.result/v1 (sattn.imc/v1 for imc), one line
  bool passed = true;                  // the check against the reference (true when none is made)
  std::vector<std::string> notes;      // for stderr, located at the op ("fp32 op run at i8")
  std::vector<std::string> failures;   // one line per failed check, for stderr
  std::optional<Tensor> out;           // the output, from backends that compute one (imc does not)
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;     // as `sattn run --backend NAME` and results say it
  virtual std::string_view summary() const = 0;  // one line
  virtual Target cost_target() const = 0;        // the cost model that selects bare ops for it
  virtual BackendCapabilities capabilities() const = 0;
  // Fails fast (Error(external_tool), with the command that installs what is missing) before any
  // work when the backend cannot run here: no qemu, no Verilator harness, no GPU.
  virtual void require_available(const BackendRunOptions&) const {}
  // Runs one op: layout (the input's, else built), the backend's kernel or simulation, the check.
  virtual BackendResult run(const BackendInput&, const QKV& data, const DataSource&, const BackendRunOptions&) const = 0;
};

// Refuses, before any work, an op the backend's capabilities say it cannot run (softcap today):
// Error(usage) at the op, naming the backend, the attribute and the backends that can.
void require_supported(const Backend&, const std::vector<BackendInput>&);

// Every built-in backend: cpu, cuda, rvv, sim, imc (`sattn run --backend all`: those with in_all).
const std::vector<const Backend*>& backend_registry();
// By name; nullptr when there is none.
const Backend* find_backend(std::string_view name);

}  // namespace sattn
