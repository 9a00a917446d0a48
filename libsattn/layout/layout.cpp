// Sparsity layouts: build_layout() and the queries on a Layout (DESIGN §3).
//
// SEMANTICS (the reference for sattn-emit(1) and sattn-artifacts(7))
//
// Alignment. Query i is aligned with key p(i) = i + causal_offset, causal_offset = kv_len -
// seq_len (FlashAttention's bottom-right alignment). Under causal, key j is allowed for query i
// iff j <= p(i). When seq_len > kv_len the first seq_len - kv_len rows have p < 0 and, under
// causal, no allowed key: they are empty rows and their output is 0.
//
// CSR specs list exactly the allowed keys of each row. BSR specs list block columns per block
// row; inside a kept block the consumer applies the causal rule and the bounds (j < kv_len) per
// element, and the last block row/column may be partial. Lists are sorted ascending and unique.
// "Shared" layouts are one layout for every (batch, kv head); the others are built per
// (batch, kv head) and shared by the query heads of that KV head's GQA group, whose scores are
// summed (equivalently: scored with the sum of the group's query rows, as scores are linear in q).
//
// Block candidates (bsr, block_local_global, dense). With block edge B, block row br holds
// queries [br*B, min((br+1)*B, seq_len)). Its candidates are every block column, except under
// causal the columns whose first key lies after the aligned position of the block row's last
// query. Its local (diagonal) block is the column holding p(br*B), clamped into
// [0, block_cols).
//
// dense (BSR, shared): B = min(64, max(seq_len, kv_len)); every candidate block.
//
// sliding_window (CSR, shared): keys p + t*dilation for t in [-window_size, window_size]
// (causal: t in [-window_size, 0]). Out-of-range positions are dropped, or with wrap taken
// modulo kv_len (ring); then the causal rule applies (so under causal, wrapped positions, which
// lie in the future, are dropped too).
//
// bsr (BSR, per (batch, kv head)): block_size B. score(br, bc) = sum over the group's query
// heads of dot(mean of the q rows of br, mean of the k rows of bc), means over the rows and keys
// that exist (partial blocks). With 0 < comp_block_size c < B, bc is cut into sub-blocks of c
// keys from its first key (the last one may be shorter; sub-blocks never cross a block edge) and
// score(br, bc) = max over the sub-blocks of the group-summed dot(mean q of br, mean k of the
// sub-block) (NSA-style compression scoring). The causal rule does not enter the scores. Each
// block row keeps count = max(1, ceil(keep_ratio * candidates)) blocks (none when it has no
// candidate): first the forced blocks (the local block and the global block columns
// bc < ceil(global_tokens / B) that are candidates); if they already reach the count, exactly
// the forced blocks; otherwise the rest of the count by descending score, ties to the lower
// column. The ceil carries a relative slack of 1e-9, so 0.28 * 25 (7.000000000000001 in binary)
// keeps 7 blocks, not 8.
//
// block_local_global (BSR, shared): block_size B, G = ceil(global_tokens / B). Global tokens
// are rounded up to whole blocks because every backend (the accelerator in particular) streams
// whole blocks: a partial global block would cost the same as a full one. Block row br keeps the
// candidates bc with |bc - local| <= window_blocks (causal: local - window_blocks <= bc <=
// local), plus the global columns bc < G; global block rows br < G keep every candidate.
//
// nm_structured (CSR, per (batch, kv head)): score(i, j) = sum over the group's query heads h
// of q[h, i] . k[j]. Keys are cut into groups [g*nm_m, (g+1)*nm_m); in each group row i keeps
// the nm_n allowed keys of highest score (ties to the lower index), or every allowed key when
// the group has at most nm_n of them.
//
// topk_per_query (CSR, per (batch, kv head)): row i keeps the topk_k allowed keys of highest
// score (same score and tie rule as nm_structured), or every allowed key if there are fewer.
//
// Scores of nm_structured and topk_per_query are defined as double-precision dot products of
// the group-summed query with the key, accumulated in index order. They are computed in row
// tiles (memory O(tile rows * key chunk) plus the top-k lists, never seq_len * kv_len): float
// score kernels (one copy per ISA) give approximate scores with a rigorous error bound, and only
// the keys whose bound straddles the selection threshold are rescored in double. The selection
// is therefore exactly the one defined by the double scores, whatever ISA copy or thread count
// computed the approximation.
//
// lsh (CSR, per (batch, kv head)): lsh_rounds rounds of angular LSH with lsh_buckets buckets.
// Round r draws a Gaussian matrix R_r with sattn::Rng(seed XOR ((r + 1) * 0x9E3779B97F4A7C15)),
// filled row-major (head_dim rows). Even bucket counts: R_r has lsh_buckets / 2 columns and
// bucket(x) = argmax of [xR_r, -xR_r]; odd counts: R_r has lsh_buckets columns and bucket(x) =
// argmax of xR_r; ties to the lower bucket; xR is computed in double. A query row hashes the sum
// of its group's q rows, a key hashes its k row. Row i attends key j iff they share a bucket in
// at least one round (and the causal rule allows j). The aligned key p(i) is always added when
// 0 <= p(i) < kv_len, so no row loses its own position to an unlucky hash (and causal rows are
// never empty unless aligned before key 0). R_r is the same for every batch and head.
//
// landmark (CSR; shared when landmark_iters = 0, else per (batch, kv head)): m = num_landmarks
// landmark keys, initially floor(t * kv_len / m) for t = 0..m-1 (deduplicated). With
// landmark_iters > 0 they are refined by k-means-lite over the key vectors: centroids start at
// the initial landmark keys; each iteration assigns every key to its nearest centroid (squared
// distance, ties to the lower centroid) and moves each centroid to the mean of its keys (a
// centroid with no key stays); finally each landmark is the key nearest its centroid (ties to
// the lower key), deduplicated. Every query attends the landmark keys the causal rule allows.
//
// quest (BSR, per (batch, kv head)): pages of P = page_size keys are the block columns, and
// block rows hold P queries. Each page pg is summarized by the elementwise min m and max M of its
// keys (those that exist: the last page may be partial). The upper bound of query q on page pg
// is u(q, pg) = sum_d max(q_d * m_d, q_d * M_d) >= q . k for every key k of the page (Quest,
// Tang et al. 2024). Block row br scores each candidate page (the block candidates above) with
// the sum of u over its queries and over the group's query heads, in double, and keeps the
// top_pages pages of highest score (ties to the lower page), or every candidate if there are
// fewer. No page is forced. With one query per step (decode) and no GQA this is exactly Quest's
// per-query selection.
//
// Data-dependent specs (bsr, nm_structured, topk_per_query, lsh, quest: Q and K; landmark with
// iterations: K only) need tensors shaped like the op and finite; otherwise
// Error(invalid_input), e.g. "spec topk_per_query needs Q/K data".
#include "sattn/layout.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "layout/layout_builders.hpp"
#include "sattn/error.hpp"

