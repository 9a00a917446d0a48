// The plan (sattn.plan/v1): what the selector decided for one op: the spec, its parameters, the
// cost model's target and why (every candidate with its cost). A core type (ARCHITECTURE R1):
// backends, formats and the selector all use it; select.hpp makes it.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sattn/op.hpp"

namespace sattn {

enum class Target { cpu, rvv, rocc, imc };
std::string_view to_string(Target);
// "cpu", "rvv", "rocc", "imc"; the deprecated aliases "sim" and "accel" (for one release) mean rocc.
std::optional<Target> parse_backend(std::string_view);
// The backend names of one release ago: "sim" (sattn run, bench) and "accel" (code, profile
// sections) both mean "rocc" now. Returns the canonical name of a deprecated alias, else nullopt.
std::optional<std::string_view> deprecated_backend_alias(std::string_view name);
// `name` itself, or the canonical name of a deprecated alias; the first use of each alias in a
// process reports one deprecation warning (the caller's warning handler; `where`, e.g.
// "file:line:col", prefixes it).
std::string canonical_backend_name(std::string_view name, std::string_view where = {});

struct Candidate {
  Spec spec = Spec::dense;
  bool feasible = true;
  std::string why_not;     // when infeasible or disabled
  std::string terms = "{}";  // cost terms as a JSON object: macs, kv_bytes, l1_fit, cycles {...}, ...
  double cost = 0;         // total modelled cost (lower is better)
};

struct Selection {
  std::string kind;    // "override", "rule", "cost", "default", "recall"
  std::string reason;  // human-readable: "global_tokens = 16 > 0", "SATTN_FORCE_SPEC=bsr", ...
  std::vector<Candidate> candidates;
  std::optional<double> min_recall;   // the target of a "recall" selection
  std::vector<std::string> warnings;  // for stderr (no candidate met the target: dense); not in the plan
};

struct Plan {
  Op op;
  Spec spec = Spec::dense;
  SpecParams params;
  Target backend = Target::cpu;
  Selection selection;
};

}  // namespace sattn
