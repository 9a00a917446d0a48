// Verilator harness of the tile grid (hw/README.md "Grid harness"): loads the program and the
// task table (written by sattn::accel::write_grid_plan) into the grid through its load port,
// models the shared DRAM's timing (hw/sim/dram_model.hpp SharedDram: the RTL arbitrates, the
// model queues the granted bursts and delivers their beats), enforces the watchdog, and prints
// every tile's counters and the grid's. Single-threaded.
//
// The grid runs as separate Verilator models wired as hw/rtl/sattn_grid.sv wires them: the
// control (sattn_grid_ctrl) and one sattn_accel model per tile (one class: every tile runs the
// same code, as the lone tile's harness does). Per cycle: the tiles' register outputs and the
// DRAM's beats go into the control, which settles its grants, feeds, holds and beats; those go
// into the tiles, which settle `issue` (the only tile output that depends on a tile input); then
// every model takes the rising edge. A tile with nothing to do (idle, no command offered, no
// grant, beat or write credit for it, its outputs settled) is not evaluated: its edge would
// change nothing.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Vsattn_accel.h"
#include "Vsattn_grid_ctrl.h"
#include "dram_model.hpp"
#include "harness_io.hpp"
#include "sattn_isa.hpp"
#include "verilated.h"
#include "verilated_fst_c.h"

const char* const sattn::accel_sim::kHarnessName = "sattn-accel-grid-sim";

