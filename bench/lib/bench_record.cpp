// One record per point: its parameters, how the run ended, and the backend's key figures, taken
// from the tool's sattn.result/v1 (or sattn.imc/v1) line. Also the CSV view of the records.
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <algorithm>
#include <cmath>
#include <sstream>

#include "bench.hpp"
#include "sattn/error.hpp"

namespace sattn {

namespace {

using nlohmann::json;

// j[a][b]... or null when any step is missing.
json dig(const json& j, std::initializer_list<const char*> path) {
  const json* at = &j;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return nullptr;
    at = &(*at)[key];
  }
  return *at;
}

double number(const json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }

void figures_common(const json& r, json& f) {
  f["spec_used"] = dig(r, {"spec"});
  f["precision_used"] = dig(r, {"precision"});
  f["passed"] = dig(r, {"check", "passed"});
  f["max_rel_error"] = dig(r, {"check", "max_rel_error"});
  f["tolerance"] = dig(r, {"check", "tolerance"});
  f["density"] = dig(r, {"layout", "density"});
  f["allowed_pairs"] = dig(r, {"layout", "allowed_pairs"});
}

void figures_cpu(const BenchPoint& p, const json& r, json& f) {
  f["kernel_ms"] = dig(r, {"timing", "kernel_ms"});
  // The OpenBLAS point has no reference run (it is checked against the fast dense kernel).
  if (const json ref = dig(r, {"timing", "reference_ms"}); ref.is_number()) f["reference_ms"] = ref;
  f["kernel_reps_ms"] = dig(r, {"timing", "kernel_reps_ms"});  // every repetition (--reps), when more than one
  const double ms = number(f["kernel_ms"]), pairs = number(f["allowed_pairs"]);
  const double head_dim = number(dig(p.op, {"head_dim"}));
  // Two GEMM-like products (Q·Kᵀ and P·V), a multiply and an add each per pair and dimension.
  if (ms > 0 && pairs >= 0) f["gflops"] = 4.0 * head_dim * pairs / (ms * 1e6);
}

void figures_rvv(const json& r, json& f) {
  f["instructions"] = dig(r, {"rvv", "instructions", "total"});
  f["vector_instructions"] = dig(r, {"rvv", "instructions", "vector"});
  f["modelled_cycles"] = dig(r, {"rvv", "modelled_cycles"});
  f["tile_rows"] = dig(r, {"rvv", "tile_rows"});
  f["lmul"] = dig(r, {"rvv", "lmul"});
}

void figures_sim(const json& r, json& f) {
  const json s = dig(r, {"sim"});
  f["sim_engine"] = dig(s, {"engine"});
  f["cycles"] = dig(s, {"cycles"});
  f["utilization"] = dig(s, {"utilization"});
  f["compute_cycles"] = dig(s, {"roofline", "compute_cycles"});
  f["memory_cycles"] = dig(s, {"roofline", "memory_cycles"});
  f["bound_cycles"] = dig(s, {"roofline", "bound_cycles"});
  f["bound_by"] = dig(s, {"roofline", "bound_by"});
  f["roofline_ratio"] = dig(s, {"roofline", "ratio"});
  f["macs_issued"] = dig(s, {"macs_issued"});
  f["energy_pj"] = dig(s, {"energy_pj", "total"});
  f["dram_bytes_per_cycle"] = dig(s, {"config", "dram_bytes_per_cycle"});
  f["sim_lanes"] = dig(s, {"config", "lanes"});
  f["clock_mhz"] = dig(s, {"config", "clock_mhz"});
  const double in = number(dig(s, {"dma_bytes_in"})), out = number(dig(s, {"dma_bytes_out"}));
  if (!std::isnan(in) && !std::isnan(out)) f["dram_bytes"] = in + out;
  const double macs = number(f["macs_issued"]), cycles = number(f["cycles"]);
  // The roofline's coordinates: MACs per DRAM byte, and MACs per cycle attained.
  if (in + out > 0 && !std::isnan(macs)) f["op_intensity"] = macs / (in + out);
  if (cycles > 0 && !std::isnan(macs)) f["macs_per_cycle"] = macs / cycles;
}

void figures_imc(const json& r, json& f) {
  f["spec_used"] = dig(r, {"spec"});
  if (f["spec_used"].is_null()) f["spec_used"] = dig(r, {"plan", "spec"});
  f["precision_used"] = dig(r, {"precision"});
  f["density"] = dig(r, {"mapping", "density"});
  f["imc_energy_pj"] = dig(r, {"sparse", "energy_pj", "total"});
  f["imc_dense_energy_pj"] = dig(r, {"dense", "energy_pj", "total"});
  f["imc_energy_ratio"] = dig(r, {"ratio", "energy"});
  f["imc_latency_ns"] = dig(r, {"sparse", "latency_ns", "total"});
  f["imc_dense_latency_ns"] = dig(r, {"dense", "latency_ns", "total"});
  f["imc_area_mm2"] = dig(r, {"sparse", "area_mm2", "total"});
  f["imc_dense_area_mm2"] = dig(r, {"dense", "area_mm2", "total"});
  f["imc_tops_per_w"] = dig(r, {"sparse", "tops_per_w"});
}

// The columns of the CSV, after the point's own.
const std::vector<std::string> kFigureColumns = {
    "spec_used",      "precision_used", "passed",           "max_rel_error",   "tolerance",
    "density",        "allowed_pairs",  "kernel_ms",        "reference_ms",    "gflops",
    "dense_kernel_ms", "speedup_vs_dense", "blas_dense_ms", "speedup_vs_blas", "instructions",  "vector_instructions", "modelled_cycles",
    "tile_rows",      "lmul",           "sim_engine",       "cycles",          "utilization",
    "compute_cycles", "memory_cycles",  "bound_cycles",     "bound_by",        "roofline_ratio",
    "macs_issued",    "dram_bytes",     "dram_bytes_per_cycle", "sim_lanes", "clock_mhz", "op_intensity", "macs_per_cycle",
    "energy_pj",      "imc_energy_pj",  "imc_dense_energy_pj", "imc_energy_ratio", "imc_latency_ns",
    "imc_dense_latency_ns", "imc_area_mm2", "imc_dense_area_mm2", "imc_tops_per_w"};

std::string csv_cell(const json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) {
    std::ostringstream s;
    s.precision(10);
    s << v.get<double>();
    return s.str();
  }
  std::string text = v.is_string() ? v.get<std::string>() : v.dump();
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

json make_record(const BenchPoint& p, const PointOutcome& o) {
  json record = {{"id", p.id}, {"point", p.describe()}, {"op", p.op}, {"exit_code", o.exit_code},
                 {"wall_s", o.wall_s}};
  record["status"] = o.exit_code == 0 ? "passed" : o.exit_code == int(ExitCode::check_failed) ? "check_failed" : "failed";
  record["error"] = o.error.empty() ? json() : json(o.error);
  json f = json::object();
  if (o.result.is_object()) {
    if (p.backend == "imc") {
      figures_imc(o.result, f);
    } else {
      figures_common(o.result, f);
      if (p.backend == "cpu") figures_cpu(p, o.result, f);
      if (p.backend == "rvv") figures_rvv(o.result, f);
      if (p.backend == "rocc") figures_sim(o.result, f);
    }
  }
  // Non-finite numbers (no dense point, a failed run) are not JSON: leave them out.
  for (auto it = f.begin(); it != f.end();)
    it = it->is_number_float() && !std::isfinite(it->get<double>()) ? f.erase(it) : std::next(it);
  record["figures"] = f;
  // What else ran: the load when the point finished, and for timed points a warning above one
  // runnable task per core.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  record["load_average"] = o.load_1min >= 0 ? json(o.load_1min) : json();
  record["load_warning"] = json();
  // SATTN_BENCH_HIGH_LOAD overrides the per-core threshold (tests/cli/bench.sh forces both ways).
  double per_core = kHighLoadPerCore;
  if (const char* env = std::getenv("SATTN_BENCH_HIGH_LOAD"); env && *env) per_core = std::atof(env);
  // Only timed points (cpu) are affected: instruction and cycle counts (rvv, rocc) and the imc
  // model do not depend on the load.
  if (p.backend == "cpu" && o.load_1min >= 0 && o.load_1min > per_core * cores) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "measured at load average %.2f on %u cores: timings may include waiting for the CPU",
                  o.load_1min, cores);
    record["load_warning"] = buf;
  }
  return record;
}

