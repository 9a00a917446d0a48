// Verilator harness of the tile grid (hw/README.md "Grid harness"): loads the program and the
// task table (written by sattn::accel::write_grid_plan) into the grid through its load port,
// models the shared DRAM's timing (hw/sim/dram_model.hpp SharedDram: the RTL arbitrates, the
// model queues the granted bursts and delivers their beats), enforces the watchdog, and prints
// every tile's counters and the grid's. Single-threaded; one eval per clock edge.
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

#include "Vsattn_grid.h"
#include "dram_model.hpp"
#include "sattn_isa.hpp"
#include "verilated.h"
#include "verilated_fst_c.h"

namespace {

namespace isa = sattn::accel::isa;
constexpr int T = SATTN_GRID_ROWS * SATTN_GRID_COLS;
constexpr int kCmdDepth = 1 << SATTN_GRID_CMD_AW, kGroupDepth = 1 << SATTN_GRID_GRP_AW;

[[noreturn]] void die(int code, const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "sattn-accel-grid-sim: error: %s\n", msg.c_str());
  std::exit(code);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die(3, "cannot read '" + path + "'");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Cmd {
  unsigned funct;
  uint64_t rs1, rs2;
};

// "KEY N" lines, then `count` lines of the body: the shared shape of both input files.
struct TextFile {
  std::string path;
  std::ifstream in;
  int line_no = 0;
  explicit TextFile(const std::string& p) : path(p), in(p) {
    if (!in) die(3, "cannot read '" + path + "'");
  }
  [[noreturn]] void bad(const std::string& what) { die(3, path + ":" + std::to_string(line_no) + ": " + what); }
  std::string line() {
    std::string s;
    ++line_no;
    if (!std::getline(in, s)) bad("unexpected end of file");
    return s;
  }
  uint64_t key(const char* k) {
    std::istringstream ls(line());
    std::string got;
    uint64_t v = 0;
    if (!(ls >> got >> v) || got != k) bad(std::string("expected '") + k + " N'");
    return v;
  }
};

struct Program {
  uint64_t dram_bytes = 0, out_offset = 0, out_bytes = 0;
  std::vector<Cmd> cmds;
};

Program read_program(const std::string& path) {
  TextFile f(path);
  Program p;
  if (f.line() != "sattn-accel-program v1") f.bad("expected 'sattn-accel-program v1'");
  p.dram_bytes = f.key("dram_bytes");
  p.out_offset = f.key("out_offset");
  p.out_bytes = f.key("out_bytes");
  const uint64_t count = f.key("commands");
  for (uint64_t i = 0; i < count; ++i) {
    Cmd c{};
    if (std::sscanf(f.line().c_str(), "%u %lx %lx", &c.funct, &c.rs1, &c.rs2) != 3 || c.funct > 127)
      f.bad("expected 'FUNCT RS1 RS2'");
    p.cmds.push_back(c);
  }
  if (p.out_offset + p.out_bytes > p.dram_bytes) f.bad("output area outside DRAM");
  return p;
}

// The task table (sattn-accel-grid v1): hw/README.md "Grid MMIO".
struct Plan {
  int rows = 0, cols = 0, group_tiles = 1, schedule = 0, ports = 1, arbitration = 0;
  uint64_t prologue = 0;
  struct Group {
    uint32_t run_lo = 0, run_hi = 0;
    bool shared = false;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
  };
  std::vector<Group> groups;
};

Plan read_plan(const std::string& path, size_t commands) {
  TextFile f(path);
  Plan p;
  if (f.line() != "sattn-accel-grid v1") f.bad("expected 'sattn-accel-grid v1'");
  p.rows = int(f.key("rows"));
  p.cols = int(f.key("cols"));
  p.group_tiles = int(f.key("group_tiles"));
  p.schedule = int(f.key("schedule"));
  p.ports = int(f.key("ports"));
  p.arbitration = int(f.key("arbitration"));
  p.prologue = f.key("prologue");
  const uint64_t n = f.key("groups");
  if (p.rows != SATTN_GRID_ROWS || p.cols != SATTN_GRID_COLS)
    f.bad("the plan is for a " + std::to_string(p.rows) + "x" + std::to_string(p.cols) + " grid; this harness is " +
          std::to_string(SATTN_GRID_ROWS) + "x" + std::to_string(SATTN_GRID_COLS));
  if (p.group_tiles < 1 || T % p.group_tiles != 0) f.bad("group_tiles must divide the tile count");
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
  return p;
}

const char* dma_state_name(unsigned s) {
  static const char* names[] = {"idle", "request", "data", "?"};
  return names[s & 3];
}
const char* core_state_name(unsigned s) {
  static const char* names[] = {"idle", "row_start", "qk", "softmax", "rescale", "pv", "store_setup", "store_divide",
                                "store_normalize", "store_write"};
  return s < 10 ? names[s] : "?";
}

bool multicast_load(unsigned f) {
  return f == unsigned(isa::Funct::load_k) || f == unsigned(isa::Funct::load_v) || f == unsigned(isa::Funct::load_idx);
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
  auto top = std::make_unique<Vsattn_grid>(ctx.get());
  std::unique_ptr<VerilatedFstC> fst;
  uint64_t time = 0;
  if (!trace_path.empty()) {
    ctx->traceEverOn(true);
    fst = std::make_unique<VerilatedFstC>();
    top->trace(fst.get(), 99);
    fst->open(trace_path.c_str());
  }
  auto edge = [&](int clk) {
    top->clk = clk;
    top->eval();
    if (fst) fst->dump(time);
    ++time;
  };

  // Reset, with the host's MMIO writes (the load port) while rst is high.
  top->rst = 1;
  for (int c = 0; c < T; ++c) {
    top->beat_valid[c] = 0;
    top->wr_credit[c] = 0;
  }
  auto load = [&](int sel, uint32_t addr, uint64_t d0, uint64_t d1, uint8_t d2) {
    top->ld_we = 1;
    top->ld_sel = sel;
    top->ld_addr = addr;
    top->ld_d0 = d0;
    top->ld_d1 = d1;
    top->ld_d2 = d2;
    edge(0);
    edge(1);
  };
  load(0, 0, uint64_t(plan.schedule), 0, 0);
  load(0, 1, uint64_t(plan.group_tiles), 0, 0);
  load(0, 2, uint64_t(plan.ports), 0, 0);
  load(0, 3, uint64_t(plan.arbitration), 0, 0);
  load(0, 4, plan.groups.size(), 0, 0);
  load(0, 5, plan.prologue, 0, 0);
  std::vector<uint8_t> mc(prog.cmds.size(), 0);
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    const Plan::Group& gr = plan.groups[g];
    load(2, uint32_t(g), uint64_t(gr.run_lo) | uint64_t(gr.run_hi) << 32, 0, 0);
    for (size_t j = 0; j < gr.ranges.size(); ++j) {
      load(3, uint32_t(g * size_t(plan.group_tiles) + j), uint64_t(gr.ranges[j].first) | uint64_t(gr.ranges[j].second) << 32,
           0, 0);
      if (gr.shared)
        for (uint32_t k = gr.ranges[j].first; k < gr.ranges[j].second; ++k) mc[k] = multicast_load(prog.cmds[k].funct);
    }
  }
  for (size_t k = 0; k < prog.cmds.size(); ++k) {
    const Cmd& c = prog.cmds[k];
    load(1, uint32_t(k), c.rs1, c.rs2, uint8_t(c.funct | (mc[k] ? 0x80u : 0u)));
  }
  top->ld_we = 0;
  for (int i = 0; i < 2; ++i) {
    edge(0);
    edge(1);
  }
  top->rst = 0;

