// Spec selection (DESIGN §6): overrides, then rules, then the cost model (select_cost.cpp).
//
// Order of decisions for one op, each recorded in the plan's selection record:
//  1. A forced spec: --force-spec / SATTN_FORCE_SPEC (resolve_select_options() merged them,
//     flag over environment), else the op's `spec` / `force_spec` attribute unless that spec is
//     disabled (the environment and flags outrank the op). kind "override".
//  2. Rules, in order: global_tokens > 0 -> block_local_global; nm_n and nm_m -> nm_structured;
//     topk_k -> topk_per_query; lsh_buckets -> lsh; num_landmarks -> landmark; top_pages or
//     page_size -> quest. A rule whose spec
//     is disabled falls through to the next rule, then to the cost model. kind "rule".
//  3. The cost model over sliding_window, bsr and dense. A sparse spec takes part when the op
//     describes it (sliding_window: window_size, dilation or wrap; bsr: keep_ratio, block_size,
//     comp_block_size, or global_tokens after a disabled block_local_global rule); dense always
//     does, as the baseline. When the op describes sparse specs but all of them are disabled or
//     infeasible, every remaining candidate is compared with default parameters. kind "cost".
//  4. When the op describes no sparse spec at all there is nothing to cost: bsr with its
//     defaults (the prior prototype's rule), or the cheapest remaining candidate if bsr is
//     disabled or infeasible. kind "default".
#include "sattn/select.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "formats/profile.hpp"
#include "select/select_cost.hpp"

