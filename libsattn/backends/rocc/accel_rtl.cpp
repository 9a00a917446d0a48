// sattn::accel::run_rtl / probe_rtl: run a program on the Verilator harness
// (libexec_dir()/sattn-accel-sim-lanesN) and read its answer (hw/README.md "Harness").
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "backends/rocc/accel.hpp"
#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn::accel {

namespace {

constexpr int kWatchdogExit = 6;

std::string missing_harness_message(const std::string& path) {
  return "the accelerator harness '" + path +
         "' is missing: install Verilator (apt-get install verilator), then re-run cmake and rebuild "
         "(cmake -B build && cmake --build build --target sattn_accel_harness), or set SATTN_LIBEXEC_DIR";
}

// Output of the harness: resp lines, sim_cycles, wall_seconds, cpu_seconds (optional), status.
RunResult parse_harness_output(const std::string& out, const std::string& harness) {
  RunResult r;
  r.source = harness;
  std::istringstream in(out);
  std::string line;
  bool ok = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    if (key == "resp") {
      size_t i = 0;
      std::string hex;
      ls >> i >> hex;
      r.responses.push_back(std::stoull(hex, nullptr, 16));
    } else if (key == "sim_cycles") {
      ls >> r.sim_cycles;
    } else if (key == "wall_seconds") {
      ls >> r.wall_seconds;
    } else if (key == "cpu_seconds") {
      ls >> r.cpu_seconds;
    } else if (key == "status") {
      std::string s;
      ls >> s;
      ok = s == "ok";
    }
  }
  if (!ok) throw Error(ExitCode::external_tool, harness + " did not report 'status ok'");
  if (r.wall_seconds > 0) r.cycles_per_second = double(r.sim_cycles) / r.wall_seconds;
  if (r.cpu_seconds > 0) r.cpu_cycles_per_second = double(r.sim_cycles) / r.cpu_seconds;
  return r;
}

RunResult run_harness(const Program& p, const Config& cfg, const RtlOptions& opt) {
  const std::string harness = opt.harness.empty() ? harness_path(cfg.lanes) : opt.harness;
  if (::access(harness.c_str(), X_OK) != 0) throw Error(ExitCode::external_tool, missing_harness_message(harness));
  TempDir dir("sattn-accel");
  if (opt.keep_workdir) dir.keep();
  write_program(p, dir.path());
  const std::string out_file = (std::filesystem::path(dir.path()) / "out.bin").string();
  std::vector<std::string> argv = {harness,
                                   "--program",
                                   (std::filesystem::path(dir.path()) / "program.txt").string(),
                                   "--dram",
                                   (std::filesystem::path(dir.path()) / "dram.bin").string(),
                                   "--out",
                                   out_file,
                                   "--dram-latency",
                                   std::to_string(cfg.dram_latency_cycles),
                                   "--dram-bytes-per-cycle",
                                   std::to_string(cfg.dram_bytes_per_cycle),
                                   "--max-cycles",
                                   std::to_string(watchdog_cycles(p, cfg))};
  if (!opt.trace_file.empty()) {
    argv.push_back("--trace");
    argv.push_back(opt.trace_file);
  }
  const ProcessResult pr = run_process(argv, opt.timeout_s);
  if (pr.exit_code == 127 && pr.signal == 0)
    throw Error(ExitCode::external_tool, missing_harness_message(harness) + " (" + pr.err_tail(2) + ")");
  if (pr.exit_code == kWatchdogExit) {
    std::string stuck;
    std::istringstream in(pr.out);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("stuck ", 0) == 0) stuck = line.substr(6);
    throw Error(ExitCode::runtime, "accelerator watchdog: the RTL did not finish within max_cycles = " +
                                       std::to_string(watchdog_cycles(p, cfg)) + " simulated cycles; unit states: " + stuck +
                                       ". A DRAM that delivers no data, or a program that waits forever, hangs "
                                       "the accelerator; raise max_cycles if the problem is only large");
  }
  if (pr.exit_code == 3 && pr.signal == 0)
    throw Error(ExitCode::invalid_input, "the accelerator rejected the program: " + pr.err_tail(3));
  if (!pr.ok())
    throw Error(ExitCode::external_tool,
                harness + " failed (" + pr.describe(opt.timeout_s) + "): " + pr.err_tail(10) +
                    "\n(run 'sattn doctor' to check Verilator and the harness; --model-only skips the RTL)");
  RunResult r = parse_harness_output(pr.out, harness);
  std::ifstream in(out_file, std::ios::binary);
  r.out_bits.resize(p.out_bytes / 2);
  if (p.out_bytes && !in.read(reinterpret_cast<char*>(r.out_bits.data()), std::streamsize(p.out_bytes)))
    throw Error(ExitCode::external_tool, harness + " wrote no complete output file");
  return r;
}

}  // namespace

std::string harness_path(int lanes) {
  return (std::filesystem::path(libexec_dir()) / ("sattn-accel-sim-lanes" + std::to_string(lanes))).string();
}

RunResult run_rtl(const Program& p, const Config& cfg, const RtlOptions& opt) {
  if (cfg.lanes != 8 && cfg.lanes != 16 && cfg.lanes != 32)
    throw Error(ExitCode::invalid_input, "accel configuration: lanes must be 8, 16 or 32");
  RunResult r = run_harness(p, cfg, opt);
  for (int e = 0; e < kEventCount; ++e) {
    const size_t i = size_t(p.counter_reads_begin + e);
    if (i >= r.responses.size()) throw Error(ExitCode::external_tool, r.source + " returned too few counter responses");
    r.counters.set(Event(e), int64_t(r.responses[i]));
  }
  return r;
}

Capabilities probe_rtl(const Config& cfg, const RtlOptions& opt) {
  Program p;
  p.dram.assign(kBeatBytes, 0);
  p.commands = {{Funct::probe, isa::kProbeWord.put(0), 0}, {Funct::probe, isa::kProbeWord.put(1), 0}};
  const RunResult r = run_harness(p, cfg, opt);
  if (r.responses.size() != 2) throw Error(ExitCode::external_tool, r.source + ": PROBE gave no answer");
  return decode_capabilities(r.responses[0], r.responses[1]);
}

}  // namespace sattn::accel
