#include "select_flags.hpp"

#include <CLI/CLI.hpp>
#include <set>

namespace sattn {

Spec spec_option(const std::string& option, const std::string& value) {
  auto spec = parse_spec(value);
  if (!spec)
    throw Error(ExitCode::usage, option + ": unknown spec '" + value +
                                     "' (dense, sliding_window, bsr, block_local_global, nm_structured, "
                                     "topk_per_query, lsh, landmark)");
  return *spec;
}

void SelectFlags::add_to(CLI::App& app, const std::string& context, bool with_backend, bool with_probe) {
  if (with_backend)
    backend_opt = app.add_option("--backend", backend, context + "Target backend of the cost model: cpu, rvv, rocc or imc")
                      ->capture_default_str();
  force_opt = app.add_option("--force-spec,--spec", force,
                             context + "Use this spec for every op (outranks SATTN_FORCE_SPEC and the op's spec attribute)");
  disable_opt = app.add_option("--disable", disable,
                               context + "Never select SPEC (repeatable, or comma-separated); adds to SATTN_DISABLE_*")
                    ->delimiter(',')
                    ->allow_extra_args(false);  // one value per --disable: the op files follow
  prefer_bsr_opt = app.add_flag("--prefer-bsr", prefer_bsr, context + "Scale bsr's cost by 0.75, sliding_window's by 1.1");
  prefer_sw_opt = app.add_flag("--prefer-sw", prefer_sw, context + "Scale sliding_window's cost by 0.75, bsr's by 1.1")
                      ->excludes(prefer_bsr_opt);
  l1_opt = app.add_option("--l1-bytes", l1_bytes,
                          context + "L1 / scratchpad bytes of the target (outranks SATTN_HW_L1_BYTES)");
  profile_opt = app.add_option("--profile", profile,
                               context + "Profile NAME or PATH: selector hints, backend parameters, defaults "
                                         "(flags > environment > profile; see sattn-profile(5))");
  if (with_probe)
    probe_opt = app.add_flag("--use-hw-probe", use_hw_probe,
                             context + "Run the accelerator's PROBE (its RTL harness): disable the specs it lacks, use its scratchpad size as the L1 hint");
}

std::optional<Profile> SelectFlags::load_profile_if_given() const {
  if (!profile_opt || !profile_opt->count()) return std::nullopt;
  return load_profile(profile);
}

SelectOptions SelectFlags::resolve() const {
  SelectOptions flags;
  std::set<std::string> given;
  const std::optional<Profile> prof = load_profile_if_given();
  const std::optional<ProfileSelect> prof_select = prof ? std::optional(profile_select(*prof)) : std::nullopt;
  std::string target = backend;
  if (prof_select && prof_select->backend && !(backend_opt && backend_opt->count())) target = *prof_select->backend;
  const auto parsed = parse_backend(target);
  if (!parsed) throw Error(ExitCode::usage, "--backend must be cpu, rvv, rocc or imc (got '" + target + "')");
  flags.backend = *parsed;
  if (force_opt->count()) {
    flags.force = spec_option("--force-spec", force);
    given.insert("force");
  }
  if (disable_opt->count()) {
    for (const std::string& s : disable) flags.disabled.insert(spec_option("--disable", s));
    given.insert("disabled");
  }
  if (prefer_bsr_opt->count() || prefer_sw_opt->count()) {
    flags.prefer_bsr = prefer_bsr;
    flags.prefer_sw = prefer_sw;
    given.insert(prefer_bsr ? "prefer_bsr" : "prefer_sw");
  }
  if (l1_opt->count()) {
    flags.l1_bytes = l1_bytes;
    given.insert("l1_bytes");
  }
  if (probe_opt && probe_opt->count()) {
    flags.use_hw_probe = true;
    given.insert("use_hw_probe");
  }
  SelectOptions out = resolve_select_options(flags, given, prof_select ? &*prof_select : nullptr, profile);
  if (prof) {
    const ProfileDefaults d = profile_defaults(*prof);
    out.default_precision = d.precision;
    out.default_tile_rows = d.tile_rows;
  }
  return out;
}

}  // namespace sattn