namespace sattn {

using select_detail::CostContext;

namespace {

// ---- hints: environment and flags -------------------------------------------------------------

// The environment variables of the prior prototype (plus BLG and LANDMARK), and what they disable.
struct DisableVariable {
  const char* name;
  Spec spec;
};
constexpr DisableVariable kDisableVariables[] = {
    {"SATTN_DISABLE_SW", Spec::sliding_window}, {"SATTN_DISABLE_BSR", Spec::bsr},
    {"SATTN_DISABLE_NM", Spec::nm_structured},  {"SATTN_DISABLE_TOPK", Spec::topk_per_query},
    {"SATTN_DISABLE_LSH", Spec::lsh},           {"SATTN_DISABLE_BLG", Spec::block_local_global},
    {"SATTN_DISABLE_LANDMARK", Spec::landmark}, {"SATTN_DISABLE_QUEST", Spec::quest},
};

// Largest accepted L1 size: 1 TiB, far above any cache, small enough to stay exact in a double.
constexpr int64_t kMaxL1Bytes = int64_t(1) << 40;

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Unset and empty read the same: absent.
std::optional<std::string> getenv_value(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

// Invalid values in the environment are usage errors (exit 2): the environment is part of how
// the tool was invoked, like its command line.
[[noreturn]] void bad_env(const char* name, const std::string& value, const std::string& expected) {
  throw Error(ExitCode::usage, std::string(name) + ": expected " + expected + ", got '" + value + "'");
}

std::optional<bool> env_bool(const char* name) {
  auto v = getenv_value(name);
  if (!v) return std::nullopt;
  const std::string s = lower(*v);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return false;
  bad_env(name, *v, "1, true or yes (or 0, false, no)");
}

std::string spec_list() {
  std::string s;
  for (Spec sp : kAllSpecs) s += (s.empty() ? "" : ", ") + std::string(to_string(sp));
  return s;
}

std::string spec_name(Spec s) {
  return std::string(to_string(s));
}

std::string disable_key(Spec s) {
  return "disable:" + spec_name(s);
}

// Which layer set a hint: the higher one wins a contradiction.
enum class Layer { none = 0, profile = 1, environment = 2, flag = 3 };

std::string source_of(const SelectOptions& o, const std::string& key, const std::string& fallback) {
  auto it = o.source.find(key);
  return it == o.source.end() ? fallback : it->second;
}

}  // namespace

namespace {

std::string fmt_recall(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The merge in progress: the options so far and, for force and disable, the layer that set them
// (a spec both forced and disabled: the higher layer wins; the same layer is a contradiction).
struct Merge {
  SelectOptions out;
  Layer force_layer = Layer::none;
  std::map<Spec, Layer> disable_layer;
};

// The profile's select section (sattn-profile(5)): above the defaults (the struct's initializers).
void apply_profile_layer(Merge& m, const ProfileSelect& profile, const std::string& profile_name) {
  SelectOptions& out = m.out;
  const std::string from = "profile " + profile_name + ": select.";
  for (Spec s : profile.disable) {
    out.disabled.insert(s);
    out.source[disable_key(s)] = from + "disable: " + spec_name(s);
    m.disable_layer[s] = Layer::profile;
  }
  if (profile.prefer && *profile.prefer != "none") {
    out.prefer_bsr = *profile.prefer == "bsr";
    out.prefer_sw = *profile.prefer == "sw";
    out.source["prefer"] = from + "prefer: " + *profile.prefer;
  }
  if (profile.min_recall) {
    out.min_recall = profile.min_recall;
    out.source["min_recall"] = from + "min_recall: " + fmt_recall(*profile.min_recall);
  }
  if (profile.recall_confidence) {
    out.recall_confidence = *profile.recall_confidence;
    out.source["recall_confidence"] = from + "recall_confidence: " + fmt_recall(*profile.recall_confidence);
  }
  if (profile.recall_bound) {
    out.recall_bound = parse_recall_bound(*profile.recall_bound).value_or(RecallBound::window);  // checked when read
    out.source["recall_bound"] = from + "recall_bound: " + *profile.recall_bound;
  }
  if (profile.l1_bytes) {
    out.l1_bytes = profile.l1_bytes;
    out.source["l1_bytes"] = from + "l1_bytes: " + std::to_string(*profile.l1_bytes);
  }
}

// SATTN_FORCE_SPEC, SATTN_DISABLE_*, SATTN_PREFER_{BSR,SW}, SATTN_HW_L1_BYTES: above the profile.
void apply_environment_layer(Merge& m) {
  SelectOptions& out = m.out;
  if (auto v = getenv_value("SATTN_FORCE_SPEC")) {
    auto spec = parse_spec(*v);
    if (!spec) bad_env("SATTN_FORCE_SPEC", *v, "a spec (" + spec_list() + ")");
    out.force = spec;
    out.source["force"] = "SATTN_FORCE_SPEC=" + *v;
    m.force_layer = Layer::environment;
  }
  for (const auto& var : kDisableVariables)
    if (env_bool(var.name).value_or(false)) {
      out.disabled.insert(var.spec);
      out.source[disable_key(var.spec)] = std::string(var.name) + "=" + *getenv_value(var.name);
      m.disable_layer[var.spec] = Layer::environment;
    }
  const bool env_prefer_bsr = env_bool("SATTN_PREFER_BSR").value_or(false);
  const bool env_prefer_sw = env_bool("SATTN_PREFER_SW").value_or(false);
  if (env_prefer_bsr && env_prefer_sw)
    throw Error(ExitCode::usage, "SATTN_PREFER_BSR and SATTN_PREFER_SW are both set; they contradict each other");
  if (env_prefer_bsr || env_prefer_sw) {  // replaces the profile's preference, whichever it names
    out.prefer_bsr = env_prefer_bsr;
    out.prefer_sw = env_prefer_sw;
    out.source["prefer"] = env_prefer_bsr ? "SATTN_PREFER_BSR=" + *getenv_value("SATTN_PREFER_BSR")
                                          : "SATTN_PREFER_SW=" + *getenv_value("SATTN_PREFER_SW");
  }
  if (auto v = getenv_value("SATTN_MIN_RECALL")) {
    double r = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), r);
    if (ec != std::errc() || end != v->data() + v->size() || !(r >= 0 && r <= 1))
      bad_env("SATTN_MIN_RECALL", *v, "a recall from 0 to 1");
    out.min_recall = r;
    out.source["min_recall"] = "SATTN_MIN_RECALL=" + *v;
  }
  if (auto v = getenv_value("SATTN_RECALL_CONFIDENCE")) {
    double c = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), c);
    if (ec != std::errc() || end != v->data() + v->size() || !(c >= 0.5 && c < 1))
      bad_env("SATTN_RECALL_CONFIDENCE", *v, "a confidence from 0.5 to below 1");
    out.recall_confidence = c;
    out.source["recall_confidence"] = "SATTN_RECALL_CONFIDENCE=" + *v;
  }
  if (auto v = getenv_value("SATTN_RECALL_BOUND")) {
    auto b = parse_recall_bound(*v);
    if (!b) bad_env("SATTN_RECALL_BOUND", *v, "window, mean or cv");
    out.recall_bound = *b;
    out.source["recall_bound"] = "SATTN_RECALL_BOUND=" + *v;
  }
  if (auto v = getenv_value("SATTN_HW_L1_BYTES")) {
    int64_t bytes = 0;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), bytes);
    if (ec != std::errc() || end != v->data() + v->size() || bytes < 1 || bytes > kMaxL1Bytes)
      bad_env("SATTN_HW_L1_BYTES", *v, "a whole number of bytes from 1 to 2^40");
    out.l1_bytes = bytes;
    out.source["l1_bytes"] = "SATTN_HW_L1_BYTES=" + *v;
  }
}

