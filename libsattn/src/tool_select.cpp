// `sattn select` / sattn-select: pick a spec per op and write plans (sattn.plan/v1 JSON Lines).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "sattn/cli.hpp"
#include "sattn/io.hpp"
#include "sattn/op_io.hpp"
#include "sattn/select.hpp"
#include "sattn/text_table.hpp"

namespace sattn {

namespace {

struct SelectCli {
  std::vector<std::string> inputs{"-"};
  std::string backend = "cpu";
  std::string force;
  std::vector<std::string> disable;
  bool prefer_bsr = false, prefer_sw = false;
  int64_t l1_bytes = 0;
  bool use_hw_probe = false;
  bool explain = false;
  std::string output = "-";
  std::string format = "json";
  bool quiet = false;
  // Which options the command line gave (flags outrank the environment only where given).
  CLI::Option *force_opt = nullptr, *disable_opt = nullptr, *prefer_bsr_opt = nullptr, *prefer_sw_opt = nullptr,
              *l1_opt = nullptr, *probe_opt = nullptr;
};

std::string short_number(double v) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s.precision(3);
  s << v;
  return s.str();
}

std::string term(const nlohmann::json& terms, const char* key) {
  auto it = terms.find(key);
  if (it == terms.end()) return "-";
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  if (it->is_number()) return short_number(it->get<double>());
  return it->dump();
}

std::string cycles(const nlohmann::json& terms, const char* key) {
  auto it = terms.find("cycles");
  return it == terms.end() || !it->is_object() ? "-" : term(*it, key);
}

// The readable form of one plan: a header line, the reason, a table of candidates with their
// cost terms (the chosen one marked with *), and why each unused candidate was not chosen.
std::string explain(const Plan& plan) {
  std::string out = "op " + plan.op.name + " (" + plan.op.loc.str() + ") on " + std::string(to_string(plan.backend)) +
                    ": " + std::string(to_string(plan.spec)) + " [" + plan.selection.kind + "]\n";
  out += "reason: " + plan.selection.reason + "\n";
  TextTable table({"", "candidate", "feasible", "pairs", "macs", "kv_bytes", "gathers", "score_macs", "working_set",
                   "l1_fit", "compute", "memory", "gather", "scoring", "prefer", "total"});
  std::string notes;
  for (const Candidate& c : plan.selection.candidates) {
    const std::string name(to_string(c.spec));
    const nlohmann::json& t = c.terms;
    table.add({c.spec == plan.spec ? "*" : "", name, c.feasible ? "yes" : "no", term(t, "pairs"), term(t, "macs"),
               term(t, "kv_bytes"), term(t, "gathers"), term(t, "score_macs"), term(t, "working_set_bytes"),
               term(t, "l1_fit"), cycles(t, "compute"), cycles(t, "memory"), cycles(t, "gather"), cycles(t, "scoring"),
               term(t, "prefer_factor"), short_number(c.cost)});
    if (!c.why_not.empty()) notes += "  " + name + ": " + c.why_not + "\n";
    if (auto rule = t.find("rule"); rule != t.end() && rule->is_string())
      notes += "  " + name + ": rule " + rule->get<std::string>() + "\n";
  }
  out += table.str();
  return out + notes;
}

std::optional<Spec> spec_option(const std::string& option, const std::string& value) {
  auto spec = parse_spec(value);
  if (!spec)
    throw Error(ExitCode::usage, option + ": unknown spec '" + value +
                                     "' (dense, sliding_window, bsr, block_local_global, nm_structured, "
                                     "topk_per_query, lsh, landmark)");
  return spec;
}

int select_action(const SelectCli& o, const std::string& prog) {
  if (o.format != "json" && o.format != "text") throw Error(ExitCode::usage, "--format must be json or text");
  SelectOptions flags;
  std::set<std::string> given;
  auto backend = parse_backend(o.backend);
  if (!backend) throw Error(ExitCode::usage, "--backend must be cpu, rvv, rocc or imc (got '" + o.backend + "')");
  flags.backend = *backend;
  if (o.force_opt->count()) {
    flags.force = spec_option("--force-spec", o.force);
    given.insert("force");
  }
  if (o.disable_opt->count()) {
    for (const std::string& s : o.disable) flags.disabled.insert(*spec_option("--disable", s));
    given.insert("disabled");
  }
  if (o.prefer_bsr_opt->count() || o.prefer_sw_opt->count()) {
    flags.prefer_bsr = o.prefer_bsr;
    flags.prefer_sw = o.prefer_sw;
    given.insert(o.prefer_bsr ? "prefer_bsr" : "prefer_sw");
  }
  if (o.l1_opt->count()) {
    flags.l1_bytes = o.l1_bytes;
    given.insert("l1_bytes");
  }
  if (o.probe_opt->count()) {
    flags.use_hw_probe = true;
    given.insert("use_hw_probe");
  }
  const SelectOptions options = resolve_select_options(flags, given);

  // Read and select everything before writing: a bad op anywhere leaves no output file.
  std::string json_lines, text;
  int explained = 0;
  for (const std::string& input : o.inputs) {
    std::vector<std::string> warnings;
    std::vector<Op> ops = read_ops(input, OpFormat::automatic, &warnings);
    if (!o.quiet)
      for (const std::string& w : warnings) print_diagnostic(prog, "warning", w);
    for (const Op& op : ops) {
      const Plan plan = select_spec(op, options);
      json_lines += plan_to_json(plan).dump() + "\n";
      const std::string table = explain(plan);
      text += (text.empty() ? "" : "\n") + table;
      if (o.explain && o.format == "json") std::cerr << (explained++ ? "\n" : "") << table;
    }
  }
  write_atomic(o.output, o.format == "json" ? json_lines : text);
  return 0;
}

}  // namespace

