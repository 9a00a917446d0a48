// Verilator harness of the accelerator (hw/README.md "Harness"): drives the command stream of a
// program file through the RoCC port, models DRAM (hw/sim/dram_model.hpp), enforces the
// watchdog, optionally traces to FST, and prints the responses. Single-threaded; one eval per
// clock edge.
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Vsattn_accel.h"
#include "dram_model.hpp"
#include "harness_io.hpp"
#include "sattn_isa.hpp"
#include "verilated.h"
#include "verilated_fst_c.h"

const char* const sattn::accel_sim::kHarnessName = "sattn-accel-sim";

namespace {

namespace isa = sattn::accel::isa;
using namespace sattn::accel_sim;

// COUNTER and PROBE: fenced (issued only when the accelerator is idle), answered in rd.
bool is_query(unsigned funct) {
  return funct == unsigned(isa::Funct::counter) || funct == unsigned(isa::Funct::probe);
}

}  // namespace

int main(int argc, char** argv) {
  std::string program_path, dram_path, out_path, trace_path;
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
    else if (a == "--out") out_path = value();
    else if (a == "--trace") trace_path = value();
    else if (a == "--dram-latency") latency = std::atoi(value().c_str());
    else if (a == "--dram-bytes-per-cycle") bw = std::atoi(value().c_str());
    else if (a == "--max-cycles") max_cycles = std::strtoull(value().c_str(), nullptr, 10);
    else die(2, "unknown option '" + a + "'");
  }
  if (program_path.empty() || dram_path.empty() || out_path.empty())
    die(2, "usage: sattn-accel-sim-lanesN --program FILE --dram FILE --out FILE [--dram-latency N] "
           "[--dram-bytes-per-cycle N] [--max-cycles N] [--trace FILE.fst]");
  if (latency < 0 || bw < 0 || bw > isa::kBeatBytes)
    die(2, "--dram-latency must be >= 0 and --dram-bytes-per-cycle in 0.." + std::to_string(isa::kBeatBytes));

  const Program prog = read_program(program_path);
  std::vector<uint8_t> dram = read_file(dram_path);
  if (dram.size() != prog.dram_bytes) die(3, dram_path + ": size differs from dram_bytes in " + program_path);

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->randSeed(1);  // fixed seed: reproducible runs
  auto top = std::make_unique<Vsattn_accel>(ctx.get());
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

  top->rst = 1;
  top->cmd_valid = 0;
  top->rd_ready = 0;
  top->rd_beat_valid = 0;
  top->wr_ready = 0;
  top->cmd_mc = 0;  // the grid's hooks (hw/rtl/sattn_grid.sv): unused by a lone tile
  top->issue_hold = 0;
  top->ctr_sel = 0;
  for (int i = 0; i < 2; ++i) {
    edge(0);
    edge(1);
  }
  top->rst = 0;

  sattn::accel_sim::ReadPort rp(latency, bw);
  sattn::accel_sim::WritePort wp(bw);
  size_t expected_resp = 0;
  for (const Cmd& c : prog.cmds) expected_resp += is_query(c.funct);
  std::vector<uint64_t> responses;
  size_t next = 0;
  uint64_t cycle = 0;
  // CPU time beside wall time: on a shared machine the wall time mostly measures how much of a
  // core the harness got, the CPU time what the simulation itself costs.
  auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
  };
  const double cpu0 = cpu_now();
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    // Port inputs of this cycle (outputs are functions of registers: stable since the last edge).
    const bool fence = next < prog.cmds.size() && is_query(prog.cmds[next].funct);
    const bool offer = next < prog.cmds.size() && (!fence || !top->busy);
    top->cmd_valid = offer;
    if (offer) {
      top->cmd_funct = prog.cmds[next].funct;
      top->cmd_rs1 = prog.cmds[next].rs1;
      top->cmd_rs2 = prog.cmds[next].rs2;
    }
    top->rd_ready = rp.ready();
    const bool beat = rp.beat_now();
    top->rd_beat_valid = beat;
    if (beat) {
      const uint64_t addr = rp.beat_addr();
      if (addr + isa::kBeatBytes > dram.size()) die(3, "DMA read outside DRAM at address " + std::to_string(addr));
      std::memcpy(top->rd_beat_data.data(), dram.data() + addr, isa::kBeatBytes);
    }
    top->wr_ready = wp.ready_now();
    edge(0);  // settle combinational paths of the new inputs
    const bool fire_cmd = offer && top->cmd_ready;
    const bool fire_rd = top->rd_req && top->rd_ready;
    const uint64_t rd_addr = top->rd_addr, rd_len = top->rd_len;
    const bool fire_wr = top->wr_valid && top->wr_ready;
    if (fire_wr) {
      const uint64_t addr = top->wr_addr;
      if (addr + isa::kBeatBytes > dram.size()) die(3, "DMA write outside DRAM at address " + std::to_string(addr));
      std::memcpy(dram.data() + addr, top->wr_data.data(), isa::kBeatBytes);
    }
    if (fire_rd && rd_addr + rd_len > dram.size())
      die(3, "DMA read burst outside DRAM at address " + std::to_string(rd_addr));
    edge(1);
    ++cycle;
    if (top->resp_valid) responses.push_back(top->resp_data);
    rp.advance(fire_rd, rd_addr, rd_len);
    wp.advance(fire_wr);
    if (fire_cmd) ++next;
    if (top->illegal) {
      if (fst) fst->close();
      std::printf("sattn-accel-sim v1\nstatus illegal_command %u\n", top->illegal_index);
      die(3, "command " + std::to_string(top->illegal_index) + " is illegal (see hw/README.md \"Commands\")");
    }
    if (next == prog.cmds.size() && !top->busy && responses.size() == expected_resp) break;
    if (cycle >= max_cycles) {
      std::printf("sattn-accel-sim v1\nstatus watchdog\n");
      std::printf("stuck cycles=%llu dispatched=%u of %zu commands (issued %zu) dispatcher_head_funct=%u fifo=%u "
                  "dma=%s core=%s dram_read=%s\n",
                  (unsigned long long)cycle, top->dispatched, prog.cmds.size(), next, top->dbg_head_funct,
                  top->dbg_fifo_count, dma_state_name(top->dbg_dma_state), core_state_name(top->dbg_core_state),
                  rp.active() ? "burst waiting for data" : "idle");
      if (fst) fst->close();
      std::fflush(stdout);
      std::fprintf(stderr, "sattn-accel-sim: error: watchdog: no completion after %llu cycles (--max-cycles)\n",
                   (unsigned long long)cycle);
      return 6;
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_now() - cpu0;
  if (fst) fst->close();
  top->final();

  {
    std::ofstream out(out_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(dram.data() + prog.out_offset), std::streamsize(prog.out_bytes));
    if (!out) die(1, "cannot write '" + out_path + "'");
  }
  std::printf("sattn-accel-sim v1\nlanes %d\n", SATTN_LANES);
  for (size_t i = 0; i < responses.size(); ++i)
    std::printf("resp %zu %016llx\n", i, (unsigned long long)responses[i]);
  std::printf("sim_cycles %llu\nwall_seconds %.6f\ncpu_seconds %.6f\nstatus ok\n", (unsigned long long)cycle, wall, cpu);
  return 0;
}
