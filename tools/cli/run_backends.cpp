// `sattn run --backend NAME|all`: the whole pipeline in one command, over the backend registry
// (sattn/backend.hpp): every backend reads the same inputs, selects bare ops with its own cost
// model, and runs each op in-process; the results are gathered into one JSON Lines stream and a
// table.
#include "cli/run_backends.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/data_layout.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "formats/data.hpp"
#include "formats/npy.hpp"
#include "select/inputs.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "core/resources.hpp"
#include "support/process.hpp"
#include "support/text_table.hpp"

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace sattn {

namespace {

std::string num(double v, int digits = 3) { return format_sig(v, digits); }

const nlohmann::json* at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* p = &j;
  for (const char* key : path) {
    if (!p->is_object() || !p->contains(key)) return nullptr;
    p = &(*p)[key];
  }
  return p;
}

double number(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* p = at(j, path);
  return p && p->is_number() ? p->get<double>() : 0.0;
}

// The backend's headline figure: what it measures (time, instructions, cycles, energy).
std::string figure(const std::string& backend, const nlohmann::json& r) {
  if (backend == "cpu") return num(number(r, {"timing", "kernel_ms"})) + " ms";
  if (backend == "rvv")
    return num(number(r, {"rvv", "instructions", "total"})) + " instr, " + num(number(r, {"rvv", "modelled_cycles"})) +
           " cycles";
  if (backend == "rocc")
    return num(number(r, {"sim", "cycles"})) + " cycles, " + num(number(r, {"sim", "energy_pj", "total"}) / 1e3) + " nJ";
  if (backend == "imc")
    return num(number(r, {"sparse", "energy_pj", "total"}) / 1e3) + " nJ, " + num(number(r, {"ratio", "energy"})) +
           "x less than dense";
  return "-";
}

std::string density(const nlohmann::json& r) {
  if (const nlohmann::json* d = at(r, {"layout", "density"}); d && d->is_number()) return num(d->get<double>(), 4);
  if (const nlohmann::json* d = at(r, {"mapping", "density"}); d && d->is_number()) return num(d->get<double>(), 4);
  return "-";
}


// Directory names for the ops of a multi-op run: "<file stem>.<op name>", cleaned and made unique
// (support/io.hpp unique_file_names: an op name never leads out of --out-dir).
std::vector<std::string> op_dir_names(const std::vector<BackendInput>& items) {
  std::vector<std::string> names;
  for (const BackendInput& item : items)
    names.push_back((item.input == "-" ? "stdin" : fs::path(item.input).stem().string()) + "." + item.plan.op.name);
  return unique_file_names(names);
}

std::string op_label(const BackendInput& item, size_t count) {
  return (count > 1 ? fs::path(item.input).stem().string() + "." : std::string()) + item.plan.op.name;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!(seconds < 1e15)) return "forever";
  if (seconds == 0) return "0 s";
  if (seconds < 0.001) return "< 1 ms";
  if (seconds < 1) return std::to_string(std::max(1, int(seconds * 1000 + 0.5))) + " ms";
  if (seconds < 60) return format_sig(seconds, 2) + " s";
  if (seconds < 3600) {
    const int64_t s = int64_t(seconds + 0.5);
    return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  }
  if (seconds < 86400 * 2) return format_sig(seconds / 3600, 2) + " h";
  return format_sig(seconds / 86400, 2) + " days";
}

namespace {

// The progress line inside one op: "op: kernel 42% (about 13 s left)". Updated at most every
// 0.25 s and only once the op has run for half a second (a quick op prints nothing); the ETA is
// the stage's own: its elapsed time scaled by what is left of it.
class StageProgress {
 public:
  StageProgress(ProgressLine& line, std::string label) : line_(line), label_(std::move(label)) {}
  void report(const ProgressReport& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.stage != stage_) {
      stage_ = std::string(p.stage);
      stage_start_ = now;
    }
    if (now - op_start_ < std::chrono::milliseconds(500) || now - last_ < std::chrono::milliseconds(250)) return;
    last_ = now;
    std::string text = label_ + ": " + stage_;
    if (p.total > 0) {
      const double f = std::clamp(p.done / p.total, 0.0, 1.0);
      text += " " + std::to_string(int(f * 100)) + "%";
      const double elapsed = std::chrono::duration<double>(now - stage_start_).count();
      if (f > 0.01 && f < 1) text += " (about " + format_duration(elapsed * (1 - f) / f) + " left)";
    }
    line_.show(text);
  }