// What the caller's flags set (named in `flag_set`): the top layer.
void apply_flag_layer(Merge& m, const SelectOptions& flags, const std::set<std::string>& flag_set) {
  SelectOptions& out = m.out;
  auto from_flags = [&](const std::string& field) { return flag_set.count(field) > 0; };
  auto flag_source = [&](const std::string& key, const std::string& fallback) {
    return source_of(flags, key, fallback);
  };
  if (from_flags("force") && flags.force) {
    out.force = flags.force;
    out.source["force"] = flag_source("force", "--force-spec " + spec_name(*flags.force));
    m.force_layer = Layer::flag;
  }
  if (from_flags("disabled"))
    for (Spec s : flags.disabled) {
      out.disabled.insert(s);
      out.source[disable_key(s)] = flag_source(disable_key(s), "--disable " + spec_name(s));
      m.disable_layer[s] = Layer::flag;
    }
  if (from_flags("prefer_bsr") || from_flags("prefer_sw")) {
    // A preference on the command line replaces the environment's, whichever spec it names.
    if (flags.prefer_bsr && flags.prefer_sw)
      throw Error(ExitCode::usage, "--prefer-bsr and --prefer-sw contradict each other");
    out.prefer_bsr = flags.prefer_bsr;
    out.prefer_sw = flags.prefer_sw;
    out.source.erase("prefer");
    if (flags.prefer_bsr || flags.prefer_sw)
      out.source["prefer"] = flag_source("prefer", flags.prefer_bsr ? "--prefer-bsr" : "--prefer-sw");
  }
  if (from_flags("l1_bytes") && flags.l1_bytes) {
    if (*flags.l1_bytes < 1 || *flags.l1_bytes > kMaxL1Bytes)
      throw Error(ExitCode::usage, "--l1-bytes must be from 1 to 2^40 (got " + std::to_string(*flags.l1_bytes) + ")");
    out.l1_bytes = flags.l1_bytes;
    out.source["l1_bytes"] = flag_source("l1_bytes", "--l1-bytes " + std::to_string(*flags.l1_bytes));
  }
  out.use_hw_probe = from_flags("use_hw_probe") && flags.use_hw_probe;
  if (from_flags("min_recall") && flags.min_recall) {
    if (!(*flags.min_recall >= 0 && *flags.min_recall <= 1))
      throw Error(ExitCode::invalid_input, "--min-recall must be from 0 to 1 (got " + fmt_recall(*flags.min_recall) + ")");
    out.min_recall = flags.min_recall;
    out.source["min_recall"] = flag_source("min_recall", "--min-recall " + fmt_recall(*flags.min_recall));
  }
  if (from_flags("recall_confidence")) {
    if (!(flags.recall_confidence >= 0.5 && flags.recall_confidence < 1))
      throw Error(ExitCode::usage, "--recall-confidence must be from 0.5 to below 1 (got " + fmt_recall(flags.recall_confidence) + ")");
    out.recall_confidence = flags.recall_confidence;
    out.source["recall_confidence"] = flag_source("recall_confidence", "--recall-confidence " + fmt_recall(flags.recall_confidence));
  }
  if (from_flags("recall_bound")) {
    out.recall_bound = flags.recall_bound;
    out.source["recall_bound"] = flag_source("recall_bound", std::string("--recall-bound ") + to_string(flags.recall_bound));
  }
  out.calibration_data = flags.calibration_data;
  out.calibration_seed = flags.calibration_seed;
  out.calibration_samples = flags.calibration_samples;
  out.calibration_layout = flags.calibration_layout;
}

