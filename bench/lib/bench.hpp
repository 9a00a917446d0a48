// `sattn bench`: sweeps of backends x specs x sizes, run as subprocesses of the sattn executable
// (one point = one `sattn run|run-rvv|sim|imc` process), collected into sattn.bench/v1 JSON,
// CSV and gnuplot plots; or written out as a job list for GNU parallel / Slurm.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sattn {

// Everything that defines a sweep. Recorded whole in the output's provenance.
struct BenchConfig {
  std::vector<std::string> backends{"cpu"};        // cpu, rvv, rocc, imc
  std::vector<std::string> specs{"sliding_window", "bsr"};
  std::vector<int64_t> seq_lens{256};
  std::vector<std::string> precisions{"fp32"};
  std::vector<int> vlens{128, 256, 512};            // rvv
  std::vector<std::string> kernels{"scalar", "autovec", "rvv"};  // rvv
  std::vector<int> lanes{16};                       // rocc
  int64_t head_dim = 64, heads = 2, batch = 1;
  bool causal = false;
  // Op attributes set on every point; a comma-separated value sweeps that attribute.
  std::vector<std::pair<std::string, std::vector<std::string>>> params;
  bool dense_baseline = true;  // cpu: add a dense point per size, the speedup's baseline
  bool blas_baseline = true;   // cpu: also the OpenBLAS dense attention per size (with dense_baseline)
  std::string profile;         // --profile NAME|PATH as given ("" = none); recorded and in the ids
  std::string profile_path;    // the file it names, found once by sattn bench: what the points get
  bool sim_model_only = false;
  int threads = 0;             // cpu kernel threads (sattn run --threads)
  int reps = 1;                // cpu: runs per point; the median kernel time is kept
  uint64_t seed = 23159;
  double timeout_s = 600;      // per point
};

// One point of a sweep: a backend tool run on one synthetic op.
struct BenchPoint {
  std::string id;       // stable, file-name safe: "cpu-bsr-n256-fp32", "rvv-bsr-n64-fp32-rvv-v128"
  std::string backend;  // cpu, rvv, rocc, imc
  std::string spec;
  int64_t seq_len = 0;
  std::string precision;
  std::string kernel;   // rvv: scalar/autovec/rvv; cpu: "openblas" for the OpenBLAS dense baseline, else ""
  int vlen = 0;         // rvv only
  int lanes = 0;        // rocc only (0: the profile's or the tool's default)
  std::map<std::string, std::string> params;  // the swept/forced op attributes of this point
  bool baseline = false;                      // added as the cpu dense baseline
  std::string profile;                        // the sweep's --profile ("" = none)
  nlohmann::json op;                          // the sattn.op/v1 document it runs
  // The point's parameters as JSON (everything above but the op).
  nlohmann::json describe() const;
};

// Expands a sweep into its points, in a stable order. Throws Error(usage) on values no backend
// accepts (unknown backend, spec, precision, kernel, VLEN, lanes; non-positive sizes).
std::vector<BenchPoint> expand_sweep(const BenchConfig&);

// The backend tool's argument vector after the executable: {"run", OPFILE, ...}.
std::vector<std::string> backend_args(const BenchPoint&, const BenchConfig&, const std::string& op_file);

// What one point's run gave.
struct PointOutcome {
  int exit_code = 0;      // the tool's exit status (4 when it could not start, timed out or died)
  std::string error;      // how it failed, with the tail of its stderr
  nlohmann::json result;  // the tool's first JSON line (null when there is none)
  double wall_s = 0;
  double load_1min = -1;  // the 1-minute load average when the point finished (-1: unknown)
};

// A point measured while the 1-minute load average exceeded this many runnable tasks per core
// shared its cores with other work: its record gets a "load_warning" and the table marks it.
inline constexpr double kHighLoadPerCore = 1.0;

// The record of one point: its parameters, status and the backend's key figures.
nlohmann::json make_record(const BenchPoint&, const PointOutcome&);
// Fills figures that need other records (cpu speedup against the dense point of the same size).
void add_derived_figures(std::vector<nlohmann::json>& records);
// The sweep's exit status from its records: 0 if every point passed, else the most severe
// point status (4 external tool > 3 invalid input > 2 usage > 1 runtime > 5 check failed).
int sweep_exit_status(const std::vector<nlohmann::json>& records);

// sattn.bench/v1 document: provenance + records.
nlohmann::json provenance(const BenchConfig&, const std::string& sattn_path);
nlohmann::json config_to_json(const BenchConfig&);
// /proc/loadavg's 1, 5 and 15 minute load averages (null where there is none).
nlohmann::json load_average();
nlohmann::json bench_document(const nlohmann::json& provenance, const std::vector<nlohmann::json>& records);
// CSV with a header row: one line per record, fixed columns (empty where a figure does not apply).
std::string records_csv(const std::vector<nlohmann::json>& records);

// Runs points as subprocesses, `jobs` at a time. Stops launching on SIGINT, kills the running
// children and throws SweepInterrupted. Progress on stderr when `progress`.
struct SweepInterrupted {};
std::vector<PointOutcome> run_points(const std::vector<BenchPoint>&, const BenchConfig&, const std::string& sattn,
                                     int jobs, bool progress);

// Job lists: one shell command per line, each writing one point's sattn.bench/v1 file.
std::string emit_jobs(const std::vector<BenchPoint>&, const BenchConfig&, const std::string& sattn,
                      const std::string& results_dir);
// Reads every sattn.bench/v1 *.json file in `dir` and returns their records (sorted by id).
std::vector<nlohmann::json> collect_records(const std::string& dir, nlohmann::json& sources);

// Writes gnuplot scripts and data into `dir` and renders them to SVG and PNG. Returns the files
// written (relative to dir). Throws Error(external_tool) if gnuplot fails.
std::vector<std::string> write_plots(const std::string& dir, const std::vector<nlohmann::json>& records,
                                     const std::string& gnuplot = "gnuplot");

// Dense attention from OpenBLAS sgemm (fp32; causal and GQA as the op says): per (batch, head),
// 256-row chunks of S = scale Q K^T, row softmax, O = P V. `threads` (0 = all cores) std::threads
// take the heads in turn, each calling OpenBLAS single-threaded.
struct Op;
struct Tensor;
Tensor blas_dense_attention(const Op&, const Tensor& q, const Tensor& k, const Tensor& v, int threads);
// The OpenBLAS baseline point (`sattn bench --blas-dense OP`): times blas_dense_attention on the
// op's synthetic data and checks it against the fast dense kernel; a sattn.result/v1 document.
nlohmann::json run_blas_point(const std::string& op_file, uint64_t seed, int threads);

// Quotes a word for a POSIX shell.
std::string shell_quote(const std::string&);

}  // namespace sattn
