// The fast CPU backward (FlashAttention-2 recomputation): P is rebuilt from Q, K and the forward's
// log-sum-exp one tile (BSR block rows, CSR row tiles over a narrow key range) or one row (other
// CSR rows) at a time and never stored whole.
//
// Per query row i with keys j: p_ij = exp(s_ij - lse_i), s_ij = scale * q_i . k_j;
// dp_ij = do_i . v_j; D_i = do_i . o_i; ds_ij = p_ij (dp_ij - D_i);
// dq_i = scale * sum_j ds_ij k_j; dk_j += scale * ds_ij q_i; dv_j += p_ij do_i.
// With a softcap c, s_ij = c tanh(scale * q_i . k_j / c) and ds_ij carries its derivative
// 1 - tanh^2 (computed in the exp2 domain, where the cap is c * log2(e)).
//
// Races: a task owns one (batch, kv head) and a range of its query rows (all the query heads of
// the GQA group), so it alone writes those dq rows. dK/dV of one KV head get contributions from
// every row: with one row range per KV head the task writes dk/dv directly; with several (few KV
// heads, many threads) each range accumulates into a private partial buffer and the partials are
// summed in a fixed order afterwards. The number of ranges depends only on the problem (never on
// the threads running), so the result is the same bits whatever FastOptions.threads is.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"
#include "core/quant.hpp"
#include "layout/blas_threads.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"

namespace sattn {

namespace {

constexpr float kLn2 = 0.6931471805599453f;
// Keys per step of the row path and per GEMM chunk of the tile path.
constexpr int64_t kBackwardChunk = 256;
// Row ranges per (batch, kv head) aim at this many tasks in all (fixed: see the header comment).
constexpr int64_t kBackwardTasks = 16;
// Cap on the partial dK/dV buffers (floats) of the row ranges.
constexpr int64_t kMaxPartialFloats = int64_t(64) << 20;

struct BackwardProblem {
  const Layout* layout = nullptr;
  int64_t heads = 0, kv_heads = 0, group = 1, seq_len = 0, kv_len = 0, dim = 0;
  float scale = 1;         // softmax scale (natural domain)
  float score_scale = 1;   // scale * log2(e): scores in the exp2 domain
  float softcap2 = 0;      // softcap * log2(e); 0 = none
  const float *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr, *dout = nullptr, *lse = nullptr;
  float* dq = nullptr;

