// Internal to libsattn: the artifact formats shared by the writers (emit.cpp, emit_stream.cpp) and
// the reader (artifacts_read.cpp): file names, the .desc register image, the indices.txt listing,
// the streamed .npy writer and the layout statistics. The formats are documented for users in
// man/sattn-artifacts.7.scd; keep the two in step.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/io.hpp"
#include "sattn/layout.hpp"
#include "formats/npy.hpp"
#include "sattn/plan.hpp"

namespace sattn::artifacts_detail {

inline constexpr const char* kEnvelopeFile = "artifacts.json";
inline constexpr int kDescVersion = 1;

// Names of the files of one emission, relative to its directory. q/k/v are empty when the
// artifacts carry no data.
struct ArtifactFiles {
  std::string indices_txt, desc, ptr, idx, q, k, v, envelope;
};
ArtifactFiles artifact_files(const std::string& stem, bool block, bool with_data);

// Register-image codes: the position in the Spec and Precision enums, fixed by sattn-artifacts(7).
int spec_code(Spec);
int precision_code(Precision);

// What the .desc, indices.txt and the envelope say about a layout, whether it was built in
// memory (layout_info) or streamed row by row (emit_stream.cpp).
struct LayoutInfo {
  bool block = false;   // BSR (true) or CSR
  bool shared = false;  // one layout for every (batch, kv head)
  bool causal = false;
  int64_t rows = 0;                        // index rows per layout: seq_len (CSR) or block rows (BSR)
  int64_t cols = 0;                        // index range: kv_len (CSR) or block columns (BSR)
  int64_t block_size = 1;                  // BSR block edge; 1 for CSR
  int64_t block_rows = 0, block_cols = 0;  // ceil(seq_len / block_size), ceil(kv_len / block_size)
  int64_t causal_offset = 0;
  int64_t kv_heads = 1;
  std::vector<int64_t> nnz;  // index entries of each layout, in layout order
  int64_t layouts() const { return int64_t(nnz.size()); }
  int64_t total_nnz() const;
};
LayoutInfo layout_info(const Layout&);
int64_t layout_count(const Layout&);
// Index rows per layout: seq_len for CSR, block rows for BSR.
int64_t index_rows(const Layout&);

// The .desc as ordered (key, value) pairs; the reader recomputes them from the plan and layout
// it rebuilt and compares key by key.
using DescEntries = std::vector<std::pair<std::string, std::string>>;
DescEntries desc_entries(const Plan&, const LayoutInfo&, const ArtifactFiles&);
std::string format_desc(const DescEntries&);
// `key = value` lines; '#' comments and blank lines are skipped. A line without '=', an empty
// key or a repeated key is Error(invalid_input) naming file:line.
std::map<std::string, std::string> parse_desc(std::string_view text, const std::string& filename);

// indices.txt, streamed into `file`: the constructor writes the '#' header; then, per layout,
// begin_layout() writes its "layout L: ..." title and row() one "ROW: INDEX..." line per index
// row (runs of three or more consecutive indices as FIRST-LAST). Lines are formatted into a
// fixed buffer and handed over in large pieces: no per-number allocation, no whole-file string.
class IndexTextWriter {
 public:
  IndexTextWriter(AtomicFile& file, const Plan&, const LayoutInfo&);
  void begin_layout(int64_t layout);
  void row(int64_t r, const int32_t* first, const int32_t* last);
  void flush();

 private:
  void text(std::string_view);
  AtomicFile& file_;
  const LayoutInfo& info_;
  std::vector<char> buf_;
  size_t used_ = 0;
};
// The whole listing of an in-memory layout.
void write_indices_txt(AtomicFile&, const Plan&, const Layout&, const LayoutInfo&);

// Index entries per row and per layout, and the element pairs the layouts allow, as the
// envelope reports them. Layouts are added in order with their row pointers (starting at 0).
struct LayoutStats {
  nlohmann::json per_layout = nlohmann::json::array();
  nlohmann::json row_nnz, layout_nnz;  // {min, mean, max}
  int64_t nnz = 0;
  int64_t allowed_pairs = 0;  // over batch and query heads
  double density = 0;         // mean over (batch, kv head) of allowed pairs / (seq_len * kv_len)
};
class StatsBuilder {
 public:
  StatsBuilder(const Op&, const LayoutInfo&);
  void add(int64_t layout, std::span<const int64_t> ptr, int64_t allowed_pairs);
  LayoutStats finish();

 private:
  const Op& op_;
  const LayoutInfo& info_;
  LayoutStats st_;
  int64_t row_min_, row_max_ = 0, nnz_min_, nnz_max_ = 0;
  double density_sum_ = 0;
};

// Emission without building the layout: rows generated one at a time and written straight to
// the arrays and indices.txt (emit_stream.cpp). Memory is O(seq_len), whatever nnz is.
bool can_stream_layout(const Plan&);
struct StreamedLayout {
  LayoutInfo info;
  LayoutStats stats;
};
StreamedLayout stream_layout(const Plan&, const ArtifactFiles&, const std::string& dir);

// Writes header + the chunks' bytes (their total must match the shape) atomically.
void write_npy_chunks(const std::string& path, DType, const std::vector<int64_t>& shape,
                      const std::vector<std::span<const uint8_t>>& chunks);

// Shortest decimal text that reads back as the same double ("0.125", "1e-05").
std::string format_double(double);

}  // namespace sattn::artifacts_detail
