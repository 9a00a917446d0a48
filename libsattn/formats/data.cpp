#include "formats/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "formats/npy.hpp"
#include "sattn/formats.hpp"
#include "formats/op_io.hpp"
#include "support/notes.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

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

namespace {

std::string shape_str(std::array<int64_t, 4> s) {
  return "[" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) + ", " +
         std::to_string(s[3]) + "]";
}

// [B, S, H, D] -> [B, H, S, D].
Tensor bshd_to_bhsd(const Tensor& in) {
  const int64_t B = in.shape[0], S = in.shape[1], H = in.shape[2], D = in.shape[3];
  Tensor out(B, H, S, D);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h) {
        const float* src = in.data.data() + ((b * S + s) * H + h) * D;
        std::copy(src, src + D, out.data.data() + ((b * H + h) * S + s) * D);
      }
  return out;
}

// K or V repeated to every query head (Hugging Face repeat_kv: query head h reads KV head
// h / group, so heads h*group .. h*group+group-1 of the repeated array are copies of KV head h).
// Returns the de-duplicated [B, kv_heads, S, D] tensor; throws naming the first head that differs.
Tensor dedup_repeated(const Tensor& t, int64_t kv_heads, const std::string& file) {
  const int64_t B = t.shape[0], H = t.shape[1], S = t.shape[2], D = t.shape[3], group = H / kv_heads;
  const size_t head = size_t(S * D);
  Tensor out(B, kv_heads, S, D);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t g = 0; g < kv_heads; ++g) {
      const float* first = t.data.data() + size_t(b * H + g * group) * head;
      for (int64_t r = 1; r < group; ++r) {
        const float* other = t.data.data() + size_t(b * H + g * group + r) * head;
        if (!std::equal(first, first + head, other))
          throw_input_error({file}, "has " + std::to_string(H) + " heads (the query heads) but they are not " +
                                        std::to_string(kv_heads) + " KV heads repeated in groups of " +
                                        std::to_string(group) + " (repeat_kv): batch " + std::to_string(b) +
                                        ", head " + std::to_string(g * group + r) + " differs from head " +
                                        std::to_string(g * group));
      }
      std::copy(first, first + head, out.data.data() + size_t(b * kv_heads + g) * head);
    }
  return out;
}

}  // namespace

