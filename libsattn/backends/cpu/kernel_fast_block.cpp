// Fast kernel, GEMM tiles: the FlashAttention step of a tile of query rows against a contiguous
// chunk of keys (cblas_sgemm for Q K^T and P V), and the BSR driver that feeds it runs of
// adjacent kept blocks.
#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"

namespace sattn::fast {
inline namespace SATTN_CPU_ISA_NS {

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
               int64_t n, float score_scale, const ScoreMask* mask, float softcap2) {
  const int64_t rows = state.rows, dim = state.dim;
  if (scratch.scores.size() < static_cast<size_t>(rows * n)) scratch.scores.resize(rows * n);
  float* scores = scratch.scores.data();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(dim), score_scale, q_tile, int(dim),
              k_chunk, int(dim), 0.0f, scores, int(n));
  apply_softcap(scores, rows * n, softcap2);
  if (mask) mask->apply(scores, n, rows, n);
  bool any_allowed = false;
  for (int64_t r = 0; r < rows; ++r)
    any_allowed |= online_softmax_row(scores + r * n, n, state.row_max[r], state.row_sum[r], state.acc + r * dim, dim);
  if (!any_allowed) return;  // every row masked: P is all zeros
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dim), int(n), 1.0f, scores, int(n), v_chunk,
              int(dim), 1.0f, state.acc, int(dim));
}

void finish_row(const TileState& state, int64_t row, float* out, float* lse) {
  const float* src = state.acc + row * state.dim;
  if (state.row_sum[row] == 0.0f) {  // no allowed key (log-sum-exp -inf): output exactly 0
    std::fill(out, out + state.dim, 0.0f);
    if (lse) *lse = kNegInf;
    return;
  }
  // Scores live in the exp2 domain: ln(sum e^s) = ln2 * (max2 + log2(sum)).
  if (lse) *lse = float(0.6931471805599453 * (double(state.row_max[row]) + std::log2(double(state.row_sum[row]))));
  const float inv = 1.0f / state.row_sum[row];
  for (int64_t c = 0; c < state.dim; ++c) out[c] = src[c] * inv;
}

void finish_tile(const TileState& state, float* out, float* lse) {
  for (int64_t r = 0; r < state.rows; ++r) finish_row(state, r, out + r * state.dim, lse ? lse + r : nullptr);
}

namespace {

// Causal rule inside a chunk whose columns hold the ascending keys column_keys[0..n): row r
// (query first_query + r) may see keys up to first_query + r + causal_offset, a prefix of the
// columns.
struct CausalMask final : ScoreMask {
  const int32_t* column_keys;
  int64_t first_query, causal_offset;
  CausalMask(const int32_t* keys, int64_t fq, int64_t off) : column_keys(keys), first_query(fq), causal_offset(off) {}
  void apply(float* scores, int64_t ld, int64_t rows, int64_t n) const override {
    int64_t allowed = 0;  // grows with r: later queries see more keys
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t last_key = first_query + r + causal_offset;
      while (allowed < n && column_keys[allowed] <= last_key) ++allowed;
      std::fill(scores + r * ld + allowed, scores + r * ld + n, kNegInf);
    }
  }
};

// Builds the chunks of one block row: pieces of runs of adjacent kept blocks (each piece
// contiguous in K and V) are appended until kMaxChunkKeys keys; a chunk of one piece is used in
// place, a chunk of several is gathered so that the GEMMs stay large when kept blocks are apart.
struct ChunkBuilder {
  struct Piece {
    int64_t first_key, count;
  };
  Piece pieces[kMaxChunkKeys];
  int64_t piece_count = 0;
  int64_t keys = 0;
};