namespace {

namespace isa = sattn::accel::isa;
constexpr int T = SATTN_GRID_ROWS * SATTN_GRID_COLS;
using namespace sattn::accel_sim;

constexpr int kCmdDepth = 1 << SATTN_GRID_CMD_AW, kGroupDepth = 1 << SATTN_GRID_GRP_AW;

// The task table (sattn-accel-grid v2): hw/README.md "Grid MMIO".
struct Plan {
  int rows = 0, cols = 0, group_tiles = 1, group_heads = 1, schedule = 0, ports = 1, arbitration = 0;
  uint64_t prologue = 0;
  struct Group {
    uint32_t run_lo = 0, run_hi = 0;
    bool shared = false;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
  };
  std::vector<Group> groups;
  std::vector<uint8_t> mc;  // per command: 0 its own load, 1 shared by the gang, 2 by the heads of one query tile
};

Plan read_plan(const std::string& path, size_t commands) {
  TextFile f(path);
  Plan p;
  if (f.line() != "sattn-accel-grid v2") f.bad("expected 'sattn-accel-grid v2'");
  p.rows = int(f.key("rows"));
  p.cols = int(f.key("cols"));
  p.group_tiles = int(f.key("group_tiles"));
  p.group_heads = int(f.key("group_heads"));
  p.schedule = int(f.key("schedule"));
  p.ports = int(f.key("ports"));
  p.arbitration = int(f.key("arbitration"));
  p.prologue = f.key("prologue");
  const uint64_t n = f.key("groups");
  if (p.rows != SATTN_GRID_ROWS || p.cols != SATTN_GRID_COLS)
    f.bad("the plan is for a " + std::to_string(p.rows) + "x" + std::to_string(p.cols) + " grid; this harness is " +
          std::to_string(SATTN_GRID_ROWS) + "x" + std::to_string(SATTN_GRID_COLS));
  if (p.group_tiles < 1 || T % p.group_tiles != 0) f.bad("group_tiles must divide the tile count");
  if (p.group_heads < 1 || p.group_tiles % p.group_heads != 0) f.bad("group_heads must divide group_tiles");
  if (p.schedule < 0 || p.schedule > 2 || p.arbitration < 0 || p.arbitration > 1) f.bad("bad schedule or arbitration");
  if (p.ports < 1 || p.ports > T) f.bad("ports must be in 1..tiles");
  if (p.prologue > commands) f.bad("prologue longer than the program");
  if (n > uint64_t(kGroupDepth))
    f.bad(std::to_string(n) + " task groups; the RTL grid's task table holds " + std::to_string(kGroupDepth));
  for (uint64_t g = 0; g < n; ++g) {
    std::istringstream ls(f.line());
    Plan::Group gr;
    int shared = 0;
    if (!(ls >> gr.run_lo >> gr.run_hi >> shared)) f.bad("expected 'RUN_LO RUN_HI SHARED BEGIN END ...'");
    gr.shared = shared != 0;
    for (int j = 0; j < p.group_tiles; ++j) {
      uint32_t b = 0, e = 0;
      if (!(ls >> b >> e) || b >= e || e > commands) f.bad("bad command range of member " + std::to_string(j));
      gr.ranges.push_back({b, e});
    }
    if (gr.run_lo > g || gr.run_hi <= g || gr.run_hi > n) f.bad("bad zigzag run");
    p.groups.push_back(gr);
  }
  const uint64_t shared = f.key("multicast");
  p.mc.assign(commands, 0);
  for (uint64_t k = 0; k < shared; ++k) {
    std::istringstream ls(f.line());
    uint64_t i = 0;
    int kind = 0;
    if (!(ls >> i >> kind) || i >= commands || kind < 1 || kind > 2) f.bad("expected 'COMMAND KIND' (KIND 1 or 2)");
    p.mc[i] = uint8_t(kind);
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string program_path, dram_path, plan_path, out_path, trace_path;
  int latency = 40, bw = isa::kBeatBytes;
  uint64_t max_cycles = 2'000'000'000ull;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(2, "option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--program") program_path = value();
    else if (a == "--dram") dram_path = value();
    else if (a == "--plan") plan_path = value();
    else if (a == "--out") out_path = value();
    else if (a == "--trace") trace_path = value();
    else if (a == "--dram-latency") latency = std::atoi(value().c_str());
    else if (a == "--dram-bytes-per-cycle") bw = std::atoi(value().c_str());
    else if (a == "--max-cycles") max_cycles = std::strtoull(value().c_str(), nullptr, 10);
    else die(2, "unknown option '" + a + "'");
  }
  if (program_path.empty() || dram_path.empty() || plan_path.empty() || out_path.empty())
    die(2, "usage: sattn-accel-grid-sim-RxC-lanesN --program FILE --dram FILE --plan FILE --out FILE "
           "[--dram-latency N] [--dram-bytes-per-cycle N] [--max-cycles N] [--trace FILE.fst]");
  if (latency < 0 || bw < 0 || bw > isa::kBeatBytes)
    die(2, "--dram-latency must be >= 0 and --dram-bytes-per-cycle in 0.." + std::to_string(isa::kBeatBytes));

  const Program prog = read_program(program_path);
  const Plan plan = read_plan(plan_path, prog.cmds.size());
  std::vector<uint8_t> dram = read_file(dram_path);
  if (dram.size() != prog.dram_bytes) die(3, dram_path + ": size differs from dram_bytes in " + program_path);
  if (prog.cmds.size() > size_t(kCmdDepth))
    die(3, program_path + ": " + std::to_string(prog.cmds.size()) + " commands; the RTL grid's command memory holds " +
               std::to_string(kCmdDepth) + " (run a smaller problem, or --model-only)");

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->randSeed(1);  // fixed seed: reproducible runs
  auto ctrl = std::make_unique<Vsattn_grid_ctrl>(ctx.get(), "grid");
  std::vector<std::unique_ptr<Vsattn_accel>> tiles;
  for (int i = 0; i < T; ++i) tiles.push_back(std::make_unique<Vsattn_accel>(ctx.get(), ("tile" + std::to_string(i)).c_str()));
  std::unique_ptr<VerilatedFstC> fst;
  uint64_t time = 0;
  if (!trace_path.empty()) {
    ctx->traceEverOn(true);
    fst = std::make_unique<VerilatedFstC>();
    ctrl->trace(fst.get(), 99);
    for (auto& t : tiles) t->trace(fst.get(), 99);
    fst->open(trace_path.c_str());
  }
  // The wiring of sattn_grid.sv: tile outputs (registers) into the control, ...
  auto tile_outputs_to_ctrl = [&](int i) {
    const Vsattn_accel& t = *tiles[size_t(i)];
    ctrl->t_cmd_ready[i] = t.cmd_ready;
    ctrl->t_busy[i] = t.busy;
    ctrl->t_rd_req[i] = t.rd_req;
    ctrl->t_wr_valid[i] = t.wr_valid;
    ctrl->t_head_mc[i] = t.head_mc;
    ctrl->t_head_ready[i] = t.head_ready;
    ctrl->t_head_funct[i] = t.dbg_head_funct;
    ctrl->t_dma_state[i] = t.dbg_dma_state;
  };
  // ... the control's outputs into the tiles.
  auto ctrl_to_tile = [&](int i) {
    Vsattn_accel& t = *tiles[size_t(i)];
    t.cmd_valid = ctrl->t_cmd_valid[i];
    t.cmd_funct = ctrl->t_cmd_funct[i];
    t.cmd_rs1 = ctrl->t_cmd_rs1[i];
    t.cmd_rs2 = ctrl->t_cmd_rs2[i];
    t.cmd_mc = ctrl->t_cmd_mc[i];
    t.rd_ready = ctrl->t_rd_ready[i];
    t.rd_beat_valid = ctrl->t_beat_valid[i];
    if (ctrl->t_beat_valid[i]) t.rd_beat_data = ctrl->t_beat_data[i];
    t.wr_ready = ctrl->t_wr_ready[i];
    t.issue_hold = ctrl->t_hold[i];
    t.ctr_sel = ctrl->t_ctr_sel;
  };
  auto dump = [&] {
    if (fst) fst->dump(time);
    ++time;
  };
  // One cycle of the load port / reset: every model sees the same rst and both clock edges.
  auto reset_cycle = [&] {
    for (int clk : {0, 1}) {
      ctrl->clk = uint8_t(clk);
      ctrl->eval();
      for (auto& t : tiles) {
        t->clk = uint8_t(clk);
        t->eval();
      }
      dump();
    }
  };

  // Reset, with the host's MMIO writes (the load port) while rst is high.
  ctrl->rst = 1;
  for (auto& t : tiles) t->rst = 1;
  for (int c = 0; c < T; ++c) {
    ctrl->beat_valid[c] = 0;
    ctrl->wr_credit[c] = 0;
  }
  auto load = [&](int sel, uint32_t addr, uint64_t d0, uint64_t d1, uint16_t d2) {
    ctrl->ld_we = 1;
    ctrl->ld_sel = sel;
    ctrl->ld_addr = addr;
    ctrl->ld_d0 = d0;
    ctrl->ld_d1 = d1;
    ctrl->ld_d2 = d2;
    // Only the control has a load port: the tiles, held in reset, need a few edges (below).
    ctrl->clk = 0;
    ctrl->eval();
    ctrl->clk = 1;
    ctrl->eval();
  };
  load(0, 0, uint64_t(plan.schedule), 0, 0);
  load(0, 1, uint64_t(plan.group_tiles), 0, 0);
  load(0, 2, uint64_t(plan.ports), 0, 0);
  load(0, 3, uint64_t(plan.arbitration), 0, 0);
  load(0, 4, plan.groups.size(), 0, 0);
  load(0, 5, plan.prologue, 0, 0);
  load(0, 6, uint64_t(plan.group_heads), 0, 0);
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    const Plan::Group& gr = plan.groups[g];
    load(2, uint32_t(g), uint64_t(gr.run_lo) | uint64_t(gr.run_hi) << 32, 0, 0);
    for (size_t j = 0; j < gr.ranges.size(); ++j) {
      load(3, uint32_t(g * size_t(plan.group_tiles) + j), uint64_t(gr.ranges[j].first) | uint64_t(gr.ranges[j].second) << 32,
           0, 0);
    }
  }
  for (size_t k = 0; k < prog.cmds.size(); ++k) {
    const Cmd& c = prog.cmds[k];
    load(1, uint32_t(k), c.rs1, c.rs2, uint16_t(c.funct | unsigned(plan.mc[k]) << 7));
  }
  ctrl->ld_we = 0;
  for (int i = 0; i < 2; ++i) reset_cycle();
  ctrl->rst = 0;
  for (auto& t : tiles) t->rst = 0;