 private:
  ProgressLine& line_;
  std::string label_;
  std::string stage_;
  std::chrono::steady_clock::time_point op_start_ = std::chrono::steady_clock::now(), stage_start_ = op_start_, last_{};
};

// A limit as the user wrote it: 3600, 1000000000, 0.5.
std::string plain_number(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(int64_t(v));
  return format_sig(v, 6);
}

// --max-pairs / --max-seconds: refuse an op before any data or layout exists.
void guard_work(const BackendInput& item, const WorkEstimate& w, const MultiRunOptions& o, const Backend& b) {
  const Op& op = item.plan.op;
  const std::string what = std::string(to_string(item.plan.spec)) + " on " + std::string(b.name()) + ", check " +
                           std::string(to_string(w.check));
  auto refuse = [&](const std::string& estimate, const std::string& flag, double limit, bool is_default) {
    throw Error(ExitCode::runtime,
                "op '" + op.name + "': estimated " + estimate + " exceeds " + flag + " " + plain_number(limit) +
                    (is_default ? " (the default)" : "") + "; raise " + flag + ", pass " + flag +
                    " 0 for no limit, or make the op smaller (--dry-run shows the estimate)",
                op.loc);
  };
  if (o.max_pairs > 0 && w.pairs > o.max_pairs)
    refuse(format_sci(w.pairs, 2) + " query-key pairs (" + what + ", about " + format_duration(w.seconds()) + ")",
           "--max-pairs", o.max_pairs, false);
  if (o.max_seconds > 0 && w.seconds() > o.max_seconds)
    refuse(format_duration(w.seconds()) + " (" + format_sci(w.pairs, 2) + " query-key pairs, " + what + ")",
           "--max-seconds", o.max_seconds, o.max_seconds == kDefaultMaxSeconds);
}

struct BackendRun;
void add_estimate(BackendRun& run, const Backend& b, const BackendInput& item, const WorkEstimate& w,
                  const MultiRunOptions& o, const std::string& prog, size_t count);

// One backend over every input: its results (JSON Lines) and table rows, committed only when the
// backend finished (a failing backend leaves no partial results, as its own tool would).
struct BackendRun {
  std::string json_lines;
  std::vector<std::vector<std::string>> rows;
  bool passed = true;
  std::string skipped;  // why this backend ran nothing (several backends: an op it cannot run)
};

// --dry-run: one sattn.estimate/v1 line and one table row per op.
void add_estimate(BackendRun& run, const Backend& b, const BackendInput& item, const WorkEstimate& w,
                  const MultiRunOptions& o, const std::string& prog, size_t count) {
  const Op& op = item.plan.op;
  const bool over_pairs = o.max_pairs > 0 && w.pairs > o.max_pairs;
  const bool over_time = o.max_seconds > 0 && w.seconds() > o.max_seconds;
  nlohmann::json j = {{"schema", "sattn.estimate/v1"},
                      {"producer", {{"tool", prog}, {"version", SATTN_VERSION}}},
                      {"input", item.input},
                      {"op", op.name},
                      {"backend", std::string(b.name())},
                      {"spec", std::string(to_string(item.plan.spec))},
                      {"pairs", w.pairs},
                      {"macs", w.macs},
                      {"check", {{"mode", std::string(to_string(w.check))}, {"pairs", w.check_pairs}}},
                      {"seconds", {{"run", w.kernel_seconds}, {"check", w.check_seconds}, {"total", w.seconds()}}},
                      {"basis", w.basis},
                      {"limits", {{"max_pairs", o.max_pairs > 0 ? nlohmann::json(o.max_pairs) : nlohmann::json(nullptr)},
                                  {"max_seconds", o.max_seconds > 0 ? nlohmann::json(o.max_seconds) : nlohmann::json(nullptr)}}},
                      {"would_run", !over_pairs && !over_time}};
  run.json_lines += j.dump() + "\n";
  run.rows.push_back({op_label(item, count), std::string(b.name()), std::string(to_string(item.plan.spec)),
                      format_sci(w.pairs, 2), std::string(to_string(w.check)), format_duration(w.kernel_seconds),
                      format_duration(w.check_seconds), format_duration(w.seconds()),
                      over_pairs ? "refused (--max-pairs)" : over_time ? "refused (--max-seconds)" : "ok"});
}

