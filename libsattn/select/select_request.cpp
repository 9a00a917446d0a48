// The merge of a caller's request with the environment, the profile and the defaults: one function
// for the tools' flags, the MLIR passes' options and the C API (ARCHITECTURE.md, R4).
#include <set>

#include "formats/profile.hpp"
#include "sattn/error.hpp"
#include "sattn/select.hpp"

namespace sattn {

Spec spec_option(const std::string& option, const std::string& value) {
  auto spec = parse_spec(value);
  if (!spec)
    throw Error(ExitCode::usage, option + ": unknown spec '" + value +
                                     "' (dense, sliding_window, bsr, block_local_global, nm_structured, "
                                     "topk_per_query, lsh, landmark, quest)");
  return *spec;
}


SelectOptions resolve_select_request(const SelectRequest& req) {
  SelectOptions flags;
  std::set<std::string> given;
  const std::optional<Profile> prof = req.profile ? std::optional(load_profile(*req.profile)) : std::nullopt;
  const std::optional<ProfileSelect> prof_select = prof ? std::optional(profile_select(*prof)) : std::nullopt;
  std::string target = req.backend.value_or("cpu");
  if (prof_select && prof_select->backend && !req.backend) target = *prof_select->backend;
  const auto parsed = parse_backend(target);
  if (!parsed) throw Error(ExitCode::usage, "--backend must be cpu, rvv, rocc or imc (got '" + target + "')");
  flags.backend = *parsed;
  if (req.force) {
    flags.force = req.force;
    given.insert("force");
  }
  if (req.disable) {
    flags.disabled.insert(req.disable->begin(), req.disable->end());
    given.insert("disabled");
  }
  if (req.prefer_bsr || req.prefer_sw) {
    flags.prefer_bsr = req.prefer_bsr.value_or(false);
    flags.prefer_sw = req.prefer_sw.value_or(false);
    given.insert(flags.prefer_bsr ? "prefer_bsr" : "prefer_sw");
  }
  if (req.l1_bytes) {
    flags.l1_bytes = req.l1_bytes;
    given.insert("l1_bytes");
  }
  if (req.use_hw_probe) {
    flags.use_hw_probe = true;
    flags.hw = req.hw;
    given.insert("use_hw_probe");
  }
  if (req.min_recall) {
    flags.min_recall = req.min_recall;
    given.insert("min_recall");
  }
  if (req.recall_confidence) {
    flags.recall_confidence = *req.recall_confidence;
    given.insert("recall_confidence");
  }
  if (req.recall_bound) {
    flags.recall_bound = *req.recall_bound;
    given.insert("recall_bound");
  }
  flags.calibration_data = req.data;
  flags.calibration_layout = req.layout;
  if (req.seed) flags.calibration_seed = *req.seed;
  SelectOptions out = resolve_select_options(flags, given, prof_select ? &*prof_select : nullptr, req.profile.value_or(""));
  if (prof) {
    const ProfileDefaults d = profile_defaults(*prof);
    out.default_precision = d.precision;
    out.default_tile_rows = d.tile_rows;
  }
  return out;
}

}  // namespace sattn
