// The artifact formats shared by emit.cpp and artifacts_read.cpp: .desc register image,
// indices.txt listing, streamed .npy arrays. User documentation: man/sattn-artifacts.7.scd.
#include "formats/artifacts_format.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <variant>

#include "sattn/error.hpp"

namespace sattn::artifacts_detail {

ArtifactFiles artifact_files(const std::string& stem, bool block, bool with_data) {
  ArtifactFiles f;
  f.indices_txt = stem + ".txt";
  f.desc = stem + ".desc";
  f.ptr = block ? "block_row_ptr.npy" : "row_ptr.npy";
  f.idx = block ? "block_col_idx.npy" : "col_idx.npy";
  if (with_data) f.q = "q.npy", f.k = "k.npy", f.v = "v.npy";
  f.envelope = kEnvelopeFile;
  return f;
}

int spec_code(Spec s) {
  return static_cast<int>(s);
}
int precision_code(Precision p) {
  return static_cast<int>(p);
}

int64_t layout_count(const Layout& l) {
  return l.shared ? 1 : l.batch * l.kv_heads;
}
int64_t index_rows(const Layout& l) {
  return l.block ? l.block_rows() : l.rows;
}

int64_t LayoutInfo::total_nnz() const {
  int64_t total = 0;
  for (int64_t n : nnz) total += n;
  return total;
}

LayoutInfo layout_info(const Layout& l) {
  LayoutInfo info;
  info.block = l.block;
  info.shared = l.shared;
  info.causal = l.causal;
  info.rows = index_rows(l);
  info.cols = l.block ? l.block_cols() : l.cols;
  info.block_size = l.block_size;
  info.block_rows = l.block_rows();
  info.block_cols = l.block_cols();
  info.causal_offset = l.causal_offset;
  info.kv_heads = l.kv_heads;
  for (const HeadLayout& h : l.heads) info.nnz.push_back(int64_t(h.idx.size()));
  return info;
}

std::string format_double(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

namespace {

// Every spec parameter as a register: 0 where the spec has no such parameter.
struct FlatParams {
  int64_t window_size = 0, dilation = 0, wrap = 0;
  int64_t global_tokens = 0, window_blocks = 0, comp_block_size = 0;
  double keep_ratio = 0;
  int64_t nm_n = 0, nm_m = 0, topk_k = 0, lsh_buckets = 0, lsh_rounds = 0;
  uint64_t seed = 0;
  int64_t num_landmarks = 0, landmark_iters = 0;
  int64_t top_pages = 0;  // quest (its page_size is the layout's block_size)
};

FlatParams flatten(const SpecParams& params) {
  FlatParams f;
  if (const auto* p = std::get_if<SlidingWindowParams>(&params)) {
    f.window_size = p->window_size, f.dilation = p->dilation, f.wrap = p->wrap;
  } else if (const auto* p = std::get_if<BsrParams>(&params)) {
    f.keep_ratio = p->keep_ratio, f.comp_block_size = p->comp_block_size, f.global_tokens = p->global_tokens;
  } else if (const auto* p = std::get_if<BlockLocalGlobalParams>(&params)) {
    f.window_blocks = p->window_blocks, f.global_tokens = p->global_tokens;
  } else if (const auto* p = std::get_if<NmParams>(&params)) {
    f.nm_n = p->nm_n, f.nm_m = p->nm_m;
  } else if (const auto* p = std::get_if<TopkParams>(&params)) {
    f.topk_k = p->topk_k;
  } else if (const auto* p = std::get_if<LshParams>(&params)) {
    f.lsh_buckets = p->lsh_buckets, f.lsh_rounds = p->lsh_rounds, f.seed = p->seed;
  } else if (const auto* p = std::get_if<LandmarkParams>(&params)) {
    f.num_landmarks = p->num_landmarks, f.landmark_iters = p->landmark_iters;
  } else if (const auto* p = std::get_if<QuestParams>(&params)) {
    f.top_pages = p->top_pages;
  }
  return f;
}

}  // namespace

DescEntries desc_entries(const Plan& plan, const LayoutInfo& layout, const ArtifactFiles& files) {
  const Op& op = plan.op;
  const Shape& s = op.shape;
  const FlatParams f = flatten(plan.params);
  DescEntries e;
  auto put = [&e](const char* key, const std::string& value) { e.emplace_back(key, value); };
  auto put_int = [&put](const char* key, int64_t v) { put(key, std::to_string(v)); };
  auto put_scale = [&put](const char* key, const std::optional<double>& v) { put(key, format_double(v.value_or(0))); };
  put_int("desc_version", kDescVersion);
  put_int("spec", spec_code(plan.spec));
  put("spec_name", std::string(to_string(plan.spec)));
  put_int("layout_format", layout.block ? 1 : 0);
  put_int("batch", s.batch);
  put_int("heads", s.heads);
  put_int("kv_heads", s.kv_heads);
  put_int("gqa_group_size", s.group_size());
  put_int("seq_len", s.seq_len);
  put_int("kv_len", s.kv_len);
  put_int("head_dim", s.head_dim);
  put_int("causal", op.causal ? 1 : 0);
  put_int("causal_offset", layout.causal_offset);
  put_int("block_size", layout.block_size);
  put_int("window_size", f.window_size);
  put_int("dilation", f.dilation);
  put_int("wrap", f.wrap);
  put_int("global_tokens", f.global_tokens);
  put_int("window_blocks", f.window_blocks);
  put("keep_ratio", format_double(f.keep_ratio));
  put_int("comp_block_size", f.comp_block_size);
  put_int("nm_n", f.nm_n);
  put_int("nm_m", f.nm_m);
  put_int("topk_k", f.topk_k);
  put_int("lsh_buckets", f.lsh_buckets);
  put_int("lsh_rounds", f.lsh_rounds);
  put("seed", std::to_string(f.seed));
  put_int("num_landmarks", f.num_landmarks);
  put_int("landmark_iters", f.landmark_iters);
  put_int("top_pages", f.top_pages);
  put_int("precision", precision_code(op.precision));
  put("precision_name", std::string(to_string(op.precision)));
  put("scale", format_double(op.softmax_scale()));
  put_scale("scale_q", op.scale_q);
  put_scale("scale_k", op.scale_k);
  put_scale("scale_v", op.scale_v);
  put_int("shared", layout.shared ? 1 : 0);
  put_int("layouts", layout.layouts());
  put_int("rows", layout.rows);
  put_int("block_rows", layout.block_rows);
  put_int("block_cols", layout.block_cols);
  put_int("nnz", layout.total_nnz());
  for (size_t l = 0; l < layout.nnz.size(); ++l)
    e.emplace_back("nnz_" + std::to_string(l), std::to_string(layout.nnz[l]));
  put("indices_file", files.indices_txt);
  put("ptr_file", files.ptr);
  put("idx_file", files.idx);
  put("q_file", files.q.empty() ? "none" : files.q);
  put("k_file", files.k.empty() ? "none" : files.k);
  put("v_file", files.v.empty() ? "none" : files.v);
  put("envelope_file", files.envelope);
  return e;
}

std::string format_desc(const DescEntries& entries) {
  std::string out = "# sattn indices.desc v1: the accelerator's register image (key = value; see sattn-artifacts(7))\n";
  for (const auto& [key, value] : entries) out += key + " = " + value + "\n";
  return out;
}

std::map<std::string, std::string> parse_desc(std::string_view text, const std::string& filename) {
  std::map<std::string, std::string> out;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
  };
  int line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const SourceLoc loc{filename, line_no, 0};
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) throw_input_error(loc, "expected 'key = value'");
    const std::string key(trim(line.substr(0, eq)));
    if (key.empty()) throw_input_error(loc, "empty key");
    if (!out.emplace(key, std::string(trim(line.substr(eq + 1)))).second)
      throw_input_error(loc, "key '" + key + "' appears twice");
  }
  return out;
}

