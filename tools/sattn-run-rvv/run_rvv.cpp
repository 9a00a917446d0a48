// sattn-run-rvv: run ops as RVV 1.0 kernels under qemu-riscv64, count the exact instruction mix
// of the kernel region with the project's QEMU plugin, model cycles, check the output against
// the CPU reference, report sattn.result/v1 (sattn-run-rvv(1)).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/data_layout.hpp"
#include "cli/cli.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "support/io.hpp"
#include "formats/op_io.hpp"
#include "support/process.hpp"
#include "backends/cpu/run.hpp"
#include "select/inputs.hpp"
#include "backends/rvv/rvv.hpp"
#include "backends/rvv/rvv_model.hpp"
#include "backends/rvv/run_rvv.hpp"
#include "core/quant_scheme.hpp"
#include "support/text_table.hpp"
#include "cli/select_flags.hpp"

namespace sattn {

namespace {

constexpr const char* kProg = "sattn-run-rvv";

struct RvvOptions {
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs{"-"};
  SelectFlags selection;  // for bare ops, as in sattn-select
  std::string data_dir;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = kDefaultSeed;
  int vlen = 0;  // 0: the core model's
  CLI::Option* vlen_opt = nullptr;
  std::string precision;
  std::string quant_scheme;  // --quant-scheme
  int tile_rows = 0, lmul = 0;
  std::string kernel = "rvv";
  bool autotune = false;
  std::string qemu = "qemu-riscv64";
  bool keep_workdir = false;
  std::string core_model;
  double timeout_s = 600;
  CLI::Option *tile_rows_opt = nullptr, *tile_rows_alias_opt = nullptr, *lmul_opt = nullptr;
  bool tile_rows_given() const { return tile_rows_opt->count() || tile_rows_alias_opt->count(); }
};


int run_rvv_action(RvvOptions& o) {
  o.out.check();
  const std::optional<rvv::Kernel> kernel = rvv::parse_kernel(o.kernel);
  if (!kernel) throw Error(ExitCode::usage, "--kernel must be rvv, scalar or autovec (got '" + o.kernel + "')");
  std::optional<Precision> precision;
  if (!o.precision.empty()) {
    precision = parse_precision(o.precision);
    if (!precision) throw Error(ExitCode::usage, "--precision must be fp32, bf16, i8 or i4 (got '" + o.precision + "')");
  }
  std::optional<QuantScheme> quant_scheme;
  if (!o.quant_scheme.empty()) {
    std::string error;
    quant_scheme = parse_quant_scheme(o.quant_scheme, &error);
    if (!quant_scheme) throw Error(ExitCode::usage, "--quant-scheme: " + error);
  }
  if (o.tile_rows_given() && (o.tile_rows < 1 || o.tile_rows > 8 || (o.tile_rows & (o.tile_rows - 1))))
    throw Error(ExitCode::usage, "--tile-rows must be 1, 2, 4 or 8 (got " + std::to_string(o.tile_rows) + ")");
  if (o.lmul_opt->count() && (o.lmul < 1 || o.lmul > 8 || (o.lmul & (o.lmul - 1))))
    throw Error(ExitCode::usage, "--lmul must be 1, 2, 4 or 8 (got " + std::to_string(o.lmul) + ")");
  if (o.timeout_s <= 0) throw Error(ExitCode::usage, "--timeout must be positive");

  // The core model: built-in defaults < the profile's rvv section < --core-model FILE.
  RvvSettings settings = rvv_settings(o.selection.request().profile);
  if (!o.core_model.empty()) settings.core.apply_file(o.core_model);
  settings.kernel = *kernel;
  // --vlen 0 is not "the default": only 128..1024 may be given (--help).
  settings.vlen = o.vlen_opt && o.vlen_opt->count() ? o.vlen : settings.core.vlen;
  if (settings.vlen != 128 && settings.vlen != 256 && settings.vlen != 512 && settings.vlen != 1024)
    throw Error(ExitCode::usage, "--vlen must be 128, 256, 512 or 1024 (got " + std::to_string(settings.vlen) + ")");
  settings.precision = precision;
  if (o.tile_rows_given()) settings.tile_rows = o.tile_rows;
  if (o.lmul_opt->count()) settings.lmul = o.lmul;
  settings.autotune = o.autotune;
  settings.qemu = o.qemu;
  settings.timeout_s = o.timeout_s;
  settings.keep_workdir = o.keep_workdir;
  settings.note = [](const std::string& m) { print_diagnostic(kProg, "note", m); };
  ProgressLine autotune_line(o.out.progress() && o.autotune);
  if (autotune_line.enabled()) settings.progress = [&](const std::string& m) { autotune_line.show(m); };
  SelectOptions selection = o.selection.resolve();
  complete_ops_from_data(selection, o.data_dir, o.layout);

  // Read (and select) every input first: a malformed file fails before any work or output.
  std::vector<BackendInput> items;
  for (const std::string& in : o.inputs)
    for (BackendInput& item : read_backend_inputs(in, selection)) items.push_back(std::move(item));
  for (BackendInput& item : items) {  // --quant-scheme over the op's (as sattn run --quant-scheme)
    if (!quant_scheme) break;
    if (const Op& op = item.plan.op; op.quant_tables && *quant_scheme != *op.quant_scheme)
      throw Error(ExitCode::invalid_input,
                  item.input + ": op '" + op.name + "' carries fixed scale tables for quant_scheme " +
                      to_string(*op.quant_scheme) + "; --quant-scheme asks for another (re-run sattn-calibrate "
                      "--schemes --apply --quant-scheme S for it, or run the op without the tables)");
    item.plan.op.quant_scheme = *quant_scheme;
    validate(item.plan.op);
  }
  for (const BackendInput& item : items)  // tables fit their precision only (the scales hold Q_max)
    if (const Op& op = item.plan.op; op.quant_tables && precision && *precision != op.precision)
      throw Error(ExitCode::invalid_input, item.input + ": op '" + op.name + "' carries fixed scale tables for " +
                                               std::string(to_string(op.precision)) + "; --precision asks for " +
                                               std::string(to_string(*precision)));
  guard_memory(items, MemoryUse{}, tool_memory_limit());  // before any data or layout exists
  require_supported(rvv_backend(), items);                // exit 2: softcap

  // Fail fast, before any data or layout work, when qemu or the plugin is missing.
  require_rvv_tools(settings);

  DataSource src;
  if (!o.data_dir.empty()) src.dir = o.data_dir;
  src.layout = o.layout;
  src.seed = o.seed;

  ProgressLine progress(o.out.progress() && items.size() > 1 && !o.autotune);
  std::string json_lines;
  TextTable table({"op", "spec", "prec", "kernel", "vlen", "tile", "lmul", "instructions", "vector", "cycles",
                   "max_rel_err", "tol", "check"});
  bool all_passed = true;
  for (size_t n = 0; n < items.size(); ++n) {
    throw_if_interrupted();  // Ctrl-C: stop between ops, leaving no partial output
    const BackendInput& item = items[n];
    const std::string label = items.size() > 1 ? "[" + std::to_string(n + 1) + "/" + std::to_string(items.size()) + "] " : "";
    progress.show(label + item.input + " " + item.plan.op.name);
    // Data: --data wins; else what the artifacts carry; else synthetic.
    DataSource from = src;
    from.from_artifacts = item.data && !src.dir;
    const QKV data = from.from_artifacts ? *item.data : load_qkv(item.plan.op, src);
    if (src.dir && !o.out.quiet)
      if (const std::string w = artifacts_data_mismatch(item, data, *src.dir); !w.empty())
        print_diagnostic(kProg, "warning", w);
    const RvvRun r = run_rvv(item, data, from, settings, kProg, label);
    autotune_line.clear();
    json_lines += r.result.dump() + "\n";
    all_passed = all_passed && r.passed;
    const double vector_share = r.instructions ? double(r.vector_instructions) / double(r.instructions) : 0.0;
    table.add({(items.size() > 1 ? std::filesystem::path(item.input).stem().string() + "." : std::string()) + r.op.name,
               std::string(to_string(item.plan.spec)), std::string(to_string(r.op.precision)), rvv::to_string(*kernel),
               std::to_string(r.vlen), std::to_string(r.tile_rows), std::to_string(r.lmul),
               std::to_string(r.instructions), format_fixed(100 * vector_share, 1) + "%",
               std::to_string(std::llround(r.cycles)), r.error.finite ? format_sci(r.error.max_rel) : "inf",
               format_sci(r.tolerance), r.passed ? "ok" : "FAIL"});
    if (!r.passed && !o.out.quiet) print_diagnostic(kProg, "error", r.op.loc.str() + ": " + check_failure(r.error, r.tol));
  }
  progress.clear();
  o.out.write(json_lines, table.str());
  return all_passed ? 0 : exit_code(ErrorKind::check_failed);
}

}  // namespace

std::function<int()> configure_run_rvv(CLI::App& app) {
  auto o = std::make_shared<RvvOptions>();
  app.add_option("ops", o->inputs, "Ops (MLIR generic form, JSON or YAML), plans (sattn.plan/v1) or artifacts (sattn.artifacts/v1: artifacts.json or sattn-emit's output); '-' = stdin")->capture_default_str();
  o->selection.backend = "rvv";  // bare ops are selected for this backend's cost model
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/false, /*with_probe=*/false);
  auto* data = app.add_option("--data", o->data_dir, "Read q.npy, k.npy, v.npy from DIR (float32, C order)");
  add_layout_option(app, o->layout, data);
  app.add_option("--seed", o->seed, "Seed of the synthetic data when --data is not given")
      ->capture_default_str()
      ->excludes(data);
  o->vlen_opt = app.add_option("--vlen", o->vlen, "Vector register bits: 128, 256, 512 or 1024 (default: the core model's, 256)");
  app.add_option("--precision", o->precision, "Run at this precision (fp32, bf16, i8, i4) instead of the op's");
  app.add_option("--quant-scheme", o->quant_scheme,
                 "How i8/i4 ops quantize Q, K, V and P (sattn-quant(7)): per-tensor, sage, smooth, or key=value,... "
                 "(q=, k=, block=, smooth=, rotate=, pv=, v=); default: the op's, else smooth (i8) / smooth,block=2 (i4)");
  o->tile_rows_opt = app.add_option("--tile-rows", o->tile_rows,
                                    "Query rows per kernel tile: 1, 2, 4 or 8 (default: the op's tile_rows, else the kernel's)");
  // The prior prototype's spelling, accepted but not listed in --help.
  o->tile_rows_alias_opt = app.add_option("--tile_rows", o->tile_rows)->group("");
  o->lmul_opt = app.add_option("--lmul", o->lmul, "LMUL of the score vectors: 1, 2, 4 or 8 (clamped to what the tile fits)");
  app.add_option("--kernel", o->kernel, "rvv (RVV intrinsics), scalar (GCC, no vector) or autovec (clang -O3 auto-vectorized)")
      ->capture_default_str();
  app.add_flag("--autotune", o->autotune,
               "Sweep tile_rows and LMUL (those not fixed by a flag), keep the passing run of fewest modelled cycles");
  app.add_option("--qemu", o->qemu, "The qemu-riscv64 to run (a name in PATH or a path)")->capture_default_str();
  app.add_option("--core-model", o->core_model, "YAML file of core model parameters (see CORE MODEL in the man page)");
  app.add_option("--timeout", o->timeout_s, "Seconds one qemu run may take before it is killed")->capture_default_str();
  app.add_flag("--keep-workdir", o->keep_workdir, "Keep each run's work directory and print its path on stderr");
  o->out.add_to(app, "Write the result (JSON Lines or table) to FILE, atomically",
                "json (sattn.result/v1 JSON Lines) or text (a table)",
                "No progress or check-failure messages on stderr");
  add_max_memory_option(app);
  return [o] { return run_rvv_action(*o); };
}

}  // namespace sattn
