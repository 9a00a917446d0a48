// Streamed emission (artifacts_format.hpp) of sliding_window layouts, whose nnz grows as
// seq_len * window (10^8 indices at seq_len 131072, window 512): the rows are generated one at
// a time by layout_detail::SlidingWindowRows (the generator build_layout uses) and written straight to
// row_ptr.npy, col_idx.npy and indices.txt, so the layout never exists in memory. Tests check
// that the arrays equal build_layout()'s for random shapes, dilations, rings and causal masks.
#include <algorithm>
#include <variant>

#include "formats/artifacts_format.hpp"
#include "layout/layout_builders.hpp"
#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn::artifacts_detail {


bool can_stream_layout(const Plan& plan) {
  return plan.spec == Spec::sliding_window && std::holds_alternative<SlidingWindowParams>(plan.params);
}

StreamedLayout stream_layout(const Plan& plan, const ArtifactFiles& files, const std::string& dir) {
  const Op& op = plan.op;
  const layout_detail::SlidingWindowRows generator(op, std::get<SlidingWindowParams>(plan.params));
  const int64_t rows = op.shape.seq_len;

  // Pass 1: the row pointers, so that nnz (the .npy shape, the listing's header) is known
  // before the first index is written. Generating a row twice costs less than holding them.
  std::vector<int64_t> ptr(size_t(rows + 1), 0);
  std::vector<int32_t> keys;
  for (int64_t i = 0; i < rows; ++i) {
    poll_interrupt(i);
    generator.row(i, keys);
    ptr[size_t(i + 1)] = ptr[size_t(i)] + int64_t(keys.size());
  }
  const int64_t nnz = ptr.back();

  StreamedLayout out;
  LayoutInfo& info = out.info;
  info.block = false;
  info.shared = true;
  info.causal = op.causal;
  info.rows = rows;
  info.cols = op.shape.kv_len;
  info.block_size = 1;
  info.block_rows = rows;
  info.block_cols = op.shape.kv_len;
  info.causal_offset = op.shape.kv_len - op.shape.seq_len;
  info.kv_heads = op.shape.kv_heads;
  info.nnz = {nnz};
  write_npy_chunks(dir + "/" + files.ptr, DType::i64, {1, rows + 1},
                   {{reinterpret_cast<const uint8_t*>(ptr.data()), ptr.size() * sizeof(int64_t)}});

  // Pass 2: each row to the index array and to the listing.
  AtomicFile idx(dir + "/" + files.idx);
  idx.write(npy_header(DType::i32, {nnz}));
  AtomicFile txt(dir + "/" + files.indices_txt);
  IndexTextWriter text(txt, plan, info);
  text.begin_layout(0);
  int64_t written = 0;
  for (int64_t i = 0; i < rows; ++i) {
    poll_interrupt(i);
    generator.row(i, keys);
    idx.write(keys.data(), keys.size() * sizeof(int32_t));
    text.row(i, keys.data(), keys.data() + keys.size());
    written += int64_t(keys.size());
  }
  if (written != nnz) throw_runtime_error("stream_layout: rows changed between passes");
  text.flush();
  idx.commit();
  txt.commit();

  // CSR rows hold exactly the allowed keys, so allowed pairs = nnz.
  StatsBuilder stats(op, info);
  stats.add(0, ptr, nnz);
  out.stats = stats.finish();
  return out;
}

}  // namespace sattn::artifacts_detail