// A spec both forced and disabled: the higher layer wins; the same layer is a contradiction.
void settle_force_against_disable(Merge& m) {
  SelectOptions& out = m.out;
  if (!out.force || !out.disabled.count(*out.force)) return;
  const Spec s = *out.force;
  const Layer d = m.disable_layer[s];
  const std::string forced_by = out.source["force"], disabled_by = out.source[disable_key(s)];
  if (m.force_layer == d)
    throw Error(ExitCode::usage,
                spec_name(s) + " is both forced (" + forced_by + ") and disabled (" + disabled_by + ")");
  if (m.force_layer > d) {
    out.disabled.erase(s);
    out.source.erase(disable_key(s));
    out.source["force"] = forced_by + ", which overrides " + disabled_by;
  } else {
    out.force.reset();
    out.source["force_dropped"] = forced_by + " (overridden by " + disabled_by + ")";
    out.source.erase("force");
  }
}

}  // namespace

SelectOptions resolve_select_options(const SelectOptions& flags, const std::set<std::string>& flag_set,
                                     const ProfileSelect* profile, const std::string& profile_name) {
  Merge m;
  m.out.backend = flags.backend;
  if (profile) apply_profile_layer(m, *profile, profile_name);
  apply_environment_layer(m);
  apply_flag_layer(m, flags, flag_set);
  settle_force_against_disable(m);
  // The accelerator's PROBE ranks below the flags, the environment and the profile for
  // l1_bytes; a spec it lacks is disabled whatever asked for it.
  if (m.out.use_hw_probe && flags.hw) fold_capabilities(m.out, *flags.hw);
  return m.out;
}

void fold_capabilities(SelectOptions& o, const HwCapabilities& c) {
  o.hw = c;
  std::string unsupported;
  for (Spec s : kAllSpecs) {
    if (c.specs.count(s)) continue;
    const std::string name(to_string(s));
    if (o.force && *o.force == s)
      throw Error(ExitCode::usage, "cannot force " + name + " (" + o.source["force"] +
                                       "): not supported by the accelerator (probe: " + c.where + ")");
    o.disabled.insert(s);
    o.source["unsupported:" + name] = "not supported by the accelerator (probe)";
    unsupported += (unsupported.empty() ? "" : ", ") + name;
  }
  std::string summary = "--use-hw-probe: " + c.description +
                        (unsupported.empty() ? " (every spec)" : " (unsupported: " + unsupported + ")") +
                        ", scratchpad " + std::to_string(c.scratchpad_bytes) + " bytes";
  if (!o.l1_bytes && c.scratchpad_bytes > 0) {
    o.l1_bytes = c.scratchpad_bytes;
    o.source["l1_bytes"] =
        "l1_bytes " + std::to_string(c.scratchpad_bytes) + " from the accelerator's scratchpad (probe)";
  }
  o.source["probe"] = summary;
}

