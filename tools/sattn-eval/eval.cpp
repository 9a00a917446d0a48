// `sattn eval` / sattn-eval: what a sparse spec loses against dense attention on data
// (sattn-eval(1)): per op and head, recall, oracle recall, their ratio and the output error;
// sattn.eval/v1 JSON, a table, and a gnuplot plot of recall against density.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>

#include "cli/data_layout.hpp"
#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "cli/select_flags.hpp"
#include "formats/data.hpp"
#include "formats/op_io.hpp"
#include "sattn/backend.hpp"
#include "sattn/fidelity.hpp"
#include "sattn/formats.hpp"
#include "select/inputs.hpp"
#include "support/io.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

using nlohmann::json;

struct EvalCli {
  OutputFlags out;
  std::vector<std::string> inputs{"-"};
  SelectFlags selection;
  std::vector<std::string> data;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = 0x5A77;
  bool grid = false;
  std::string plot;
  int threads = 0;
  CLI::Option* seed_opt = nullptr;
};

// One spec to evaluate on an op: the plan's (with the artifacts' layout, if any) or a grid point.
struct Entry {
  Spec spec;
  SpecParams params;
  std::string label;
  const Layout* given = nullptr;
};

json stats_json(const RowStats& s) { return {{"min", s.min}, {"p10", s.p10}, {"mean", s.mean}}; }

json head_json(const HeadFidelity& h) {
  json j = {{"batch", h.batch},       {"head", h.head},         {"kv_head", h.kv_head},
            {"rows", h.rows},         {"density", h.density},   {"recall", stats_json(h.recall)},
            {"oracle", stats_json(h.oracle)}, {"ratio", h.ratio}};
  j["error"] = {{"max_abs", h.max_abs}, {"max_rel", h.max_rel}, {"mean_rel", h.mean_rel}};
  return j;
}

json summary_json(const FidelitySummary& s) {
  return {{"heads", s.heads},
          {"rows", s.rows},
          {"density", s.density},
          {"recall", stats_json(s.recall)},
          {"oracle", stats_json(s.oracle)},
          {"ratio", s.ratio},
          {"worst_head_recall", s.worst_head_recall},
          {"error", {{"max_rel", s.max_rel}, {"mean_rel", s.mean_rel}}}};
}

std::string f4(double v) { return format_fixed(v, 4); }

// The gnuplot script: recall (mean over rows, all samples) against density, one point series per
// spec, the Pareto front (no other point has both a lower density and a higher recall) as a line,
// and the oracle at each point's density.
std::string gnuplot_script(const std::string& path, const json& results) {
  std::map<std::string, std::vector<std::array<double, 3>>> by_spec;  // density, recall, oracle
  std::vector<std::array<double, 2>> all;
  for (const json& r : results) {
    const json& s = r["summary"];
    const double d = s["density"], rc = s["recall"]["mean"], oc = s["oracle"]["mean"];
    by_spec[r["spec"].get<std::string>()].push_back({d, rc, oc});
    all.push_back({d, rc});
  }
  std::sort(all.begin(), all.end(), [](auto a, auto b) { return a[0] < b[0] || (a[0] == b[0] && a[1] > b[1]); });
  std::vector<std::array<double, 2>> front;
  double best = -1;
  for (const auto& p : all)
    if (p[1] > best) front.push_back(p), best = p[1];
  std::string stem = path;
  if (auto dot = stem.rfind('.'); dot != std::string::npos && stem.find('/', dot) == std::string::npos) stem.resize(dot);
  std::string g = "# sattn-eval: recall of dense attention mass against density (gnuplot " + path + ")\n";
  g += "set terminal svg size 800,560 dynamic\nset output '" + stem + ".svg'\n";
  g += "set xlabel 'density (kept pairs / dense pairs)'\nset ylabel 'recall (mean over rows)'\n";
  g += "set key bottom right\nset grid\nset yrange [0:1.02]\nset xrange [0:1.02]\n";
  std::string plots;
  int n = 0;
  for (const auto& [spec, pts] : by_spec) {
    g += "$" + spec + " << EOD\n";
    for (const auto& p : pts) g += format_sig(p[0], 6) + " " + format_sig(p[1], 6) + " " + format_sig(p[2], 6) + "\n";
    g += "EOD\n";
    plots += std::string(plots.empty() ? "" : ", \\\n     ") + "$" + spec + " using 1:2 with points pt " +
             std::to_string(5 + n++) + " title '" + spec + "'";
  }
  g += "$front << EOD\n";
  for (const auto& p : front) g += format_sig(p[0], 6) + " " + format_sig(p[1], 6) + "\n";
  g += "EOD\n$oracle << EOD\n";
  std::vector<std::array<double, 2>> oracle;
  for (const auto& [spec, pts] : by_spec)
    for (const auto& p : pts) oracle.push_back({p[0], p[2]});
  std::sort(oracle.begin(), oracle.end());
  for (const auto& p : oracle) g += format_sig(p[0], 6) + " " + format_sig(p[1], 6) + "\n";
  g += "EOD\n";
  plots += std::string(plots.empty() ? "" : ", \\\n     ") + "$front using 1:2 with lines lw 2 title 'Pareto front'";
  plots += ", \\\n     $oracle using 1:2 with points pt 1 lc rgb 'gray' title 'oracle at the same density'";
  g += "plot " + plots + "\n";
  return g;
}