  int64_t q_offset(int64_t b, int64_t h, int64_t i) const { return ((b * heads + h) * seq_len + i) * dim; }
  int64_t kv_offset(int64_t b, int64_t kvh) const { return (b * kv_heads + kvh) * kv_len * dim; }
};

struct BackwardScratch {
  std::vector<float> s, dp, delta, lse2, slope;
  std::vector<float> kg, vg, dkg, dvg;  // gathered K/V rows of a union chunk and their dK/dV
  std::vector<int64_t> cursor;
  std::vector<int32_t> keys;            // a CSR tile's key union
  std::vector<int32_t> key_position;    // kv_len: column of a key in the union, -1 elsewhere
};

template <class T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Soft-caps n exp2-domain scores in place and writes the cap's slope (1 - tanh^2) per score.
void cap_scores(float* s, float* slope, int64_t n, float softcap2) {
  const float inv = 1.0f / softcap2;
  for (int64_t t = 0; t < n; ++t) {
    const float th = std::tanh(s[t] * inv);
    slope[t] = 1.0f - th * th;
    s[t] = softcap2 * th;
  }
}

// One CSR row: gathered dot products against its keys in chunks, then dq by a gathered
// accumulate and dk/dv by scattered axpys.
void backward_csr_row(const BackwardProblem& p, BackwardScratch& w, int64_t b, int64_t h, int64_t i, float* dk_head,
                      float* dv_head) {
  const int64_t dim = p.dim, kvh = h / p.group;
  const HeadLayout& head = p.layout->head(b, kvh);
  const int32_t* keys = head.idx.data() + head.ptr[i];
  const int64_t count = head.ptr[i + 1] - head.ptr[i];
  const int64_t row = p.q_offset(b, h, i);
  float* dq_row = p.dq + row;
  std::fill(dq_row, dq_row + dim, 0.0f);
  const float lse = p.lse[(b * p.heads + h) * p.seq_len + i];
  if (count == 0 || lse == fast::kNegInf) return;  // an empty row: no gradient
  const float lse2 = lse * fast::kLog2e;
  const float* q_row = p.q + row;
  const float* do_row = p.dout + row;
  const float delta = fast::dot(do_row, p.out + row, dim);
  const float* k_head = p.k + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  grow(w.s, kBackwardChunk);
  grow(w.dp, kBackwardChunk);
  if (p.softcap2 > 0) grow(w.slope, kBackwardChunk);
  float* s = w.s.data();
  float* ds = w.dp.data();
  for (int64_t e = 0; e < count; e += kBackwardChunk) {
    const int64_t n = std::min(kBackwardChunk, count - e);
    fast::gathered_scores(q_row, k_head, keys + e, n, dim, p.score_scale, s);
    fast::gathered_scores(do_row, v_head, keys + e, n, dim, 1.0f, ds);
    if (p.softcap2 > 0) cap_scores(s, w.slope.data(), n, p.softcap2);
    fast::exp2_shift_sum(s, n, lse2);  // s = p
    for (int64_t t = 0; t < n; ++t) ds[t] = s[t] * (ds[t] - delta) * p.scale;
    if (p.softcap2 > 0)
      for (int64_t t = 0; t < n; ++t) ds[t] *= w.slope[t];
    fast::gathered_accumulate(dq_row, ds, k_head, keys + e, n, dim);
    for (int64_t t = 0; t < n; ++t) {
      const int64_t j = keys[e + t];
      fast::axpy(dk_head + j * dim, ds[t], q_row, dim);
      fast::axpy(dv_head + j * dim, s[t], do_row, dim);
    }
  }
}

// A tile of consecutive CSR rows [row0, row0 + count) of head h whose keys form a small column
// space: a contiguous key range (windows) or, when the rows share most keys (landmarks), the
// sorted union of their keys, in either case at most kUnionSlack times the tile's pairs per row.
// The columns are cut into chunks of at most kBackwardChunk keys and each chunk runs the five
// GEMMs of the BSR path, every row keeping only the keys of its own list (P = 0 elsewhere);
// scattered union keys have their K/V rows gathered and their dK/dV rows scattered back.
// Returns false, doing nothing, when neither column space is small enough: those rows go row by
// row.
constexpr int64_t kCsrTileRows = 32;
constexpr int64_t kUnionSlack = 2;
bool backward_csr_tile(const BackwardProblem& p, BackwardScratch& w, int64_t b, int64_t h, int64_t row0, int64_t count,
                       float* dk_head, float* dv_head) {
  const int64_t dim = p.dim, kvh = h / p.group;
  const HeadLayout& head = p.layout->head(b, kvh);
  const int64_t* ptr = head.ptr.data();
  const int32_t* idx = head.idx.data();
  const int64_t pairs = ptr[row0 + count] - ptr[row0];
  if (pairs == 0) return false;
  const int64_t max_columns = kUnionSlack * pairs / count;
  int64_t key_lo = INT64_MAX, key_hi = -1, same_start = 0;
  for (int64_t r = row0; r < row0 + count; ++r) {
    if (ptr[r] == ptr[r + 1]) continue;
    key_lo = std::min<int64_t>(key_lo, idx[ptr[r]]);
    key_hi = std::max<int64_t>(key_hi, idx[ptr[r + 1] - 1]);
  }
  const int32_t* union_keys = nullptr;  // null: the contiguous range [key_lo, key_hi]
  int64_t columns = key_hi - key_lo + 1;
  if (columns > max_columns) {
    // The union only pays when the rows share keys: most of them start with the same key.
    for (int64_t r = row0; r < row0 + count; ++r)
      same_start += ptr[r] < ptr[r + 1] && idx[ptr[r]] == key_lo;
    if (2 * same_start < count) return false;
    if (w.key_position.size() < size_t(p.kv_len)) w.key_position.assign(size_t(p.kv_len), -1);
    w.keys.clear();
    for (int64_t e = ptr[row0]; e < ptr[row0 + count]; ++e) {
      if (w.key_position[idx[e]] == -1) {
        w.key_position[idx[e]] = 0;
        w.keys.push_back(idx[e]);
      }
      if (int64_t(w.keys.size()) > max_columns) break;
    }
    const bool small = int64_t(w.keys.size()) <= max_columns;
    for (int32_t key : w.keys) w.key_position[key] = -1;  // leave the map clean for the next tile
    if (!small) return false;
    std::sort(w.keys.begin(), w.keys.end());
    for (size_t c = 0; c < w.keys.size(); ++c) w.key_position[w.keys[c]] = int32_t(c);
    union_keys = w.keys.data();
    columns = int64_t(w.keys.size());
  }
  const int64_t first = p.q_offset(b, h, row0);
  const float* q_tile = p.q + first;
  const float* do_tile = p.dout + first;
  float* dq_tile = p.dq + first;
  std::fill(dq_tile, dq_tile + count * dim, 0.0f);
  grow(w.delta, count);
  grow(w.lse2, count);
  grow(w.cursor, count);
  for (int64_t r = 0; r < count; ++r) {
    w.delta[r] = fast::dot(do_tile + r * dim, p.out + first + r * dim, dim);
    w.lse2[r] = p.lse[(b * p.heads + h) * p.seq_len + row0 + r] * fast::kLog2e;
    w.cursor[r] = ptr[row0 + r];
  }
  grow(w.s, count * kBackwardChunk);
  grow(w.dp, count * kBackwardChunk);
  if (p.softcap2 > 0) grow(w.slope, kBackwardChunk);
  float* s = w.s.data();
  float* dp = w.dp.data();
  const float* k_head = p.k + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  auto column_of = [&](int64_t key, int64_t c0) { return union_keys ? w.key_position[key] - c0 : key - key_lo - c0; };
  for (int64_t c0 = 0; c0 < columns; c0 += kBackwardChunk) {
    const int64_t n = std::min(kBackwardChunk, columns - c0);
    const int64_t first_key = union_keys ? union_keys[c0] : key_lo + c0;
    const int64_t last_key = union_keys ? union_keys[c0 + n - 1] : key_lo + c0 + n - 1;
    const bool gathered = last_key - first_key != n - 1;
    const float* k_chunk = k_head + first_key * dim;
    const float* v_chunk = v_head + first_key * dim;
    float* dk_chunk = dk_head + first_key * dim;
    float* dv_chunk = dv_head + first_key * dim;
    if (gathered) {  // scattered union keys: K/V rows gathered, dK/dV computed apart, then scattered
      grow(w.kg, n * dim);
      grow(w.vg, n * dim);
      grow(w.dkg, n * dim);
      grow(w.dvg, n * dim);
      for (int64_t c = 0; c < n; ++c) {
        std::copy_n(k_head + int64_t(union_keys[c0 + c]) * dim, dim, w.kg.data() + c * dim);
        std::copy_n(v_head + int64_t(union_keys[c0 + c]) * dim, dim, w.vg.data() + c * dim);
      }
      std::fill_n(w.dkg.data(), n * dim, 0.0f);
      std::fill_n(w.dvg.data(), n * dim, 0.0f);
      k_chunk = w.kg.data();
      v_chunk = w.vg.data();
      dk_chunk = w.dkg.data();
      dv_chunk = w.dvg.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(count), int(n), int(dim), p.score_scale, q_tile, int(dim),
                k_chunk, int(dim), 0.0f, s, int(n));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(count), int(n), int(dim), 1.0f, do_tile, int(dim),
                v_chunk, int(dim), 0.0f, dp, int(n));
    for (int64_t r = 0; r < count; ++r) {
      float* sr = s + r * n;
      float* dr = dp + r * n;
      // The row's list entries inside this chunk: [e0, e1), sorted.
      const int64_t e0 = w.cursor[r], row_end = ptr[row0 + r + 1];
      int64_t e1 = e0;
      while (e1 < row_end && idx[e1] <= last_key) ++e1;
      w.cursor[r] = e1;
      if (e0 == e1 || w.lse2[r] == fast::kNegInf) {
        std::fill(sr, sr + n, 0.0f);
        std::fill(dr, dr + n, 0.0f);
        continue;
      }
      if (p.softcap2 > 0) cap_scores(sr, w.slope.data(), n, p.softcap2);
      const int64_t a = column_of(idx[e0], c0), z = column_of(idx[e1 - 1], c0) + 1;
      if (z - a == e1 - e0) {  // one contiguous run of columns (windows): exp2 over it, zero around it
        fast::exp2_shift_sum(sr + a, z - a, w.lse2[r]);
        std::fill(sr, sr + a, 0.0f);
        std::fill(sr + z, sr + n, 0.0f);
      } else {  // scattered columns: P only at the row's own keys
        int64_t next = 0;
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t c = column_of(idx[e], c0);
          std::fill(sr + next, sr + c, 0.0f);
          sr[c] = fast::exp2_scalar(sr[c] - w.lse2[r]);
          next = c + 1;
        }
        std::fill(sr + next, sr + n, 0.0f);
      }
      const float delta = w.delta[r];
      for (int64_t c = 0; c < n; ++c) dr[c] = sr[c] * (dr[c] - delta) * p.scale;
      if (p.softcap2 > 0)
        for (int64_t c = 0; c < n; ++c) dr[c] *= w.slope[c];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(count), int(dim), int(n), 1.0f, dp, int(n), k_chunk,
                int(dim), 1.0f, dq_tile, int(dim));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n), int(dim), int(count), 1.0f, dp, int(n), q_tile,
                int(dim), 1.0f, dk_chunk, int(dim));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n), int(dim), int(count), 1.0f, s, int(n), do_tile,
                int(dim), 1.0f, dv_chunk, int(dim));
    if (gathered)
      for (int64_t c = 0; c < n; ++c) {
        fast::axpy(dk_head + int64_t(union_keys[c0 + c]) * dim, 1.0f, w.dkg.data() + c * dim, dim);
        fast::axpy(dv_head + int64_t(union_keys[c0 + c]) * dim, 1.0f, w.dvg.data() + c * dim, dim);
      }
  }
  if (union_keys)
    for (int32_t key : w.keys) w.key_position[key] = -1;
  return true;
}

