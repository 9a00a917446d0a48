// `sattn run --backend rvv|sim|imc|all`: runs each backend's tool in-process (same tool table,
// same inputs, selection flags, profile and data) and gathers the results (run_backends.cpp).
#pragma once
#include <string>
#include <vector>

namespace sattn {

struct MultiRunOptions {
  std::vector<std::string> inputs;
  std::vector<std::string> forwarded;  // options every backend tool takes (selection, profile, data)
  std::vector<std::string> cpu_only;   // options only `sattn run --backend cpu` takes
  std::string output = "-";
  std::string format = "json";
  bool quiet = false;
};

// cpu, rvv, sim, imc: the order of `--backend all`.
std::vector<std::string> backend_names();

// `sattn run`'s output rule: -o FILE gets the JSON Lines; standard output gets the table with
// --format text (also when -o is given), else the JSON Lines when there is no -o.
void write_run_output(const std::string& output, const std::string& format, const std::string& json_lines,
                      const std::string& table);

// Runs the backends in order and writes every result (JSON Lines) or a summary table (one row
// per op and backend: spec, density, error against the reference, the backend's figure, check).
// Returns the most severe exit status of the backends.
int run_backends(const std::vector<std::string>& backends, const MultiRunOptions&);

}  // namespace sattn