// One chunk of the AMX bf16 tile: its keys in place (one piece starting a V^T panel, a multiple of
// 32 keys) or gathered (K rows and V^T columns of the pieces into scratch panels, zero past the
// last key so the tiles read finite values).
void flush_amx([[maybe_unused]] const Problem& p, [[maybe_unused]] Scratch& scratch, [[maybe_unused]] FusedTile& tile,
               [[maybe_unused]] int64_t b, [[maybe_unused]] int64_t kvh,
               [[maybe_unused]] const ChunkBuilder::Piece* pieces, [[maybe_unused]] int64_t piece_count,
               [[maybe_unused]] int64_t keys, [[maybe_unused]] const int32_t* column_keys,
               [[maybe_unused]] bool causal) {
#if SATTN_CPU_AMX
  const int64_t dim = p.dim;
  const uint16_t* k_head = p.k_bf16 + p.kv_offset(b, kvh);
  const uint16_t* vt_head = p.vt_bf16 + (b * p.kv_heads + kvh) * p.vt_head_size;
  if (piece_count == 1 && pieces[0].first_key % 32 == 0) {
    amx::step(tile, scratch, k_head + pieces[0].first_key * dim, vt_head + pieces[0].first_key * dim, keys,
              column_keys, causal, p.score_scale, p.softcap2);
    return;
  }
  if (scratch.amx_k_gather.size() < size_t((kMaxChunkKeys + 16) * dim)) {
    scratch.amx_k_gather.assign(size_t((kMaxChunkKeys + 16) * dim), 0);
    scratch.amx_vt_gather.assign(size_t((kMaxChunkKeys + 32) * dim), 0);
  }
  uint16_t* panels = scratch.amx_vt_gather.data();
  int64_t offset = 0;
  for (int64_t piece = 0; piece < piece_count; ++piece) {
    const auto [first_key, count] = pieces[piece];
    std::copy_n(k_head + first_key * dim, count * dim, scratch.amx_k_gather.data() + offset * dim);
    for (int64_t j = 0; j < count; ++j, ++offset) {
      const uint16_t* from = vt_head + (first_key + j) / 32 * 32 * dim + (first_key + j) % 32;
      uint16_t* to = panels + offset / 32 * 32 * dim + offset % 32;
      for (int64_t d = 0; d < dim; ++d) to[d * 32] = from[d * 32];
    }
  }
  for (int64_t j = keys; j % 32 != 0; ++j)  // the last panel's keys past the chunk
    for (int64_t d = 0; d < dim; ++d) panels[j / 32 * 32 * dim + d * 32 + j % 32] = 0;
  amx::step(tile, scratch, scratch.amx_k_gather.data(), panels, keys, column_keys, causal, p.score_scale, p.softcap2);
#endif
}

}  // namespace

namespace {

// Block rows [block_row, block_row + count) of (b, h) as one tile; they have the same kept blocks.
void run_block_rows(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t block_row, int64_t count) {
  const Layout& layout = *p.layout;
  const int64_t bs = layout.block_size, dim = p.dim;
  const int64_t first_query = block_row * bs;
  const int64_t rows = std::min(count * bs, p.seq_len - first_query);
  const int64_t kvh = h / p.group;
  const HeadLayout& head = layout.head(b, kvh);
  const float* q_tile = p.q_row(b, h, first_query);
  const float* k_head = p.k + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  // Bounds and causal: no row of this block row may see a key past this one. Keys past it are
  // cut from the chunks (the partial last block, future blocks); the rest is masked per element.
  const int64_t last_visible_key =
      layout.causal ? std::min(p.kv_len - 1, first_query + rows - 1 + layout.causal_offset) : p.kv_len - 1;

  TileState state{};
  FusedTile fused{};
#if SATTN_CPU_AMX
  const bool amx_tiles = p.amx_bf16;  // bf16 on AMX (kernel_fast_amx.cpp): K, V^T as bf16 codes
#else
  constexpr bool amx_tiles = false;
#endif
  if (amx_tiles) {
#if SATTN_CPU_AMX  // (only the avx512 copy links against kernel_fast_amx.cpp, also at -O0)
    fused = amx::begin(scratch, q_tile, rows, dim, first_query, layout.causal_offset);
#endif
  } else if (p.fused)
    fused = fused_begin(scratch, q_tile, rows, dim, p.score_scale, first_query, layout.causal_offset);
  else
    state = begin_tile(scratch, rows, dim);
  if (scratch.keys.size() < static_cast<size_t>(kMaxChunkKeys)) scratch.keys.resize(kMaxChunkKeys);
  int32_t* column_keys = scratch.keys.data();
  ChunkBuilder chunk;
  auto flush = [&] {
    if (chunk.keys == 0) return;
    if (amx_tiles) {
      flush_amx(p, scratch, fused, b, kvh, chunk.pieces, chunk.piece_count, chunk.keys, column_keys,
                layout.causal && column_keys[chunk.keys - 1] > first_query + layout.causal_offset);
      chunk.piece_count = 0;
      chunk.keys = 0;
      return;
    }
    const float* k_chunk = k_head + chunk.pieces[0].first_key * dim;
    const float* v_chunk = v_head + chunk.pieces[0].first_key * dim;
    if (chunk.piece_count > 1) {
      if (scratch.k_gather.size() < static_cast<size_t>(chunk.keys * dim)) {
        scratch.k_gather.resize(kMaxChunkKeys * dim);
        scratch.v_gather.resize(kMaxChunkKeys * dim);
      }
      int64_t offset = 0;
      for (int64_t piece = 0; piece < chunk.piece_count; ++piece) {
        const auto [first_key, count] = chunk.pieces[piece];
        std::copy_n(k_head + first_key * dim, count * dim, scratch.k_gather.data() + offset * dim);
        std::copy_n(v_head + first_key * dim, count * dim, scratch.v_gather.data() + offset * dim);
        offset += count;
      }
      k_chunk = scratch.k_gather.data();
      v_chunk = scratch.v_gather.data();
    }
    const bool needs_mask = layout.causal && column_keys[chunk.keys - 1] > first_query + layout.causal_offset;
    if (p.fused) {
      fused_step(fused, scratch, k_chunk, v_chunk, chunk.keys, column_keys, needs_mask, p.softcap2);
    } else {
      const CausalMask causal(column_keys, first_query, layout.causal_offset);
      tile_step(state, scratch, q_tile, k_chunk, v_chunk, chunk.keys, p.score_scale, needs_mask ? &causal : nullptr,
                p.softcap2);
    }
    chunk.piece_count = 0;
    chunk.keys = 0;
  };

  const int64_t end = head.ptr[block_row + 1];
  for (int64_t t = head.ptr[block_row]; t < end;) {
    int64_t u = t + 1;
    while (u < end && head.idx[u] == head.idx[u - 1] + 1) ++u;
    int64_t run_begin = int64_t(head.idx[t]) * bs;
    const int64_t run_end = std::min(int64_t(head.idx[u - 1] + 1) * bs, last_visible_key + 1);
    t = u;
    // Fused tiles step through K/V kFusedStepKeys keys at a time from wherever they lie, so only
    // runs shorter than a step are gathered (into one step); a run that does not fit the
    // current chunk's step starts a chunk of its own, read in place (a copy was 7-11% of a bsr
    // or block_local_global tile's time).
    if (p.fused && chunk.keys > 0 && chunk.keys + (run_end - run_begin) > kFusedStepKeys) flush();
    while (run_begin < run_end) {  // empty when the run starts past the last visible key
      const int64_t take = std::min(run_end - run_begin, kMaxChunkKeys - chunk.keys);
      chunk.pieces[chunk.piece_count++] = {run_begin, take};
      for (int64_t c = 0; c < take; ++c) column_keys[chunk.keys + c] = int32_t(run_begin + c);
      chunk.keys += take;
      run_begin += take;
      if (chunk.keys == kMaxChunkKeys) flush();
    }
  }
  flush();
  if (amx_tiles || p.fused)
    fused_finish(fused, p.out_row(b, h, first_query), p.lse_row(b, h, first_query));
  else
    finish_tile(state, p.out_row(b, h, first_query), p.lse_row(b, h, first_query));
#if SATTN_CPU_AMX
  if (amx_tiles) amx::end();
#endif
}

bool same_blocks(const HeadLayout& head, int64_t r, int64_t s) {
  return head.ptr[r + 1] - head.ptr[r] == head.ptr[s + 1] - head.ptr[s] &&
         std::equal(head.idx.begin() + head.ptr[r], head.idx.begin() + head.ptr[r + 1], head.idx.begin() + head.ptr[s]);
}

}  // namespace