namespace {

// ---- selection ------------------------------------------------------------------------------

std::string fmt_cost(double v) {
  std::ostringstream s;
  s.precision(3);
  s << v;
  return s.str();
}

std::string disabled_by(const SelectOptions& o, Spec s) {
  if (auto it = o.source.find("unsupported:" + spec_name(s)); it != o.source.end()) return it->second;
  return "disabled by " + source_of(o, disable_key(s), "the disabled-spec hints");
}

struct RuleMatch {
  Spec spec;
  std::string why;  // "global_tokens = 64 > 0"
};

std::vector<RuleMatch> matching_rules(const Op& op) {
  const PatternAttrs& a = op.attrs;
  std::vector<RuleMatch> rules;
  auto n = [](int64_t v) { return std::to_string(v); };
  if (a.global_tokens && *a.global_tokens > 0)
    rules.push_back({Spec::block_local_global, "global_tokens = " + n(*a.global_tokens) + " > 0"});
  if (a.nm_n && a.nm_m) rules.push_back({Spec::nm_structured, "nm_n = " + n(*a.nm_n) + " and nm_m = " + n(*a.nm_m)});
  if (a.topk_k) rules.push_back({Spec::topk_per_query, "topk_k = " + n(*a.topk_k)});
  if (a.lsh_buckets) rules.push_back({Spec::lsh, "lsh_buckets = " + n(*a.lsh_buckets)});
  if (a.num_landmarks) rules.push_back({Spec::landmark, "num_landmarks = " + n(*a.num_landmarks)});
  if (a.top_pages) rules.push_back({Spec::quest, "top_pages = " + n(*a.top_pages)});
  else if (a.page_size) rules.push_back({Spec::quest, "page_size = " + n(*a.page_size)});
  return rules;
}

bool describes(const Op& op, Spec s) {
  const PatternAttrs& a = op.attrs;
  if (s == Spec::sliding_window) return a.window_size || a.dilation || a.wrap;
  if (s == Spec::bsr)
    return a.keep_ratio || a.block_size || a.comp_block_size || (a.global_tokens && *a.global_tokens > 0);
  return false;
}

Candidate cost_candidate(const Op& op, Spec spec, const SpecParams& params, const CostContext& ctx) {
  return select_detail::cost_of(op, spec, params, ctx);
}

// A candidate outside the cost model (a rule's or a forced spec): no cost.
Candidate uncosted(Spec spec, bool feasible, std::string why_not, nlohmann::json terms = nlohmann::json::object()) {
  Candidate c;
  c.spec = spec;
  c.feasible = feasible;
  c.why_not = std::move(why_not);
  c.terms = terms.dump();
  c.cost = std::numeric_limits<double>::quiet_NaN();
  return c;
}

// The three cost-model candidates, evaluated whatever decides, so that the plan always shows them.
struct CostedCandidate {
  Candidate candidate;
  std::optional<SpecParams> params;  // absent when resolve_params() failed
  std::optional<Error> error;        // its error
  bool described = false;
};

std::vector<CostedCandidate> cost_candidates(const Op& op, const SelectOptions& o, const CostContext& ctx) {
  std::vector<CostedCandidate> out;
  for (Spec spec : {Spec::sliding_window, Spec::bsr, Spec::dense}) {
    CostedCandidate cc;
    cc.described = describes(op, spec);
    try {
      cc.params = resolve_params(op, spec);
      cc.candidate = cost_candidate(op, spec, *cc.params, ctx);
      if (std::string why = select_detail::why_infeasible(op, spec, *cc.params); !why.empty()) {
        cc.candidate.feasible = false;
        cc.candidate.why_not = why;
      }
    } catch (const Error& e) {
      cc.error = e;
      cc.candidate = uncosted(spec, false, e.message());
    }
    if (o.disabled.count(spec)) {
      cc.candidate.feasible = false;
      cc.candidate.why_not = disabled_by(o, spec);
    }
    out.push_back(std::move(cc));
  }
  return out;
}

// Resolves a spec that must be used (forced or chosen by a rule); errors name the decision.
SpecParams resolve_required(const Op& op, Spec spec, const std::string& decided_by, const SourceLoc& loc) {
  SpecParams params;
  try {
    params = resolve_params(op, spec);
  } catch (const Error& e) {
    throw Error(e.code(), "cannot use " + spec_name(spec) + " (" + decided_by + "): " + e.message(), e.loc());
  }
  if (std::string why = select_detail::why_infeasible(op, spec, params); !why.empty())
    throw Error(ExitCode::invalid_input, "cannot use " + spec_name(spec) + " (" + decided_by + "): " + why, loc);
  return params;
}

}  // namespace

namespace {

// One selection (DESIGN §6): overrides, then rules, then the cost model. Each step either decides
// (a Plan) or passes, leaving candidates and notes for the next; finish() assembles the plan.
class Selector {
 public:
  Selector(const Op& given_op, const SelectOptions& options) : options(options), op(given_op) {
    // The profile's defaults for attributes the op leaves unset.
    if (options.default_precision && !op.attr_loc.count("precision")) op.precision = *options.default_precision;
    if (options.default_tile_rows && !op.attrs.tile_rows) op.attrs.tile_rows = options.default_tile_rows;
    ctx.backend = options.backend;
    ctx.l1_bytes = options.l1_bytes.value_or(select_detail::backend_costs(options.backend).l1_bytes);
    ctx.prefer_bsr = options.prefer_bsr;
    ctx.prefer_sw = options.prefer_sw;
    plan.op = op;
    plan.backend = options.backend;
    costed = cost_candidates(op, options, ctx);
    if (auto it = options.source.find("force_dropped"); it != options.source.end()) notes += it->second + "; ";
  }

