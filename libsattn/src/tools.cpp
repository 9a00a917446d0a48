// The tool table: one entry per tool, shared by `sattn TOOL` and the standalone executables.
#include "sattn/cli.hpp"

namespace sattn {

const std::vector<Tool>& tool_table() {
  static const std::vector<Tool> tools = {
      {"run", "Run ops on a backend and check them against the reference", configure_run},
      {"select", "Pick a sparsity spec per op (rules, cost model, overrides)", configure_select},
      {"emit", "Write a plan's indices, descriptors and layout arrays", configure_emit},
      {"completions", "Print a bash, zsh or fish completion script", configure_completions},
  };
  return tools;
}

}  // namespace sattn
