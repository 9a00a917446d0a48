// `sattn select` / sattn-select: pick a spec per op and write plans (sattn.plan/v1 JSON Lines).
#include <CLI/CLI.hpp>
#include <cmath>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/run_backends.hpp"
#include "cli/output.hpp"
#include "cli/select_flags.hpp"
#include "formats/data.hpp"
#include "support/io.hpp"
#include "formats/op_io.hpp"
#include "select/plan_json.hpp"
#include "sattn/select.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

struct SelectCli {
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs{"-"};
  SelectFlags selection;
  bool explain = false;
};

std::string short_number(double v) {
  return std::isfinite(v) ? format_sig(v, 3) : "-";
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

// A recall-constrained selection: one row per grid point, cheapest first, with its worst head's
// mean recall, the lower bound compared with the target (recall) and density on the calibration
// data (the chosen one marked with *).
std::string explain_recall(const Plan& plan) {
  TextTable table({"", "candidate", "params", "feasible", "mean", "recall", "target", "density", "pairs", "total"});
  std::vector<std::pair<double, const Candidate*>> rows;
  for (const Candidate& c : plan.selection.candidates) rows.push_back({c.cost, &c});
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string notes;
  bool met = false;  // some sparse candidate meets the target
  for (const auto& [cost, c] : rows) {
    const nlohmann::json t = nlohmann::json::parse(c->terms, nullptr, false);
    const bool chosen = t.is_object() && t.value("chosen", false);
    std::string mean = "-", recall = "-", verdict = "-";
    if (t.is_object() && t.contains("recall_mean")) mean = format_sig(t["recall_mean"].get<double>(), 4);
    if (t.is_object() && t.contains("recall")) {
      const double r = t["recall"].get<double>();
      recall = format_sig(r, 4);
      verdict = r >= *plan.selection.min_recall ? "met" : "missed";
      met = met || (c->feasible && r >= *plan.selection.min_recall && c->spec != Spec::dense);
    }
    table.add({chosen ? "*" : "", std::string(to_string(c->spec)), t.is_object() ? t.value("params", "") : "",
               c->feasible ? "yes" : "no", mean, recall, verdict, term(t, "density"), term(t, "pairs"), short_number(cost)});
    if (!c->why_not.empty()) notes += "  " + std::string(to_string(c->spec)) + " " + t.value("params", "") + ": " + c->why_not + "\n";
  }
  std::string out = table.str() + notes;
  if (!met)
    out += "note: no sparse candidate meets recall >= " + format_sig(*plan.selection.min_recall, 4) +
           " on the calibration data: dense is selected\n";
  return out;
}

// The readable form of one plan: a header line, the reason, a table of candidates with their
// cost terms (the chosen one marked with *), and why each unused candidate was not chosen.
std::string explain(const Plan& plan) {
  std::string out = "op " + plan.op.name + " (" + plan.op.loc.str() + ") on " + std::string(to_string(plan.backend)) +
                    ": " + std::string(to_string(plan.spec)) + " [" + plan.selection.kind + "]\n";
  out += "reason: " + plan.selection.reason + "\n";
  // The work this plan means, as `sattn run --dry-run` estimates it on the target's backend.
  if (const Backend* b = find_backend(to_string(plan.backend))) {
    const WorkEstimate w = b->estimate(plan, BackendRunOptions{});
    out += "work: " + format_sci(w.pairs, 2) + " query-key pairs; sattn run --backend " + std::string(b->name()) +
           ": about " + format_duration(w.seconds()) + " (check " + std::string(to_string(w.check)) + ")\n";
  }
  if (plan.selection.min_recall) return out + explain_recall(plan);
  TextTable table({"", "candidate", "feasible", "pairs", "macs", "kv_bytes", "gathers", "score_macs", "working_set",
                   "l1_fit", "compute", "memory", "gather", "chunks", "scoring", "prefer", "total"});
  std::string notes;
  for (const Candidate& c : plan.selection.candidates) {
    const std::string name(to_string(c.spec));
    const nlohmann::json t = nlohmann::json::parse(c.terms, nullptr, false);
    table.add({c.spec == plan.spec ? "*" : "", name, c.feasible ? "yes" : "no", term(t, "pairs"), term(t, "macs"),
               term(t, "kv_bytes"), term(t, "gathers"), term(t, "score_macs"), term(t, "working_set_bytes"),
               term(t, "l1_fit"), cycles(t, "compute"), cycles(t, "memory"), cycles(t, "gather"), cycles(t, "chunks"),
               cycles(t, "scoring"),
               term(t, "prefer_factor"), short_number(c.cost)});
    if (!c.why_not.empty()) notes += "  " + name + ": " + c.why_not + "\n";
    if (auto rule = t.find("rule"); rule != t.end() && rule->is_string())
      notes += "  " + name + ": rule " + rule->get<std::string>() + "\n";
  }
  out += table.str();
  return out + notes;
}

int select_action(const SelectCli& o, const std::string& prog) {
  o.out.check();
  const SelectOptions options = o.selection.resolve();

  // Read and select everything before writing: a bad op anywhere leaves no output file.
  std::string json_lines, text;
  int explained = 0;
  for (const std::string& input : o.inputs) {
    std::vector<std::string> warnings;
    std::vector<Op> ops = read_ops(input, OpFormat::automatic, &warnings);
    if (!o.out.quiet)
      for (const std::string& w : warnings) print_diagnostic(prog, "warning", w);
    for (Op& op : ops) {
      // A bare op that gives no shape takes it from the first calibration sample (as sattn eval).
      if (!o.selection.data.empty()) {
        DataSource src;
        src.dir = o.selection.data.front();
        src.layout = o.selection.layout;
        infer_shape_from_data(op, src);
      }
      const Plan plan = select_spec(op, options);
      if (!o.out.quiet)
        for (const std::string& w : plan.selection.warnings) print_diagnostic(prog, "warning", w);
      json_lines += plan_to_json(plan).dump() + "\n";
      const std::string table = explain(plan);
      text += (text.empty() ? "" : "\n") + table;
      if (o.explain && o.out.json()) std::cerr << (explained++ ? "\n" : "") << table;
    }
  }
  o.out.write(json_lines, text);
  return 0;
}

}  // namespace

std::function<int()> configure_select(CLI::App& app) {
  auto o = std::make_shared<SelectCli>();
  app.add_option("ops", o->inputs, "Op files (MLIR generic form, JSON or YAML; '-' = stdin)")->capture_default_str();
  o->selection.add_to(app, "", /*with_backend=*/true, /*with_probe=*/true);
  o->selection.add_recall_to(app);
  app.add_flag("--explain", o->explain, "Also print each op's candidates and cost terms as a table on stderr");
  o->out.add_to(app, "Write the plans (JSON Lines or tables) to FILE, atomically",
                "json (sattn.plan/v1 JSON Lines) or text (the explain tables)",
                "No warnings on stderr");
  const std::string prog = app.get_name();
  return [o, prog] { return select_action(*o, prog); };
}

}  // namespace sattn
