// Expanding a sweep into points, and each point into an op document and a backend command line.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "bench.hpp"
#include "sattn/error.hpp"
#include "sattn/op.hpp"

namespace sattn {

namespace {

const std::set<std::string> kBackends{"cpu", "rvv", "rocc", "imc"};
const std::set<std::string> kKernels{"rvv", "scalar", "autovec"};
const std::set<int> kVlens{128, 256, 512, 1024};
const std::set<int> kLanes{8, 16, 32};

// Spec attributes that give a density of roughly 1/8 to 1/4 at any seq_len, so that one sweep
// spans a useful range of densities without tuning. `--param` overrides any of them.
nlohmann::json spec_defaults(const std::string& spec, int64_t seq) {
  const int64_t block = std::clamp<int64_t>(seq / 16, 1, 64);
  if (spec == "sliding_window") return {{"window_size", std::max<int64_t>(1, seq / 16)}};
  if (spec == "bsr") return {{"block_size", block}, {"keep_ratio", 0.25}};
  if (spec == "block_local_global") return {{"block_size", block}, {"window_blocks", 1}, {"global_tokens", block}};
  if (spec == "nm_structured") return {{"nm_n", 2}, {"nm_m", 8}};
  if (spec == "topk_per_query") return {{"topk_k", std::max<int64_t>(1, seq / 8)}};
  if (spec == "lsh") return {{"lsh_buckets", 8}, {"lsh_rounds", 1}};
  if (spec == "landmark") return {{"num_landmarks", std::max<int64_t>(1, seq / 8)}};
  if (spec == "quest") return {{"page_size", block}, {"top_pages", 4}};  // 1/4 of the pages at seq_len >= 256
  return nlohmann::json::object();
}

// A --param value as JSON: integer, number, true/false, else a string.
nlohmann::json param_value(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  try {
    size_t used = 0;
    const long long i = std::stoll(text, &used);
    if (used == text.size()) return i;
    const double d = std::stod(text, &used);
    if (used == text.size()) return d;
  } catch (const std::exception&) {
  }
  return text;
}

std::string safe_id_part(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '=') c = '_';
  return s;
}

// Every combination of the swept params (the cartesian product, in option order).
std::vector<std::map<std::string, std::string>> param_combinations(const BenchConfig& c) {
  std::vector<std::map<std::string, std::string>> combos{{}};
  for (const auto& [key, values] : c.params) {
    std::vector<std::map<std::string, std::string>> next;
    for (const auto& combo : combos)
      for (const std::string& v : values) {
        auto m = combo;
        m[key] = v;
        next.push_back(std::move(m));
      }
    combos = std::move(next);
  }
  return combos;
}

bool swept(const BenchConfig& c, const std::string& key) {
  for (const auto& [k, values] : c.params)
    if (k == key) return values.size() > 1;
  return false;
}

void finish_point(BenchPoint& p, const BenchConfig& c) {
  p.id = p.backend + "-" + p.spec + "-n" + std::to_string(p.seq_len) + "-" + p.precision;
  if (p.backend == "rvv") p.id += "-" + p.kernel + "-v" + std::to_string(p.vlen);
  if (p.backend == "cpu" && !p.kernel.empty()) p.id += "-" + p.kernel;
  if (p.backend == "rocc" && p.lanes > 0) p.id += "-l" + std::to_string(p.lanes);
  p.profile = c.profile;
  if (!c.profile.empty()) p.id += "-" + safe_id_part(std::filesystem::path(c.profile).stem().string());
  for (const auto& [k, v] : p.params)
    if (swept(c, k)) p.id += "-" + safe_id_part(k + "=" + v);
  nlohmann::json op = {{"schema", "sattn.op/v1"}, {"name", p.id},        {"batch", c.batch},
                       {"heads", c.heads},        {"seq_len", p.seq_len}, {"head_dim", c.head_dim},
                       {"causal", c.causal},      {"precision", p.precision}, {"spec", p.spec}};
  op.update(spec_defaults(p.spec, p.seq_len));
  for (const auto& [k, v] : p.params) op[k] = param_value(v);
  p.op = std::move(op);
}

}  // namespace

nlohmann::json BenchPoint::describe() const {
  nlohmann::json j = {{"id", id},           {"backend", backend},     {"spec", spec}, {"seq_len", seq_len},
                      {"precision", precision}, {"params", params}, {"baseline", baseline}};
  j["kernel"] = kernel.empty() ? nlohmann::json() : nlohmann::json(kernel);
  j["vlen"] = backend == "rvv" ? nlohmann::json(vlen) : nlohmann::json();
  j["lanes"] = backend == "rocc" && lanes > 0 ? nlohmann::json(lanes) : nlohmann::json();
  j["profile"] = profile.empty() ? nlohmann::json() : nlohmann::json(profile);
  return j;
}

