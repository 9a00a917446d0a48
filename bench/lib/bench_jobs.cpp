// Job lists for sweeps larger than one machine, and collecting what the jobs wrote.
//
// A job line is `sattn bench <the whole sweep's options> --only ID -q -o DIR/ID.json`: it
// expands the same sweep, runs only its own point and writes a one-record sattn.bench/v1 file.
// Lines need nothing but the sattn executable, so GNU parallel (locally or over --sshloginfile)
// and a Slurm array (line $SLURM_ARRAY_TASK_ID) run them unchanged.
#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "bench.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"

namespace sattn {

namespace {

template <class T>
std::string join(const std::vector<T>& values) {
  std::ostringstream s;
  for (size_t i = 0; i < values.size(); ++i) s << (i ? "," : "") << values[i];
  return s.str();
}

// The command-line options that rebuild `c` (the inverse of tool_bench's option parsing).
std::vector<std::string> sweep_options(const BenchConfig& c) {
  std::vector<std::string> a = {"--backend",   join(c.backends),   "--specs",   join(c.specs),
                                "--seq-lens",  join(c.seq_lens),   "--precisions", join(c.precisions),
                                "--vlens",     join(c.vlens),      "--kernels", join(c.kernels),
                                "--lanes",     join(c.lanes),      "--head-dim", std::to_string(c.head_dim),
                                "--heads",     std::to_string(c.heads), "--batch", std::to_string(c.batch),
                                "--seed",      std::to_string(c.seed)};
  for (const auto& [k, values] : c.params) a.insert(a.end(), {"--param", k + "=" + join(values)});
  if (c.causal) a.push_back("--causal");
  if (!c.dense_baseline) a.push_back("--no-dense-baseline");
  if (!c.blas_baseline) a.push_back("--no-blas-baseline");
  if (!c.profile.empty()) a.insert(a.end(), {"--profile", c.profile});
  if (c.sim_model_only) a.push_back("--model-only");
  if (c.threads > 0) a.insert(a.end(), {"--threads", std::to_string(c.threads)});
  if (c.reps > 1) a.insert(a.end(), {"--reps", std::to_string(c.reps)});
  std::ostringstream t;
  t << c.timeout_s;
  a.insert(a.end(), {"--timeout", t.str()});
  return a;
}

}  // namespace

std::string shell_quote(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                              "_-+=.,/:@%") == std::string::npos)
    return word;
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string emit_jobs(const std::vector<BenchPoint>& points, const BenchConfig& c, const std::string& sattn,
                      const std::string& results_dir) {
  std::string common;
  for (const std::string& a : sweep_options(c)) common += " " + shell_quote(a);
  std::string out;
  for (const BenchPoint& p : points) {
    const std::string file = (std::filesystem::path(results_dir) / (p.id + ".json")).string();
    out += shell_quote(sattn) + " bench" + common + " --only " + shell_quote(p.id) + " -q -o " + shell_quote(file) + "\n";
  }
  return out;
}

std::vector<nlohmann::json> collect_records(const std::string& dir, nlohmann::json& sources) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(ExitCode::invalid_input, dir + ": not a directory (--collect needs the results directory of a job list)");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".json" && entry.path().filename() != "bench.json")
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(ExitCode::invalid_input, dir + ": no *.json result files to collect (did the jobs run?)");
  std::vector<nlohmann::json> records;
  std::set<std::string> ids;
  sources = nlohmann::json::array();
  for (const std::string& file : files) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(read_text(file));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ExitCode::invalid_input, file + ": not JSON: " + e.what());
    }
    const std::string schema = doc.value("schema", "");
    if (schema.rfind("sattn.bench/", 0) != 0)
      throw Error(ExitCode::invalid_input, file + ": not a sattn.bench document (schema '" + schema + "')");
    if (schema != "sattn.bench/v1")
      throw Error(ExitCode::invalid_input, file + ": unsupported version " + schema + " (this build reads sattn.bench/v1)");
    if (!doc.contains("records") || !doc["records"].is_array())
      throw Error(ExitCode::invalid_input, file + ": no records array");
    for (const nlohmann::json& r : doc["records"]) {
      const std::string id = r.value("id", "");
      if (!ids.insert(id).second) throw Error(ExitCode::invalid_input, file + ": point '" + id + "' was already collected from another file");
      records.push_back(r);
    }
    const nlohmann::json& prov = doc.contains("provenance") ? doc["provenance"] : nlohmann::json::object();
    sources.push_back({{"file", fs::path(file).filename().string()},
                       {"date", prov.value("date", "")},
                       {"hostname", prov.contains("machine") ? prov["machine"].value("hostname", "") : ""},
                       {"git", prov.value("git", nlohmann::json())},
                       {"parameters", prov.value("parameters", nlohmann::json())},
                       {"load_average", prov.value("load_average", nlohmann::json())}});
  }
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a["id"] < b["id"]; });
  return records;
}

}  // namespace sattn