// One BSR block row of head h: for each run of adjacent kept blocks (contiguous keys), chunks of
// at most kBackwardChunk keys go through five GEMMs: S = Q K^T, dP = dO V^T, then dQ += dS K,
// dK += dS^T Q, dV += P^T dO, with the causal rule masking S per element.
void backward_block_row(const BackwardProblem& p, BackwardScratch& w, int64_t b, int64_t h, int64_t block_row,
                        float* dk_head, float* dv_head) {
  const Layout& layout = *p.layout;
  const int64_t bs = layout.block_size, dim = p.dim, kvh = h / p.group;
  const int64_t first_query = block_row * bs;
  const int64_t rows = std::min(bs, p.seq_len - first_query);
  const HeadLayout& head = layout.head(b, kvh);
  const int64_t row0 = p.q_offset(b, h, first_query);
  const float* q_tile = p.q + row0;
  const float* do_tile = p.dout + row0;
  float* dq_tile = p.dq + row0;
  std::fill(dq_tile, dq_tile + rows * dim, 0.0f);
  const float* k_head = p.k + p.kv_offset(b, kvh);
  const float* v_head = p.v + p.kv_offset(b, kvh);
  grow(w.delta, rows);
  grow(w.lse2, rows);
  bool any_row = false;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = row0 + r * dim;
    w.delta[r] = fast::dot(p.dout + off, p.out + off, dim);
    w.lse2[r] = p.lse[(b * p.heads + h) * p.seq_len + first_query + r] * fast::kLog2e;
    any_row |= w.lse2[r] != fast::kNegInf;
  }
  if (!any_row) return;
  const int64_t last_visible_key =
      layout.causal ? std::min(p.kv_len - 1, first_query + rows - 1 + layout.causal_offset) : p.kv_len - 1;
  grow(w.s, rows * kBackwardChunk);
  grow(w.dp, rows * kBackwardChunk);
  if (p.softcap2 > 0) grow(w.slope, kBackwardChunk);
  float* s = w.s.data();
  float* dp = w.dp.data();
  auto chunk = [&](int64_t j0, int64_t n) {
    const float* k_chunk = k_head + j0 * dim;
    const float* v_chunk = v_head + j0 * dim;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(dim), p.score_scale, q_tile, int(dim),
                k_chunk, int(dim), 0.0f, s, int(n));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(dim), 1.0f, do_tile, int(dim), v_chunk,
                int(dim), 0.0f, dp, int(n));
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s + r * n;
      float* dr = dp + r * n;
      // Causal: keys past first_query + r + offset are masked (a suffix of the chunk).
      const int64_t allowed =
          layout.causal ? std::clamp<int64_t>(first_query + r + layout.causal_offset - j0 + 1, 0, n) : n;
      if (w.lse2[r] == fast::kNegInf || allowed == 0) {
        std::fill(sr, sr + n, 0.0f);
        std::fill(dr, dr + n, 0.0f);
        continue;
      }
      if (p.softcap2 > 0) cap_scores(sr, w.slope.data(), allowed, p.softcap2);
      fast::exp2_shift_sum(sr, allowed, w.lse2[r]);
      std::fill(sr + allowed, sr + n, 0.0f);
      const float delta = w.delta[r];
      for (int64_t c = 0; c < n; ++c) dr[c] = sr[c] * (dr[c] - delta) * p.scale;
      if (p.softcap2 > 0)
        for (int64_t c = 0; c < allowed; ++c) dr[c] *= w.slope[c];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dim), int(n), 1.0f, dp, int(n), k_chunk,
                int(dim), 1.0f, dq_tile, int(dim));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n), int(dim), int(rows), 1.0f, dp, int(n), q_tile,
                int(dim), 1.0f, dk_head + j0 * dim, int(dim));
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n), int(dim), int(rows), 1.0f, s, int(n), do_tile,
                int(dim), 1.0f, dv_head + j0 * dim, int(dim));
  };
  const int64_t end = head.ptr[block_row + 1];
  for (int64_t t = head.ptr[block_row]; t < end;) {
    int64_t u = t + 1;
    while (u < end && head.idx[u] == head.idx[u - 1] + 1) ++u;
    const int64_t run_begin = int64_t(head.idx[t]) * bs;
    const int64_t run_end = std::min(int64_t(head.idx[u - 1] + 1) * bs, last_visible_key + 1);
    t = u;
    for (int64_t j0 = run_begin; j0 < run_end; j0 += kBackwardChunk) chunk(j0, std::min(kBackwardChunk, run_end - j0));
  }
}

}  // namespace