IndexTextWriter::IndexTextWriter(AtomicFile& file, const Plan& plan, const LayoutInfo& info)
    : file_(file), info_(info), buf_(size_t(1) << 20) {
  const Shape& s = plan.op.shape;
  const std::string b = std::to_string(info.block_size);
  std::string h = "# sattn indices v1 (format: sattn-artifacts(7))\n";
  h += "# spec: " + std::string(to_string(plan.spec)) + "\n";
  h += info.block ? "# granularity: block (BSR: one line per block row of " + b +
                        " queries, listing block columns of " + b + " keys)\n"
                  : std::string("# granularity: row (CSR: one line per query row, listing key indices)\n");
  h += "# lines: ROW: INDEX... ascending; FIRST-LAST stands for a run of 3 or more consecutive indices\n";
  h += "# shape: batch=" + std::to_string(s.batch) + " heads=" + std::to_string(s.heads) +
       " kv_heads=" + std::to_string(s.kv_heads) + " seq_len=" + std::to_string(s.seq_len) +
       " kv_len=" + std::to_string(s.kv_len) + " head_dim=" + std::to_string(s.head_dim) + "\n";
  h += "# causal: " + std::string(info.causal ? "true" : "false") +
       " (causal_offset=" + std::to_string(info.causal_offset) + ")\n";
  h += "# block_size: " + b + "\n";
  h += "# rows: " + std::to_string(info.rows) + " per layout\n";
  h +=
      "# layouts: " + std::to_string(info.layouts()) +
      (info.shared ? " (shared by every batch and kv head)\n" : " (one per batch and kv head: L = b * kv_heads + h)\n");
  h += "# nnz: " + std::to_string(info.total_nnz()) + "\n";
  text(h);
}

void IndexTextWriter::begin_layout(int64_t l) {
  std::string title = "layout " + std::to_string(l) + ":";
  title += info_.shared
               ? " shared"
               : " batch=" + std::to_string(l / info_.kv_heads) + " kv_head=" + std::to_string(l % info_.kv_heads);
  text(title + " nnz=" + std::to_string(info_.nnz[size_t(l)]) + "\n");
}

void IndexTextWriter::text(std::string_view s) {
  if (s.size() > buf_.size() - used_) flush();
  if (s.size() > buf_.size()) return file_.write(s);
  std::memcpy(buf_.data() + used_, s.data(), s.size());
  used_ += s.size();
}

