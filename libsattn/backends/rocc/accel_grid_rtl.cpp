// sattn::accel::run_grid_rtl: the grid's program on the Verilator grid harness
// (libexec_dir()/sattn-accel-grid-sim-RxC-lanesN, hw/README.md "Grid harness"), read back as a
// GridResult whose every field run_grid also fills, so the two compare field by field.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "backends/rocc/accel_grid.hpp"
#include "backends/rocc/accel_grid_internal.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "support/process.hpp"

namespace sattn::accel {

namespace {

constexpr int kWatchdogExit = 6;
constexpr int kGridCounters = 6;  // stall_arbiter, stall_multicast, multicast_bytes, tasks, finish, end_idle

bool grid_built_in_rtl(const GridConfig& g) {
  for (const char* s : kRtlGridShapes)
    if (g.shape() == s) return true;
  return false;
}

}  // namespace

std::string grid_harness_path(const GridConfig& g, int lanes) {
  return (std::filesystem::path(libexec_dir()) /
          ("sattn-accel-grid-sim-" + g.shape() + "-lanes" + std::to_string(lanes)))
      .string();
}

void write_grid_plan(const grid_detail::GridPlan& plan, const Config& cfg, const std::string& dir) {
  const GridConfig& g = cfg.grid;
  std::string text = "sattn-accel-grid v2\n";
  text += "rows " + std::to_string(g.rows) + "\ncols " + std::to_string(g.cols) + "\n";
  text += "group_tiles " + std::to_string(plan.m) + "\n";
  text += "group_heads " + std::to_string(plan.heads) + "\n";
  // lpt is dynamic over the task groups in the driver's order (heaviest first): the table lists
  // them in that order and the distributor runs dynamic (hw/README.md "Grid MMIO").
  const bool lpt = g.schedule == Schedule::lpt;
  text += "schedule " + std::to_string(int(lpt ? Schedule::dynamic : g.schedule)) + "\n";
  text += "ports " + std::to_string(g.dram_ports) + "\n";
  text += "arbitration " + std::to_string(int(g.arbitration)) + "\n";
  text += "prologue " + std::to_string(plan.split.prologue.second) + "\n";
  text += "groups " + std::to_string(plan.groups.size()) + "\n";
  for (size_t k = 0; k < plan.groups.size(); ++k) {
    const grid_detail::Group& gr = plan.groups[lpt ? plan.order[k] : k];
    // (dynamic reads no zigzag run: a reordered table gives each group its own)
    text += (lpt ? std::to_string(k) + " " + std::to_string(k + 1) : std::to_string(gr.run_lo) + " " + std::to_string(gr.run_hi)) +
            " " + (gr.shared ? "1" : "0");
    for (const grid_detail::Task* t : gr.members) text += " " + std::to_string(t->cmds.first) + " " + std::to_string(t->cmds.second);
    text += "\n";
  }
  // How each shared load is shared (the command memory's mc field): 1 the gang, 2 the heads of
  // one query tile.
  std::string shared;
  size_t n = 0;
  for (size_t i = 0; i < plan.shared_cmd.size(); ++i)
    if (plan.shared_cmd[i] != grid_detail::kOwn) {
      shared += std::to_string(i) + " " + std::to_string(int(plan.shared_cmd[i])) + "\n";
      ++n;
    }
  text += "multicast " + std::to_string(n) + "\n" + shared;
  write_atomic((std::filesystem::path(dir) / "grid.txt").string(), text);
}

GridResult run_grid_rtl(const Program& p, const Config& cfg, const RtlOptions& opt, GridRtlTiming* timing) {
  cfg.validate();
  const GridConfig& g = cfg.grid;
  if (!grid_built_in_rtl(g))
    throw Error(ExitCode::usage, "the " + g.shape() + " grid runs in the model only: the RTL grid is built as " +
                                     rtl_grid_shapes_text() + " (add --model-only)");
  if (cfg.lanes != kRtlGridLanes)
    throw Error(ExitCode::usage, "the RTL grid is built with " + std::to_string(kRtlGridLanes) + " lanes (got lanes " +
                                     std::to_string(cfg.lanes) + "; add --model-only)");
  const std::unique_ptr<grid_detail::GridPlan> owned = grid_detail::plan_grid(p, cfg);
  const grid_detail::GridPlan& plan = *owned;
  for (const grid_detail::Group& gr : plan.groups)
    if (gr.members.size() != size_t(plan.m))
      throw Error(ExitCode::invalid_input, "accel grid: a task group has " + std::to_string(gr.members.size()) +
                                               " members, the RTL grid needs " + std::to_string(plan.m));

  const std::string harness = opt.harness.empty() ? grid_harness_path(g, cfg.lanes) : opt.harness;
  if (::access(harness.c_str(), X_OK) != 0)
    throw Error(ExitCode::external_tool, "the grid harness '" + harness +
                                             "' is missing: install Verilator (apt-get install verilator), then re-run "
                                             "cmake and rebuild (cmake --build build --target sattn_grid_harness)");
  TempDir dir("sattn-grid");
  if (opt.keep_workdir) dir.keep();
  write_program(p, dir.path());
  write_grid_plan(plan, cfg, dir.path());
  const std::filesystem::path d(dir.path());
  const std::string out_file = (d / "out.bin").string();
  std::vector<std::string> argv = {harness,
                                   "--program", (d / "program.txt").string(),
                                   "--dram", (d / "dram.bin").string(),
                                   "--plan", (d / "grid.txt").string(),
                                   "--out", out_file,
                                   "--dram-latency", std::to_string(cfg.dram_latency_cycles),
                                   "--dram-bytes-per-cycle", std::to_string(cfg.dram_bytes_per_cycle),
                                   "--max-cycles", std::to_string(watchdog_cycles(p, cfg))};
  if (!opt.trace_file.empty()) {
    argv.push_back("--trace");
    argv.push_back(opt.trace_file);
  }
  const ProcessResult pr = run_process(argv, opt.timeout_s);
  if (pr.exit_code == kWatchdogExit) {
    std::string stuck;
    std::istringstream in(pr.out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("stuck ", 0) == 0) stuck += (stuck.empty() ? "" : "; ") + line.substr(6);
    throw Error(ExitCode::runtime, "accel grid " + g.shape() + ": the RTL watchdog fired: no completion within max_cycles = " +
                                       std::to_string(watchdog_cycles(p, cfg)) + " simulated cycles; " + stuck);
  }
  if (pr.exit_code == 3 && pr.signal == 0)
    throw Error(ExitCode::invalid_input, "the accelerator grid rejected the program: " + pr.err_tail(3));
  if (!pr.ok())
    throw Error(ExitCode::external_tool, harness + " failed (" + pr.describe(opt.timeout_s) + "): " + pr.err_tail(10) +
                                             "\n(run 'sattn doctor' to check Verilator; --model-only skips the RTL)");

  GridResult r;
  GridCounters& c = r.counters;
  c.grid = g;
  c.group_tiles = plan.m;
  c.group_heads = plan.heads;
  c.tasks = int64_t(plan.split.tasks.size());
  c.groups = int64_t(plan.groups.size());
  c.tiles.resize(size_t(g.tiles()));
  std::vector<uint8_t> seen(size_t(g.tiles()), 0);
  bool ok = false;
  std::istringstream in(pr.out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "tile") {
      size_t i = 0;
      ls >> i;
      if (i >= c.tiles.size()) throw Error(ExitCode::external_tool, harness + ": bad tile line '" + line + "'");
      TileCounters& t = c.tiles[i];
      for (int e = 0; e < kEventCount; ++e) {
        int64_t v = 0;
        ls >> v;
        t.events.set(Event(e), v);
      }
      int64_t v[kGridCounters] = {};
      for (int64_t& x : v) ls >> x;
      if (!ls) throw Error(ExitCode::external_tool, harness + ": bad tile line '" + line + "'");
      t.stall_arbiter = v[0];
      t.stall_multicast = v[1];
      t.multicast_bytes = v[2];
      t.tasks = v[3];
      t.finish_cycle = v[4];
      t.end_idle = v[5];
      seen[i] = 1;
    } else if (key == "grid_cycles") {
      ls >> c.cycles;
    } else if (key == "dram_bytes_read") {
      ls >> c.dram_bytes_read;
    } else if (key == "dram_bytes_written") {
      ls >> c.dram_bytes_written;
    } else if (key == "multicast_loads") {
      ls >> c.multicast_loads;
    } else if (key == "sim_cycles" && timing) {
      ls >> timing->sim_cycles;
    } else if (key == "wall_seconds" && timing) {
      ls >> timing->wall_seconds;
    } else if (key == "cpu_seconds" && timing) {
      ls >> timing->cpu_seconds;
    } else if (key == "status") {
      std::string s;
      ls >> s;
      ok = s == "ok";
    }
  }
  if (!ok) throw Error(ExitCode::external_tool, harness + " did not report 'status ok'");
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i]) throw Error(ExitCode::external_tool, harness + " reported no counters of tile " + std::to_string(i));
  for (const TileCounters& t : c.tiles) {
    c.multicast_bytes += t.multicast_bytes;
    for (int e = 0; e < kEventCount; ++e) c.total.set(Event(e), c.total.get(Event(e)) + t.events.get(Event(e)));
  }
  if (timing) timing->harness = harness;
  std::ifstream out(out_file, std::ios::binary);
  r.out_bits.resize(p.out_bytes / 2);
  if (p.out_bytes && !out.read(reinterpret_cast<char*>(r.out_bits.data()), std::streamsize(p.out_bytes)))
    throw Error(ExitCode::external_tool, harness + " wrote no complete output file");
  return r;
}

