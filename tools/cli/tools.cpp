// The tool table: one entry per tool, shared by `sattn TOOL` and the standalone executables.
#include "cli/cli.hpp"

namespace sattn {

const std::vector<Tool>& tool_table() {
  static const std::vector<Tool> tools = {
      {"run", "Run ops on a backend and check them against the reference", configure_run},
      {"select", "Pick a sparsity spec per op (rules, cost model, overrides)", configure_select},
      {"emit", "Write a plan's indices, descriptors and layout arrays", configure_emit},
      {"run-rvv", "Run ops as RVV 1.0 kernels under QEMU: exact instruction mix, modelled cycles", configure_run_rvv},
      {"sim", "Run ops on the RoCC accelerator RTL under Verilator: cycles, counters, energy", configure_sim},
      {"calibrate", "Compute int8/int4 quantization scales from data", configure_calibrate},
      {"imc", "Estimate an op on in-memory-compute crossbars: energy, latency, area", configure_imc},
      {"eval", "Measure what a sparse spec loses against dense attention: recall, oracle recall, output error", configure_eval},
      {"bench", "Sweep ops x backends x sizes; write sattn.bench/v1 JSON, CSV and job lists", configure_bench},
      {"model", "Cost a whole model's attention layers per backend: prefill and decode, sparse vs dense", configure_model},
      {"profile", "List, show and validate profiles (sattn-profile(5))", configure_profile},
      {"doctor", "Check the external tools the backends need, and how to fix what is missing", configure_doctor},
      {"completions", "Print a bash, zsh or fish completion script", configure_completions},
  };
  return tools;
}

}  // namespace sattn
