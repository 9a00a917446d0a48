// Fast kernel, GEMM tiles: the FlashAttention step of a tile of query rows against a contiguous
// chunk of keys (cblas_sgemm for Q K^T and P V), and the BSR driver that feeds it runs of
// adjacent kept blocks.
#include <cblas.h>

#include <algorithm>

#include "kernel_fast_internal.hpp"
#include "kernel_fast_simd.hpp"

namespace sattn::fast {

BlasSingleThreaded::BlasSingleThreaded() {
#ifdef OPENBLAS_VERSION
  saved_threads_ = openblas_get_num_threads();
  if (saved_threads_ != 1) openblas_set_num_threads(1);
#else
  saved_threads_ = 1;
#endif
}

BlasSingleThreaded::~BlasSingleThreaded() {
#ifdef OPENBLAS_VERSION
  if (saved_threads_ != 1) openblas_set_num_threads(saved_threads_);
#endif
}

TileState begin_tile(Scratch& scratch, int64_t rows, int64_t dim) {
  const auto need_acc = static_cast<size_t>(rows * dim);
  if (scratch.acc.size() < need_acc) scratch.acc.resize(need_acc);
  if (scratch.row_max.size() < static_cast<size_t>(rows)) {
    scratch.row_max.resize(rows);
    scratch.row_sum.resize(rows);
  }
  std::fill_n(scratch.acc.begin(), need_acc, 0.0f);
  std::fill_n(scratch.row_max.begin(), rows, kNegInf);
  std::fill_n(scratch.row_sum.begin(), rows, 0.0f);
  return TileState{scratch.acc.data(), scratch.row_max.data(), scratch.row_sum.data(), rows, dim};
}

void tile_step(TileState& state, Scratch& scratch, const float* q_tile, const float* k_chunk, const float* v_chunk,
               int64_t n, float score_scale, const ScoreMask* mask) {
  const int64_t rows = state.rows, dim = state.dim;
  if (scratch.scores.size() < static_cast<size_t>(rows * n)) scratch.scores.resize(rows * n);
  float* scores = scratch.scores.data();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(dim), score_scale, q_tile, int(dim),
              k_chunk, int(dim), 0.0f, scores, int(n));
  if (mask) mask->apply(scores, n, rows, n);
  bool any_allowed = false;
  for (int64_t r = 0; r < rows; ++r)
    any_allowed |= online_softmax_row(scores + r * n, n, state.row_max[r], state.row_sum[r], state.acc + r * dim, dim);
  if (!any_allowed) return;  // every row masked: P is all zeros
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dim), int(n), 1.0f, scores, int(n), v_chunk,
              int(dim), 1.0f, state.acc, int(dim));
}

void finish_tile(const TileState& state, float* out) {
  for (int64_t r = 0; r < state.rows; ++r) {
    float* dst = out + r * state.dim;
    const float* src = state.acc + r * state.dim;
    if (state.row_sum[r] == 0.0f) {  // no allowed key (log-sum-exp -inf): output exactly 0
      std::fill(dst, dst + state.dim, 0.0f);
      continue;
    }
    const float inv = 1.0f / state.row_sum[r];
    for (int64_t c = 0; c < state.dim; ++c) dst[c] = src[c] * inv;
  }
}

namespace {

// Causal rule inside a chunk: row r (query first_query + r) may see keys up to
// first_query + r + causal_offset; the chunk starts at key first_key.
struct CausalMask final : ScoreMask {
  int64_t first_query, first_key, causal_offset;
  CausalMask(int64_t fq, int64_t fk, int64_t off) : first_query(fq), first_key(fk), causal_offset(off) {}
  void apply(float* scores, int64_t ld, int64_t rows, int64_t n) const override {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t allowed = std::clamp<int64_t>(first_query + r + causal_offset + 1 - first_key, 0, n);
      std::fill(scores + r * ld + allowed, scores + r * ld + n, kNegInf);
    }
  }
};

}  // namespace

void run_block_row(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t block_row) {
  const Layout& layout = *p.layout;
  const int64_t bs = layout.block_size;
  const int64_t first_query = block_row * bs;
  const int64_t rows = std::min(bs, p.seq_len - first_query);
  const int64_t kvh = h / p.group;
  const HeadLayout& head = layout.head(b, kvh);
  const float* q_tile = p.q_row(b, h, first_query);
  const float* k_head = p.k + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  // Under causal, no row of this block row may see a key past this one.
  const int64_t last_visible_key =
      layout.causal ? std::min(p.kv_len - 1, first_query + rows - 1 + layout.causal_offset) : p.kv_len - 1;

  TileState state = begin_tile(scratch, rows, p.dim);
  const int64_t end = head.ptr[block_row + 1];
  for (int64_t t = head.ptr[block_row]; t < end;) {
    // A run of adjacent kept block columns is contiguous in K and V: one GEMM per chunk of it.
    int64_t u = t + 1;
    while (u < end && head.idx[u] == head.idx[u - 1] + 1) ++u;
    const int64_t run_begin = int64_t(head.idx[t]) * bs;
    const int64_t run_end = std::min(int64_t(head.idx[u - 1] + 1) * bs, last_visible_key + 1);
    t = u;
    for (int64_t j0 = run_begin; j0 < run_end; j0 += kMaxChunkKeys) {
      const int64_t j1 = std::min(run_end, j0 + kMaxChunkKeys);
      // The partial last block is cut by run_end (<= kv_len); causal cuts per row by the mask.
      const bool needs_mask = layout.causal && j1 - 1 > first_query + layout.causal_offset;
      const CausalMask causal(first_query, j0, layout.causal_offset);
      tile_step(state, scratch, q_tile, k_head + j0 * p.dim, v_head + j0 * p.dim, j1 - j0, p.score_scale,
                needs_mask ? &causal : nullptr);
    }
  }
  finish_tile(state, p.out_row(b, h, first_query));
}

}  // namespace sattn::fast