  // 1. A spec forced by the caller (flags, SATTN_FORCE_SPEC) or by the op's spec attribute.
  std::optional<Plan> by_override() {
    std::optional<Spec> forced;
    std::string forced_by;
    SourceLoc forced_loc = op.loc;
    if (options.force) {
      forced = options.force;
      forced_by = source_of(options, "force", "forced spec " + spec_name(*forced));
      if (op.forced_spec && *op.forced_spec != *forced)
        forced_by += ", which overrides the op's spec attribute (" + spec_name(*op.forced_spec) + ")";
    } else if (op.forced_spec) {
      forced_loc = op.loc_of("spec");
      const std::string attr = "the op's spec attribute (" + spec_name(*op.forced_spec) + ", " + forced_loc.str() + ")";
      if (options.disabled.count(*op.forced_spec)) {
        notes += attr + " is " + disabled_by(options, *op.forced_spec) + "; ";
        add_front(uncosted(*op.forced_spec, false, disabled_by(options, *op.forced_spec)));
      } else {
        forced = op.forced_spec;
        forced_by = attr;
      }
    }
    if (forced) {
      SpecParams params = resolve_required(op, *forced, forced_by, forced_loc);
      add_front(uncosted(*forced, true, ""));
      return finish(*forced, std::move(params), "override", "forced by " + forced_by);
    }
    return std::nullopt;
  }

  // 2. A quality target (--min-recall, SATTN_MIN_RECALL, the profile's select.min_recall): the
  // cheapest point of the recall grid that keeps enough attention mass (select_recall.cpp).
  std::optional<Plan> by_recall() {
    if (!options.min_recall) return std::nullopt;
    select_detail::RecallChoice r = select_detail::choose_by_recall(op, options, ctx, [this](Spec s) {
      return options.disabled.count(s) ? disabled_by(options, s) : std::string();
    });
    costed.clear();
    front = std::move(r.candidates);
    plan.selection.min_recall = options.min_recall;
    // The plan's op carries the chosen point's attributes, so that readers resolving the
    // parameters from the op get the chosen ones.
    plan.op.attrs = r.attrs;
    plan.op.forced_spec.reset();
    plan.selection.warnings = std::move(r.warnings);
    std::string reason = std::move(r.reason);
    if (auto it = options.source.find("min_recall"); it != options.source.end()) reason += "; " + it->second;
    if (auto it = options.source.find("recall_confidence"); it != options.source.end()) reason += "; " + it->second;
    if (auto it = options.source.find("recall_bound"); it != options.source.end()) reason += "; " + it->second;
    return finish(r.spec, std::move(r.params), "recall", reason);
  }

  // 3. The first rule the op's attributes match (global_tokens, nm_n/nm_m, topk_k, lsh_buckets).
  std::optional<Plan> by_rule() {
    for (const RuleMatch& rule : matching_rules(op)) {
      if (options.disabled.count(rule.spec)) {
        add_front(uncosted(rule.spec, false, disabled_by(options, rule.spec), {{"rule", rule.why}}));
        notes += rule.why + " would select " + spec_name(rule.spec) + ", but it is " + disabled_by(options, rule.spec) +
                 "; ";
        continue;
      }
      SpecParams params = resolve_required(op, rule.spec, "rule " + rule.why, op.loc);
      add_front(uncosted(rule.spec, true, "", {{"rule", rule.why}}));
      return finish(rule.spec, std::move(params), "rule", rule.why + " selects " + spec_name(rule.spec));
    }
    return std::nullopt;
  }