void add_derived_figures(std::vector<json>& records) {
  // cpu: the kernel time of the dense point with the same shape and precision.
  auto key = [](const json& r, bool with_params) {
    const json& pt = r["point"];
    json k = {pt["backend"], pt["seq_len"], pt["precision"], with_params ? pt["params"] : json::object(), r["op"].value("heads", 0),
              r["op"].value("head_dim", 0), r["op"].value("batch", 0), r["op"].value("causal", false)};
    return k.dump();
  };
  auto is_blas = [](const json& r) { return r["point"].value("kernel", json()) == "openblas"; };
  // The OpenBLAS baseline runs fp32 with no --param values: one per shape.
  auto blas_key = [](const json& r) {
    const json& pt = r["point"];
    return json({pt["seq_len"], r["op"].value("heads", 0), r["op"].value("head_dim", 0), r["op"].value("batch", 0),
                 r["op"].value("causal", false)})
        .dump();
  };
  std::map<std::string, double> dense_ms, blas_ms;
  for (const json& r : records) {
    if (r["point"]["backend"] != "cpu" || r["point"]["spec"] != "dense" || r["exit_code"] != 0 ||
        !r["figures"].value("kernel_ms", json()).is_number())
      continue;
    if (is_blas(r))
      blas_ms[blas_key(r)] = r["figures"]["kernel_ms"].get<double>();
    else
      dense_ms[key(r, true)] = r["figures"]["kernel_ms"].get<double>();
  }
  for (json& r : records) {
    if (r["point"]["backend"] != "cpu" || !r["figures"].value("kernel_ms", json()).is_number()) continue;
    const double ms = r["figures"]["kernel_ms"].get<double>();
    if (const auto b = blas_ms.find(blas_key(r)); b != blas_ms.end()) {
      r["figures"]["blas_dense_ms"] = b->second;
      if (ms > 0) r["figures"]["speedup_vs_blas"] = b->second / ms;
    }
    if (is_blas(r)) continue;
    // A dense point with the same --param values, else the added baseline (which has none).
    auto it = dense_ms.find(key(r, true));
    if (it == dense_ms.end()) it = dense_ms.find(key(r, false));
    if (it == dense_ms.end()) continue;
    r["figures"]["dense_kernel_ms"] = it->second;
    if (ms > 0) r["figures"]["speedup_vs_dense"] = it->second / ms;
  }
}