BackendRun run_one(const Backend& b, const std::vector<std::string>& inputs, const MultiRunOptions& o,
                   const std::string& prog, bool host_table, StagedDirectory* stage, const std::string& stage_dir,
                   bool route_around) {
  SelectRequest req = o.selection;
  req.backend = std::string(to_string(b.cost_target()));
  SelectOptions selection = resolve_select_request(req);
  complete_ops_from_data(selection, o.data);
  BackendRunOptions opts;
  opts.tool = prog;
  opts.profile = o.selection.profile;
  opts.threads = o.threads;
  opts.check = o.check;
  // Read (and select) every input first: a malformed file fails before any work or output.
  std::vector<BackendInput> items;
  for (const std::string& in : inputs)
    for (BackendInput& item : read_backend_inputs(in, selection)) items.push_back(std::move(item));
  for (BackendInput& item : items) {  // --precision, --quant-scheme: over what the ops say
    // Fixed scale tables (artifacts) fit only the scheme and precision they were calibrated for
    // (the scales depend on Q_max and V_max): another asked for is exit 3 with the reason.
    if (const Op& op = item.plan.op; op.quant_tables && ((o.precision && *o.precision != op.precision) ||
                                                         (o.quant_scheme && *o.quant_scheme != *op.quant_scheme)))
      throw Error(ExitCode::invalid_input,
                  item.input + ": op '" + op.name + "' carries fixed scale tables for quant_scheme " +
                      to_string(*op.quant_scheme) + " at " + std::string(to_string(op.precision)) +
                      "; --quant-scheme / --precision ask for another (re-run sattn-calibrate --schemes --apply "
                      "--quant-scheme S for it, or run the op without the tables)");
    if (o.precision) item.plan.op.precision = *o.precision;
    if (o.quant_scheme) item.plan.op.quant_scheme = *o.quant_scheme;
    validate(item.plan.op);
  }
  BackendRun run;
  std::vector<WorkEstimate> estimates;
  for (const BackendInput& item : items) estimates.push_back(b.estimate(item.plan, opts));
  // An op this backend's capabilities say it cannot run (softcap: exit 2; a head_dim wider than its max_head_dim: exit 3;
  // its quant_scheme: exit 3) when it was asked for alone; among several (--backend all) softcap and head_dim are routed
  // around, with a note and a "skipped" row (a quant_scheme is the user's choice of numerics: not routed).
  const int64_t widest = b.capabilities().max_head_dim;
  const bool too_wide = widest > 0 && std::any_of(items.begin(), items.end(), [&](const BackendInput& i) {
                          return i.plan.op.shape.head_dim > widest;
                        });
  try {
    require_supported(b, items);
  } catch (const Error& e) {
    const bool head_dim_refusal = too_wide && e.code() == ExitCode::invalid_input &&
                                  e.message().find("cannot run head_dim") != std::string::npos;
    if (!route_around || (e.code() != ExitCode::usage && !head_dim_refusal)) throw;
    run.skipped = e.message();
    return run;
  }
  if (o.dry_run) {
    for (size_t n = 0; n < items.size(); ++n) add_estimate(run, b, items[n], estimates[n], o, prog, items.size());
    return run;
  }
  b.require_available(opts);                             // exit 4 before any work
  guard_memory(items, MemoryUse{}, tool_memory_limit());  // before any data, layout or output exists
  for (size_t n = 0; n < items.size(); ++n) guard_work(items[n], estimates[n], o, b);
  // Progress on a TTY: which op of several, and inside a long op its stage with an ETA.
  ProgressLine progress(!o.quiet && stderr_is_tty());
  const std::vector<std::string> dir_names = op_dir_names(items);
  for (size_t n = 0; n < items.size(); ++n) {
    throw_if_interrupted();  // Ctrl-C: stop between ops, leaving no partial output
    const BackendInput& item = items[n];
    const Op& op = item.plan.op;
    const std::string label = items.size() > 1 ? "[" + std::to_string(n + 1) + "/" + std::to_string(items.size()) + "] " +
                                                     item.input + " " + op.name
                                               : op.name;
    if (items.size() > 1) progress.show(label);
    StageProgress stages(progress, label);
    if (progress.enabled()) opts.progress = [&stages](const ProgressReport& p) { stages.report(p); };
    // Data: --data wins; else what the artifacts carry; else synthetic.
    DataSource src = o.data;
    src.from_artifacts = item.data && !o.data.dir;
    const QKV data = src.from_artifacts ? *item.data : load_qkv(op, o.data);
    if (o.data.dir && !o.quiet)
      if (const std::string w = artifacts_data_mismatch(item, data, *o.data.dir); !w.empty())
        print_diagnostic(prog, "warning", w);
    BackendResult r = b.run(item, data, src, opts);
    opts.progress = nullptr;
    progress.clear();
    nlohmann::json result = nlohmann::json::parse(r.json);
    if (stage && r.out) {
      const std::string dir = items.size() == 1 ? stage_dir : (fs::path(stage_dir) / dir_names[n]).string();
      make_dirs(dir);
      write_npy((fs::path(dir) / "o.npy").string(), tensor_to_npy(*r.out));
      result["outputs"] = {{"o", "o.npy"}};
      write_atomic((fs::path(dir) / "result.json").string(), result.dump(2) + "\n");
    }
    if (!o.quiet)
      for (const std::string& note : r.notes) print_diagnostic(prog, "note", op.loc.str() + ": " + note);
    run.passed = run.passed && r.passed;
    run.json_lines += result.dump() + "\n";
    const nlohmann::json* passed = at(result, {"check", "passed"});
    const nlohmann::json* err = at(result, {"check", "max_rel_error"});
    const std::string rel = err && err->is_number() ? format_sci(err->get<double>())
                            : err && err->is_string() ? err->get<std::string>()
                                                      : "-";
    const nlohmann::json* mode = at(result, {"check", "mode"});
    const std::string mode_name = mode && mode->is_string() ? mode->get<std::string>() : "";
    const std::string check = passed && passed->is_boolean()
                                  ? std::string(passed->get<bool>() ? "ok" : "FAIL") + (mode_name == "sample" ? " (sample)" : "")
                              : mode_name == "none" ? "unchecked"
                                                    : "(model)";
    if (host_table) {
      const double ref_ms = number(result, {"timing", "reference_ms"}), fast_ms = number(result, {"timing", "kernel_ms"});
      run.rows.push_back({op_label(item, items.size()), result.value("spec", std::string("-")),
                          result.value("precision", std::string("-")), format_fixed(number(result, {"layout", "density"}), 4),
                          rel, format_sci(number(result, {"check", "tolerance"})), format_fixed(ref_ms, 1),
                          // vs_ref: the double reference's time over the fast kernel's, only when the
                          // reference did the whole op. It is not a speedup over dense attention
                          // (sattn bench measures that: speedup_vs_dense); hence not called "speedup".
                          format_fixed(fast_ms, 2),
                          mode_name == "full" ? format_fixed(ref_ms / std::max(fast_ms, 1e-6), 1) + "x" : "-", check});
    } else {
      run.rows.push_back({std::string(op.name), std::string(b.name()), result.value("spec", std::string("-")),
                          result.value("precision", std::string("-")), density(result), rel,
                          figure(std::string(b.name()), result), check});
    }
    if (!o.quiet)
      for (const std::string& f : r.failures) print_diagnostic(prog, "error", op.loc.str() + ": " + f);
  }
  return run;
}

}  // namespace

