// `sattn run`: run ops on a backend, check against the reference, report (sattn.result/v1).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/data_layout.hpp"
#include "cli/cli.hpp"
#include "cli/output.hpp"
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
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs{"-"};
  std::string backend = "cpu";
  CLI::Option* backend_opt = nullptr;
  SelectFlags selection;  // for bare ops, as in sattn-select
  std::string data_dir;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = kDefaultSeed;
  std::string out_dir;
  int threads = 0;
  bool force = false;
  std::string check = "auto";
  bool dry_run = false;
  double max_pairs = 0;
  double max_seconds = kDefaultMaxSeconds;
  std::string precision;     // --precision
  std::string quant_scheme;  // --quant-scheme
};


int run_action(const RunOptions& o) {
  o.out.check();
  MultiRunOptions m;
  m.selection = o.selection.request();
  // The backend: --backend, else the profile's defaults.backend, else cpu.
  std::string backend = o.backend;
  if (!o.backend_opt->count() && m.selection.profile)
    if (const auto d = profile_defaults(load_profile(*m.selection.profile)); d.backend) backend = *d.backend;
  const std::vector<const Backend*> backends = backends_named(backend);
  m.inputs = o.inputs;
  if (!o.data_dir.empty()) m.data.dir = o.data_dir;
  m.data.seed = o.seed;
  m.data.layout = o.layout;
  m.threads = o.threads;
  m.out_dir = o.out_dir;
  m.force = o.force;
  m.output = o.out.output;
  m.format = o.out.format;
  m.quiet = o.out.quiet;
  m.check.mode = *parse_check_mode(o.check);  // the flag's check() admits only the four names
  m.dry_run = o.dry_run;
  m.max_pairs = o.max_pairs;
  m.max_seconds = o.max_seconds;
  if (!o.precision.empty()) m.precision = *parse_precision(o.precision);  // the flag's check() admits only the four
  if (!o.quant_scheme.empty()) {
    std::string error;
    m.quant_scheme = parse_quant_scheme(o.quant_scheme, &error);
    if (!m.quant_scheme) throw Error(ExitCode::usage, "--quant-scheme: " + error);
  }
  const int code = run_backends(backends, m);
  return code;
}

}  // namespace

std::function<int()> configure_run(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  app.add_option("ops", o->inputs, "Ops (MLIR generic form, JSON or YAML), plans (sattn.plan/v1) or artifacts (sattn.artifacts/v1: artifacts.json or sattn-emit's output); '-' = stdin")->capture_default_str();
  o->backend_opt = app.add_option("--backend", o->backend,
                                  "cpu (host kernels), cuda (GPU kernels, checked against the cpu reference), rvv (sattn "
                                  "run-rvv), rocc (the accelerator: sattn sim), imc (sattn imc), or all but cuda with a "
                                  "summary table; default: the profile's defaults.backend, else cpu ('sim' and 'accel' are "
                                  "deprecated names of rocc)")
                       ->capture_default_str();
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/false, /*with_probe=*/false);
  auto* data = app.add_option("--data", o->data_dir, "Read q.npy, k.npy, v.npy from DIR (float32, C order)");
  add_layout_option(app, o->layout, data);
  app.add_option("--seed", o->seed, "Seed of the synthetic data when --data is not given")
      ->capture_default_str()
      ->excludes(data);
  app.add_option("--out-dir", o->out_dir,
                 "Write each op's o.npy and result.json here (one subdirectory per op when several, per backend "
                 "with --backend all); an existing directory is replaced whole");
  app.add_flag("--force", o->force, "Replace --out-dir even when it is a non-empty directory that holds no sattn output");
  o->out.add_to(app, "Write the results (sattn.result/v1 JSON Lines) to FILE, atomically; with --format text the table "
                 "still goes to standard output",
                "json (JSON Lines) or text (a summary table)",
                "No progress or check-failure messages on stderr");
  app.add_option("--threads", o->threads, "Kernel threads (0 = all cores)")->capture_default_str();
  app.add_option("--check", o->check,
                 "How outputs are checked against the double-precision reference: full (every row), sample (256 "
                 "query rows of every batch and head, seeded; whole block rows on block layouts), none, or auto: "
                 "full up to 2^23 reference pairs, sample above (cpu and cuda; rvv and rocc check every row)")
      ->check(CLI::IsMember({"auto", "full", "sample", "none"}))
      ->capture_default_str();
  app.add_flag("--dry-run", o->dry_run,
               "Print each op's work estimate on each backend (allowed pairs, check, estimated time: "
               "sattn.estimate/v1, or a table with --format text) and run nothing");
  app.add_option("--max-pairs", o->max_pairs,
                 "Refuse (exit 1, before any work) an op estimated to visit more query-key pairs than this (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-seconds", o->max_seconds,
                 "Refuse (exit 1, before any work) an op estimated to take longer than this many seconds (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--precision", o->precision,
                 "Run every op at this precision (fp32, bf16, i8, i4), over the op's own precision attribute")
      ->check(CLI::IsMember({"fp32", "bf16", "i8", "i4"}));
  app.add_option("--quant-scheme", o->quant_scheme,
                 "How i8/i4 ops quantize Q, K, V and P (sattn-quant(7)): per-tensor, sage, smooth (the default on "
                 "cpu, scales computed from the data at run time), or key=value,... (q=, k=, block=, smooth=, rotate=, "
                 "pv=, v=); backends that run only per-tensor refuse the others (exit 3)");
  add_max_memory_option(app);
  return [o] { return run_action(*o); };
}

}  // namespace sattn