std::function<int()> configure_select(CLI::App& app) {
  auto o = std::make_shared<SelectCli>();
  app.add_option("ops", o->inputs, "Op files (MLIR generic form, JSON or YAML; '-' = stdin)")->capture_default_str();
  app.add_option("--backend", o->backend, "Target backend of the cost model: cpu, rvv, rocc or imc")
      ->capture_default_str();
  o->force_opt = app.add_option("--force-spec,--spec", o->force,
                                "Use this spec for every op (outranks SATTN_FORCE_SPEC and the op's spec attribute)");
  o->disable_opt = app.add_option("--disable", o->disable,
                                  "Never select SPEC (repeatable, or comma-separated); adds to SATTN_DISABLE_*")
                       ->delimiter(',')
                       ->allow_extra_args(false);  // one value per --disable: the op files follow
  o->prefer_bsr_opt = app.add_flag("--prefer-bsr", o->prefer_bsr, "Scale bsr's cost by 0.75, sliding_window's by 1.1");
  o->prefer_sw_opt = app.add_flag("--prefer-sw", o->prefer_sw, "Scale sliding_window's cost by 0.75, bsr's by 1.1")
                         ->excludes(o->prefer_bsr_opt);
  o->l1_opt =
      app.add_option("--l1-bytes", o->l1_bytes, "L1 / scratchpad bytes of the target (outranks SATTN_HW_L1_BYTES)");
  o->probe_opt = app.add_flag("--use-hw-probe", o->use_hw_probe,
                              "Disable what the accelerator's PROBE says it cannot do (needs sattn-sim)");
  app.add_flag("--explain", o->explain, "Also print each op's candidates and cost terms as a table on stderr");
  app.add_option("-o,--output", o->output, "Write the plans (JSON Lines or tables) to FILE, atomically")
      ->capture_default_str();
  app.add_option("--format", o->format, "json (sattn.plan/v1 JSON Lines) or text (the explain tables)")
      ->capture_default_str();
  app.add_flag("-q,--quiet", o->quiet, "No warnings on stderr");
  const std::string prog = app.get_name();
  return [o, prog] { return select_action(*o, prog); };
}

}  // namespace sattn