namespace sattn {

namespace layout_detail {

Layout make_layout(const Op& op, Spec spec, bool block, int64_t block_size, bool shared) {
  Layout l;
  l.spec = spec;
  l.block = block;
  l.rows = op.shape.seq_len;
  l.cols = op.shape.kv_len;
  l.block_size = block ? block_size : 1;
  l.causal = op.causal;
  l.causal_offset = op.shape.kv_len - op.shape.seq_len;
  l.batch = op.shape.batch;
  l.kv_heads = op.shape.kv_heads;
  l.shared = shared;
  l.heads.resize(shared ? 1 : static_cast<size_t>(op.shape.batch * op.shape.kv_heads));
  return l;
}

int64_t bsr_keep_count(double keep_ratio, int64_t candidates) {
  if (candidates <= 0) return 0;
  const double want = keep_ratio * double(candidates);
  const auto count = static_cast<int64_t>(std::ceil(want - 1e-9 * want));
  return std::clamp<int64_t>(count, 1, candidates);
}

void group_query_sum(const TensorView& q, int64_t b, int64_t kvh, int64_t group, int64_t i, double* out) {
  const int64_t d = q.dim();
  std::fill(out, out + d, 0.0);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    const float* row = q.row(b, h, i);
    for (int64_t c = 0; c < d; ++c) out[c] += double(row[c]);
  }
}

Layout build_sliding_window_layout(const Op& op, const SlidingWindowParams& p) {
  const SlidingWindowRows rows(op, p);
  Layout l = make_layout(op, Spec::sliding_window, false, 1, true);
  HeadLayout& hl = l.heads[0];
  hl.ptr.assign(1, 0);
  std::vector<int32_t> keys;
  for (int64_t i = 0; i < l.rows; ++i) {
    poll_interrupt(i);
    rows.row(i, keys);
    hl.idx.insert(hl.idx.end(), keys.begin(), keys.end());
    hl.ptr.push_back(int64_t(hl.idx.size()));
  }
  return l;
}

}  // namespace layout_detail

