#include "cli/select_flags.hpp"

#include <CLI/CLI.hpp>
#include <set>

#include "backends/rocc/sim_probe.hpp"
#include "cli/data_layout.hpp"

namespace sattn {

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

void SelectFlags::add_recall_to(CLI::App& app) {
  min_recall_opt = app.add_option("--min-recall", min_recall,
                                  "Quality target: the cheapest candidate of the recall grid whose recall (the worst head's "
                                  "mean share of dense attention mass kept) on the calibration data is at least R, "
                                  "else dense with a warning (outranks SATTN_MIN_RECALL and the profile's select.min_recall)");
  confidence_opt = app.add_option("--recall-confidence", recall_confidence,
                                  "How sure the recall bound is that other text reaches R, from 0.5 to below 1: the bound "
                                  "is mean - sqrt(2) z(C) x standard error (0.5: the plain calibration mean; lower is "
                                  "cheaper and misses R more often; outranks SATTN_RECALL_CONFIDENCE and the profile's "
                                  "select.recall_confidence)")
                       ->capture_default_str();
  bound_opt = app.add_option("--recall-bound", recall_bound,
                             "What the recall bound covers: window (each further window of text reaches R: a "
                             "prediction bound for one more window) or mean (the recall of many windows pooled "
                             "reaches R: a confidence bound for the mean, cheaper with more --data samples) or cv "
                             "(the mean bound, its confidence chosen up to C by leave-one-out cross-validation over 4 "
                             "or more --data samples); outranks SATTN_RECALL_BOUND and the profile's "
                             "select.recall_bound")
                  ->check(CLI::IsMember({"window", "mean", "cv"}))
                  ->capture_default_str();
  data_opt = app.add_option("--data", data,
                            "Calibration sample for --min-recall: DIR/q.npy, k.npy, v.npy (repeatable: several samples)")
                 ->allow_extra_args(false);
  add_layout_option(app, layout, data_opt);
  seed_opt = app.add_option("--seed", seed, "Seed of the synthetic calibration sample when --data is not given")
                 ->capture_default_str()
                 ->excludes(data_opt);
}

SelectRequest SelectFlags::request() const {
  SelectRequest req;
  if (min_recall_opt && min_recall_opt->count()) req.min_recall = min_recall;
  if (confidence_opt && confidence_opt->count()) req.recall_confidence = recall_confidence;
  if (bound_opt && bound_opt->count()) req.recall_bound = parse_recall_bound(recall_bound);
  if (data_opt) req.data = data;
  req.layout = layout;
  if (seed_opt && seed_opt->count()) req.seed = seed;
  if (backend_opt && backend_opt->count()) req.backend = backend;
  if (force_opt->count()) req.force = spec_option("--force-spec", force);
  if (disable_opt->count()) {
    req.disable.emplace();
    for (const std::string& s : disable) req.disable->push_back(spec_option("--disable", s));
  }
  if (prefer_bsr_opt->count() || prefer_sw_opt->count()) {
    req.prefer_bsr = prefer_bsr;
    req.prefer_sw = prefer_sw;
  }
  if (l1_opt->count()) req.l1_bytes = l1_bytes;
  if (profile_opt && profile_opt->count()) req.profile = profile;
  if (probe_opt && probe_opt->count()) {
    req.use_hw_probe = true;
    req.hw = probe_hw_capabilities();  // the tool asks the accelerator; the selector gets data
  }
  return req;
}

SelectOptions SelectFlags::resolve() const { return resolve_select_request(request()); }

}  // namespace sattn
