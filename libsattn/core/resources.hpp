// Memory guard (issue 9, docs/robustness.md "Resources"): before a tool allocates the data and
// layout of an op, it estimates the peak bytes and fails fast (exit 1, with the estimate) when
// they exceed the limit, instead of being killed by the OOM killer half way through.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sattn/op.hpp"

namespace sattn {

// What a tool holds at its peak for one op.
struct MemoryUse {
  bool data = true;             // Q, K, V as fp32 tensors
  bool outputs = true;          // O and the reference's O
  bool layout = true;           // the sparsity layout in memory (CSR / BSR index arrays)
  bool layout_streamed = false; // rows generated one at a time (sattn-emit, sliding_window): row pointers only
};

struct MemoryEstimate {
  int64_t bytes = 0;                                   // the total
  std::vector<std::pair<std::string, int64_t>> parts;  // "q, k, v", "o, reference o", "layout"
  int64_t index_entries = 0;                           // layout entries (indices or blocks), all layouts
  double pairs = 0;                                    // (query, key) pairs the kernels visit, upper bound
};

// The estimate for `op` under `spec` with resolved `params`. Layout sizes are upper bounds from
// the spec's parameters (for lsh: the expected bucket size); they never build the layout.
MemoryEstimate estimate_memory(const Op& op, Spec spec, const SpecParams& params, const MemoryUse& use);

// "17179869184", "16G", "512MiB", "1.5T", "80%" (of physical memory). Throws Error(usage)
// naming `what` (the flag or variable) on anything else.
int64_t parse_memory_size(const std::string& text, const std::string& what);

// The limit: --max-memory when given, else SATTN_MAX_MEMORY, else 80% of physical memory (or of
// the cgroup's memory.max when that is lower). 0 = no limit ("--max-memory 0").
struct MemoryLimit {
  int64_t bytes = 0;
  std::string source;  // "--max-memory 8G", "SATTN_MAX_MEMORY=8G", "80% of physical memory (24.0 GiB)"
};
// `flag` is what the caller was given (the tools' --max-memory); the library keeps no limit of its own.
MemoryLimit memory_limit(const std::optional<std::string>& flag = std::nullopt);

// What check_memory() throws: an Error(runtime) that says the op was refused before anything was
// allocated (sattn run --backend all stops at it: every backend would refuse the same way).
struct MemoryRefused : Error {
  MemoryRefused(const std::string& message, SourceLoc loc) : Error(ExitCode::runtime, message, std::move(loc)) {}
};

// Throws Error(runtime) when `e` exceeds the limit: "op 'x': estimated peak memory 4.0 TiB
// (layout 4.0 TiB, ...) exceeds --max-memory ...", located at the op.
void check_memory(const Op& op, Spec spec, const MemoryEstimate& e, const MemoryLimit& limit);

// Convenience: estimate + check.
void guard_memory(const Op& op, Spec spec, const SpecParams& params, const MemoryUse& use, const MemoryLimit& limit);

// "1.5 GiB", "512 B".
std::string format_bytes(double bytes);

}  // namespace sattn
