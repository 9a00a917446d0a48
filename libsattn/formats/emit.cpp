// emit_artifacts(): a plan's layout arrays, indices.txt, indices.desc and (for data-dependent
// specs) the Q/K/V used, written into a staged directory and moved into place only when every
// file is complete. The formats: artifacts_format.cpp and sattn-artifacts(7).
//
// Memory: sliding_window layouts, whose nnz grows as seq_len * window, are never built: their
// rows are generated and written one at a time (emit_stream.cpp), in O(seq_len) memory. Other
// layouts are built once (proportional to nnz; shared specs hold one layout for every head)
// and streamed to the files from their own vectors, with no copy of the index arrays and no
// whole-file string.
#include "formats/emit.hpp"

#include <algorithm>
#include <limits>

#include "formats/artifacts_format.hpp"
#include "support/io.hpp"
#include "formats/npy.hpp"
#include "formats/op_io.hpp"

namespace sattn {

namespace {

using namespace artifacts_detail;
using nlohmann::json;

std::span<const uint8_t> bytes_of(const auto& vec) {
  return {reinterpret_cast<const uint8_t*>(vec.data()), vec.size() * sizeof(vec[0])};
}

// The CSR/BSR arrays: ptr [layouts, rows + 1] int64 holding offsets into the one idx array of
// every layout's indices, so ptr[L] slices layout L's rows straight out of idx.
void write_layout_arrays(const std::string& dir, const ArtifactFiles& files, const Layout& layout) {
  const int64_t rows = index_rows(layout), layouts = layout_count(layout);
  std::vector<std::span<const uint8_t>> idx_chunks;
  int64_t total = 0;
  for (const HeadLayout& hl : layout.heads) {
    idx_chunks.push_back(bytes_of(hl.idx));
    total += int64_t(hl.idx.size());
  }
  if (layouts == 1) {
    write_npy_chunks(dir + "/" + files.ptr, DType::i64, {1, rows + 1}, {bytes_of(layout.heads[0].ptr)});
  } else {
    std::vector<int64_t> ptr;
    ptr.reserve(size_t(layouts * (rows + 1)));
    int64_t offset = 0;
    for (const HeadLayout& hl : layout.heads) {
      for (int64_t p : hl.ptr) ptr.push_back(offset + p);
      offset += int64_t(hl.idx.size());
    }
    write_npy_chunks(dir + "/" + files.ptr, DType::i64, {layouts, rows + 1}, {bytes_of(ptr)});
  }
  write_npy_chunks(dir + "/" + files.idx, DType::i32, {total}, idx_chunks);
}

void write_tensor(const std::string& path, const Tensor& t) {
  write_npy_chunks(path, DType::f32, {t.shape[0], t.shape[1], t.shape[2], t.shape[3]}, {bytes_of(t.data)});
}

json array_entry(const std::string& path, const char* dtype, std::vector<int64_t> shape) {
  return {{"path", path}, {"dtype", dtype}, {"shape", std::move(shape)}};
}

void check_stem(const std::string& stem) {
  if (stem.empty() || stem == "." || stem == ".." || stem.find('/') != std::string::npos)
    throw Error(ExitCode::usage, "bad --out-stem file name '" + stem + "': give DIR/NAME with a non-empty NAME");
}

// The general path: the layout built in memory (proportional to nnz) and streamed to the files
// from its own vectors.
StreamedLayout write_built_layout(const Plan& plan, const Layout& layout, const ArtifactFiles& files,
                                  const std::string& dir) {
  StreamedLayout out{layout_info(layout), {}};
  write_layout_arrays(dir, files, layout);
  AtomicFile txt(dir + "/" + files.indices_txt);
  write_indices_txt(txt, plan, layout, out.info);
  txt.commit();
  StatsBuilder stats(plan.op, out.info);
  for (int64_t l = 0; l < out.info.layouts(); ++l) {
    const int64_t b = layout.shared ? 0 : l / layout.kv_heads, h = layout.shared ? 0 : l % layout.kv_heads;
    stats.add(l, layout.heads[size_t(l)].ptr, layout.allowed_pairs(b, h));
  }
  out.stats = stats.finish();
  return out;
}

}  // namespace

bool layout_uses_data(Spec spec, const SpecParams& params) {
  if (const auto* lm = std::get_if<LandmarkParams>(&params)) return lm->landmark_iters > 0;
  return is_data_dependent(spec);
}

json emit_artifacts(const Plan& plan, const EmitOptions& options) {
  if (options.out_dir.empty()) throw Error(ExitCode::usage, "no output directory (--out-dir or --out-stem)");
  check_stem(options.stem);
  const Op& op = plan.op;
  const Shape& s = op.shape;
  const bool uses_data = layout_uses_data(plan.spec, plan.params);
  // Data given explicitly is always checked and carried, so backends run on what the user gave.
  const bool with_data = uses_data || options.data.dir.has_value();
  std::optional<QKV> data;
  if (with_data) data = load_qkv(op, options.data);
  const ArtifactFiles files = artifact_files(options.stem, is_block_spec(plan.spec), with_data);

  // Everything goes to a staging directory first: a failure leaves no file at out_dir.
  StagedDirectory stage(options.out_dir, options.stage);
  const std::string& dir = stage.staging_path();
  const StreamedLayout emitted =
      can_stream_layout(plan)
          ? stream_layout(plan, files, dir)
          : write_built_layout(
                plan, build_layout(op, plan.spec, plan.params, data ? &data->q : nullptr, data ? &data->k : nullptr),
                files, dir);
  const LayoutInfo& info = emitted.info;
  const LayoutStats& st = emitted.stats;
  write_atomic(dir + "/" + files.desc, format_desc(desc_entries(plan, info, files)));
  if (data) {
    write_tensor(dir + "/" + files.q, data->q);
    write_tensor(dir + "/" + files.k, data->k);
    write_tensor(dir + "/" + files.v, data->v);
  }

  json env = envelope("artifacts", "sattn-emit");
  env["op"] = op_to_json(op);
  env["spec"] = std::string(to_string(plan.spec));
  env["params"] = params_to_json(plan.params);
  env["backend"] = std::string(to_string(plan.backend));
  if (!plan.selection.kind.empty())
    env["selection"] = {{"kind", plan.selection.kind}, {"reason", plan.selection.reason}};
  env["layout"] = {{"format", info.block ? "bsr" : "csr"},
                   {"granularity", info.block ? "block" : "row"},
                   {"block_size", info.block_size},
                   {"shared", info.shared},
                   {"layouts", info.layouts()},
                   {"rows", info.rows},
                   {"cols", info.cols},
                   {"causal", info.causal},
                   {"causal_offset", info.causal_offset}};
  env["nnz"] = st.nnz;
  env["allowed_pairs"] = st.allowed_pairs;
  env["density"] = st.density;
  env["stats"] = {{"row_nnz", st.row_nnz}, {"layout_nnz", st.layout_nnz}, {"per_layout", st.per_layout}};
  env["files"] = {{"indices", files.indices_txt}, {"desc", files.desc}};
  env["arrays"] = {
      {info.block ? "block_row_ptr" : "row_ptr", array_entry(files.ptr, "int64", {info.layouts(), info.rows + 1})},
      {info.block ? "block_col_idx" : "col_idx", array_entry(files.idx, "int32", {st.nnz})}};
  if (with_data) {
    env["arrays"]["q"] = array_entry(files.q, "float32", {s.batch, s.heads, s.seq_len, s.head_dim});
    env["arrays"]["k"] = array_entry(files.k, "float32", {s.batch, s.kv_heads, s.kv_len, s.head_dim});
    env["arrays"]["v"] = array_entry(files.v, "float32", {s.batch, s.kv_heads, s.kv_len, s.head_dim});
  }
  env["data"] = options.data.dir ? json{{"source", "npy"}, {"dir", *options.data.dir}}
                                 : json{{"source", "synthetic"}, {"seed", options.data.seed}};
  env["data"]["used_by_layout"] = uses_data;
  env["data"]["carried"] = with_data;
  // The file copy has no "dir": it is wherever the file lies, and artifacts emitted into
  // different directories from the same plan stay byte-identical.
  write_atomic(dir + "/" + files.envelope, env.dump(2) + "\n");
  stage.commit(files.envelope);
  env["dir"] = options.out_dir;
  return env;
}

}  // namespace sattn