  // 3./4. The cheapest usable candidate under the backend's cost model.
  Plan by_cost() {
    // An invalid attribute of a described, enabled spec is the op's error.
    bool any_described = false, described_usable = false;
    for (auto& cc : costed) {
      if (!cc.described) continue;
      any_described = true;
      if (cc.error && !options.disabled.count(cc.candidate.spec)) throw *cc.error;
      described_usable = described_usable || cc.candidate.feasible;
    }
    auto usable = [&](const CostedCandidate& cc) {
      if (!cc.candidate.feasible) return false;
      if (cc.candidate.spec == Spec::dense || !described_usable) return true;
      return cc.described;
    };
    std::string kind = "cost";
    if (!any_described) {
      // Nothing to cost: bsr with its defaults, as the prior prototype did (costed[1] is bsr).
      auto& bsr = costed[1];
      if (bsr.candidate.feasible) {
        for (auto& cc : costed)
          if (&cc != &bsr && cc.candidate.feasible)
            cc.candidate.why_not = "not compared: nothing to cost, bsr is the default";
        return finish(
            Spec::bsr, *bsr.params, "default",
            "no window_size, dilation, wrap, keep_ratio, block_size or comp_block_size to cost: bsr by default");
      }
      notes += "nothing to cost and bsr is unusable (" + bsr.candidate.why_not + "); ";
      kind = "default";
    } else if (!described_usable) {
      notes += "no spec the op describes is usable; comparing the rest with default parameters; ";
    }
    std::vector<CostedCandidate*> compared;
    for (auto& cc : costed) {
      if (usable(cc)) {
        compared.push_back(&cc);
      } else if (cc.candidate.feasible) {
        cc.candidate.why_not =
            std::string("not compared: the op describes no ") + spec_name(cc.candidate.spec) +
            (cc.candidate.spec == Spec::sliding_window ? " (window_size, dilation, wrap)"
                                                       : " (keep_ratio, block_size, comp_block_size)");
      }
    }
    if (compared.empty())
      throw Error(ExitCode::usage, "no spec is left to select for op '" + op.name + "': " + notes +
                                       "every candidate is disabled or infeasible");
    std::stable_sort(compared.begin(), compared.end(), [](const CostedCandidate* a, const CostedCandidate* b) {
      return a->candidate.cost < b->candidate.cost;
    });
    std::string ranking;
    for (const CostedCandidate* cc : compared)
      ranking += (ranking.empty() ? "" : " < ") + spec_name(cc->candidate.spec) + " " + fmt_cost(cc->candidate.cost);
    const CostedCandidate& best = *compared.front();
    std::string reason = "cheapest on " + std::string(to_string(options.backend)) + ": " + ranking + " cycles";
    if (compared.size() == 1) reason += " (the only candidate)";
    if (auto it = options.source.find("prefer"); it != options.source.end()) reason += "; " + it->second;
    if (auto it = options.source.find("l1_bytes"); it != options.source.end()) reason += "; " + it->second;
    return finish(best.candidate.spec, *best.params, kind, reason);
  }

 private:
  Plan finish(Spec spec, SpecParams params, std::string kind, std::string reason) {
    plan.spec = spec;
    plan.params = std::move(params);
    plan.selection.kind = std::move(kind);
    plan.selection.reason = notes + reason;
    if (auto it = options.source.find("probe"); it != options.source.end()) plan.selection.reason += "; " + it->second;
    plan.selection.candidates = std::move(front);
    for (auto& cc : costed) plan.selection.candidates.push_back(std::move(cc.candidate));
    return plan;
  }
  // A rule's or forced candidate, listed before the cost model's (once per spec).
  void add_front(Candidate c) {
    for (const auto& cc : costed)
      if (cc.candidate.spec == c.spec) return;
    for (const auto& f : front)
      if (f.spec == c.spec) return;
    front.push_back(std::move(c));
  }

  const SelectOptions& options;
  Op op;
  CostContext ctx;
  Plan plan;
  std::vector<Candidate> front;  // rule and forced candidates, listed before the cost model's
  std::string notes;             // decisions passed over, prefixed to the reason
  std::vector<CostedCandidate> costed;
};

}  // namespace

Plan select_spec(const Op& op, const SelectOptions& options) {
  Selector s(op, options);
  if (std::optional<Plan> p = s.by_override()) return std::move(*p);
  if (std::optional<Plan> p = s.by_recall()) return std::move(*p);
  if (std::optional<Plan> p = s.by_rule()) return std::move(*p);
  return s.by_cost();
}

}  // namespace sattn