int eval_action(const EvalCli& o, const std::string& prog) {
  o.out.check();
  if (o.threads < 0) throw Error(ExitCode::usage, "--threads must be >= 0");
  SelectOptions selection = o.selection.resolve();
  if (!o.data.empty()) complete_ops_from_data(selection, o.data.front(), o.layout);  // the first sample
  FidelityOptions fo;
  fo.threads = o.threads;

  json results = json::array();
  json samples_json = json::array();
  std::map<std::string, int> sample_index;
  auto sample_id = [&](const std::string& name) {
    auto [it, added] = sample_index.emplace(name, int(sample_index.size()));
    if (added) samples_json.push_back({{"index", it->second}, {"name", name}});
    return it->second;
  };
  TextTable table({"op", "spec", "params", "sample", "head", "density", "recall min", "p10", "mean", "oracle mean",
                   "ratio", "max_rel", "mean_rel"});
  ProgressLine progress(o.out.progress());

  for (const std::string& input : o.inputs) {
    std::vector<BackendInput> items = read_backend_inputs(input, selection);
    for (const BackendInput& item : items) {
      const Plan& plan = item.plan;
      const Op& op = plan.op;
      std::vector<Entry> entries;
      if (o.grid) {
        for (GridPoint& g : recall_grid(op)) entries.push_back({g.spec, g.params, g.label, nullptr});
      } else {
        entries.push_back({plan.spec, plan.params, grid_label(plan.spec, plan.params),
                           item.layout ? &*item.layout : nullptr});
      }
      // The samples: every --data DIR, else the artifacts' data, else the synthetic generator.
      struct Sample {
        std::string name;
        std::optional<std::string> dir;
        const QKV* given = nullptr;
      };
      std::vector<Sample> samples;
      for (const std::string& d : o.data) samples.push_back({d, d, nullptr});
      if (samples.empty()) {
        if (item.data && !o.seed_opt->count())
          samples.push_back({"artifacts " + input, std::nullopt, &*item.data});
        else
          samples.push_back({"synthetic seed " + std::to_string(o.seed), std::nullopt, nullptr});
      }
      std::vector<std::vector<HeadFidelity>> per_entry(entries.size());
      std::vector<json> entry_samples(entries.size(), json::array());
      for (const Sample& sample : samples) {
        if (progress.enabled()) progress.show("sattn-eval: " + op.name + " on " + sample.name);
        QKV loaded;
        if (!sample.given) {
          DataSource src;
          src.dir = sample.dir;
          src.seed = o.seed;
          src.layout = o.layout;
          loaded = load_qkv(op, src);
        }
        const QKV& data = sample.given ? *sample.given : loaded;
        std::vector<Layout> built;
        built.reserve(entries.size());
        std::vector<const Layout*> layouts;
        for (const Entry& e : entries) {
          if (e.given) {
            layouts.push_back(e.given);
          } else {
            built.push_back(build_layout(op, e.spec, e.params, &data.q, &data.k));
            layouts.push_back(&built.back());
          }
        }
        const auto res = evaluate_fidelity(op, data, layouts, fo);
        const int sid = sample_id(sample.name);
        for (size_t n = 0; n < entries.size(); ++n) {
          json heads = json::array();
          for (const HeadFidelity& h : res[n]) {
            heads.push_back(head_json(h));
            table.add({op.name, std::string(to_string(entries[n].spec)), entries[n].label, std::to_string(sid),
                       std::to_string(h.head), f4(h.density), f4(h.recall.min), f4(h.recall.p10), f4(h.recall.mean),
                       f4(h.oracle.mean), f4(h.ratio), format_sci(h.max_rel, 2), format_sci(h.mean_rel, 2)});
          }
          const FidelitySummary s = summarize_fidelity(res[n]);
          table.add({op.name, std::string(to_string(entries[n].spec)), entries[n].label, std::to_string(sid), "all",
                     f4(s.density), f4(s.recall.min), f4(s.recall.p10), f4(s.recall.mean), f4(s.oracle.mean),
                     f4(s.ratio), format_sci(s.max_rel, 2), format_sci(s.mean_rel, 2)});
          entry_samples[n].push_back({{"sample", sid}, {"heads", heads}, {"summary", summary_json(s)}});
          per_entry[n].insert(per_entry[n].end(), res[n].begin(), res[n].end());
        }
      }
      for (size_t n = 0; n < entries.size(); ++n) {
        json r = {{"input", input},
                  {"op", op_to_json(op)},
                  {"spec", std::string(to_string(entries[n].spec))},
                  {"params", params_to_json(entries[n].params)},
                  {"label", entries[n].label},
                  {"layout", entries[n].given ? "artifacts" : "built"},
                  {"samples", entry_samples[n]},
                  {"summary", summary_json(summarize_fidelity(per_entry[n]))}};
        if (!o.grid) r["selection"] = {{"kind", plan.selection.kind}, {"reason", plan.selection.reason}};
        results.push_back(std::move(r));
      }
    }
  }
  progress.clear();
  json doc = envelope("eval", "sattn-eval");
  doc["samples"] = samples_json;
  doc["results"] = results;
  if (!o.plot.empty()) write_atomic(o.plot, gnuplot_script(o.plot, results));
  (void)prog;
  std::string text = table.str();
  text += "recall: dense attention mass on the kept pairs (per row: min, p10, mean); oracle: the same count of the "
          "row's most probable keys; ratio = recall mean / oracle mean; max_rel, mean_rel: output error against dense\n";
  o.out.write(doc.dump() + "\n", text);
  return 0;
}

}  // namespace

