// read_artifacts(): a sattn.artifacts/v1 envelope read back into a Plan, a Layout and the Q/K/V
// it carries, for the backends. Everything is checked before use: the schema version, the op,
// the arrays' dtypes and shapes against the envelope, the index structure (pointers monotone,
// indices sorted, unique and in range) and the .desc register image against what the plan and
// layout imply. Each inconsistency is an input error naming the file at fault.
#include <cmath>
#include <filesystem>

#include "formats/artifacts_format.hpp"
#include "core/quant_scheme.hpp"
#include "formats/emit.hpp"
#include "formats/nesting.hpp"
#include "formats/op_io.hpp"
#include "support/io.hpp"

namespace sattn {

namespace {

using namespace artifacts_detail;
using nlohmann::json;
namespace fs = std::filesystem;

[[noreturn]] void bad(const std::string& file, const std::string& what) {
  throw_input_error(SourceLoc{file}, what);
}

// A path the envelope names, resolved against its directory: it must stay inside it
// (sattn-artifacts(7)); an absolute path or a ".." is refused, not followed.
const std::string& contained(const std::string& rel, const std::string& member, const std::string& env_file) {
  if (!is_contained_path(rel))
    bad(env_file, member + " '" + rel +
                      "' must be a relative path inside the artifacts directory (no absolute path, no '..')");
  return rel;
}

void check_schema(const json& env, const std::string& file) {
  const auto it = env.find("schema");
  if (it == env.end() || !it->is_string()) bad(file, "no \"schema\": not a sattn.artifacts/v1 envelope");
  const std::string schema = it->get<std::string>();
  const std::string prefix = "sattn.artifacts/v";
  if (schema.rfind(prefix, 0) != 0)
    bad(file, "expected an artifacts envelope (schema \"sattn.artifacts/v1\"), got '" + schema + "'");
  const std::string major = schema.substr(prefix.size());
  if (major != "1")
    bad(file,
        "unsupported schema major version " + major + " in '" + schema + "' (this reader supports sattn.artifacts/v1)");
}

Op read_op(const json& env, const std::string& file) {
  if (!env.contains("op") || !env["op"].is_object()) bad(file, "envelope has no \"op\" object");
  std::vector<Op> ops;
  try {
    ops = parse_json_ops(env["op"].dump(), file);
  } catch (const Error& e) {
    // Positions inside the re-serialized op mean nothing to the user; name the member instead.
    bad(file, "\"op\": " + e.message());
  }
  if (ops.size() != 1) bad(file, "\"op\" must hold exactly one op");
  return ops.front();
}

// Parameters are resolved again from the op (as plan readers do) and must agree with the ones
// the envelope echoes: the layout arrays were built from them.
SpecParams read_params(const json& written, const Op& op, Spec spec, const std::string& file) {
  SpecParams params;
  try {
    params = resolve_params(op, spec);
  } catch (const Error& e) {
    bad(file, "spec " + std::string(to_string(spec)) + " does not fit the op: " + e.message());
  }
  if (!written.is_object()) bad(file, "\"params\" must be an object");
  const json resolved = params_to_json(params);
  for (const auto& [key, value] : resolved.items()) {
    const auto it = written.find(key);
    if (it == written.end() || *it != value)
      bad(file, "\"params\"." + key + " (" + (it == written.end() ? std::string("missing") : it->dump()) +
                    ") disagrees with the op (" + value.dump() + ")");
  }
  return params;
}

std::string join_shape(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One .npy named by the envelope's "arrays" member: the file must hold what the envelope says
// and what the op implies (`want`).
NpyArray read_array(const json& arrays, const char* name, DType dtype, const std::vector<int64_t>& want,
                    const std::string& dir, const std::string& env_file, std::string* path_out) {
  if (!arrays.contains(name) || !arrays[name].is_object())
    bad(env_file, std::string("\"arrays\" has no \"") + name + "\"");
  const json& a = arrays[name];
  const std::string rel = a.value("path", std::string());
  if (rel.empty()) bad(env_file, std::string("\"arrays\".") + name + " has no path");
  contained(rel, std::string("\"arrays\".") + name + ".path", env_file);
  const std::string path = (fs::path(dir) / rel).string();
  if (a.value("dtype", std::string()) != (dtype == DType::i64 ? "int64" : dtype == DType::i32 ? "int32" : "float32"))
    bad(env_file, std::string("\"arrays\".") + name + ".dtype is not what a " + name + " array holds");
  if (!a.contains("shape") || a["shape"].get<std::vector<int64_t>>() != want)
    bad(env_file, std::string("\"arrays\".") + name + ".shape should be " + join_shape(want));
  NpyArray arr = read_npy(path);
  if (arr.dtype != dtype)
    bad(path,
        std::string("dtype ") + std::string(npy_descr(arr.dtype)) + ", expected " + std::string(npy_descr(dtype)));
  if (arr.shape != want)
    bad(path, "shape " + join_shape(arr.shape) + " does not match the envelope's " + join_shape(want));
  if (path_out) *path_out = rel;
  return arr;
}

// Splits the global ptr/idx arrays into per-layout CSR/BSR lists, checking the structure.
void fill_heads(Layout& layout, const NpyArray& ptr_arr, const NpyArray& idx_arr, int64_t rows, int64_t layouts,
                int64_t cols, const std::string& ptr_file, const std::string& idx_file) {
  const auto ptr = ptr_arr.as<int64_t>();
  const auto idx = idx_arr.as<int32_t>();
  const int64_t total = int64_t(idx.size());
  int64_t expected_start = 0;
  layout.heads.resize(size_t(layouts));
  for (int64_t l = 0; l < layouts; ++l) {
    const int64_t* p = ptr.data() + l * (rows + 1);
    const std::string where = "layout " + std::to_string(l);
    if (p[0] != expected_start)
      bad(ptr_file, where + " starts at " + std::to_string(p[0]) + ", expected " + std::to_string(expected_start) +
                        " (the end of the previous layout)");
    HeadLayout& hl = layout.heads[size_t(l)];
    hl.ptr.resize(size_t(rows + 1));
    for (int64_t r = 0; r <= rows; ++r) {
      if (r > 0 && p[r] < p[r - 1]) bad(ptr_file, where + " row " + std::to_string(r - 1) + ": pointers decrease");
      if (p[r] > total)
        bad(ptr_file, where + " row " + std::to_string(r) + ": pointer " + std::to_string(p[r]) + " past the " +
                          std::to_string(total) + " indices of " + fs::path(idx_file).filename().string());
      hl.ptr[size_t(r)] = p[r] - p[0];
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = p[r]; t < p[r + 1]; ++t) {
        const int64_t j = idx[size_t(t)];
        if (j < 0 || j >= cols)
          bad(idx_file, where + " row " + std::to_string(r) + ": index " + std::to_string(j) + " out of range [0, " +
                            std::to_string(cols) + ")");
        if (t > p[r] && j <= idx[size_t(t - 1)])
          bad(idx_file, where + " row " + std::to_string(r) + ": indices not sorted and unique (" +
                            std::to_string(idx[size_t(t - 1)]) + " then " + std::to_string(j) + ")");
      }
    hl.idx.assign(idx.begin() + p[0], idx.begin() + p[rows]);
    expected_start = p[rows];
  }
  if (expected_start != total)
    bad(ptr_file, "the last layout ends at " + std::to_string(expected_start) + " but " +
                      fs::path(idx_file).filename().string() + " holds " + std::to_string(total) + " indices");
}

Tensor read_tensor(const json& arrays, const char* name, std::vector<int64_t> want, const std::string& dir,
                   const std::string& env_file) {
  std::string rel;
  const NpyArray arr = read_array(arrays, name, DType::f32, want, dir, env_file, &rel);
  const std::string path = (fs::path(dir) / rel).string();
  Tensor t = npy_to_tensor(arr, path);
  for (size_t n = 0; n < t.data.size(); ++n)
    if (!std::isfinite(t.data[n])) bad(path, "element " + std::to_string(n) + " is not finite");
  return t;
}

// The .desc must say what the plan and layout imply; numbers compare by value ("0.50" = "0.5").
void check_desc(const std::string& path, const DescEntries& expected) {
  const auto desc = parse_desc(read_text(path), path);
  for (const auto& [key, want] : expected) {
    if (key == "envelope_file") continue;  // the envelope may have been renamed
    const auto it = desc.find(key);
    if (it == desc.end()) bad(path, "missing key '" + key + "'");
    if (it->second == want) continue;
    char* end_a = nullptr;
    char* end_b = nullptr;
    const double a = std::strtod(it->second.c_str(), &end_a), b = std::strtod(want.c_str(), &end_b);
    const bool numeric = !it->second.empty() && *end_a == '\0' && *end_b == '\0';
    if (!numeric || a != b)
      bad(path, "'" + key + " = " + it->second + "' disagrees with the envelope and arrays (expected " + want + ")");
  }
}

}  // namespace

Artifacts read_artifacts(const std::string& envelope_path) {
  const std::string text = read_text(envelope_path);
  check_json_nesting(text, envelope_path);
  json env;
  try {
    env = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number overflow
    bad(envelope_path, std::string("invalid JSON: ") + e.what());
  }
  if (!env.is_object()) bad(envelope_path, "expected a JSON object (a sattn.artifacts/v1 envelope)");
  check_schema(env, envelope_path);

  Artifacts out;
  out.dir = fs::path(envelope_path).has_parent_path() ? fs::path(envelope_path).parent_path().string() : ".";
  try {
    Plan& plan = out.plan;
    plan.op = read_op(env, envelope_path);
    const Op& op = plan.op;
    const auto spec = parse_spec(env.value("spec", std::string()));
    if (!spec) bad(envelope_path, "unknown spec '" + env.value("spec", std::string()) + "'");
    plan.spec = *spec;
    plan.params = read_params(env.value("params", json::object()), op, plan.spec, envelope_path);
    const std::string backend = env.value("backend", std::string("cpu"));
    const auto parsed_backend = parse_backend(backend);
    if (!parsed_backend) bad(envelope_path, "unknown backend '" + backend + "'");
    plan.backend = *parsed_backend;
    if (env.contains("selection") && env["selection"].is_object()) {
      plan.selection.kind = env["selection"].value("kind", std::string());
      plan.selection.reason = env["selection"].value("reason", std::string());
    }

    // The layout's geometry comes from the op; the envelope's description must agree with it.
    const json& desc = env.at("layout");
    Layout& layout = out.layout;
    layout.spec = plan.spec;
    layout.block = desc.at("format").get<std::string>() == "bsr";
    if (layout.block != is_block_spec(plan.spec))
      bad(envelope_path, "\"layout\".format does not fit spec " + std::string(to_string(plan.spec)));
    layout.rows = op.shape.seq_len;
    layout.cols = op.shape.kv_len;
    layout.block_size = desc.at("block_size").get<int64_t>();
    if (layout.block_size < 1 || (!layout.block && layout.block_size != 1))
      bad(envelope_path, "\"layout\".block_size " + std::to_string(layout.block_size) + " is not valid here");
    layout.causal = op.causal;
    layout.causal_offset = op.shape.kv_len - op.shape.seq_len;
    layout.batch = op.shape.batch;
    layout.kv_heads = op.shape.kv_heads;
    layout.shared = desc.at("shared").get<bool>();
    const int64_t layouts = layout_count(layout), rows = index_rows(layout);
    const int64_t cols = layout.block ? layout.block_cols() : layout.cols;
    if (desc.at("layouts").get<int64_t>() != layouts || desc.at("rows").get<int64_t>() != rows ||
        desc.at("cols").get<int64_t>() != cols)
      bad(envelope_path, "\"layout\" counts disagree with the op: expected layouts " + std::to_string(layouts) +
                             ", rows " + std::to_string(rows) + ", cols " + std::to_string(cols));

    const json& arrays = env.at("arrays");
    const char* ptr_name = layout.block ? "block_row_ptr" : "row_ptr";
    const char* idx_name = layout.block ? "block_col_idx" : "col_idx";
    const int64_t nnz = env.at("nnz").get<int64_t>();
    ArtifactFiles files;
    const NpyArray ptr =
        read_array(arrays, ptr_name, DType::i64, {layouts, rows + 1}, out.dir, envelope_path, &files.ptr);
    const NpyArray idx = read_array(arrays, idx_name, DType::i32, {nnz}, out.dir, envelope_path, &files.idx);
    fill_heads(layout, ptr, idx, rows, layouts, cols, (fs::path(out.dir) / files.ptr).string(),
               (fs::path(out.dir) / files.idx).string());

    const Shape& s = op.shape;
    const bool has_q = arrays.contains("q"), has_k = arrays.contains("k"), has_v = arrays.contains("v");
    if (has_q != has_k || has_k != has_v) bad(envelope_path, "\"arrays\" must hold all of q, k, v or none");
    if (has_q) {
      QKV data;
      data.q = read_tensor(arrays, "q", {s.batch, s.heads, s.seq_len, s.head_dim}, out.dir, envelope_path);
      data.k = read_tensor(arrays, "k", {s.batch, s.kv_heads, s.kv_len, s.head_dim}, out.dir, envelope_path);
      data.v = read_tensor(arrays, "v", {s.batch, s.kv_heads, s.kv_len, s.head_dim}, out.dir, envelope_path);
      files.q = arrays["q"]["path"], files.k = arrays["k"]["path"], files.v = arrays["v"]["path"];
      check_data_range(op, data, (fs::path(out.dir) / files.q).string(), (fs::path(out.dir) / files.k).string(),
                       (fs::path(out.dir) / files.v).string());
      out.data = std::move(data);
    }
    // Fixed scale tables (sattn-calibrate --apply; sattn-quant(7) FIXED SCALES): all that the
    // op's scheme needs, or none.
    bool any_table = false;
    for (const char* name : kQuantTableNames) any_table = any_table || arrays.contains(name);
    if (any_table) {
      if (op.precision != Precision::i8 && op.precision != Precision::i4)
        bad(envelope_path, "\"arrays\" holds scale tables, but the op's precision is " +
                               std::string(to_string(op.precision)) + " (tables need i8 or i4)");
      if (!op.quant_scheme || op.quant_scheme->is_per_tensor())
        bad(envelope_path, "\"arrays\" holds scale tables, but the op names no quant_scheme other than per-tensor "
                           "(per-tensor scales are the op's scale_q, scale_k, scale_v)");
      auto tables = std::make_shared<QuantTables>();
      for (const char* name : kQuantTableNames) {
        const std::vector<int64_t> want = quant_table_shape(op, *op.quant_scheme, name);
        if (want.empty()) {
          if (arrays.contains(name))
            bad(envelope_path, std::string("\"arrays\".") + name + ": quant_scheme " + to_string(*op.quant_scheme) +
                                   " has no " + name + " table");
          continue;
        }
        if (!arrays.contains(name))
          bad(envelope_path, std::string("\"arrays\" lacks ") + name + ", which quant_scheme " +
                                 to_string(*op.quant_scheme) + " needs with fixed tables");
        std::string rel;
        const NpyArray arr = read_array(arrays, name, DType::f32, want, out.dir, envelope_path, &rel);
        const std::string path = (fs::path(out.dir) / rel).string();
        std::vector<float>& t = quant_table(*tables, name);
        const auto values = arr.as<float>();
        t.assign(values.begin(), values.end());
        const bool scale = std::string_view(name).rfind("scale_", 0) == 0;
        for (size_t n = 0; n < t.size(); ++n)
          if (!std::isfinite(t[n]) || (scale && !(t[n] > 0)))
            bad(path, "element " + std::to_string(n) + " is " + (std::isnan(t[n]) ? std::string("NaN") : std::to_string(t[n])) +
                          (scale ? ": a scale must be finite and > 0" : ": a mean must be finite"));
      }
      plan.op.quant_tables = std::move(tables);
    }
    const json& named = env.at("files");
    files.indices_txt = contained(named.at("indices").get<std::string>(), "\"files\".indices", envelope_path);
    files.desc = contained(named.at("desc").get<std::string>(), "\"files\".desc", envelope_path);
    files.envelope = fs::path(envelope_path).filename().string();
    check_desc((fs::path(out.dir) / files.desc).string(), desc_entries(plan, layout_info(layout), files));
  } catch (const json::exception& e) {
    // A member of the wrong type or missing; JSON_DIAGNOSTICS puts its JSON pointer in what().
    bad(envelope_path, std::string("malformed envelope: ") + e.what());
  }
  return out;
}

}  // namespace sattn