QKV load_qkv(const Op& op, const DataSource& src) {
  const Shape& s = op.shape;
  if (!src.dir) return synthetic_qkv(s, src.seed);
  QKV t;
  const bool bshd = src.layout == DataLayout::bshd;
  const std::array<int64_t, 4> qshape{s.batch, s.heads, s.seq_len, s.head_dim};
  const std::array<int64_t, 4> kvshape{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  struct Item {
    const char* name;
    Tensor* tensor;
    std::array<int64_t, 4> shape;
    const char* what;
    bool kv;
  } items[] = {{"q.npy", &t.q, qshape, "q", false}, {"k.npy", &t.k, kvshape, "k", true}, {"v.npy", &t.v, kvshape, "v", true}};
  for (auto& it : items) {
    const std::string path = (std::filesystem::path(*src.dir) / it.name).string();
    const NpyArray array = read_npy(path);
    Tensor raw = npy_to_tensor(array, path);
    if (const std::string note = npy_conversion_note(array.dtype); !note.empty())
      report_note_once(path + ": " + note);
    const std::array<int64_t, 4> file_shape = raw.shape;
    *it.tensor = bshd ? bshd_to_bhsd(raw) : std::move(raw);
    std::array<int64_t, 4> want = it.shape;
    const int64_t heads = it.tensor->shape[1];
    // K/V repeated to every query head (repeat_kv): accepted when the op has fewer KV heads.
    const bool repeated = it.kv && s.kv_heads < s.heads && heads == s.heads && it.tensor->shape[0] == want[0] &&
                          it.tensor->shape[2] == want[2] && it.tensor->shape[3] == want[3];
    if (repeated) {
      *it.tensor = dedup_repeated(*it.tensor, s.kv_heads, path);
      report_warning(path + ": its " + std::to_string(s.heads) + " heads are the op's " + std::to_string(s.kv_heads) +
                     " KV heads each repeated " + std::to_string(s.group_size()) +
                     " times (repeat_kv); read de-duplicated");
    }
    if (it.tensor->shape != want) {
      const std::string dims = it.kv ? (bshd ? "[batch, kv_len, kv_heads, head_dim]" : "[batch, kv_heads, kv_len, head_dim]")
                                     : (bshd ? "[batch, seq_len, heads, head_dim]" : "[batch, heads, seq_len, head_dim]");
      std::array<int64_t, 4> want_file = bshd ? std::array<int64_t, 4>{want[0], want[2], want[1], want[3]} : want;
      std::string msg = "shape " + shape_str(file_shape) + " does not match the op: " + it.what + " " + dims +
                        " must be " + shape_str(want_file);
      if (it.kv && s.kv_heads < s.heads) {
        std::array<int64_t, 4> rep = want_file;
        rep[bshd ? 2 : 1] = s.heads;
        msg += " (or " + shape_str(rep) + ", repeated to every query head)";
      }
      // The shape the file would have in the other layout.
      const std::array<int64_t, 4> other = bshd ? want : std::array<int64_t, 4>{want[0], want[2], want[1], want[3]};
      if (file_shape == other && want[1] != want[2])
        msg += std::string("; it looks like ") + (bshd ? "[B, H, S, D]: drop --layout bshd" : "[B, S, H, D]: add --layout bshd");
      throw_input_error({path}, msg);
    }
    check_finite(*it.tensor, path);
  }
  const auto path = [&](const char* name) { return (std::filesystem::path(*src.dir) / name).string(); };
  check_data_range(op, t, path("q.npy"), path("k.npy"), path("v.npy"));
  return t;
}

void infer_shape_from_data(Op& op, const DataSource& src) {
  if (!src.dir) return;
  // Only an op that gives no shape attribute at all: one that gives some keeps the documented
  // defaults for the rest (kv_len = seq_len, kv_heads = heads), and a mismatch stays an error.
  for (const char* n : {"batch", "heads", "kv_heads", "gqa_group_size", "seq_len", "kv_len", "head_dim"})
    if (op.attr_loc.count(n)) return;
  const std::vector<std::string> missing{"batch", "heads", "kv_heads", "seq_len", "kv_len", "head_dim"};
  auto dims = [&](const char* name) {
    const std::string path = (std::filesystem::path(*src.dir) / name).string();
    const NpyArray a = read_npy(path);
    if (a.shape.size() != 4)
      throw_input_error({path}, "expected a 4-D array, got shape " + [&] {
        std::string t = "(";
        for (size_t i = 0; i < a.shape.size(); ++i) t += (i ? ", " : "") + std::to_string(a.shape[i]);
        return t + ")";
      }());
    std::array<int64_t, 4> d{a.shape[0], a.shape[1], a.shape[2], a.shape[3]};
    if (src.layout == DataLayout::bshd) std::swap(d[1], d[2]);
    return d;
  };
  const std::array<int64_t, 4> q = dims("q.npy"), k = dims("k.npy");
  Shape& s = op.shape;
  std::string taken;
  for (const std::string& n : missing) {
    int64_t v = 0;
    if (n == "batch") v = s.batch = q[0];
    if (n == "heads") v = s.heads = q[1];
    if (n == "seq_len") v = s.seq_len = q[2];
    if (n == "head_dim") v = s.head_dim = q[3];
    if (n == "kv_len") v = s.kv_len = k[2];
    if (n == "kv_heads") v = s.kv_heads = k[1];
    taken += (taken.empty() ? "" : ", ") + n + " " + std::to_string(v);
  }
  report_warning("op '" + op.name + "': " + taken + " taken from " + *src.dir + " (the op gives no shape)");
  validate(op);
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
