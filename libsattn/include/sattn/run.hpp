// One op, end to end on the host CPU: data, layout, fast kernel, reference check, result JSON.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/attention.hpp"
#include "sattn/resources.hpp"
#include "sattn/select.hpp"
#include "sattn/synthetic.hpp"

namespace sattn {

struct DataSource {
  std::optional<std::string> dir;  // q.npy, k.npy, v.npy; else synthetic
  uint64_t seed = kDefaultSeed;
};

// Reads DIR/{q,k,v}.npy or generates synthetic data. Shapes must match the op
// (q: [batch, heads, seq_len, head_dim]; k, v: [batch, kv_heads, kv_len, head_dim]); NaN or Inf
// values are input errors naming the file and element.
QKV load_qkv(const Op&, const DataSource&);

struct CpuRun {
  Spec spec = Spec::dense;
  SpecParams params;
  Tensor out;
  ErrorStats error;
  double tolerance = 0;
  bool passed = false;
  nlohmann::json result;  // sattn.result/v1
};

// The check every backend run on the host makes: `r.out` against the CPU reference on the same
// layout at the precision's tolerance. Fills r.error, r.tolerance, r.passed; returns the result's
// "check" object and the reference's wall time in `reference_ms`.
nlohmann::json check_against_reference(const Op& op, const Layout& layout, const QKV& data, CpuRun& r,
                                       double& reference_ms);

// Runs a plan on the fast CPU kernel and checks it against the reference on the same layout.
// `layout` is the plan's layout when it came from artifacts (else it is built here); `data_desc`
// describes where `data` came from, for the result. `tool` names the producer.
CpuRun run_cpu(const Plan&, const Layout* layout, const QKV& data, const nlohmann::json& data_desc,
               const FastOptions&, const std::string& tool);
// Describes a DataSource for results and envelopes.
nlohmann::json describe(const DataSource&);

// One op for a backend: its plan and, when it came from artifacts, their layout and data.
struct BackendInput {
  std::string input;  // the file it was read from ("-" = stdin)
  Plan plan;
  std::optional<Layout> layout;
  std::optional<QKV> data;
};
// Reads one input file the way every backend tool does: artifacts (an artifacts.json, or the
// envelope lines sattn-emit prints), plans (sattn.plan/v1 JSON Lines) or bare ops (MLIR, JSON,
// YAML: selected in-process with `selection`). Errors name the file, line and column.
std::vector<BackendInput> read_backend_inputs(const std::string& input, const SelectOptions& selection);
// The memory guard over every input, before any data or layout is made (sattn/resources.hpp):
// what an input already carries (artifacts' layout and data) is not counted again.
void guard_memory(const std::vector<BackendInput>& items, const MemoryUse& use);

// What a result says about a layout: granularity, block size, sharing, nnz, allowed (query, key)
// pairs over every query head, density.
nlohmann::json layout_summary(const Op&, const Layout&);
// The members every sattn.result/v1 starts with: schema and producer, op (as run), spec, params,
// backend, precision (the one the backend ran at), data, selection, layout.
nlohmann::json result_header(const Plan&, const Op& op_as_run, Precision, const std::string& backend,
                             const nlohmann::json& data_desc, const Layout&, const std::string& tool);

// sattn.* documents carry {"schema", "producer": {"tool", "version"}}.
nlohmann::json envelope(const std::string& kind, const std::string& tool);

}  // namespace sattn
