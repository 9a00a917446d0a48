// Internal to libsattn: the per-spec layout builders behind build_layout() (layout.cpp) and the
// small pieces of geometry they share. The semantics are documented at the top of layout.cpp.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "sattn/tensor.hpp"
#include "support/process.hpp"

namespace sattn::layout_detail {

// Where each query row sits among the keys (bottom-right alignment, as in FlashAttention).
struct Alignment {
  int64_t rows = 0;    // seq_len
  int64_t cols = 0;    // kv_len
  int64_t offset = 0;  // kv_len - seq_len: query i is aligned with key i + offset
  bool causal = false;

  int64_t aligned(int64_t i) const { return i + offset; }
  // Exclusive end of the keys row i may use: [0, key_end(i)). Causal rows stop after their
  // aligned position; a row aligned before key 0 gets an empty range.
  int64_t key_end(int64_t i) const { return causal ? std::clamp<int64_t>(i + offset + 1, 0, cols) : cols; }
};

inline Alignment alignment_of(const Op& op) {
  return {op.shape.seq_len, op.shape.kv_len, op.shape.kv_len - op.shape.seq_len, op.causal};
}

// Block geometry shared by the BSR specs.
struct BlockGrid {
  Alignment align;
  int64_t block = 1;  // block edge B
  int64_t block_rows() const { return (align.rows + block - 1) / block; }
  int64_t block_cols() const { return (align.cols + block - 1) / block; }
  // Block columns [0, candidate_end(br)) are candidates of block row br: under causal, the
  // columns whose first key is at or before the aligned position of the block row's last query.
  int64_t candidate_end(int64_t br) const {
    const int64_t last_row = std::min((br + 1) * block, align.rows) - 1;
    const int64_t end = align.key_end(last_row);  // 0 when every row of br is aligned before key 0
    return (end + block - 1) / block;
  }
  // The diagonal block: the column holding the aligned position of the block row's first query,
  // clamped into [0, block_cols).
  int64_t local_block(int64_t br) const {
    const int64_t p = align.aligned(br * block);
    return std::clamp<int64_t>(p < 0 ? 0 : p / block, 0, block_cols() - 1);
  }
};

// An empty layout carrying the op's geometry; `shared` layouts get one HeadLayout, the others
// one per (batch, kv head).
Layout make_layout(const Op& op, Spec spec, bool block, int64_t block_size, bool shared);

// Ceil of keep_ratio * candidates with a relative slack of 1e-9, so that a product that is an
// integer in decimal (0.28 * 25) is not pushed to the next integer by binary rounding.
int64_t bsr_keep_count(double keep_ratio, int64_t candidates);

// Data-independent builders (layout.cpp, layout_block.cpp).
Layout build_dense_layout(const Op& op);
// Keys of query row i for sliding_window: aligned position p plus t * dilation for t in
// [-window_size, window_size] ([-window_size, 0] when causal); out-of-range positions dropped,
// or taken modulo kv_len with wrap; then the causal rule. Ascending and unique. Shared by
// build_layout and sattn-emit's streamed writer, so the two cannot disagree.
class SlidingWindowRows {
 public:
  SlidingWindowRows(const Op& op, const SlidingWindowParams& p)
      : align_(alignment_of(op)), p_(p), last_t_(op.causal ? 0 : p.window_size) {}

  template <class Index>
  void row(int64_t i, std::vector<Index>& keys) const {
    keys.clear();
    const int64_t pos = align_.aligned(i), end = align_.key_end(i), cols = align_.cols;
    for (int64_t t = -p_.window_size; t <= last_t_; ++t) {
      int64_t j = pos + t * p_.dilation;
      if (p_.wrap) j = ((j % cols) + cols) % cols;
      if (j >= 0 && j < end) keys.push_back(static_cast<Index>(j));
    }
    // Without wrap the positions already grow with t; wrapped ones come out of order and repeat
    // when the ring is shorter than the window.
    if (p_.wrap) {
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    }
  }

 private:
  Alignment align_;
  SlidingWindowParams p_;
  int64_t last_t_;
};

Layout build_sliding_window_layout(const Op& op, const SlidingWindowParams& p);
Layout build_block_local_global_layout(const Op& op, const BlockLocalGlobalParams& p);

// Data-dependent builders: q is [batch, heads, seq_len, head_dim], k is [batch, kv_heads,
// kv_len, head_dim], both already checked against the op's shape.
Layout build_bsr_layout(const Op& op, const BsrParams& p, const TensorView& q, const TensorView& k);
Layout build_nm_layout(const Op& op, const NmParams& p, const TensorView& q, const TensorView& k);
Layout build_topk_layout(const Op& op, const TopkParams& p, const TensorView& q, const TensorView& k);
Layout build_lsh_layout(const Op& op, const LshParams& p, const TensorView& q, const TensorView& k);
Layout build_quest_layout(const Op& op, const QuestParams& p, const TensorView& q, const TensorView& k);
// k is null when landmark_iters == 0 (evenly spaced landmarks need no data).
Layout build_landmark_layout(const Op& op, const LandmarkParams& p, const TensorView* k);

// Threads for `items` independent pieces of work: the hardware's, at most one per item.
inline int64_t worker_threads(int64_t items) {
  return std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, std::max<int64_t>(items, 1));
}

// Runs work(worker, item) for item in [0, items) on `threads` threads (the caller included),
// handing out items in order; rethrows the first exception after all threads stop.
template <class Work>
void parallel_items(int64_t items, int64_t threads, Work work) {
  std::atomic<int64_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const CancelScope* cancel = CancelScope::current();  // the caller's cancellation, for every worker
  auto worker = [&](int64_t id) {
    const CancelScope adopt(CancelScope::Adopt{}, cancel);
    try {
      for (int64_t item; (item = next.fetch_add(1)) < items;) {
        throw_if_interrupted();  // Ctrl-C: every worker stops at its next item
        work(id, item);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = items;  // stop handing out work
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (std::thread& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

// Sum over the query heads of KV head `kvh`'s GQA group of query row i, in double: the query
// that the group's shared selection scores with (scores are linear in q).
void group_query_sum(const TensorView& q, int64_t b, int64_t kvh, int64_t group, int64_t i, double* out);

}  // namespace sattn::layout_detail