void run_block_row(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t task) {
  if (p.block_rows_per_task <= 1) {
    run_block_rows(p, scratch, b, h, task, 1);
    return;
  }
  // Fused tiles: adjacent block rows with the same kept blocks (every row of a non-causal dense
  // layout) form one tile, whose sub-tiles share each K/V step while it is in L1, so K/V stream
  // from L2/L3 once per tile rather than once per block row.
  const HeadLayout& head = p.layout->head(b, h / p.group);
  const int64_t first = task * p.block_rows_per_task;
  const int64_t end = std::min(first + p.block_rows_per_task, p.layout->block_rows());
  for (int64_t r = first; r < end;) {
    int64_t e = r + 1;
    while (e < end && same_blocks(head, r, e)) ++e;
    run_block_rows(p, scratch, b, h, r, e - r);
    r = e;
  }
}

bool lists_ascending_in_range(const HeadLayout& head, int64_t first_list, int64_t end_list, int64_t limit,
                              uint8_t* same_as_previous) {
  const int32_t* idx = head.idx.data();
  for (int64_t r = first_list; r < end_list; ++r) {
    const int64_t begin = head.ptr[r], end = head.ptr[r + 1];
    if (end < begin) return false;
    if (same_as_previous)  // the previous list was just read: still in L1/L2
      same_as_previous[r] = r > 0 && end - begin == begin - head.ptr[r - 1] &&
                            std::equal(idx + begin, idx + end, idx + head.ptr[r - 1]);
    if (begin == end) continue;
    // Strictly ascending lists lie in [0, limit) iff their first and last entries do; the
    // ascending test is one branch-free pass (it vectorizes).
    int32_t descending = 0;
    for (int64_t t = begin + 1; t < end; ++t) descending |= int32_t(idx[t] <= idx[t - 1]);
    if (descending != 0 || idx[begin] < 0 || idx[end - 1] >= limit) return false;
  }
  return true;
}

const Kernels kernels{CpuIsa::SATTN_CPU_ISA_NS, run_block_row, run_csr_task, run_integer_tile, run_quant_tile,
                      attention_backward, lists_ascending_in_range};

}  // inline namespace SATTN_CPU_ISA_NS
}  // namespace sattn::fast
