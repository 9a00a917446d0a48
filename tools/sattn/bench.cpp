// `sattn bench`: the benchmark and sweep driver. Each point runs as a subprocess of the sattn
// executable (sattn run / run-rvv / sim / imc on one synthetic op), which isolates points from
// each other and is exactly what a job list for GNU parallel or Slurm needs.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "bench.hpp"
#include "cli/cli.hpp"
#include "cli/exit_codes.hpp"
#include "sattn/error.hpp"
#include "sattn/select.hpp"
#include "support/io.hpp"
#include "support/process.hpp"
#include "formats/profile.hpp"

namespace sattn {

namespace {

struct BenchOptions {
  BenchConfig config;
  std::vector<std::string> param_texts;
  int jobs = 1;
  std::string sattn;
  std::string out_dir;
  std::string output;
  std::string emit_jobs_file;
  std::string results_dir = "results";
  std::string collect_dir;
  std::vector<std::string> only;
  std::string blas_dense_op;  // internal: run the OpenBLAS baseline point on this op file
  CLI::Option* lanes_opt = nullptr;
  bool plot = false;
  bool force = false;
  bool list = false;
  bool quiet = false;
};

std::string self_executable() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(ExitCode::runtime, "cannot find the sattn executable (/proc/self/exe); give --sattn PATH");
  return exe.string();
}

// The sattn executable the points run: --sattn (a path, or a name looked up in PATH), else this one.
std::string resolve_sattn(const std::string& given) {
  if (given.empty()) return self_executable();
  const auto found = find_executable(given);
  if (!found)
    throw Error(ExitCode::external_tool, "--sattn " + given + ": no such executable (give a path, or a name in PATH)");
  return std::filesystem::absolute(*found).string();
}

void parse_params(BenchOptions& o) {
  for (const std::string& text : o.param_texts) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
      throw Error(ExitCode::usage, "--param '" + text + "': expected KEY=VALUE[,VALUE...]");
    std::vector<std::string> values;
    std::string rest = text.substr(eq + 1);
    for (size_t start = 0;;) {
      const size_t comma = rest.find(',', start);
      values.push_back(rest.substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    for (const std::string& v : values)
      if (v.empty()) throw Error(ExitCode::usage, "--param '" + text + "': empty value");
    o.config.params.push_back({text.substr(0, eq), values});
  }
}

double kernel_ms(const PointOutcome& o) {
  const nlohmann::json& t = o.result.is_object() ? o.result.value("timing", nlohmann::json()) : nlohmann::json();
  return t.is_object() && t.contains("kernel_ms") && t["kernel_ms"].is_number() ? t["kernel_ms"].get<double>() : 0.0;
}

// Of the repetitions of one point: the first failure if any, else the run with the median
// kernel time (the upper median for an even count), which also carries the others' times.
PointOutcome median_outcome(std::vector<PointOutcome> reps) {
  for (const PointOutcome& o : reps)
    if (o.exit_code != 0) return o;
  if (reps.size() == 1) return reps[0];
  std::sort(reps.begin(), reps.end(), [](const auto& a, const auto& b) { return kernel_ms(a) < kernel_ms(b); });
  PointOutcome median = reps[reps.size() / 2];
  nlohmann::json all = nlohmann::json::array();
  for (const PointOutcome& o : reps) all.push_back(kernel_ms(o));
  median.result["timing"]["kernel_reps_ms"] = all;
  return median;
}

// One stderr line per point measured at a high load average (its record and CSV row carry it too).
void report_load(const std::vector<nlohmann::json>& records) {
  for (const nlohmann::json& r : records)
    if (r.value("load_warning", nlohmann::json()).is_string())
      print_diagnostic("sattn bench", "warning", r["id"].get<std::string>() + ": " + r["load_warning"].get<std::string>());
}

void report_failures(const std::vector<nlohmann::json>& records) {
  for (const nlohmann::json& r : records)
    if (r["exit_code"] != 0)
      print_diagnostic("sattn bench", r["status"] == "check_failed" ? "warning" : "error",
                       "point " + r["id"].get<std::string>() + ": " + r.value("error", std::string("failed")));
}

// Writes bench.json, bench.csv (and plots) into --out-dir, and bench.json to -o; all or nothing.
void write_outputs(const BenchOptions& o, const nlohmann::json& doc, const std::vector<nlohmann::json>& records) {
  const std::string json_text = doc.dump(2) + "\n";
  if (!o.out_dir.empty()) {
    StagedDirectory staged(o.out_dir, StageOptions{.force = o.force});
    const std::filesystem::path dir = staged.staging_path();
    write_atomic((dir / "bench.csv").string(), records_csv(records));
    if (o.plot) write_plots((dir / "plots").string(), records);
    write_atomic((dir / "bench.json").string(), json_text);
    staged.commit("bench.json");
  }
  if (!o.output.empty()) {
    if (o.output != "-") {
      const auto parent = std::filesystem::path(o.output).parent_path();
      if (!parent.empty()) make_dirs(parent.string());
    }
    write_atomic(o.output, json_text);
  }
}

int bench_action(BenchOptions& o) {
  if (!o.blas_dense_op.empty()) {
    // One point of a sweep (what backend_args() runs for the cpu OpenBLAS baseline).
    const nlohmann::json r = run_blas_point(o.blas_dense_op, o.config.seed, o.config.threads);
    std::cout << r.dump() << "\n";
    std::cout.flush();
    return r["check"]["passed"].get<bool>() ? 0 : exit_code(ErrorKind::check_failed);
  }
  parse_params(o);
  for (std::string& b : o.config.backends) b = canonical_backend_name(b);  // "sim": rocc's deprecated name
  // The profile is looked up here, once: the points run elsewhere (and job lines on other hosts
  // may too), so they get its absolute path. An unknown name is a usage error now, not per point.
  if (!o.config.profile.empty()) o.config.profile_path = std::filesystem::absolute(find_profile(o.config.profile)).string();
  // Under a profile, sim points take the profile's lanes unless --lanes says otherwise.
  if (!o.config.profile.empty() && o.lanes_opt && o.lanes_opt->count() == 0) o.config.lanes = {0};
  if (o.jobs < 1) throw Error(ExitCode::usage, "-j/--jobs must be at least 1");
  if (o.config.reps < 1) throw Error(ExitCode::usage, "--reps must be at least 1");
  if (o.config.timeout_s < 0) throw Error(ExitCode::usage, "--timeout must be >= 0");
  if (o.plot && o.out_dir.empty()) throw Error(ExitCode::usage, "--plot writes into --out-dir: give --out-dir DIR");
  const bool progress = !o.quiet && stderr_is_tty();

  if (!o.collect_dir.empty()) {
    nlohmann::json sources;
    std::vector<nlohmann::json> records = collect_records(o.collect_dir, sources);
    add_derived_figures(records);
    nlohmann::json doc = provenance(o.config, "");
    doc["provenance"].erase("parameters");
    doc["provenance"]["collected_from"] = sources;
    doc = bench_document(doc, records);
    const std::string output = o.output.empty() && o.out_dir.empty() ? "-" : o.output;
    BenchOptions outputs = o;
    outputs.output = output;
    write_outputs(outputs, doc, records);
    if (!o.quiet) report_failures(records);
    return sweep_exit_status(records);
  }

  std::vector<BenchPoint> points = expand_sweep(o.config);
  if (!o.only.empty()) {
    std::vector<BenchPoint> kept;
    for (const std::string& id : o.only) {
      auto it = std::find_if(points.begin(), points.end(), [&](const BenchPoint& p) { return p.id == id; });
      if (it == points.end())
        throw Error(ExitCode::usage, "--only " + id + ": no point of this sweep has that id (--list shows them)");
      kept.push_back(*it);
    }
    points = std::move(kept);
  }
  if (o.list) {
    std::string text;
    for (const BenchPoint& p : points) text += p.id + "\n";
    write_atomic(o.output.empty() ? "-" : o.output, text);
    return 0;
  }
  const std::string sattn = resolve_sattn(o.sattn);
  if (!o.emit_jobs_file.empty()) {
    // The lines name the executable as given (a name stays a PATH lookup on each host).
    const std::string exe = o.sattn.empty() ? sattn : o.sattn;
    write_atomic(o.emit_jobs_file, emit_jobs(points, o.config, exe, o.results_dir));
    if (!o.quiet)
      std::cerr << "sattn bench: wrote " << points.size() << " jobs to " << o.emit_jobs_file << "; run them, then `sattn bench --collect "
                << o.results_dir << " --out-dir DIR`\n";
    return 0;
  }

  // cpu points run --reps times (separate processes); the others are deterministic.
  std::vector<BenchPoint> runs;
  std::vector<size_t> run_of;
  for (size_t i = 0; i < points.size(); ++i)
    for (int r = 0; r < (points[i].backend == "cpu" ? o.config.reps : 1); ++r) {
      runs.push_back(points[i]);
      run_of.push_back(i);
    }
  const nlohmann::json load_start = load_average();
  std::vector<PointOutcome> outcomes;
  try {
    outcomes = run_points(runs, o.config, sattn, o.jobs, progress);
  } catch (const SweepInterrupted&) {
    print_diagnostic("sattn bench", "error", "interrupted; stopped every point and wrote nothing");
    return 130;
  }
  std::vector<std::vector<PointOutcome>> by_point(points.size());
  for (size_t k = 0; k < runs.size(); ++k) by_point[run_of[k]].push_back(std::move(outcomes[k]));
  std::vector<nlohmann::json> records;
  for (size_t i = 0; i < points.size(); ++i) records.push_back(make_record(points[i], median_outcome(by_point[i])));
  add_derived_figures(records);
  nlohmann::json prov = provenance(o.config, sattn);
  // The machine is often shared: what else ran is part of the numbers.
  if (!load_start.is_null()) prov["provenance"]["load_average"] = {{"start", load_start}, {"end", load_average()}};
  const nlohmann::json doc = bench_document(prov, records);
  BenchOptions outputs = o;
  if (o.output.empty() && o.out_dir.empty()) outputs.output = "-";
  write_outputs(outputs, doc, records);
  if (!o.quiet) report_failures(records), report_load(records);
  return sweep_exit_status(records);
}

}  // namespace

std::function<int()> configure_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  BenchConfig& c = o->config;
  app.add_option("--backend,--backends", c.backends, "Backends to sweep: cpu, rvv, rocc, imc (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--specs", c.specs, "Specs to sweep (comma-separated)")->delimiter(',')->capture_default_str();
  app.add_option("--seq-lens", c.seq_lens, "Sequence lengths (seq_len = kv_len; comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--precisions", c.precisions, "Precisions: fp32, bf16, i8, i4 (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--vlens", c.vlens, "rvv: VLENs, of 128, 256, 512, 1024 (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--kernels", c.kernels, "rvv: kernels, of scalar, autovec, rvv (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  o->lanes_opt = app.add_option("--lanes", c.lanes, "rocc: MAC lanes, of 8, 16, 32 (comma-separated; under --profile: the profile's)")
                     ->delimiter(',')
                     ->capture_default_str();
  app.add_option("--head-dim", c.head_dim, "head_dim of every op")->capture_default_str();
  app.add_option("--heads", c.heads, "Query heads (= KV heads) of every op")->capture_default_str();
  app.add_option("--batch", c.batch, "Batch of every op")->capture_default_str();
  app.add_flag("--causal", c.causal, "Causal ops");
  app.add_option("--param", o->param_texts,
                 "Set an op attribute on every point, KEY=VALUE; KEY=V1,V2,... sweeps it (repeatable)");
  app.add_flag_function("--no-dense-baseline", [o](int64_t) { o->config.dense_baseline = false; },
               "cpu: do not add the dense point of each size that speedups are measured against");
  app.add_flag_function("--no-blas-baseline", [o](int64_t) { o->config.blas_baseline = false; },
                        "cpu: do not add the OpenBLAS dense attention of each size (speedup_vs_blas)");
  app.add_option("--profile", c.profile, "Run every point under this profile (NAME or PATH; passed to each tool)");
  app.add_option("--blas-dense", o->blas_dense_op, "Internal: run one OpenBLAS dense baseline point on OP")
      ->group("");
  app.add_flag("--model-only", c.sim_model_only, "rocc: skip the RTL, use the cycle-exact model (sattn sim --model-only)");
  app.add_option("--threads", c.threads, "cpu: kernel threads per point (0 = all cores)")->capture_default_str();
  app.add_option("--reps", c.reps, "cpu: runs per point (separate processes); the median kernel time is kept")
      ->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the synthetic data")->capture_default_str();
  app.add_option("--timeout", c.timeout_s, "Seconds before a point is killed (0 = no limit)")->capture_default_str();
  app.add_option("-j,--jobs", o->jobs, "Points run in parallel")->capture_default_str();
  app.add_option("--sattn", o->sattn, "The sattn executable the points run (default: this one)");
  app.add_option("--out-dir", o->out_dir, "Write bench.json, bench.csv (and plots/) into DIR, atomically (an existing DIR is replaced whole)");
  app.add_flag("--force", o->force, "Replace --out-dir even when it is a non-empty directory that holds no sattn output");
  app.add_option("-o,--output", o->output, "Write the sattn.bench/v1 JSON to FILE ('-' = stdout; the default without --out-dir)");
  app.add_flag("--plot", o->plot, "Also draw plots (gnuplot: SVG and PNG) into DIR/plots");
  app.add_option("--emit-jobs", o->emit_jobs_file, "Write one shell command per point to FILE instead of running");
  app.add_option("--results-dir", o->results_dir, "Where the emitted jobs write their point files")->capture_default_str();
  app.add_option("--collect", o->collect_dir, "Merge the point files an emitted job list wrote into DIR");
  app.add_option("--only", o->only, "Run only the point with this id (repeatable; what job lines use)");
  app.add_flag("--list", o->list, "Print the ids of the sweep's points and exit");
  app.add_flag("-q,--quiet", o->quiet, "No progress and no per-point failure messages on stderr");
  return [o] { return bench_action(*o); };
}

}  // namespace sattn
