// Spec selection (DESIGN §6): rules, then a cost model, then overrides; plans (sattn.plan/v1).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/op.hpp"

namespace sattn {

enum class Backend { cpu, rvv, rocc, imc };
std::string_view to_string(Backend);
std::optional<Backend> parse_backend(std::string_view);

// Selector hints. Precedence: flags > environment > profile > defaults; see
// resolve_select_options().
struct SelectOptions {
  Backend backend = Backend::cpu;
  std::optional<Spec> force;        // --force-spec / SATTN_FORCE_SPEC (the op's spec attribute ranks below)
  std::set<Spec> disabled;          // --disable / SATTN_DISABLE_{SW,BSR,NM,TOPK,LSH}
  bool prefer_bsr = false;          // --prefer-bsr / SATTN_PREFER_BSR
  bool prefer_sw = false;           // --prefer-sw / SATTN_PREFER_SW
  std::optional<int64_t> l1_bytes;  // --l1-bytes / SATTN_HW_L1_BYTES (default per backend)
  bool use_hw_probe = false;        // --use-hw-probe
  // A profile's defaults for ops that do not set these attributes themselves.
  std::optional<Precision> default_precision;
  std::optional<int64_t> default_tile_rows;
  // Where each hint came from, quoted in the selection reason: "force" -> "--force-spec bsr" or
  // "SATTN_FORCE_SPEC=bsr"; "disable:<spec>" -> "--disable bsr" or "SATTN_DISABLE_BSR=1";
  // "prefer", "l1_bytes" likewise. Filled by resolve_select_options(); a missing key reads as
  // the option's name.
  std::map<std::string, std::string> source;
};

struct ProfileSelect;  // profile.hpp
// Fills every field the flags left unset from the environment (SATTN_*), then from the profile's
// select section when one is given (precedence: flags > environment > profile > defaults).
// `flags` holds what the command line said; `flag_set` names the fields it set explicitly.
SelectOptions resolve_select_options(const SelectOptions& flags, const std::set<std::string>& flag_set,
                                     const ProfileSelect* profile = nullptr, const std::string& profile_name = "");

struct Candidate {
  Spec spec = Spec::dense;
  bool feasible = true;
  std::string why_not;     // when infeasible or disabled
  nlohmann::json terms;    // cost terms: macs, bytes, l1_fit, penalties, ...
  double cost = 0;         // total modelled cost (lower is better)
};

struct Selection {
  std::string kind;    // "override", "rule", "cost", "default"
  std::string reason;  // human-readable: "global_tokens = 16 > 0", "SATTN_FORCE_SPEC=bsr", ...
  std::vector<Candidate> candidates;
};

struct Plan {
  Op op;
  Spec spec = Spec::dense;
  SpecParams params;
  Backend backend = Backend::cpu;
  Selection selection;
};

// Selects a spec for `op`. A forced spec the op cannot support is Error(invalid_input) naming why.
Plan select_spec(const Op&, const SelectOptions&);

nlohmann::json plan_to_json(const Plan&);
// Reads plans (sattn.plan/v1 JSON Lines) or bare ops in any op format, selecting in-process
// with `options` for bare ops. Errors carry file:line:col.
std::vector<Plan> read_plans(const std::string& path, const SelectOptions& options);
std::vector<Plan> parse_plans(std::string_view text, const std::string& filename, const SelectOptions& options);

}  // namespace sattn
