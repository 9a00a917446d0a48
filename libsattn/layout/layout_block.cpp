// Block (BSR) layouts: dense, bsr (block top-k), block_local_global and quest. Semantics: layout.cpp.
#include <algorithm>
#include <numeric>

#include "layout/layout_builders.hpp"

namespace sattn::layout_detail {

namespace {

constexpr int64_t kDenseBlock = 64;

// Appends block row `kept` (sorted, unique block columns) to a BSR head layout.
void push_block_row(HeadLayout& hl, const std::vector<int64_t>& kept) {
  for (int64_t bc : kept) hl.idx.push_back(static_cast<int32_t>(bc));
  hl.ptr.push_back(int64_t(hl.idx.size()));
}

// Mean of rows [first, last) of head h, in double; `out` has head_dim entries and is added to.
void add_row_mean(const TensorView& t, int64_t b, int64_t h, int64_t first, int64_t last, double* out) {
  const int64_t d = t.dim();
  std::vector<double> sum(d, 0.0);
  for (int64_t i = first; i < last; ++i) {
    const float* row = t.row(b, h, i);
    for (int64_t c = 0; c < d; ++c) sum[c] += double(row[c]);
  }
  for (int64_t c = 0; c < d; ++c) out[c] += sum[c] / double(last - first);
}

double dot(const double* x, const double* y, int64_t d) {
  double s = 0;
  for (int64_t c = 0; c < d; ++c) s += x[c] * y[c];
  return s;
}

}  // namespace

Layout build_dense_layout(const Op& op) {
  const Alignment a = alignment_of(op);
  const BlockGrid grid{a, std::clamp<int64_t>(std::max(a.rows, a.cols), 1, kDenseBlock)};
  Layout l = make_layout(op, Spec::dense, true, grid.block, true);
  HeadLayout& hl = l.heads[0];
  hl.ptr.assign(1, 0);
  std::vector<int64_t> kept;
  for (int64_t br = 0; br < grid.block_rows(); ++br) {
    poll_interrupt(br);
    kept.resize(grid.candidate_end(br));
    std::iota(kept.begin(), kept.end(), 0);
    push_block_row(hl, kept);
  }
  return l;
}

Layout build_block_local_global_layout(const Op& op, const BlockLocalGlobalParams& p) {
  const BlockGrid grid{alignment_of(op), p.block_size};
  // Whole blocks: the accelerator streams blocks, so a partial global block costs a full one.
  const int64_t global_blocks = (p.global_tokens + p.block_size - 1) / p.block_size;
  Layout l = make_layout(op, Spec::block_local_global, true, grid.block, true);
  HeadLayout& hl = l.heads[0];
  hl.ptr.assign(1, 0);
  std::vector<int64_t> kept;
  for (int64_t br = 0; br < grid.block_rows(); ++br) {
    poll_interrupt(br);
    kept.clear();
    const int64_t candidates = grid.candidate_end(br);
    const int64_t local = grid.local_block(br);
    const int64_t window_end = op.causal ? local : local + p.window_blocks;  // inclusive
    for (int64_t bc = 0; bc < candidates; ++bc) {
      const bool global = br < global_blocks || bc < global_blocks;
      const bool in_window = bc >= local - p.window_blocks && bc <= window_end;
      if (global || in_window) kept.push_back(bc);
    }
    push_block_row(hl, kept);
  }
  return l;
}

Layout build_bsr_layout(const Op& op, const BsrParams& p, const TensorView& q, const TensorView& k) {
  const Shape& s = op.shape;
  const BlockGrid grid{alignment_of(op), p.block_size};
  const int64_t B = grid.block, d = s.head_dim, group = s.group_size();
  const int64_t block_rows = grid.block_rows(), block_cols = grid.block_cols();
  const int64_t global_blocks = (p.global_tokens + B - 1) / B;
  // Compression sub-blocks of c keys inside each block (c >= B means one sub-block per block).
  const int64_t sub = (p.comp_block_size > 0 && p.comp_block_size < B) ? p.comp_block_size : B;
  const int64_t subs_per_block = (B + sub - 1) / sub;

  Layout l = make_layout(op, Spec::bsr, true, B, false);
  std::vector<double> q_means(block_rows * d), k_means(block_cols * subs_per_block * d);
  std::vector<int64_t> k_subs(block_cols);  // sub-blocks that hold at least one key
  std::vector<double> score(block_cols);
  std::vector<int64_t> order, kept;

  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      // Group-summed mean query of each block row (dot products are linear in q).
      std::fill(q_means.begin(), q_means.end(), 0.0);
      for (int64_t br = 0; br < block_rows; ++br)
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
          add_row_mean(q, b, h, br * B, std::min((br + 1) * B, s.seq_len), &q_means[br * d]);
      std::fill(k_means.begin(), k_means.end(), 0.0);
      for (int64_t bc = 0; bc < block_cols; ++bc) {
        const int64_t block_end = std::min((bc + 1) * B, s.kv_len);
        k_subs[bc] = 0;
        for (int64_t first = bc * B; first < block_end; first += sub, ++k_subs[bc])
          add_row_mean(k, b, kvh, first, std::min(first + sub, block_end),
                       &k_means[(bc * subs_per_block + k_subs[bc]) * d]);
      }

      HeadLayout& hl = l.heads[b * s.kv_heads + kvh];
      hl.ptr.assign(1, 0);
      for (int64_t br = 0; br < block_rows; ++br) {
        const int64_t candidates = grid.candidate_end(br);
        const int64_t keep = bsr_keep_count(p.keep_ratio, candidates);
        kept.clear();
        order.clear();
        for (int64_t bc = 0; bc < candidates; ++bc) {
          const bool forced = bc == grid.local_block(br) || bc < global_blocks;
          if (forced) {
            kept.push_back(bc);
            continue;
          }
          double best = dot(&q_means[br * d], &k_means[bc * subs_per_block * d], d);
          for (int64_t t = 1; t < k_subs[bc]; ++t)
            best = std::max(best, dot(&q_means[br * d], &k_means[(bc * subs_per_block + t) * d], d));
          score[bc] = best;
          order.push_back(bc);
        }
        const int64_t fill = std::max<int64_t>(0, keep - int64_t(kept.size()));
        if (fill > 0) {
          // Highest scores first, ties to the lower column.
          std::partial_sort(order.begin(), order.begin() + fill, order.end(),
                            [&](int64_t x, int64_t y) { return score[x] != score[y] ? score[x] > score[y] : x < y; });
          kept.insert(kept.end(), order.begin(), order.begin() + fill);
        }
        std::sort(kept.begin(), kept.end());
        push_block_row(hl, kept);
      }
    }
  return l;
}