void fast::SATTN_CPU_ISA_NS::attention_backward(const Op& op, const Layout& layout, TensorView q, TensorView k,
                                                TensorView v, TensorView out, TensorView dout, const float* lse,
                                                MutableTensorView dq, MutableTensorView dk, MutableTensorView dv,
                                                const FastOptions& options) {
  constexpr const char* who = "fast_attention_backward";
  if (op.precision != Precision::fp32 && op.precision != Precision::bf16)
    throw Error(ErrorKind::invalid_input, std::string(who) + ": backward supports fp32 and bf16 precision, the op has " +
                                              std::string(to_string(op.precision)));
  const Shape& s = op.shape;
  fast::check_layout(who, op, layout);
  const std::array<int64_t, 4> q_shape{s.batch, s.heads, s.seq_len, s.head_dim};
  const std::array<int64_t, 4> kv_shape{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  fast::check_view(who, "q", q, q_shape);
  fast::check_view(who, "k", k, kv_shape);
  fast::check_view(who, "v", v, kv_shape);
  fast::check_view(who, "out", out, q_shape);
  fast::check_view(who, "dout", dout, q_shape);
  fast::check_view(who, "dq", dq, q_shape);
  fast::check_view(who, "dk", dk, kv_shape);
  fast::check_view(who, "dv", dv, kv_shape);
  const int64_t rows = s.batch * s.heads * s.seq_len;
  if (!lse && rows > 0 && s.head_dim > 0)
    throw Error(ErrorKind::invalid_input, std::string(who) + ": lse is null (the forward's log-sum-exp is required)");
  const std::pair<const char*, TensorView> inputs[] = {{"q", q}, {"k", k}, {"v", v}, {"out", out}, {"dout", dout}};
  const std::pair<const char*, MutableTensorView> outputs[] = {{"dq", dq}, {"dk", dk}, {"dv", dv}};
  for (size_t a = 0; a < 3; ++a) {
    for (const auto& [name, in] : inputs)
      fast::check_disjoint(who, outputs[a].first, outputs[a].second.data, outputs[a].second.size(), name, in.data,
                           in.size());
    fast::check_disjoint(who, outputs[a].first, outputs[a].second.data, outputs[a].second.size(), "lse", lse, rows);
    for (size_t c = a + 1; c < 3; ++c)
      fast::check_disjoint(who, outputs[a].first, outputs[a].second.data, outputs[a].second.size(), outputs[c].first,
                           outputs[c].second.data, outputs[c].second.size());
  }
  std::fill(dq.data, dq.data + dq.size(), 0.0f);
  std::fill(dk.data, dk.data + dk.size(), 0.0f);
  std::fill(dv.data, dv.data + dv.size(), 0.0f);
  if (dq.size() == 0 || s.kv_len == 0) return;

  BackwardProblem p;
  p.layout = &layout;
  p.heads = s.heads;
  p.kv_heads = s.kv_heads;
  p.group = s.group_size();
  p.seq_len = s.seq_len;
  p.kv_len = s.kv_len;
  p.dim = s.head_dim;
  p.scale = float(op.softmax_scale());
  p.score_scale = float(op.softmax_scale() * 1.4426950408889634);
  p.softcap2 = float(op.softcap.value_or(0) * 1.4426950408889634);
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.out = out.data;
  p.dout = dout.data;
  p.lse = lse;
  p.dq = dq.data;
  // bf16: the gradient is taken at the rounded inputs the forward used and passed straight through
  // the rounding (docs/decisions.md).
  std::vector<float> q_conv, k_conv, v_conv;
  if (op.precision == Precision::bf16) {
    auto rounded = [](const TensorView& t) {
      std::vector<float> r(static_cast<size_t>(t.size()));
      for (size_t e = 0; e < r.size(); ++e) r[e] = bf16_to_float(float_to_bf16(t.data[e]));
      return r;
    };
    q_conv = rounded(q);
    k_conv = rounded(k);
    v_conv = rounded(v);
    p.q = q_conv.data();
    p.k = k_conv.data();
    p.v = v_conv.data();
  }

  // Row ranges: groups are block rows (BSR) or rows (CSR).
  const int64_t units = s.batch * s.kv_heads;
  const int64_t groups = layout.block ? layout.block_rows() : s.seq_len;
  const int64_t kv_floats = s.kv_len * s.head_dim;
  int64_t ranges = std::clamp<int64_t>((kBackwardTasks + units - 1) / units, 1, std::max<int64_t>(1, groups / 4));
  ranges = std::min(ranges, 1 + kMaxPartialFloats / std::max<int64_t>(1, 2 * units * kv_floats));
  // Range 0 of each KV head writes dk/dv in place; ranges 1.. write [unit][range - 1][dk | dv].
  std::vector<float> partial;
  if (ranges > 1) partial.assign(static_cast<size_t>(units * (ranges - 1) * 2 * kv_floats), 0.0f);

  const BlasSingleThreaded blas_guard;
  const int64_t tasks = units * ranges;
  std::vector<BackwardScratch> scratch(static_cast<size_t>(fast::worker_count(options.threads, tasks)));
  fast::run_tasks(int64_t(scratch.size()), tasks, [&](int64_t worker, int64_t task) {
    const int64_t unit = task / ranges, range = task % ranges;
    const int64_t b = unit / s.kv_heads, kvh = unit % s.kv_heads;
    const int64_t g0 = groups * range / ranges, g1 = groups * (range + 1) / ranges;
    float* dk_head = dk.data + p.kv_offset(b, kvh);
    float* dv_head = dv.data + p.kv_offset(b, kvh);
    if (range > 0) {
      dk_head = partial.data() + (unit * (ranges - 1) + range - 1) * 2 * kv_floats;
      dv_head = dk_head + kv_floats;
    }
    for (int64_t h = kvh * p.group; h < (kvh + 1) * p.group; ++h) {
      if (layout.block) {
        for (int64_t g = g0; g < g1; ++g) backward_block_row(p, scratch[worker], b, h, g, dk_head, dv_head);
        continue;
      }
      // CSR: GEMM tiles where the rows share a narrow key range, row by row elsewhere.
      for (int64_t r0 = g0; r0 < g1; r0 += kCsrTileRows) {
        const int64_t count = std::min(kCsrTileRows, g1 - r0);
        if (backward_csr_tile(p, scratch[worker], b, h, r0, count, dk_head, dv_head)) continue;
        for (int64_t r = r0; r < r0 + count; ++r) backward_csr_row(p, scratch[worker], b, h, r, dk_head, dv_head);
      }
    }
  });
  if (ranges == 1) return;
  // Sum the partials of each KV head in range order, in slices of its rows.
  const int64_t slice = 256 * s.head_dim;
  const int64_t slices = (kv_floats + slice - 1) / slice;
  fast::run_tasks(fast::worker_count(options.threads, units * slices), units * slices, [&](int64_t, int64_t task) {
    const int64_t unit = task / slices, e0 = (task % slices) * slice, e1 = std::min(kv_floats, e0 + slice);
    float* dk_out = dk.data + unit * kv_floats;
    float* dv_out = dv.data + unit * kv_floats;
    for (int64_t r = 1; r < ranges; ++r) {
      const float* src = partial.data() + (unit * (ranges - 1) + r - 1) * 2 * kv_floats;
      for (int64_t e = e0; e < e1; ++e) {
        dk_out[e] += src[e];
        dv_out[e] += src[kv_floats + e];
      }
    }
  });
}

}  // namespace sattn