  sattn::accel_sim::SharedDram port(T, plan.ports, latency, bw, sattn::accel_sim::Arbitration(plan.arbitration));
  std::vector<int> rgrant(size_t(plan.ports)), wgrant(size_t(plan.ports));
  std::vector<uint64_t> addr(T), len(T);
  // Per tile: whether its model must be evaluated this cycle (see the top of this file), and
  // whether it was idle before and after its last edge (then a further edge changes nothing).
  std::vector<uint8_t> active(size_t(T), 1), settled(size_t(T), 0);
  uint64_t cycle = 0;
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const double cpu0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < T; ++i) tile_outputs_to_ctrl(i);
  for (;;) {
    // The channels' beats and write credit of this cycle (functions of the DRAM model's state).
    for (int c = 0; c < plan.ports; ++c) {
      const bool beat = port.beat_now(c);
      ctrl->beat_valid[c] = beat;
      if (beat) {
        const uint64_t a = port.beat_addr(c);
        if (a + isa::kBeatBytes > dram.size()) die(3, "DMA read outside DRAM at address " + std::to_string(a));
        ctrl->beat_owner[c] = uint8_t(port.beat_owner(c));
        std::memcpy(ctrl->beat_data[c].data(), dram.data() + a, isa::kBeatBytes);
      }
      ctrl->wr_credit[c] = port.write_ready(c);
    }
    ctrl->clk = 0;
    ctrl->eval();  // settle the grants, feeds, holds and beats of the new inputs
    // After the last edge: done (of the registers), else the watchdog.
    if (cycle > 0 && ctrl->done) break;
    if (cycle >= max_cycles) {
      std::printf("sattn-accel-grid-sim v1\nstatus watchdog\n");
      for (int i = 0; i < T; ++i) {
        const Vsattn_accel& t = *tiles[size_t(i)];
        std::printf("stuck tile %d: dispatched=%u fifo=%u head_funct=%u dma=%s core=%s feed=%s\n", i, t.dispatched,
                    t.dbg_fifo_count, t.dbg_head_funct, dma_state_name(t.dbg_dma_state),
                    core_state_name(t.dbg_core_state), ctrl->dbg_feed_empty[i] ? "empty" : "pending");
      }
      if (fst) fst->close();
      std::fflush(stdout);
      std::fprintf(stderr, "sattn-accel-grid-sim: error: watchdog: no completion after %llu cycles (--max-cycles)\n",
                   (unsigned long long)cycle);
      return 6;
    }
    for (int i = 0; i < T; ++i) {
      // A tile idle over its last edge, with no command, grant, beat or write grant offered to it
      // now, keeps every register over this edge: it is not evaluated.
      active[size_t(i)] = !settled[size_t(i)] || ctrl->t_busy[i] || ctrl->t_cmd_valid[i] || ctrl->t_beat_valid[i] ||
                          ctrl->t_rd_ready[i] || ctrl->t_wr_ready[i];
      if (!active[size_t(i)]) continue;
      ctrl_to_tile(i);
      tiles[size_t(i)]->clk = 0;
      tiles[size_t(i)]->eval();
      ctrl->t_issue[i] = tiles[size_t(i)]->issue;
    }
    for (int c = 0; c < plan.ports; ++c) {
      rgrant[size_t(c)] = ctrl->rg_valid[c] ? int(ctrl->rg_id[c]) : -1;
      wgrant[size_t(c)] = ctrl->wg_valid[c] ? int(ctrl->wg_id[c]) : -1;
      if (rgrant[size_t(c)] >= 0) {
        const int r = rgrant[size_t(c)];
        addr[size_t(r)] = tiles[size_t(r)]->rd_addr;
        len[size_t(r)] = tiles[size_t(r)]->rd_len;
        if (addr[size_t(r)] + len[size_t(r)] > dram.size())
          die(3, "DMA read burst outside DRAM at address " + std::to_string(addr[size_t(r)]));
      }
      if (wgrant[size_t(c)] >= 0) {
        const int w = wgrant[size_t(c)];
        const uint64_t a = tiles[size_t(w)]->wr_addr;
        if (a + isa::kBeatBytes > dram.size()) die(3, "DMA write outside DRAM at address " + std::to_string(a));
        std::memcpy(dram.data() + a, tiles[size_t(w)]->wr_data.data(), isa::kBeatBytes);
      }
    }
    if (fst) dump();
    // The rising edge: every model samples the inputs set above.
    ctrl->clk = 1;
    ctrl->eval();
    for (int i = 0; i < T; ++i) {
      if (!active[size_t(i)]) continue;
      Vsattn_accel& t = *tiles[size_t(i)];
      const bool idle_before = !t.busy;
      t.clk = 1;
      t.eval();
      tile_outputs_to_ctrl(i);
      // Idle over a whole edge: the last RUN's skipped-MAC count is in, nothing else moves.
      settled[size_t(i)] = idle_before && !t.busy;
    }
    if (fst) dump();
    ++cycle;
    port.advance(rgrant, addr, len, wgrant);
    for (int i = 0; i < T; ++i)
      if (tiles[size_t(i)]->illegal) {
        if (fst) fst->close();
        std::printf("sattn-accel-grid-sim v1\nstatus illegal_command %d %u\n", i, tiles[size_t(i)]->illegal_index);
        die(3, "tile " + std::to_string(i) + ": command " + std::to_string(tiles[size_t(i)]->illegal_index) +
                   " is illegal (see hw/README.md \"Commands\")");
      }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_now() - cpu0;
  if (fst) fst->close();

  // The counter read port: the control's mux over the tiles' counter ports and its own counters.
  auto counter = [&](int tile, int sel) {
    ctrl->ctr_tile = uint8_t(tile);
    ctrl->ctr_sel = uint8_t(sel);
    ctrl->eval();
    for (int i = 0; i < T; ++i) {
      tiles[size_t(i)]->ctr_sel = ctrl->t_ctr_sel;
      tiles[size_t(i)]->eval();
      ctrl->t_ctr_value[i] = tiles[size_t(i)]->ctr_value;
    }
    ctrl->eval();
    return (unsigned long long)ctrl->ctr_value;
  };
  {
    std::ofstream out(out_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(dram.data() + prog.out_offset), std::streamsize(prog.out_bytes));
    if (!out) die(1, "cannot write '" + out_path + "'");
  }
  std::printf("sattn-accel-grid-sim v1\ngrid %dx%d\nlanes %d\n", SATTN_GRID_ROWS, SATTN_GRID_COLS, SATTN_LANES);
  // Per tile: the 13 events (hw/README.md "Counters"), then stall_arbiter, stall_multicast,
  // multicast_bytes, tasks, finish_cycle, end_idle.
  for (int i = 0; i < T; ++i) {
    std::printf("tile %d", i);
    for (int e = 0; e < isa::kEventCount; ++e) std::printf(" %llu", counter(i, e));
    for (int s = 16; s <= 21; ++s) std::printf(" %llu", counter(i, s));
    std::printf("\n");
  }
  std::printf("grid_cycles %llu\ndram_bytes_read %llu\ndram_bytes_written %llu\nmulticast_loads %llu\n", counter(0, 27),
              counter(0, 24), counter(0, 25), counter(0, 26));
  ctrl->final();
  for (auto& t : tiles) t->final();
  std::printf("sim_cycles %llu\nwall_seconds %.6f\ncpu_seconds %.6f\nstatus ok\n", (unsigned long long)cycle, wall, cpu);
  return 0;
}
