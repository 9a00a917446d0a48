// `sattn-calibrate`: derive symmetric i8/i4 scales from data, report them
// (sattn.calibration/v1), or write them into plans (--apply).
#include <iomanip>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "calibrate/calibrate.hpp"
#include "sattn/select.hpp"
#include "select/plan_json.hpp"
#include "cli/data_layout.hpp"
#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "support/io.hpp"
#include "backends/cpu/run.hpp"
#include "support/text_table.hpp"
#include "core/resources.hpp"
#include "core/quant_scheme.hpp"
#include "formats/npy.hpp"
#include "select/inputs.hpp"
#include "sattn/sattn.h"
#include <filesystem>

namespace sattn {

namespace {

struct CalibrateFlags {
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs{"-"};
  std::string precision;  // default: the op's when integer, else i8
  std::string method;
  double percentile = 99.99;
  std::string granularity = "tensor";
  bool compare = false;
  bool apply = false;
  bool schemes = false;      // --schemes: compare quantization schemes
  std::string quant_scheme;  // --quant-scheme: the scheme whose tables --apply writes
  std::vector<std::string> data;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = kDefaultSeed;
  int threads = 0;
};

std::string sci(double v) {
  return std::isfinite(v) ? format_sci(v, 2) : "inf";
}

std::string db(double v) {
  return std::isfinite(v) ? format_fixed(v, 1) : "inf";
}

// A scale, or the range of per-head scales.
std::string scale_cell(const TensorCalibration& t) {
  auto [lo, hi] = std::minmax_element(t.scales.begin(), t.scales.end());
  return t.scales.size() == 1 ? sci(*lo) : sci(*lo) + ".." + sci(*hi);
}

Precision precision_for(const CalibrateFlags& f, const Op& op) {
  if (!f.precision.empty()) {
    auto p = parse_precision(f.precision);
    if (!p || (*p != Precision::i8 && *p != Precision::i4))
      throw Error(ExitCode::usage, "--precision must be i8 or i4, not '" + f.precision + "'");
    return *p;
  }
  return op.precision == Precision::i4 ? Precision::i4 : Precision::i8;
}

// --schemes (or --quant-scheme): every quantization scheme judged end to end and, with --apply,
// the fixed scale tables of the recommended (or the named) scheme written into the artifacts.
int schemes_action(const CalibrateFlags& f) {
  if (!f.method.empty() || f.compare || f.granularity != "tensor")
    throw Error(ExitCode::usage, "--schemes compares quantization schemes; --method, --compare and --granularity "
                                 "are for per-tensor scale methods");
  std::optional<QuantScheme> chosen;
  if (!f.quant_scheme.empty()) {
    std::string why;
    chosen = parse_quant_scheme(f.quant_scheme, &why);
    if (!chosen) throw Error(ExitCode::usage, "--quant-scheme: " + why);
    if (chosen->is_per_tensor())
      throw Error(ExitCode::usage, "--quant-scheme per-tensor has no tables: its scales are the op's scale_q, scale_k, "
                                   "scale_v (sattn-calibrate --apply on a plan, without --schemes)");
  }
  if (f.apply && f.out.format == "text")
    throw Error(ExitCode::usage, "--apply writes artifacts and prints their envelopes; --format text does not apply");
  if (!f.precision.empty()) precision_for(f, Op{});
  const std::vector<std::string> dirs = expand_data_dirs(f.data);
  SelectOptions selection = resolve_select_options(SelectOptions{}, {});
  if (!dirs.empty()) complete_ops_from_data(selection, dirs.front(), f.layout);
  struct Item {
    BackendInput in;
    std::string envelope;  // the artifacts.json path (--apply)
  };
  std::vector<Item> items;
  for (const std::string& in : f.inputs) {
    std::string envelope;
    if (f.apply) {
      envelope = std::filesystem::is_directory(in) ? (std::filesystem::path(in) / "artifacts.json").string() : in;
      if (in == "-" || !std::filesystem::is_regular_file(envelope))
        throw Error(ExitCode::usage, "--apply --schemes writes scale tables into artifacts: give DIR or "
                                     "DIR/artifacts.json (sattn emit), not '" + in + "'");
    }
    for (BackendInput& b : read_backend_inputs(envelope.empty() ? in : envelope, selection)) {
      if (f.apply && !b.layout)
        throw Error(ExitCode::usage, "--apply --schemes needs artifacts (sattn emit), and '" + in + "' is not");
      items.push_back({std::move(b), envelope});
    }
  }
  ProgressLine progress(f.out.progress());
  std::string lines;
  TextTable table({"op", "prec", "scheme", "max_rel", "rel_l1", "cosine", "best"});
  for (size_t n = 0; n < items.size(); ++n) {
    const Plan& plan = items[n].in.plan;
    progress.show("[" + std::to_string(n + 1) + "/" + std::to_string(items.size()) + "] " + plan.op.name);
    const Precision precision = precision_for(f, plan.op);
    if (f.apply && plan.op.precision != precision)
      throw Error(ExitCode::usage, "op '" + plan.op.name + "': the artifacts are at precision " +
                                       std::string(to_string(plan.op.precision)) + "; tables are written for the "
                                       "artifacts' own precision (emit the op at i8 or i4)");
    std::vector<QKV> samples;
    if (dirs.empty() && items[n].in.data) samples.push_back(*items[n].in.data);
    else samples = load_calibration_samples(plan.op, dirs, f.seed, f.layout);
    FastOptions fast;
    fast.threads = f.threads;
    const nlohmann::json data = dirs.empty() ? nlohmann::json{{"source", items[n].in.data ? "artifacts" : "synthetic"}}
                                             : nlohmann::json{{"source", "npy"}, {"dirs", dirs}};
    const SchemeCalibration sc =
        calibrate_schemes(plan, samples, precision, f.quant_scheme, fast, data.dump(), "sattn-calibrate");
    const nlohmann::json report = nlohmann::json::parse(sc.report);
    for (const nlohmann::json& r : report["schemes"])
      table.add({plan.op.name, std::string(to_string(precision)), r["scheme"].get<std::string>(),
                 sci(r["max_rel"].get<double>()), sci(r["rel_l1"].get<double>()),
                 format_fixed(r["cosine"].get<double>(), 5), r["best"].get<bool>() ? "*" : ""});
    if (!f.apply) {
      lines += sc.report + "\n";
      continue;
    }
    // Tables for the chosen scheme, written next to the envelope, which is rewritten to list them.
    const std::string& env_path = items[n].envelope;
    const std::filesystem::path dir = std::filesystem::path(env_path).has_parent_path()
                                          ? std::filesystem::path(env_path).parent_path()
                                          : std::filesystem::path(".");
    nlohmann::json env = nlohmann::json::parse(read_text(env_path));
    for (const char* name : kQuantTableNames) {
      env["arrays"].erase(name);
      const auto t = std::find_if(sc.tables.begin(), sc.tables.end(), [&](const auto& x) { return x.name == name; });
      if (t == sc.tables.end()) {  // a table of an earlier --apply that this scheme has not
        std::error_code ignored;
        std::filesystem::remove(dir / (std::string(name) + ".npy"), ignored);
        continue;
      }
      write_npy((dir / (std::string(name) + ".npy")).string(), make_npy(std::span<const float>(t->values), t->shape));
      env["arrays"][name] = {{"path", std::string(name) + ".npy"}, {"dtype", "float32"}, {"shape", t->shape}};
    }
    env["op"]["quant_scheme"] = sc.scheme;
    env["quant"] = {{"scheme", sc.scheme}, {"tables", "fixed"}, {"calibration", report}};
    write_atomic(env_path, env.dump(2) + "\n");
    nlohmann::json line = env;
    line["dir"] = dir.string();
    lines += line.dump() + "\n";
  }
  progress.clear();
  write_atomic(f.out.output, f.out.format == "text" ? table.str() : lines);
  return 0;
}

int calibrate_action(const CalibrateFlags& f) {
  if (f.schemes || !f.quant_scheme.empty()) return schemes_action(f);
  f.out.check();
  if (f.apply && f.out.format == "text")
    throw Error(ExitCode::usage, "--apply writes plans (sattn.plan/v1 JSON Lines); --format text does not apply");
  if (!f.precision.empty()) precision_for(f, Op{});  // reject a bad value before reading anything
  const auto granularity = parse_granularity(f.granularity);
  if (!granularity) throw Error(ExitCode::usage, "--granularity must be tensor or head, not '" + f.granularity + "'");
  if (f.apply && *granularity == Granularity::head)
    throw Error(ExitCode::usage,
                "--apply needs per-tensor scales (--granularity tensor): ops carry one scale_q, scale_k and scale_v, "
                "which every backend uses; per-head scales are reported only");
  if (!(f.percentile > 0 && f.percentile <= 100))
    throw Error(ExitCode::usage, "--percentile must be in (0, 100], not " + std::to_string(f.percentile));
  if (f.compare && !f.method.empty()) throw Error(ExitCode::usage, "--compare runs every method; drop --method");
  // --method M: only M. Otherwise every method runs and the recommended one is used; --compare
  // also reports the others (no method wins everywhere: see sattn-calibrate(1), MEASUREMENTS).
  std::vector<CalibrationMethod> methods(std::begin(kAllCalibrationMethods), std::end(kAllCalibrationMethods));
  if (!f.method.empty()) {
    auto m = parse_calibration_method(f.method);
    if (!m) throw Error(ExitCode::usage, "--method must be absmax, percentile, mse or kl, not '" + f.method + "'");
    methods = {*m};
  }
  const bool report_all = f.compare;
  const std::vector<std::string> dirs = expand_data_dirs(f.data);

  // Read every input first: a malformed file fails before any work or output.
  SelectOptions selection = resolve_select_options(SelectOptions{}, {});
  if (!dirs.empty()) complete_ops_from_data(selection, dirs.front(), f.layout);  // the first sample
  std::vector<Plan> plans;
  for (const std::string& in : f.inputs)
    for (Plan& p : read_plans(in, selection)) plans.push_back(std::move(p));

  // The memory guard, before any data exists: every sample's Q/K/V (and a quantized copy the
  // methods compare with), the layout and both outputs of the end-to-end check.
  for (const Plan& p : plans) {
    MemoryEstimate e = estimate_memory(p.op, p.spec, p.params, MemoryUse{});
    const double samples = double(std::max<size_t>(dirs.size(), 1));
    for (auto& [name, bytes] : e.parts)
      if (name == "q, k, v") {
        const double extra = double(bytes) * samples;  // samples + the quantized copy, minus the one counted
        e.bytes += int64_t(std::min(extra, 9.0e18 - double(e.bytes)));
        bytes = int64_t(std::min(double(bytes) * (samples + 1), 9.0e18));
        name = "q, k, v (" + std::to_string(int64_t(samples)) + " sample" + (samples > 1 ? "s" : "") + " and a quantized copy)";
      }
    check_memory(p.op, p.spec, e, tool_memory_limit());
  }
  nlohmann::json data_desc;
  if (dirs.empty()) {
    data_desc = {{"source", "synthetic"}, {"seed", f.seed}};
  } else {
    data_desc = {{"source", "npy"}, {"dirs", dirs}};
  }

  ProgressLine progress(f.out.progress());
  std::string lines;
  TextTable table({"op", "prec", "gran", "method", "scale_q", "scale_k", "scale_v", "sqnr_q", "sqnr_k", "sqnr_v",
                   "max_rel_err", "best"});
  for (size_t n = 0; n < plans.size(); ++n) {
    const Plan& plan = plans[n];
    progress.show("[" + std::to_string(n + 1) + "/" + std::to_string(plans.size()) + "] " + plan.op.name);
    CalibrateOptions o;
    o.precision = precision_for(f, plan.op);
    o.granularity = *granularity;
    o.methods = methods;
    o.method_options.percentile = f.percentile;
    o.fast.threads = f.threads;
    const std::vector<QKV> samples = load_calibration_samples(plan.op, dirs, f.seed, f.layout);
    CalibrationReport report = calibrate(plan, samples, o);
    if (f.apply) {
      nlohmann::json j = plan_to_json(apply_calibration(plan, report.methods[report.best], o.precision, o.granularity));
      j["producer"]["tool"] = "sattn-calibrate";
      lines += j.dump() + "\n";
      continue;
    }
    if (!report_all) {  // only the method used
      report.methods = {report.methods[report.best]};
      report.best = 0;
    }
    lines += calibration_to_json(report, data_desc, "sattn-calibrate").dump() + "\n";
    for (const MethodResult& m : report.methods)
      table.add({plan.op.name, std::string(to_string(o.precision)), std::string(to_string(o.granularity)),
                 std::string(to_string(m.method)), scale_cell(m.q), scale_cell(m.k), scale_cell(m.v), db(m.q.sqnr_db),
                 db(m.k.sqnr_db), db(m.v.sqnr_db), sci(m.max_rel_error), m.best ? "*" : ""});
  }
  progress.clear();
  write_atomic(f.out.output, f.out.format == "text" ? table.str() : lines);
  return 0;
}

}  // namespace

std::function<int()> configure_calibrate(CLI::App& app) {
  auto f = std::make_shared<CalibrateFlags>();
  app.add_option("ops", f->inputs,
                 "Ops (MLIR generic form, JSON or YAML) or plans (sattn.plan/v1) giving shapes and layouts; '-' = stdin")
      ->capture_default_str();
  app.add_option("--precision", f->precision, "i8 or i4 (default: the op's precision when integer, else i8)");
  app.add_option("--method", f->method, "absmax, percentile, mse or kl (default: every method, the recommended one is used)");
  app.add_option("--percentile", f->percentile, "Percentile of |x| used as the clip by --method percentile")
      ->capture_default_str();
  app.add_option("--granularity", f->granularity, "tensor (one scale per tensor) or head (one per head)")
      ->capture_default_str();
  app.add_flag("--compare", f->compare, "Report every method, marking the recommended one (lowest end-to-end error)");
  app.add_flag("--apply", f->apply,
               "Write the plans back with precision and scale_q/k/v set (from --method, else the recommended method)");
  app.add_flag("--schemes", f->schemes,
               "Compare quantization schemes (per-tensor, finer granularities, smoothing, sage, smooth, smooth,block=4, smooth,block=2) "
               "end to end and recommend one; with --apply on artifacts, write its fixed scale tables (sattn-quant(7))");
  app.add_option("--quant-scheme", f->quant_scheme,
                 "With --schemes --apply: the scheme whose fixed tables are written (default: the recommended one)");
  auto* data = app.add_option("--data", f->data,
                              "Calibrate on DIR/{q,k,v}.npy; several DIRs (repeat, list or glob) pool their values");
  add_layout_option(app, f->layout, data);
  app.add_option("--seed", f->seed, "Seed of the synthetic data when --data is not given")
      ->capture_default_str()
      ->excludes(data);
  f->out.add_to(app, "Write the report (or the plans) to FILE, atomically",
                "json (sattn.calibration/v1 JSON Lines) or text (a table)",
                "No progress on stderr");
  app.add_option("--threads", f->threads, "Kernel threads for the end-to-end check (0 = all cores)")
      ->capture_default_str();
  add_max_memory_option(app);
  return [f] { return calibrate_action(*f); };
}

}  // namespace sattn