std::vector<BenchPoint> expand_sweep(const BenchConfig& c) {
  auto usage = [](const std::string& m) { throw Error(ExitCode::usage, m); };
  if (c.backends.empty() || c.specs.empty() || c.seq_lens.empty() || c.precisions.empty())
    usage("--backend, --specs, --seq-lens and --precisions need at least one value each");
  for (const auto& b : c.backends)
    if (!kBackends.count(b)) usage("--backend: unknown backend '" + b + "' (cpu, rvv, rocc, imc)");
  for (const auto& s : c.specs)
    if (!parse_spec(s) || std::string(to_string(*parse_spec(s))) != s)
      usage("--specs: unknown spec '" + s +
            "' (dense, sliding_window, bsr, block_local_global, nm_structured, topk_per_query, lsh, landmark, quest)");
  for (const auto& p : c.precisions)
    if (!parse_precision(p)) usage("--precisions: unknown precision '" + p + "' (fp32, bf16, i8, i4)");
  for (int64_t n : c.seq_lens)
    if (n <= 0) usage("--seq-lens: " + std::to_string(n) + " is not a positive length");
  for (const auto& k : c.kernels)
    if (!kKernels.count(k)) usage("--kernels: unknown kernel '" + k + "' (rvv, scalar, autovec)");
  for (int v : c.vlens)
    if (!kVlens.count(v)) usage("--vlens: " + std::to_string(v) + " is not one of 128, 256, 512, 1024");
  for (int l : c.lanes)
    if (!kLanes.count(l) && !(l == 0 && c.lanes.size() == 1 && !c.profile.empty()))  // 0: the profile's
      usage("--lanes: " + std::to_string(l) + " is not one of 8, 16, 32");
  if (c.head_dim <= 0 || c.heads <= 0 || c.batch <= 0) usage("--head-dim, --heads and --batch must be positive");

  std::vector<BenchPoint> points;
  std::set<std::string> seen;
  auto add = [&](BenchPoint p) {
    finish_point(p, c);
    if (seen.insert(p.id).second) points.push_back(std::move(p));
  };
  const auto combos = param_combinations(c);
  for (const std::string& backend : c.backends) {
    std::vector<std::string> specs = c.specs;
    const bool add_dense = backend == "cpu" && c.dense_baseline &&
                           std::find(specs.begin(), specs.end(), "dense") == specs.end();
    if (add_dense) specs.insert(specs.begin(), "dense");
    for (const std::string& spec : specs)
      for (int64_t seq : c.seq_lens)
        for (const std::string& prec : c.precisions)
          for (const auto& combo : combos) {
            BenchPoint p;
            p.backend = backend;
            p.spec = spec;
            p.seq_len = seq;
            p.precision = prec;
            p.baseline = add_dense && spec == "dense";
            // The added baseline is plain dense attention: --param attributes belong to the
            // sweep's own specs (one baseline per size; the duplicates have the same id).
            if (!p.baseline) p.params = combo;
            if (p.baseline && c.blas_baseline) {
              // The OpenBLAS dense attention of this size (fp32 whatever the sweep's precision).
              BenchPoint blas = p;
              blas.kernel = "openblas";
              blas.precision = "fp32";
              add(blas);
            }
            if (backend == "rvv") {
              for (const std::string& k : c.kernels)
                for (int v : c.vlens) {
                  p.kernel = k;
                  p.vlen = v;
                  add(p);
                }
            } else if (backend == "rocc") {
              for (int l : c.lanes) {
                p.lanes = l;
                add(p);
              }
            } else {
              add(p);
            }
          }
  }
  return points;
}

std::vector<std::string> backend_args(const BenchPoint& p, const BenchConfig& c, const std::string& op_file) {
  std::vector<std::string> a;
  const std::string seed = std::to_string(c.seed);
  if (p.backend == "cpu" && p.kernel == "openblas") {
    a = {"bench", "--blas-dense", op_file, "--seed", seed, "--threads", std::to_string(c.threads)};
    return a;  // not a selecting tool: no --profile, no --force-spec (it is dense by definition)
  }
  if (p.backend == "cpu") {
    a = {"run", op_file, "--seed", seed};
    if (c.threads > 0) a.insert(a.end(), {"--threads", std::to_string(c.threads)});
  } else if (p.backend == "rvv") {
    a = {"run-rvv", op_file, "--seed", seed, "--kernel", p.kernel, "--vlen", std::to_string(p.vlen)};
    a.insert(a.end(), {"--timeout", std::to_string(int(std::ceil(c.timeout_s)))});
  } else if (p.backend == "rocc") {
    a = {"sim", op_file, "--seed", seed};
    if (p.lanes > 0) a.insert(a.end(), {"--lanes", std::to_string(p.lanes)});
    if (c.sim_model_only) a.push_back("--model-only");
  } else {
    a = {"imc", op_file, "--seed", seed};
  }
  if (!c.profile.empty()) a.insert(a.end(), {"--profile", c.profile_path.empty() ? c.profile : c.profile_path});
  // The op carries the spec too; the flag outranks SATTN_FORCE_SPEC in the environment.
  a.insert(a.end(), {"--force-spec", p.spec});
  return a;
}

}  // namespace sattn
