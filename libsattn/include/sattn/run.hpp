// One op, end to end on the host CPU: data, layout, fast kernel, reference check, result JSON.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sattn/attention.hpp"
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

// Runs `op` with `spec` (default: default_spec(op)) on the fast CPU kernel and checks it against
// the reference. `tool` names the producer in the result.
CpuRun run_cpu(const Op&, std::optional<Spec> spec, const DataSource&, const FastOptions&, const std::string& tool);

// sattn.* documents carry {"schema", "producer": {"tool", "version"}}.
nlohmann::json envelope(const std::string& kind, const std::string& tool);

}  // namespace sattn