void IndexTextWriter::row(int64_t r, const int32_t* first, const int32_t* last) {
  char* const end = buf_.data() + buf_.size();
  // Room for the row number, and for each entry " FIRST-LAST" (two 10-digit numbers).
  if (buf_.size() - used_ < 32) flush();
  used_ = size_t(std::to_chars(buf_.data() + used_, end, r).ptr - buf_.data());
  buf_[used_++] = ':';
  for (const int32_t* p = first; p != last;) {
    const int32_t* run_end = p + 1;
    while (run_end != last && *run_end == run_end[-1] + 1) ++run_end;
    if (buf_.size() - used_ < 32) flush();
    buf_[used_++] = ' ';
    used_ = size_t(std::to_chars(buf_.data() + used_, end, *p).ptr - buf_.data());
    if (run_end - p >= 3) {
      buf_[used_++] = '-';
      used_ = size_t(std::to_chars(buf_.data() + used_, end, run_end[-1]).ptr - buf_.data());
      p = run_end;
    } else {
      ++p;
    }
  }
  if (used_ == buf_.size()) flush();
  buf_[used_++] = '\n';
}

void IndexTextWriter::flush() {
  file_.write(buf_.data(), used_);
  used_ = 0;
}

void write_indices_txt(AtomicFile& file, const Plan& plan, const Layout& layout, const LayoutInfo& info) {
  IndexTextWriter out(file, plan, info);
  for (int64_t l = 0; l < info.layouts(); ++l) {
    const HeadLayout& hl = layout.heads[size_t(l)];
    out.begin_layout(l);
    for (int64_t r = 0; r < info.rows; ++r) out.row(r, hl.idx.data() + hl.ptr[r], hl.idx.data() + hl.ptr[r + 1]);
  }
  out.flush();
}

StatsBuilder::StatsBuilder(const Op& op, const LayoutInfo& info)
    : op_(op), info_(info), row_min_(std::numeric_limits<int64_t>::max()), nnz_min_(row_min_) {}

void StatsBuilder::add(int64_t l, std::span<const int64_t> ptr, int64_t pairs) {
  const int64_t rows = info_.rows, nnz = ptr[size_t(rows)] - ptr[0];
  int64_t lmin = rows > 0 ? std::numeric_limits<int64_t>::max() : 0, lmax = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = ptr[size_t(r + 1)] - ptr[size_t(r)];
    lmin = std::min(lmin, n), lmax = std::max(lmax, n);
  }
  // A shared layout stands for every (batch, kv head); allowed pairs count every query head.
  const int64_t copies = info_.shared ? op_.shape.batch * op_.shape.kv_heads : 1;
  const double cells = double(op_.shape.seq_len) * double(op_.shape.kv_len);
  st_.allowed_pairs += pairs * copies * op_.shape.group_size();
  density_sum_ += double(pairs) / cells * double(copies);
  st_.nnz += nnz;
  row_min_ = std::min(row_min_, lmin), row_max_ = std::max(row_max_, lmax);
  nnz_min_ = std::min(nnz_min_, nnz), nnz_max_ = std::max(nnz_max_, nnz);
  nlohmann::json entry = {{"layout", l}};
  if (info_.shared) {
    entry["shared"] = true;
  } else {
    entry["batch"] = l / info_.kv_heads;
    entry["kv_head"] = l % info_.kv_heads;
  }
  entry["nnz"] = nnz;
  entry["row_nnz"] = {{"min", lmin}, {"mean", rows > 0 ? double(nnz) / double(rows) : 0.0}, {"max", lmax}};
  entry["allowed_pairs"] = pairs;
  st_.per_layout.push_back(std::move(entry));
}

LayoutStats StatsBuilder::finish() {
  const int64_t layouts = int64_t(st_.per_layout.size()), rows = info_.rows;
  const double row_mean = rows * layouts > 0 ? double(st_.nnz) / double(rows * layouts) : 0.0;
  st_.row_nnz = {{"min", rows > 0 ? row_min_ : 0}, {"mean", row_mean}, {"max", row_max_}};
  st_.layout_nnz = {{"min", nnz_min_}, {"mean", double(st_.nnz) / double(layouts)}, {"max", nnz_max_}};
  st_.density = density_sum_ / double(op_.shape.batch * op_.shape.kv_heads);
  return std::move(st_);
}

void write_npy_chunks(const std::string& path, DType dtype, const std::vector<int64_t>& shape,
                      const std::vector<std::span<const uint8_t>>& chunks) {
  uint64_t elements = 1, bytes = 0;
  for (int64_t d : shape) elements *= uint64_t(d);
  for (const auto& c : chunks) bytes += c.size();
  if (bytes != elements * dtype_size(dtype))
    throw_runtime_error("write_npy_chunks: " + std::to_string(bytes) + " bytes do not fill the shape of " + path);
  AtomicFile file(path);
  file.write(npy_header(dtype, shape));
  for (const auto& c : chunks) file.write(c.data(), c.size());
  file.commit();
}

}  // namespace sattn::artifacts_detail