std::vector<const Backend*> backends_named(const std::string& name) {
  if (name != "all")
    if (const Backend* b = find_backend(name)) return {b};
  std::vector<const Backend*> out;
  std::string names;
  for (const Backend* b : backend_registry()) {
    if (name == "all" && b->capabilities().in_all) out.push_back(b);
    names += std::string(b->name()) + ", ";
  }
  names.resize(names.size() - 2);
  if (out.empty()) throw Error(ExitCode::usage, "--backend must be " + names + " or all (got '" + name + "')");
  return out;
}

void write_run_output(const std::string& output, const std::string& format, const std::string& json_lines,
                      const std::string& table) {
  if (output != "-" && format == "text") {  // the table for the reader, the results for the record
    write_atomic(output, json_lines);
    write_atomic("-", table);
    return;
  }
  write_atomic(output, format == "json" ? json_lines : table);
}

int run_backends(const std::vector<const Backend*>& backends, const MultiRunOptions& o) {
  TempDir tmp("sattn-run");
  // Standard input can be read once: keep it in a file every backend reads.
  std::vector<std::string> inputs = o.inputs;
  for (std::string& in : inputs)
    if (in == "-") {
      const std::string path = (fs::path(tmp.path()) / "stdin").string();
      write_atomic(path, read_text("-"));
      in = path;
    }
  // One host backend alone (`sattn run`, `sattn run --backend cuda`) keeps its timing table and
  // names itself "sattn run"; several, or a modelled one, get the summary table.
  const bool host_table =
      !o.dry_run && backends.size() == 1 && (backends[0]->name() == "cpu" || backends[0]->name() == "cuda");
  // --out-dir is staged and moved into place whole after the last backend (result.json last), so
  // a killed or failed run leaves no o.npy without its result.json.
  std::optional<StagedDirectory> stage;
  if (!o.out_dir.empty() && !o.dry_run) stage.emplace(o.out_dir, StageOptions{.force = o.force});
  std::string json_lines;
  TextTable table = o.dry_run ? TextTable({"op", "backend", "spec", "pairs", "check", "run", "check_time", "total", "limits"})
                    : host_table ? TextTable({"op", "spec", "prec", "density", "max_rel_err", "tol", "ref_ms", "fast_ms",
                                              "vs_ref", "check"})
                                 : TextTable({"op", "backend", "spec", "prec", "density", "max_rel_err", "result", "check"});
  int code = 0;
  for (const Backend* b : backends) {
    throw_if_interrupted();
    const std::string prog = host_table && b->name() == "cpu" ? "sattn run" : "sattn run --backend " + std::string(b->name());
    if (!o.quiet && stderr_is_tty() && backends.size() > 1) std::cerr << "sattn run: " << b->name() << "...\n";
    const std::string stage_dir = !stage ? std::string()
                                  : backends.size() == 1 ? stage->staging_path()
                                                         : (fs::path(stage->staging_path()) / std::string(b->name())).string();
    try {
      BackendRun run = run_one(*b, inputs, o, prog, host_table, stage ? &*stage : nullptr, stage_dir, backends.size() > 1);
      if (!run.skipped.empty()) {
        if (!o.quiet) print_diagnostic(prog, "note", run.skipped + ": skipped");
        table.add({"-", std::string(b->name()), "-", "-", "-", "-", "skipped (capabilities)", "skipped"});
        continue;
      }
      json_lines += run.json_lines;
      for (auto& row : run.rows) table.add(std::move(row));
      if (!run.passed) code = more_severe(code, exit_code(ErrorKind::check_failed));
    } catch (const Interrupted&) {
      throw;
    } catch (const Error& e) {
      if (host_table) throw;  // `sattn run` alone reports as itself
      print_diagnostic(prog, "error", e.what());
      // Invalid input or usage is the same for every backend: say it once and write nothing. So is
      // an op refused by the memory guard: every backend would refuse (or thrash) the same way.
      if (e.code() == ExitCode::invalid_input || e.code() == ExitCode::usage || dynamic_cast<const MemoryRefused*>(&e))
        return exit_code(e.kind());
      code = more_severe(code, exit_code(e.kind()));
      table.add({"-", std::string(b->name()), "-", "-", "-", "-", "no result (exit " + std::to_string(exit_code(e.kind())) + ")",
                 "FAIL"});
    }
  }
  if (stage) stage->commit("result.json");
  write_run_output(o.output, o.format, json_lines, table.str());
  return code;
}

}  // namespace sattn
