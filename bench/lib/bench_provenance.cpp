// Provenance of a benchmark run, in the spirit of hyperfine's --export-json metadata: what ran
// (version, git revision, every parameter), where (machine, CPU, cores), built how (compiler),
// and when (UTC, ISO 8601).
#include <sys/utsname.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench.hpp"
#include "support/process.hpp"
#include "formats/data.hpp"

namespace sattn {

namespace {

using nlohmann::json;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// The source tree this file was compiled from: CMake's source directory (__FILE__ is relative
// when ccache rewrites paths under CCACHE_BASEDIR, so it cannot be used from another directory).
std::string source_root() {
#ifdef SATTN_SOURCE_DIR
  return SATTN_SOURCE_DIR;
#else
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().string();
#endif
}

json git_revision() {
  const std::string root = source_root();
  if (!find_executable("git") || !std::filesystem::exists(std::filesystem::path(root) / ".git"))
    return {{"revision", "unknown"}, {"dirty", nullptr}};
  const ProcessResult rev = run_process({"git", "-C", root, "rev-parse", "HEAD"}, 10);
  if (!rev.ok()) return {{"revision", "unknown"}, {"dirty", nullptr}};
  const ProcessResult st = run_process({"git", "-C", root, "status", "--porcelain", "--untracked-files=no"}, 10);
  return {{"revision", trim(rev.out)}, {"dirty", st.ok() ? json(!trim(st.out).empty()) : json()}};
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon));
    // x86: "model name"; many other kernels: "uarch", "cpu model" or "Model".
    if (key.rfind("model name", 0) == 0 || key == "uarch" || key == "cpu model" || key == "Model") {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      return trim(value);
    }
  }
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

json load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  if (!(in >> one >> five >> fifteen)) return nullptr;
  return json::array({one, five, fifteen});
}

json config_to_json(const BenchConfig& c) {
  json params = json::object();
  for (const auto& [k, values] : c.params) params[k] = values;
  return {{"backends", c.backends},   {"specs", c.specs},         {"seq_lens", c.seq_lens},
          {"precisions", c.precisions}, {"vlens", c.vlens},       {"kernels", c.kernels},
          {"lanes", c.lanes},         {"head_dim", c.head_dim},   {"heads", c.heads},
          {"batch", c.batch},         {"causal", c.causal},       {"params", params},
          {"dense_baseline", c.dense_baseline}, {"blas_baseline", c.blas_baseline},
          {"profile", c.profile.empty() ? json() : json(c.profile)}, {"sim_model_only", c.sim_model_only},
          {"threads", c.threads},     {"reps", c.reps},     {"seed", c.seed},           {"timeout_s", c.timeout_s}};
}

json provenance(const BenchConfig& c, const std::string& sattn_path) {
  json doc = envelope("bench", "sattn bench");
  utsname u{};
  uname(&u);
  doc["provenance"] = {
      {"version", SATTN_VERSION},
      {"git", git_revision()},
      {"machine",
       {{"hostname", u.nodename},
        {"system", std::string(u.sysname) + " " + u.release},
        {"arch", u.machine},
        {"cpu", cpu_model()},
        {"cores", std::thread::hardware_concurrency()}}},
      {"compiler", compiler()},
      {"date", utc_now()},
      {"sattn", sattn_path},
      {"parameters", config_to_json(c)},
  };
  return doc;
}

}  // namespace sattn