  sattn::accel_sim::SharedDram port(T, plan.ports, latency, bw, sattn::accel_sim::Arbitration(plan.arbitration));
  std::vector<int> rgrant(size_t(plan.ports)), wgrant(size_t(plan.ports));
  std::vector<uint64_t> addr(T), len(T);
  uint64_t cycle = 0;
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const double cpu0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    // The channels' beats and write credit of this cycle (functions of the DRAM model's state).
    for (int c = 0; c < plan.ports; ++c) {
      const bool beat = port.beat_now(c);
      top->beat_valid[c] = beat;
      if (beat) {
        const uint64_t a = port.beat_addr(c);
        if (a + isa::kBeatBytes > dram.size()) die(3, "DMA read outside DRAM at address " + std::to_string(a));
        top->beat_owner[c] = uint8_t(port.beat_owner(c));
        std::memcpy(top->beat_data[c].data(), dram.data() + a, isa::kBeatBytes);
      }
      top->wr_credit[c] = port.write_ready(c);
    }
    edge(0);  // settle the grants of the new inputs
    for (int c = 0; c < plan.ports; ++c) {
      rgrant[size_t(c)] = top->rg_valid[c] ? int(top->rg_id[c]) : -1;
      wgrant[size_t(c)] = top->wg_valid[c] ? int(top->wg_id[c]) : -1;
      if (rgrant[size_t(c)] >= 0) {
        const int r = rgrant[size_t(c)];
        addr[size_t(r)] = top->rd_addr[r];
        len[size_t(r)] = top->rd_len[r];
        if (addr[size_t(r)] + len[size_t(r)] > dram.size())
          die(3, "DMA read burst outside DRAM at address " + std::to_string(addr[size_t(r)]));
      }
      if (wgrant[size_t(c)] >= 0) {
        const int w = wgrant[size_t(c)];
        const uint64_t a = top->wr_addr[w];
        if (a + isa::kBeatBytes > dram.size()) die(3, "DMA write outside DRAM at address " + std::to_string(a));
        std::memcpy(dram.data() + a, top->wr_data[w].data(), isa::kBeatBytes);
      }
    }
    edge(1);
    ++cycle;
    port.advance(rgrant, addr, len, wgrant);
    for (int i = 0; i < T; ++i)
      if (top->illegal[i]) {
        if (fst) fst->close();
        std::printf("sattn-accel-grid-sim v1\nstatus illegal_command %d %u\n", i, top->illegal_index[i]);
        die(3, "tile " + std::to_string(i) + ": command " + std::to_string(top->illegal_index[i]) +
                   " is illegal (see hw/README.md \"Commands\")");
      }
    if (top->done) break;
    if (cycle >= max_cycles) {
      std::printf("sattn-accel-grid-sim v1\nstatus watchdog\n");
      for (int i = 0; i < T; ++i)
        std::printf("stuck tile %d: dispatched=%u fifo=%u head_funct=%u dma=%s core=%s feed=%s\n", i, top->dispatched[i],
                    top->dbg_fifo_count[i], top->dbg_head_funct[i], dma_state_name(top->dbg_dma_state[i]),
                    core_state_name(top->dbg_core_state[i]), top->dbg_feed_empty[i] ? "empty" : "pending");
      if (fst) fst->close();
      std::fflush(stdout);
      std::fprintf(stderr, "sattn-accel-grid-sim: error: watchdog: no completion after %llu cycles (--max-cycles)\n",
                   (unsigned long long)cycle);
      return 6;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_now() - cpu0;
  if (fst) fst->close();

  auto counter = [&](int tile, int sel) {
    top->ctr_tile = uint8_t(tile);
    top->ctr_sel = uint8_t(sel);
    top->eval();
    return (unsigned long long)top->ctr_value;
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
  top->final();
  std::printf("sim_cycles %llu\nwall_seconds %.6f\ncpu_seconds %.6f\nstatus ok\n", (unsigned long long)cycle, wall, cpu);
  return 0;
}