std::string rtl_grid_shapes_text() {
  std::string s;
  for (size_t i = 0; i < std::size(kRtlGridShapes); ++i)
    s += (i == 0 ? "" : i + 1 == std::size(kRtlGridShapes) ? " and " : ", ") + std::string(kRtlGridShapes[i]);
  return s;
}

std::string grid_counter_difference(const GridCounters& a, const GridCounters& b) {
  auto diff = [](const std::string& what, int64_t x, int64_t y) {
    return x == y ? std::string() : what + ": RTL " + std::to_string(x) + ", model " + std::to_string(y);
  };
  std::string d;
  auto add = [&](const std::string& s) {
    if (d.empty()) d = s;
  };
  add(diff("cycles", a.cycles, b.cycles));
  add(diff("dram_bytes_read", a.dram_bytes_read, b.dram_bytes_read));
  add(diff("dram_bytes_written", a.dram_bytes_written, b.dram_bytes_written));
  add(diff("multicast_loads", a.multicast_loads, b.multicast_loads));
  add(diff("multicast_bytes", a.multicast_bytes, b.multicast_bytes));
  if (a.tiles.size() != b.tiles.size()) add("tile count differs");
  for (size_t i = 0; i < a.tiles.size() && i < b.tiles.size() && d.empty(); ++i) {
    const TileCounters &x = a.tiles[i], &y = b.tiles[i];
    const std::string t = "tile " + std::to_string(i) + " ";
    for (int e = 0; e < kEventCount; ++e)
      add(diff(t + isa::kEventNames[size_t(e)], x.events.get(Event(e)), y.events.get(Event(e))));
    add(diff(t + "stall_arbiter", x.stall_arbiter, y.stall_arbiter));
    add(diff(t + "stall_multicast", x.stall_multicast, y.stall_multicast));
    add(diff(t + "multicast_bytes", x.multicast_bytes, y.multicast_bytes));
    add(diff(t + "tasks", x.tasks, y.tasks));
    add(diff(t + "finish_cycle", x.finish_cycle, y.finish_cycle));
    add(diff(t + "end_idle", x.end_idle, y.end_idle));
  }
  return d;
}

}  // namespace sattn::accel
