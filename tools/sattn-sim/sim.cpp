// sattn-sim: run ops on the RoCC accelerator's RTL under Verilator (and on its bit-exact model),
// check RTL == model bit for bit and the output against the fp32 reference, and report cycles,
// stalls, the roofline bound and an energy estimate (sattn.result/v1 with a "sim" section).
// --probe prints the accelerator's capabilities (sattn.probe/v1).
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "backends/rocc/accel.hpp"
#include "cli/data_layout.hpp"
#include "cli/cli.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "backends/rocc/energy.hpp"
#include "support/io.hpp"
#include "support/process.hpp"
#include "backends/cpu/run.hpp"
#include "select/inputs.hpp"
#include "support/text_table.hpp"
#include "cli/select_flags.hpp"
#include "backends/rocc/sim_probe.hpp"
#include "backends/rocc/sim_run.hpp"

namespace sattn {

namespace {

struct SimCli {
  OutputFlags out;  // -o, --format, -q
  std::vector<std::string> inputs{"-"};
  SelectFlags selection;
  std::string data_dir;
  DataLayout layout = DataLayout::bhsd;  // --layout
  uint64_t seed = kDefaultSeed;
  int lanes = 16;
  bool single_buffer = false;
  int dram_latency = 0, dram_bandwidth = 0;
  double clock_mhz = 0;
  int64_t max_cycles = 0;
  std::string precision;
  std::string trace, energy_file;
  bool model_only = false, probe = false, keep_workdir = false;
  std::string grid, multicast, schedule;
  CLI::Option *grid_opt = nullptr, *multicast_opt = nullptr, *schedule_opt = nullptr;
  CLI::Option *lanes_opt = nullptr, *latency_opt = nullptr, *bandwidth_opt = nullptr, *clock_opt = nullptr, *max_cycles_opt = nullptr;
};


// The run's parameters: the defaults, then the profile's accel: and energy: sections (base
// profile first), then the command line.
SimSettings settings_of(const SimCli& o) {
  SimSettings s = sim_settings(o.selection.request().profile);
  if (o.lanes_opt->count()) {
    if (o.lanes != 8 && o.lanes != 16 && o.lanes != 32)
      throw Error(ExitCode::usage, "--lanes must be 8, 16 or 32 (got " + std::to_string(o.lanes) + ")");
    s.config.lanes = o.lanes;
  }
  if (o.single_buffer) s.config.double_buffer = false;
  if (o.latency_opt->count()) {
    if (o.dram_latency < 1 || o.dram_latency > 100000)
      throw Error(ExitCode::usage, "--dram-latency must be from 1 to 100000 cycles (got " + std::to_string(o.dram_latency) + ")");
    s.config.dram_latency_cycles = o.dram_latency;
  }
  if (o.bandwidth_opt->count()) {
    if (o.dram_bandwidth < 1 || o.dram_bandwidth > accel::kBeatBytes)
      throw Error(ExitCode::usage, "--dram-bandwidth must be from 1 to " + std::to_string(accel::kBeatBytes) +
                                       " bytes per cycle (the bus is 16 bytes wide; got " + std::to_string(o.dram_bandwidth) + ")");
    s.config.dram_bytes_per_cycle = o.dram_bandwidth;
  }
  if (o.clock_opt->count()) {
    if (!(o.clock_mhz > 0) || o.clock_mhz > 1e5)
      throw Error(ExitCode::usage, "--clock-mhz must be positive (got " + format_fixed(o.clock_mhz, 3) + ")");
    s.config.clock_mhz = o.clock_mhz;
  }
  if (o.max_cycles_opt->count()) {
    if (o.max_cycles < 0) throw Error(ExitCode::usage, "--max-cycles must be at least 0 (0: scaled to the program)");
    s.config.max_cycles = o.max_cycles;
  }
  if (!o.precision.empty()) {
    auto p = parse_precision(o.precision);
    if (!p || (*p != Precision::i8 && *p != Precision::i4))
      throw Error(ExitCode::usage, "--precision must be i8 or i4 (the accelerator is integer-only; got '" + o.precision + "')");
    s.precision = p;
  }
  // The grid (hw/README.md "Grid"): values outside what the ISA defines are invalid input (exit 3).
  if (o.grid_opt->count()) {
    s.grid_from_flag = true;
    const auto g = accel::parse_grid(o.grid);
    if (!g) throw Error(ExitCode::invalid_input, "--grid must be ROWSxCOLS, e.g. 2x4 (got '" + o.grid + "')");
    if (g->first < 1 || g->second < 1 || g->first > accel::isa::kGridMaxRows || g->second > accel::isa::kGridMaxCols)
      throw Error(ExitCode::invalid_input, "--grid " + o.grid + " is outside what the ISA allows: 1x1 to " +
                                               std::to_string(accel::isa::kGridMaxRows) + "x" +
                                               std::to_string(accel::isa::kGridMaxCols) + " (rows x cols)");
    s.config.grid.rows = g->first;
    s.config.grid.cols = g->second;
    if (s.config.grid.dram_ports > s.config.grid.tiles()) s.config.grid.dram_ports = s.config.grid.tiles();
  }
  if (o.multicast_opt->count()) {
    if (o.multicast != "on" && o.multicast != "heads" && o.multicast != "off")
      throw Error(ExitCode::invalid_input, "--multicast must be on, heads or off (got '" + o.multicast + "')");
    s.config.grid.multicast = o.multicast != "off";
    // on: gangs of a GQA group's heads x 2 query tiles (block layouts); heads: the heads only.
    s.config.grid.multicast_query_tiles = o.multicast == "heads" ? 1 : accel::GridConfig{}.multicast_query_tiles;
  }
  if (o.schedule_opt->count()) {
    const auto sc = accel::parse_schedule(o.schedule);
    if (!sc) throw Error(ExitCode::invalid_input, "--schedule must be static, zigzag, dynamic or lpt (got '" + o.schedule + "')");
    s.config.grid.schedule = *sc;
  }
  if (!o.energy_file.empty()) s.energy = load_energy_file(o.energy_file, s.energy);
  s.model_only = o.model_only;
  s.rtl.trace_file = o.trace;
  s.rtl.keep_workdir = o.keep_workdir;
  return s;
}

int probe_action(const SimCli& o, const SimSettings& s, const std::string& prog) {
  if (o.inputs.size() != 1 || o.inputs[0] != "-")
    throw Error(ExitCode::usage, "--probe takes no op files");
  if (o.model_only) throw Error(ExitCode::usage, "--probe asks the RTL; it cannot be combined with --model-only");
  const ProbeReport report = probe_accelerator(s.config, s.rtl, prog);
  o.out.write(report.json.dump() + "\n", report.text);
  return 0;
}

int sim_action(const SimCli& o, const std::string& prog) {
  o.out.check();
  SimSettings settings = settings_of(o);
  if (o.probe) return probe_action(o, settings, prog);
  if (!o.trace.empty() && o.model_only) throw Error(ExitCode::usage, "--trace records the RTL; drop --model-only");
  // The harness writes the waveform into a private directory; it is then written to --trace like
  // any output (atomically, or directly to a FIFO or device), and only if the run succeeds.
  std::optional<TempDir> trace_dir;
  if (!o.trace.empty()) {
    check_output_path(o.trace);  // a missing directory fails now, not after the simulation
    trace_dir.emplace("sattn-trace");
    settings.rtl.trace_file = (std::filesystem::path(trace_dir->path()) / "trace.fst").string();
  }
  SelectOptions selection = o.selection.resolve();
  complete_ops_from_data(selection, o.data_dir, o.layout);

  // Read (and select) every input first: a malformed file fails before any simulation or output.
  std::vector<BackendInput> items;
  for (const std::string& in : o.inputs)
    for (BackendInput& item : read_backend_inputs(in, selection)) items.push_back(std::move(item));
  guard_memory(items, MemoryUse{}, tool_memory_limit());  // before any data, layout or simulation
  require_supported(rocc_backend(), items);                // exit 2: softcap
  if (!o.trace.empty() && items.size() > 1)
    throw Error(ExitCode::usage, "--trace records one op; these inputs hold " + std::to_string(items.size()));

  DataSource src;
  if (!o.data_dir.empty()) src.dir = o.data_dir;
  src.layout = o.layout;
  src.seed = o.seed;

  ProgressLine progress(o.out.progress());
  std::string json_lines;
  TextTable table({"op", "spec", "prec", "lanes", "cycles", "util", "bound", "actual/bound", "energy_nJ",
                   "Mcyc/s", "rtl=model", "max_rel_err", "tol", "check"});
  bool all_passed = true;
  for (size_t n = 0; n < items.size(); ++n) {
    throw_if_interrupted();  // Ctrl-C: stop between ops, leaving no partial output
    const BackendInput& item = items[n];
    const Op& op = item.plan.op;
    const std::string label =
        (items.size() > 1 && o.inputs.size() > 1 ? std::filesystem::path(item.input).stem().string() + "." : std::string()) + op.name;
    progress.show("[" + std::to_string(n + 1) + "/" + std::to_string(items.size()) + "] " + label + ": " +
                  (settings.model_only ? "model" : "model + RTL"));
    const bool carried = item.data && !src.dir;
    const QKV data = carried ? *item.data : load_qkv(op, src);
    if (src.dir && !o.out.quiet)
      if (const std::string w = artifacts_data_mismatch(item, data, *src.dir); !w.empty())
        print_diagnostic(prog, "warning", w);
    const nlohmann::json data_desc = carried ? nlohmann::json{{"source", "artifacts"}} : describe(src);
    SimRun r = run_sim(item, data, data_desc, settings, prog);
    progress.clear();
    if (!o.out.quiet)
      for (const std::string& note : r.notes) print_diagnostic(prog, "note", op.loc.str() + ": " + note);
    all_passed = all_passed && r.passed();
    json_lines += r.result.dump() + "\n";
    const nlohmann::json& sim = r.result["sim"];
    const nlohmann::json& check = r.result["check"];
    const auto rel = check["max_rel_error"];
    table.add({label, r.result["spec"], r.result["precision"], std::to_string(settings.config.lanes),
               std::to_string(sim["cycles"].get<int64_t>()), format_fixed(100 * sim["utilization"].get<double>(), 1) + "%",
               sim["roofline"]["bound_by"], format_fixed(sim["roofline"]["ratio"].get<double>(), 3),
               format_fixed(sim["energy_pj"]["total"].get<double>() / 1000, 1),
               settings.model_only ? "-" : format_fixed(r.result["timing"]["sim_speed_cycles_per_s"].get<double>() / 1e6, 2),
               settings.model_only ? "n/a" : (r.model_match ? "yes" : "NO"),
               rel.is_number() ? format_sci(rel.get<double>()) : "inf", format_sci(check["tolerance"].get<double>()),
               r.passed() ? "ok" : "FAIL"});
    if (!o.out.quiet)
      for (const std::string& f : r.failures) print_diagnostic(prog, "error", op.loc.str() + ": " + f);
  }
  if (trace_dir) {
    if (!std::filesystem::exists(settings.rtl.trace_file))
      throw Error(ExitCode::external_tool, "the RTL harness wrote no waveform for --trace", {o.trace});
    copy_to_output(settings.rtl.trace_file, o.trace);
  }
  o.out.write(json_lines, table.str());
  return all_passed ? 0 : exit_code(ErrorKind::check_failed);
}

}  // namespace

std::function<int()> configure_sim(CLI::App& app) {
  auto o = std::make_shared<SimCli>();
  app.add_option("ops", o->inputs,
                 "Ops (MLIR generic form, JSON or YAML), plans (sattn.plan/v1) or artifacts (sattn.artifacts/v1); '-' = stdin")
      ->capture_default_str();
  // Bare ops are selected for the accelerator's cost model.
  o->selection.backend = "rocc";
  o->selection.add_to(app, "Selection of bare ops: ", /*with_backend=*/false, /*with_probe=*/false);
  auto* data = app.add_option("--data", o->data_dir, "Read q.npy, k.npy, v.npy from DIR (float32, C order)");
  add_layout_option(app, o->layout, data);
  app.add_option("--seed", o->seed, "Seed of the synthetic data when --data is not given")->capture_default_str()->excludes(data);
  o->lanes_opt = app.add_option("--lanes", o->lanes, "MAC lanes of the accelerator: 8, 16 or 32 (one RTL harness each)")->capture_default_str();
  app.add_option("--precision", o->precision,
                 "Run at i8 or i4 whatever the op says (fp32/bf16 ops otherwise run at i8, with a note)");
  app.add_flag("--single-buffer", o->single_buffer, "Single-buffered scratchpads (the ablation: loads and compute serialize)");
  o->latency_opt = app.add_option("--dram-latency", o->dram_latency, "DRAM read latency in cycles (default 40)");
  o->bandwidth_opt = app.add_option("--dram-bandwidth", o->dram_bandwidth, "DRAM bandwidth in bytes per cycle, 1..16 (default 16)");
  o->clock_opt = app.add_option("--clock-mhz", o->clock_mhz, "Clock for the seconds figure (default 1000 MHz)");
  o->max_cycles_opt =
      app.add_option("--max-cycles", o->max_cycles, "Watchdog: stop a run that passes N cycles (default 0: scaled to the program, 4x an upper bound of its cycles)");
  app.add_option("--trace", o->trace, "Write an FST waveform of the RTL run to FILE (one op)");
  app.add_option("--energy", o->energy_file, "Per-event energies (YAML: mac_i8_pj, mac_i4_pj, sram_byte_pj, dram_byte_pj, static_pj_per_cycle)");
  o->grid_opt = app.add_option("--grid", o->grid,
                                "Tile grid ROWSxCOLS, 1x1 to 8x10 (default 1x1, or the profile's rocc.grid); the RTL grid is "
                                "built as 1x1, 2x2 and 2x4 (16 lanes) and checked bit for bit and counter for counter against "
                                "the model; any other grid needs --model-only (the only way to run e.g. 8x10)");
  o->multicast_opt = app.add_option("--multicast", o->multicast,
                                     "on|heads|off: fetch a K/V block once for every tile that needs it: on (default), the "
                                     "tiles of a GQA group's heads on 2 consecutive query tiles (block layouts; the heads of "
                                     "one query tile for CSR layouts); heads, the heads of one query tile only; off, each its own");
  o->schedule_opt = app.add_option("--schedule", o->schedule,
                                    "Task distribution over the grid: static (round-robin), zigzag (early and late query "
                                    "tiles paired), dynamic (next task when a tile is free; default), lpt (dynamic, heaviest tasks first)");
  app.add_flag("--model-only", o->model_only,
               "Skip the RTL: cycles and counters from the bit-exact model only (needed for grids the RTL is not built as, e.g. 8x10)");
  app.add_flag("--probe", o->probe, "Print the accelerator's capabilities (sattn.probe/v1) from the RTL's PROBE command");
  app.add_flag("--keep-workdir", o->keep_workdir, "Keep the harness's work directory under $TMPDIR (program.txt, dram.bin, the output image) instead of deleting it");
  o->out.add_to(app, "Write the results (JSON Lines or table) to FILE, atomically",
                "json (sattn.result/v1 JSON Lines) or text (a table)",
                "No progress, notes or check-failure messages on stderr");
  add_max_memory_option(app);
  const std::string prog = app.get_name();
  return [o, prog] { return sim_action(*o, prog); };
}

}  // namespace sattn