namespace {

using namespace layout_detail;

template <class Params>
const Params& params_of(Spec spec, const SpecParams& params) {
  const Params* p = std::get_if<Params>(&params);
  if (!p) throw_runtime_error("build_layout: parameters do not belong to spec " + std::string(to_string(spec)));
  return *p;
}

[[noreturn]] void bad_param(const Op& op, const std::string& attr, const std::string& what) {
  throw_input_error(op.loc_of(attr), "attribute '" + attr + "': " + what);
}

// The builders index with these values; resolve_params() should already have rejected them.
void check_params(const Op& op, const SpecParams& params) {
  if (const auto* sw = std::get_if<SlidingWindowParams>(&params)) {
    if (sw->window_size < 0) bad_param(op, "window_size", "must be >= 0");
    if (sw->dilation < 1) bad_param(op, "dilation", "must be >= 1");
  } else if (const auto* bsr = std::get_if<BsrParams>(&params)) {
    if (bsr->block_size < 1) bad_param(op, "block_size", "must be >= 1");
    if (bsr->comp_block_size < 0) bad_param(op, "comp_block_size", "must be >= 0");
    if (!(bsr->keep_ratio > 0 && bsr->keep_ratio <= 1)) bad_param(op, "keep_ratio", "must be in (0, 1]");
    if (bsr->global_tokens < 0) bad_param(op, "global_tokens", "must be >= 0");
  } else if (const auto* blg = std::get_if<BlockLocalGlobalParams>(&params)) {
    if (blg->block_size < 1) bad_param(op, "block_size", "must be >= 1");
    if (blg->window_blocks < 0) bad_param(op, "window_blocks", "must be >= 0");
    if (blg->global_tokens < 0) bad_param(op, "global_tokens", "must be >= 0");
  } else if (const auto* nm = std::get_if<NmParams>(&params)) {
    if (nm->nm_n < 1 || nm->nm_m < nm->nm_n) bad_param(op, "nm_n", "need 1 <= nm_n <= nm_m");
  } else if (const auto* topk = std::get_if<TopkParams>(&params)) {
    if (topk->topk_k < 1) bad_param(op, "topk_k", "must be >= 1");
  } else if (const auto* lsh = std::get_if<LshParams>(&params)) {
    if (lsh->lsh_buckets < 1) bad_param(op, "lsh_buckets", "must be >= 1");
    if (lsh->lsh_rounds < 1) bad_param(op, "lsh_rounds", "must be >= 1");
  } else if (const auto* lm = std::get_if<LandmarkParams>(&params)) {
    if (lm->num_landmarks < 1) bad_param(op, "num_landmarks", "must be >= 1");
    if (lm->landmark_iters < 0) bad_param(op, "landmark_iters", "must be >= 0");
  } else if (const auto* qu = std::get_if<QuestParams>(&params)) {
    if (qu->page_size < 1) bad_param(op, "page_size", "must be >= 1");
    if (qu->top_pages < 1) bad_param(op, "top_pages", "must be >= 1");
  }
}

// Q/K of a data-dependent spec must exist, match the op's shape and be finite (a NaN score
// would make the selection order meaningless).
void check_tensor(const Op& op, Spec spec, const TensorView& t, const char* name, int64_t heads, int64_t len) {
  const std::string who = "spec " + std::string(to_string(spec));
  const Shape& s = op.shape;
  const std::array<int64_t, 4> want{s.batch, heads, len, s.head_dim};
  if (!t.data && (t.size() > 0 || t.shape == std::array<int64_t, 4>{0, 0, 0, 0}))
    throw Error(ExitCode::invalid_input, who + " needs Q/K data");
  if (t.shape != want)
    throw Error(ExitCode::invalid_input, who + ": " + name + " has shape [" + std::to_string(t.batch()) + ", " +
                                             std::to_string(t.heads()) + ", " + std::to_string(t.len()) + ", " +
                                             std::to_string(t.dim()) + "], expected [" + std::to_string(s.batch) +
                                             ", " + std::to_string(heads) + ", " + std::to_string(len) + ", " +
                                             std::to_string(s.head_dim) + "]");
  for (int64_t e = 0, n = t.size(); e < n; ++e)
    if (!std::isfinite(t.data[e])) throw Error(ExitCode::invalid_input, who + ": " + name + " contains NaN or Inf");
}

}  // namespace

