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
#include "sattn_isa.hpp"
#include "verilated.h"
#include "verilated_fst_c.h"

namespace {

namespace isa = sattn::accel::isa;

struct Cmd {
  unsigned funct;
  uint64_t rs1, rs2;
};

[[noreturn]] void die(int code, const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "sattn-accel-sim: error: %s\n", msg.c_str());
  std::exit(code);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die(3, "cannot read '" + path + "'");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Program {
  uint64_t dram_bytes = 0, out_offset = 0, out_bytes = 0;
  std::vector<Cmd> cmds;
};

Program read_program(const std::string& path) {
  std::ifstream in(path);
  if (!in) die(3, "cannot read '" + path + "'");
  Program p;
  std::string line;
  int line_no = 0;
  auto bad = [&](const std::string& what) { die(3, path + ":" + std::to_string(line_no) + ": " + what); };
  if (!std::getline(in, line) || line != "sattn-accel-program v1") bad("expected 'sattn-accel-program v1'");
  ++line_no;
  uint64_t count = 0;
  for (const char* key : {"dram_bytes", "out_offset", "out_bytes", "commands"}) {
    ++line_no;
    std::string k;
    uint64_t v = 0;
    if (!std::getline(in, line)) bad(std::string("missing '") + key + "'");
    std::istringstream ls(line);
    if (!(ls >> k >> v) || k != key) bad(std::string("expected '") + key + " N'");
    if (k == "dram_bytes") p.dram_bytes = v;
    else if (k == "out_offset") p.out_offset = v;
    else if (k == "out_bytes") p.out_bytes = v;
    else count = v;
  }
  for (uint64_t i = 0; i < count; ++i) {
    ++line_no;
    if (!std::getline(in, line)) bad("expected " + std::to_string(count) + " commands");
    Cmd c{};
    if (std::sscanf(line.c_str(), "%u %lx %lx", &c.funct, &c.rs1, &c.rs2) != 3 || c.funct > 127)  // funct7
      bad("expected 'FUNCT RS1 RS2'");
    p.cmds.push_back(c);
  }
  if (p.out_offset + p.out_bytes > p.dram_bytes) bad("output area outside DRAM");
  return p;
}

// COUNTER and PROBE: fenced (issued only when the accelerator is idle), answered in rd.
bool is_query(unsigned funct) {
  return funct == unsigned(isa::Funct::counter) || funct == unsigned(isa::Funct::probe);
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