Layout build_quest_layout(const Op& op, const QuestParams& p, const TensorView& q, const TensorView& k) {
  const Shape& s = op.shape;
  const BlockGrid grid{alignment_of(op), p.page_size};
  const int64_t P = grid.block, d = s.head_dim, group = s.group_size();
  const int64_t block_rows = grid.block_rows(), pages = grid.block_cols();

  Layout l = make_layout(op, Spec::quest, true, P, false);
  // Page summaries: elementwise min and max over the page's keys (the last page may be partial).
  std::vector<double> kmin(pages * d), kmax(pages * d), bound(pages);
  std::vector<int64_t> order;

  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t kvh = 0; kvh < s.kv_heads; ++kvh) {
      for (int64_t pg = 0; pg < pages; ++pg) {
        double* lo = &kmin[pg * d];
        double* hi = &kmax[pg * d];
        const float* first = k.row(b, kvh, pg * P);
        for (int64_t c = 0; c < d; ++c) lo[c] = hi[c] = double(first[c]);
        for (int64_t j = pg * P + 1; j < std::min((pg + 1) * P, s.kv_len); ++j) {
          const float* row = k.row(b, kvh, j);
          for (int64_t c = 0; c < d; ++c) lo[c] = std::min(lo[c], double(row[c])), hi[c] = std::max(hi[c], double(row[c]));
        }
      }
      HeadLayout& hl = l.heads[b * s.kv_heads + kvh];
      hl.ptr.assign(1, 0);
      for (int64_t br = 0; br < block_rows; ++br) {
        poll_interrupt(br);
        const int64_t candidates = grid.candidate_end(br);
        // Each query's upper bound on its best score in the page, summed over the block row's
        // queries and the KV head's query heads (the layout is shared by them).
        std::fill(bound.begin(), bound.begin() + candidates, 0.0);
        for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
          for (int64_t i = br * P; i < std::min((br + 1) * P, s.seq_len); ++i) {
            const float* qi = q.row(b, h, i);
            for (int64_t pg = 0; pg < candidates; ++pg) {
              const double* lo = &kmin[pg * d];
              const double* hi = &kmax[pg * d];
              double u = 0;
              for (int64_t c = 0; c < d; ++c) {
                const double x = double(qi[c]);
                u += std::max(x * lo[c], x * hi[c]);
              }
              bound[pg] += u;
            }
          }
        order.resize(candidates);
        std::iota(order.begin(), order.end(), 0);
        const int64_t keep = std::min(p.top_pages, candidates);
        // Highest bounds first, ties to the lower page.
        std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                          [&](int64_t x, int64_t y) { return bound[x] != bound[y] ? bound[x] > bound[y] : x < y; });
        order.resize(keep);
        std::sort(order.begin(), order.end());
        push_block_row(hl, order);
      }
    }
  return l;
}

}  // namespace sattn::layout_detail