Layout build_layout(const Op& op, Spec spec, const SpecParams& params, TensorView q, TensorView k) {
  const Shape& s = op.shape;
  check_params(op, params);
  auto need_q = [&] { check_tensor(op, spec, q, "Q", s.heads, s.seq_len); };
  auto need_k = [&] { check_tensor(op, spec, k, "K", s.kv_heads, s.kv_len); };
  switch (spec) {
    case Spec::dense: return build_dense_layout(op);
    case Spec::sliding_window: return build_sliding_window_layout(op, params_of<SlidingWindowParams>(spec, params));
    case Spec::block_local_global:
      return build_block_local_global_layout(op, params_of<BlockLocalGlobalParams>(spec, params));
    case Spec::bsr: {
      const auto& p = params_of<BsrParams>(spec, params);
      need_q(), need_k();
      return build_bsr_layout(op, p, q, k);
    }
    case Spec::nm_structured: {
      const auto& p = params_of<NmParams>(spec, params);
      need_q(), need_k();
      return build_nm_layout(op, p, q, k);
    }
    case Spec::topk_per_query: {
      const auto& p = params_of<TopkParams>(spec, params);
      need_q(), need_k();
      return build_topk_layout(op, p, q, k);
    }
    case Spec::lsh: {
      const auto& p = params_of<LshParams>(spec, params);
      need_q(), need_k();
      return build_lsh_layout(op, p, q, k);
    }
    case Spec::landmark: {
      const auto& p = params_of<LandmarkParams>(spec, params);
      if (p.landmark_iters == 0) return build_landmark_layout(op, p, nullptr);
      need_k();  // refinement clusters the keys; queries play no part
      return build_landmark_layout(op, p, &k);
    }
    case Spec::quest: {
      const auto& p = params_of<QuestParams>(spec, params);
      need_q(), need_k();
      return build_quest_layout(op, p, q, k);
    }
  }
  throw_runtime_error("build_layout: unknown spec");
}

Layout build_layout(const Op& op, Spec spec, const SpecParams& params, const Tensor* q, const Tensor* k) {
  return build_layout(op, spec, params, q ? TensorView(*q) : TensorView(), k ? TensorView(*k) : TensorView());
}

std::vector<uint8_t> layout_mask(const Layout& l, int64_t b, int64_t kvh) {
  std::vector<uint8_t> mask(static_cast<size_t>(l.rows * l.cols), 0);
  const HeadLayout& hl = l.head(b, kvh);
  if (!l.block) {
    for (int64_t i = 0; i < l.rows; ++i)
      for (int64_t t = hl.ptr[i]; t < hl.ptr[i + 1]; ++t)
        if (l.causal_ok(i, hl.idx[t])) mask[i * l.cols + hl.idx[t]] = 1;
    return mask;
  }
  for (int64_t br = 0; br < l.block_rows(); ++br)
    for (int64_t t = hl.ptr[br]; t < hl.ptr[br + 1]; ++t) {
      const int64_t j0 = int64_t(hl.idx[t]) * l.block_size;
      for (int64_t i = br * l.block_size; i < std::min((br + 1) * l.block_size, l.rows); ++i)
        for (int64_t j = j0; j < j0 + l.block_size; ++j)
          if (l.causal_ok(i, j)) mask[i * l.cols + j] = 1;
    }
  return mask;
}

int64_t Layout::allowed_pairs(int64_t b, int64_t kvh) const {
  const HeadLayout& hl = head(b, kvh);
  int64_t pairs = 0;
  if (!block) {
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t t = hl.ptr[i]; t < hl.ptr[i + 1]; ++t) pairs += causal_ok(i, hl.idx[t]) ? 1 : 0;
    return pairs;
  }
  // Per kept block, count each row's allowed keys in closed form: [j0, min(j0 + B, end(i))).
  for (int64_t br = 0; br < block_rows(); ++br)
    for (int64_t t = hl.ptr[br]; t < hl.ptr[br + 1]; ++t) {
      const int64_t j0 = int64_t(hl.idx[t]) * block_size;
      for (int64_t i = br * block_size; i < std::min((br + 1) * block_size, rows); ++i) {
        const int64_t end = std::min({j0 + block_size, cols, causal ? i + causal_offset + 1 : cols});
        pairs += std::max<int64_t>(0, end - j0);
      }
    }
  return pairs;
}

double Layout::density() const {
  const double cells = double(rows) * double(cols);
  if (cells <= 0) return 0;
  if (shared) return double(allowed_pairs(0, 0)) / cells;
  double sum = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t kvh = 0; kvh < kv_heads; ++kvh) sum += double(allowed_pairs(b, kvh)) / cells;
  return sum / double(batch * kv_heads);
}

size_t Layout::index_bytes() const {
  size_t bytes = 0;
  for (const HeadLayout& h : heads) bytes += h.ptr.size() * sizeof(int64_t) + h.idx.size() * sizeof(int32_t);
  return bytes;
}

}  // namespace sattn
