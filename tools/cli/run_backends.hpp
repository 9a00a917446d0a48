// `sattn run --backend NAME|all`: ops on one or several backends of the registry (sattn/backend.hpp),
// in-process, with the same inputs, selection, profile and data; their results are gathered into
// one JSON Lines stream and a summary table (run_backends.cpp).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "sattn/backend.hpp"
#include "sattn/select.hpp"

namespace sattn {

inline constexpr double kDefaultMaxSeconds = 3600;  // the default --max-seconds (see below)

struct MultiRunOptions {
  std::vector<std::string> inputs;
  SelectRequest selection;  // as the command line gave it; each backend selects with its own cost model
  DataSource data;          // --data DIR or --seed N
  int threads = 0;          // host threads (cpu)
  std::string out_dir;      // each backend's outputs and results (one subdirectory per backend when several)
  bool force = false;       // --force: replace a non-empty out_dir that holds no sattn output
  std::string output = "-";
  std::string format = "json";
  bool quiet = false;
  CheckOptions check;        // --check full|sample|none (default: sample above kCheckSampleAbovePairs)
  bool dry_run = false;      // --dry-run: print each op's work estimate, run nothing
  double max_pairs = 0;      // --max-pairs: refuse an op estimated above this many pairs (0 = no limit)
  double max_seconds = kDefaultMaxSeconds;  // --max-seconds: likewise for its estimated time (0 = no limit)
  std::optional<Precision> precision;       // --precision: every op runs at it
  std::optional<QuantScheme> quant_scheme;  // --quant-scheme: every op's quantization scheme (i8, i4)
};

// The backends `--backend NAME` means: one by name, or `all` (every backend with in_all, in
// registry order). An unknown name is Error(usage) listing them.
std::vector<const Backend*> backends_named(const std::string& name);

// `sattn run`'s output rule: -o FILE gets the JSON Lines; standard output gets the table with
// --format text (also when -o is given), else the JSON Lines when there is no -o.
void write_run_output(const std::string& output, const std::string& format, const std::string& json_lines,
                      const std::string& table);

// Runs the backends in order and writes every result (JSON Lines) or a table: with one host
// backend (cpu, cuda) its timings, else one row per op and backend (spec, density, error against
// the reference, the backend's figure, check). Returns the most severe exit status.
// With --dry-run, writes each op's work estimate on each backend instead (sattn.estimate/v1 JSON
// Lines, or a table) and runs nothing. Ops estimated above --max-pairs or --max-seconds are refused
// before any data or layout exists: Error(runtime), exit 1, naming the estimate and the flag.
int run_backends(const std::vector<const Backend*>& backends, const MultiRunOptions&);

// "< 1 ms", "28 ms", "3.2 s", "4 min 10 s", "2.5 h".
std::string format_duration(double seconds);

}  // namespace sattn