int sweep_exit_status(const std::vector<json>& records) {
  // Most severe first: a missing or crashing tool hides everything else; a check failure is
  // reported only when every point ran.
  static const int order[] = {4, 3, 2, 1, 5};
  int worst_rank = -1;
  for (const json& r : records) {
    const int code = r["exit_code"].get<int>();
    if (code == 0) continue;
    int rank = 3;  // unknown codes count as runtime failures
    for (int i = 0; i < 5; ++i)
      if (order[i] == code) rank = i;
    if (worst_rank < 0 || rank < worst_rank) worst_rank = rank;
  }
  return worst_rank < 0 ? 0 : order[worst_rank];
}

json bench_document(const json& prov, const std::vector<json>& records) {
  json doc = prov;
  int passed = 0, check_failed = 0, failed = 0;
  for (const json& r : records) {
    const std::string s = r["status"];
    (s == "passed" ? passed : s == "check_failed" ? check_failed : failed)++;
  }
  doc["summary"] = {{"points", records.size()}, {"passed", passed}, {"check_failed", check_failed}, {"failed", failed},
                    {"exit_status", sweep_exit_status(records)}};
  doc["records"] = records;
  return doc;
}

std::string records_csv(const std::vector<json>& records) {
  std::vector<std::string> header = {"id",     "backend", "spec",       "seq_len", "precision", "kernel",
                                     "vlen",   "lanes",   "params",     "baseline", "status",  "exit_code",
                                     "wall_s", "load_average", "load_warning"};
  header.insert(header.end(), kFigureColumns.begin(), kFigureColumns.end());
  std::string out;
  for (size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + header[i];
  out += "\n";
  for (const json& r : records) {
    const json& p = r["point"];
    std::string params;
    for (const auto& [k, v] : p["params"].items()) params += (params.empty() ? "" : ";") + k + "=" + v.get<std::string>();
    std::vector<json> cells = {r["id"],     p["backend"], p["spec"],   p["seq_len"], p["precision"],
                               p["kernel"], p["vlen"],    p["lanes"],  params,       p["baseline"],
                               r["status"], r["exit_code"], r["wall_s"], r.value("load_average", json()),
                               r.value("load_warning", json())};
    for (const std::string& c : kFigureColumns) cells.push_back(dig(r["figures"], {c.c_str()}));
    for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + csv_cell(cells[i]);
    out += "\n";
  }
  return out;
}

}  // namespace sattn
