// `sattn run`: run ops on a backend, check against the reference, report (sattn.result/v1).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/cli.hpp"
#include "formats/emit.hpp"
#include "cli/run_backends.hpp"
#include "cli/select_flags.hpp"
#include "support/io.hpp"
#include "support/process.hpp"
#include "formats/npy.hpp"
#include "formats/op_io.hpp"
#include "backends/cpu/run.hpp"
#include "select/inputs.hpp"
#include "support/text_table.hpp"
#include "backends/cuda/run_cuda.hpp"

namespace sattn {

namespace {

struct RunOptions {
  std::vector<std::string> inputs{"-"};
  std::string backend = "cpu";
  CLI::Option* backend_opt = nullptr;
  SelectFlags selection;  // for bare ops, as in sattn-select
  std::string data_dir;
  uint64_t seed = kDefaultSeed;
  std::string out_dir;
  std::string output = "-";
  std::string format = "json";
  int threads = 0;
  bool quiet = false;
  bool force = false;
};


// Directory names for the ops of a multi-op run: "<file stem>.<op name>", cleaned and made unique
// (support/io.hpp unique_file_names: an op name never leads out of --out-dir).
std::vector<std::string> op_dir_names(const std::vector<BackendInput>& items) {
  std::vector<std::string> names;
  for (const BackendInput& item : items)
    names.push_back((item.input == "-" ? "stdin" : std::filesystem::path(item.input).stem().string()) + "." + item.plan.op.name);
  return unique_file_names(names);
}

// The options every backend tool shares with `sattn run`, as they were given.
std::vector<std::string> forwarded_options(const RunOptions& o) {
  const SelectFlags& f = o.selection;
  std::vector<std::string> args;
  if (f.force_opt->count()) args.insert(args.end(), {"--force-spec", f.force});
  if (f.disable_opt->count())
    for (const std::string& s : f.disable) args.insert(args.end(), {"--disable", s});
  if (f.prefer_bsr_opt->count() && f.prefer_bsr) args.push_back("--prefer-bsr");
  if (f.prefer_sw_opt->count() && f.prefer_sw) args.push_back("--prefer-sw");
  if (f.l1_opt->count()) args.insert(args.end(), {"--l1-bytes", std::to_string(f.l1_bytes)});
  if (f.profile_opt->count()) args.insert(args.end(), {"--profile", f.profile});
  if (!o.data_dir.empty())
    args.insert(args.end(), {"--data", o.data_dir});
  else
    args.insert(args.end(), {"--seed", std::to_string(o.seed)});
  return args;
}

int run_action(const RunOptions& o) {
  if (o.format != "json" && o.format != "text") throw Error(ExitCode::usage, "--format must be json or text");
  // The backend: --backend, else the profile's defaults.backend, else cpu.
  std::string backend = o.backend;
  if (!o.backend_opt->count())
    if (const std::optional<Profile> p = o.selection.load_profile_if_given())
      if (const auto d = profile_defaults(*p); d.backend) backend = *d.backend;
  if (backend != "cpu" && backend != "cuda") {
    std::vector<std::string> backends;
    if (backend == "all")
      backends = backend_names();
    else if (const auto names = backend_names(); std::find(names.begin(), names.end(), backend) != names.end())
      backends = {backend};
    else
      throw Error(ExitCode::usage, "--backend must be cpu, cuda, rvv, sim, imc or all (got '" + backend + "')");
    MultiRunOptions m;
    m.inputs = o.inputs;
    m.forwarded = forwarded_options(o);
    if (o.threads) m.cpu_only.insert(m.cpu_only.end(), {"--threads", std::to_string(o.threads)});
    if (!o.out_dir.empty()) m.cpu_only.insert(m.cpu_only.end(), {"--out-dir", o.out_dir});
    if (o.force) m.cpu_only.push_back("--force");
    m.output = o.output;
    m.format = o.format;
    m.quiet = o.quiet;
    return run_backends(backends, m);
  }
  const SelectOptions selection = o.selection.resolve();

  // Read (and select) every input first: a malformed file fails before any work or output.
  std::vector<BackendInput> items;
  for (const std::string& in : o.inputs)
    for (BackendInput& item : read_backend_inputs(in, selection)) items.push_back(std::move(item));
  if (backend == "cuda") require_cuda_device();  // exit 4 before any work when there is no GPU

  guard_memory(items, MemoryUse{}, tool_memory_limit());  // fail fast, before any data, layout or output exists

  DataSource src;
  if (!o.data_dir.empty()) src.dir = o.data_dir;
  src.seed = o.seed;
  FastOptions fast;
  fast.threads = o.threads;

  const bool progress = !o.quiet && stderr_is_tty() && items.size() > 1;
  // --out-dir is staged and moved into place whole after the last op (result.json last), so a
  // killed or failed run leaves no o.npy without its result.json.
  std::optional<StagedDirectory> stage;
  if (!o.out_dir.empty()) stage.emplace(o.out_dir, StageOptions{.force = o.force});
  const std::vector<std::string> dir_names = op_dir_names(items);
  std::string json_lines;
  TextTable table({"op", "spec", "prec", "density", "max_rel_err", "tol", "ref_ms", "fast_ms", "speedup", "check"});
  bool all_passed = true;
  for (size_t n = 0; n < items.size(); ++n) {
    throw_if_interrupted();  // Ctrl-C: stop between ops, leaving no partial output
    const BackendInput& item = items[n];
    const std::string& input = item.input;
    const Op& op = item.plan.op;
    if (progress) std::cerr << "\r[" << n + 1 << "/" << items.size() << "] " << input << " " << op.name << "\x1b[K" << std::flush;
    // Data: --data wins; else what the artifacts carry; else synthetic.
    const bool carried = item.data && !src.dir;
    const QKV data = carried ? *item.data : load_qkv(op, src);
    const nlohmann::json data_desc = carried ? nlohmann::json{{"source", "artifacts"}} : describe(src);
    CpuRun r = backend == "cuda" ? run_cuda(item.plan, item.layout ? &*item.layout : nullptr, data, data_desc, "sattn run")
                                 : run_cpu(item.plan, item.layout ? &*item.layout : nullptr, data, data_desc, fast, "sattn run");
    if (stage) {
      const std::string dir = items.size() == 1 ? stage->staging_path()
                                                : (std::filesystem::path(stage->staging_path()) / dir_names[n]).string();
      make_dirs(dir);
      write_npy((std::filesystem::path(dir) / "o.npy").string(), tensor_to_npy(r.out));
      r.result["outputs"] = {{"o", "o.npy"}};
      write_atomic((std::filesystem::path(dir) / "result.json").string(), r.result.dump(2) + "\n");
    }
    all_passed = all_passed && r.passed;
    json_lines += r.result.dump() + "\n";
    const auto& t = r.result["timing"];
    const double ref_ms = t["reference_ms"], fast_ms = t["kernel_ms"];
    table.add({(items.size() > 1 ? std::filesystem::path(input).stem().string() + "." : std::string()) + op.name,
               std::string(to_string(r.spec)), std::string(to_string(op.precision)),
               format_fixed(r.result["layout"]["density"], 4), r.error.finite ? format_sci(r.error.max_rel) : "inf", format_sci(r.tolerance),
               format_fixed(ref_ms, 1), format_fixed(fast_ms, 2), format_fixed(ref_ms / std::max(fast_ms, 1e-6), 1) + "x",
               r.passed ? "ok" : "FAIL"});
    if (!r.passed && !o.quiet)
      print_diagnostic("sattn run", "error",
                       op.loc.str() + ": output differs from the reference: max relative error " + format_sci(r.error.max_rel) +
                           " > tolerance " + format_sci(r.tolerance));
  }
  if (progress) std::cerr << "\r\x1b[K" << std::flush;
  if (stage) stage->commit("result.json");
  write_run_output(o.output, o.format, json_lines, table.str());
  return all_passed ? 0 : int(ExitCode::check_failed);
}

}  // namespace

std::function<int()> configure_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  app.add_option("ops", o->inputs, "Ops (MLIR generic form, JSON or YAML), plans (sattn.plan/v1) or artifacts (sattn.artifacts/v1: artifacts.json or sattn-emit's output); '-' = stdin")->capture_default_str();
  o->backend_opt = app.add_option("--backend", o->backend,
                                  "cpu (host kernels), cuda (GPU kernels, checked against the cpu reference), rvv (sattn "
                                  "run-rvv), sim (sattn sim), imc (sattn imc), or all but cuda with a summary table; "
                                  "default: the profile's defaults.backend, else cpu")
                       ->capture_default_str();
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/false, /*with_probe=*/false);
  auto* data = app.add_option("--data", o->data_dir, "Read q.npy, k.npy, v.npy from DIR (float32, C order)");
  app.add_option("--seed", o->seed, "Seed of the synthetic data when --data is not given")
      ->capture_default_str()
      ->excludes(data);
  app.add_option("--out-dir", o->out_dir,
                 "Write the cpu backend's o.npy and result.json here (one subdirectory per op when several); an "
                 "existing directory is replaced whole");
  app.add_flag("--force", o->force, "Replace --out-dir even when it is a non-empty directory that holds no sattn output");
  app.add_option("-o,--output", o->output,
                 "Write the results (sattn.result/v1 JSON Lines) to FILE, atomically; with --format text the table "
                 "still goes to standard output")
      ->capture_default_str();
  app.add_option("--format", o->format, "json (JSON Lines) or text (a summary table)")->capture_default_str();
  app.add_option("--threads", o->threads, "Kernel threads (0 = all cores)")->capture_default_str();
  app.add_flag("-q,--quiet", o->quiet, "No progress or check-failure messages on stderr");
  add_max_memory_option(app);
  return [o] { return run_action(*o); };
}

}  // namespace sattn