std::function<int()> configure_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCli>();
  app.add_option("inputs", o->inputs, "Ops (MLIR, JSON, YAML), plans or artifacts ('-' = stdin)")->capture_default_str();
  app.add_option("--data", o->data,
                 "A sample: DIR/q.npy, k.npy, v.npy (float32, float16, bfloat16; repeatable: several samples)")
      ->allow_extra_args(false);
  add_layout_option(app, o->layout);
  o->seed_opt = app.add_option("--seed", o->seed, "Seed of the synthetic sample when --data is not given")
                    ->capture_default_str();
  app.add_flag("--grid", o->grid,
               "Evaluate every point of the recall grid (sattn-select(1), QUALITY TARGET) instead of the plan's spec");
  app.add_option("--plot", o->plot,
                 "Also write a gnuplot script of recall against density for every spec, with the Pareto front "
                 "(it renders FILE's stem .svg)");
  app.add_option("--threads", o->threads, "Worker threads (0: every core)")->capture_default_str();
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/true, /*with_probe=*/false);
  o->out.add_to(app, "Write the evaluation (JSON or table) to FILE, atomically",
                "json (sattn.eval/v1) or text (a table per op, spec, sample and head)", "No progress line");
  const std::string prog = app.get_name();
  return [o, prog] { return eval_action(*o, prog); };
}

}  // namespace sattn
