#include "formats/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "formats/npy.hpp"
#include "sattn/formats.hpp"
#include "formats/op_io.hpp"

namespace sattn {

namespace {

void check_shape(const Tensor& t, std::array<int64_t, 4> want, const std::string& file, const char* what) {
  if (t.shape == want) return;
  auto str = [](std::array<int64_t, 4> s) {
    return "[" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) + ", " +
           std::to_string(s[3]) + "]";
  };
  throw_input_error({file}, std::string("shape ") + str(t.shape) + " does not match the op: " + what + " must be " +
                                str(want));
}

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

void check_finite(const Tensor& t, const std::string& file) {
  for (size_t n = 0; n < t.data.size(); ++n)
    if (!std::isfinite(t.data[n]))
      throw_input_error({file}, "element " + std::to_string(n) + " is " + (std::isnan(t.data[n]) ? "NaN" : "Inf") +
                                    "; inputs must be finite");
}

}  // namespace

nlohmann::json envelope(const std::string& kind, const std::string& tool) {
  return {{"schema", "sattn." + kind + "/v1"}, {"producer", {{"tool", tool}, {"version", SATTN_VERSION}}}};
}

nlohmann::json layout_summary(const Op& op, const Layout& layout) {
  int64_t nnz = 0, pairs = 0;
  for (const HeadLayout& h : layout.heads) nnz += int64_t(h.idx.size());
  for (int64_t b = 0; b < layout.batch; ++b)
    for (int64_t h = 0; h < layout.kv_heads; ++h) pairs += layout.allowed_pairs(b, h);
  return {{"granularity", layout.block ? "block" : "row"},
          {"block_size", layout.block_size},
          {"shared_across_heads", layout.shared},
          {"nnz", nnz},
          {"allowed_pairs", pairs * op.shape.group_size()},
          {"density", layout.density()}};
}

nlohmann::json result_header(const Plan& plan, const Op& op, Precision precision, const std::string& backend,
                             const nlohmann::json& data_desc, const Layout& layout, const std::string& tool) {
  nlohmann::json j = envelope("result", tool);
  j["op"] = op_to_json(op);
  j["spec"] = std::string(to_string(plan.spec));
  j["params"] = params_to_json(plan.params);
  j["backend"] = backend;
  j["precision"] = std::string(to_string(precision));
  j["data"] = data_desc;
  j["selection"] = {{"kind", plan.selection.kind}, {"reason", plan.selection.reason}};
  j["layout"] = layout_summary(op, layout);
  return j;
}

void check_data_range(const Op& op, const QKV& data, const std::string& q_file, const std::string& k_file,
                      const std::string& v_file) {
  constexpr double kLimit = 1e38;
  auto max_abs = [](const Tensor& t) {
    double m = 0;
    for (float x : t.data) m = std::max(m, double(std::fabs(x)));
    return m;
  };
  const double q = max_abs(data.q), k = max_abs(data.k), v = max_abs(data.v);
  const double score = q * k * double(op.shape.head_dim) * op.softmax_scale();
  if (score > kLimit)
    throw_input_error({k == 0 || q / k > 1 ? q_file : k_file},
                      "max |q| (" + number_text(q) + ") x max |k| (" + number_text(k) + ") x head_dim x scale = " +
                          number_text(score) + ": scores can overflow fp32 (limit 1e38)");
  if (v * double(op.shape.kv_len) > kLimit)
    throw_input_error({v_file}, "max |v| (" + number_text(v) + ") x kv_len (" + std::to_string(op.shape.kv_len) +
                                    ") can overflow the fp32 sum of P V (limit 1e38)");
}

QKV load_qkv(const Op& op, const DataSource& src) {
  const Shape& s = op.shape;
  if (!src.dir) return synthetic_qkv(s, src.seed);
  QKV t;
  const std::array<int64_t, 4> qshape{s.batch, s.heads, s.seq_len, s.head_dim};
  const std::array<int64_t, 4> kvshape{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  struct Item {
    const char* name;
    Tensor* tensor;
    std::array<int64_t, 4> shape;
    const char* what;
  } items[] = {{"q.npy", &t.q, qshape, "q [batch, heads, seq_len, head_dim]"},
               {"k.npy", &t.k, kvshape, "k [batch, kv_heads, kv_len, head_dim]"},
               {"v.npy", &t.v, kvshape, "v [batch, kv_heads, kv_len, head_dim]"}};
  for (auto& it : items) {
    const std::string path = (std::filesystem::path(*src.dir) / it.name).string();
    *it.tensor = npy_to_tensor(read_npy(path), path);
    check_shape(*it.tensor, it.shape, path, it.what);
    check_finite(*it.tensor, path);
  }
  const auto path = [&](const char* name) { return (std::filesystem::path(*src.dir) / name).string(); };
  check_data_range(op, t, path("q.npy"), path("k.npy"), path("v.npy"));
  return t;
}

QKV read_qkv(const Op& op, const std::optional<std::string>& dir, uint64_t seed) {
  return load_qkv(op, DataSource{dir, seed});
}

nlohmann::json describe(const DataSource& src) {
  if (src.from_artifacts) return {{"source", "artifacts"}};
  return src.dir ? nlohmann::json{{"source", "npy"}, {"dir", *src.dir}}
                 : nlohmann::json{{"source", "synthetic"}, {"seed", src.seed}};
}

}  // namespace sattn
