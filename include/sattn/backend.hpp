// The backends behind one interface (ARCHITECTURE.md): cpu (host kernels), cuda (GPU kernels),
// rvv (RVV 1.0 kernels under QEMU), rocc (the RoCC accelerator's RTL under Verilator) and imc (the
// crossbar cost model). Each one runs an op and checks it against the double-precision reference
// (imc, a cost model, reports without a check); `sattn run --backend all` loops over the registry.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sattn/cancel.hpp"
#include "sattn/formats.hpp"
#include "sattn/layout.hpp"
#include "sattn/plan.hpp"
#include "sattn/quant.hpp"
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
  // Runs every quantization scheme (sattn/quant.hpp). Without it a backend runs i8/i4 with the
  // per-tensor scheme only: an op asking for another is refused (exit 3), an op asking for none
  // runs per-tensor there.
  bool quant_schemes = false;
  // The widest head_dim it runs (0: any). A wider op is refused before any work (exit 3). rocc:
  // 256, its scratchpad row (DMAX); a narrower head it zero-pads to its MAC multiple (exact).
  int64_t max_head_dim = 0;
  // With quant_schemes: the P.V datapaths (the scheme's pv) it has; a scheme with another pv is
  // refused (exit 3) with the reason. The accelerator derives both from its PROBE bits.
  std::vector<PvPrecision> quant_pv = {PvPrecision::fp32, PvPrecision::i8, PvPrecision::fix16};
};

// How a run's output is checked against the double-precision reference (`sattn run --check`):
// full: every row; sample: a seeded subset of query rows (CheckOptions); none: no check (the
// result says so). automatic: full while the reference would visit at most kCheckSampleAbovePairs
// (query, key) pairs, sample above (the O(n^2) reference dominates long runs).
enum class CheckMode { automatic, full, sample, none };
inline constexpr double kCheckSampleAbovePairs = 8388608;  // 2^23 pairs: about a second of reference at head_dim 64
std::string_view to_string(CheckMode);
std::optional<CheckMode> parse_check_mode(std::string_view);  // "full", "sample", "none", "auto"

struct CheckOptions {
  CheckMode mode = CheckMode::automatic;
  // sample: this many query rows of every (batch, head), drawn with `seed` (splitmix64), always
  // including the first and the last row; on block layouts whole block rows, as many as cover
  // `rows` rows. All rows when there are no more than that.
  int64_t rows = 256;
  uint64_t seed = 0x5A77;
};

// Progress inside a long run (BackendRunOptions::progress): the stage and how much of it is done,
// reported from the calling thread only, a few hundred times per stage at most.
struct ProgressReport {
  std::string_view stage;  // "layout", "kernel", "check", "simulate"
  double done = 0;
  double total = 0;  // units of the stage (row tasks, rows); 0 = unknown
};
using ProgressFn = std::function<void(const ProgressReport&)>;

// The work of one op on one backend, before it runs (`sattn run --dry-run`, --max-pairs,
// --max-seconds): allowed pairs from the spec's parameters (exact for dense, causal or not; for
// the other specs the memory guard's upper bound) and wall time from the backend's rates
// (Backend::estimate).
struct WorkEstimate {
  double pairs = 0;            // (query, key) pairs the kernel visits, over batch and heads
  double macs = 0;             // pairs * 2 * head_dim (QK^T and PV)
  CheckMode check = CheckMode::full;  // the check the run makes (automatic resolved)
  double check_pairs = 0;      // pairs the reference check visits
  double kernel_seconds = 0;   // the backend's run (layout included)
  double check_seconds = 0;    // the reference check
  double seconds() const { return kernel_seconds + check_seconds; }
  std::string basis;           // how the time was estimated, for messages
};

// What a caller gives every backend run.
struct BackendRunOptions {
  std::string tool = "sattn";           // the producer named in results and messages
  std::optional<std::string> profile;   // the profile whose backend sections apply (sattn-profile(5))
  int threads = 0;                      // host threads (cpu; 0 = all cores)
  ProgressFn progress;                  // progress inside the run (the caller prints it: TTY, not -q); empty = none
  CheckOptions check;                   // how the output is checked against the reference
  // This call's cancellation (sattn/cancel.hpp): when requested, from a signal handler or another
  // thread, run() throws Interrupted at its next check and returns nothing partial. Calls with
  // different tokens (or none) are not affected. Null: only an enclosing CancelScope cancels it.
  const CancelToken* cancel = nullptr;
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
  // The work of a plan here, before any data or layout exists (see WorkEstimate).
  virtual WorkEstimate estimate(const Plan&, const BackendRunOptions&) const;
};

// The check a run of `pairs` reference pairs makes under `mode` (automatic resolved).
CheckMode resolve_check_mode(CheckMode mode, double reference_pairs);

// Refuses, before any work, an op the backend's capabilities say it cannot run: softcap
// (Error(usage)) and an integer op whose quant_scheme is not per-tensor on a backend without
// quant_schemes (Error(invalid_input)); at the op, naming the backend, the attribute, the reason
// and the backends that can.
void require_supported(const Backend&, const std::vector<BackendInput>&);

// Every built-in backend: cpu, cuda, rvv, rocc, imc (`sattn run --backend all`: those with in_all).
const std::vector<const Backend*>& backend_registry();
// By name (the deprecated aliases "sim" and "accel" find rocc, with one warning); nullptr when
// there is none.
const Backend* find_backend(std::string_view name);

}  // namespace sattn
