// Fidelity: what a sparse layout loses against dense attention on the same data (sattn-eval(1)).
//
// For every query row that dense attention gives at least one key (causal rule and bounds), with
// dense probabilities p_j = softmax(scale * q.k_j) over those keys:
//   recall   = sum of p_j over the keys the layout keeps in that row (the attention mass kept);
//   oracle   = sum of the n largest p_j, n = the number of keys the layout keeps in that row: no
//              layout keeping n keys in that row can do better, so oracle >= recall row by row;
//   output   = softmax restricted to the kept keys, times V, against the dense output:
//              max_abs = max |sparse - dense| over the head's elements, max_rel = max_abs / max
//              |dense|, mean_rel = sum over rows of ||sparse - dense||_2 / sum over rows of
//              ||dense||_2 (the mean row error against the mean row norm: rows whose dense output
//              is nearly 0 do not dominate it). A row keeping no key outputs 0.
//   density  = kept pairs / pairs dense attention uses (causal: the lower triangle), so dense is 1.
// Row statistics are min, p10 (nearest rank: the ceil(0.1 n)-th smallest) and mean over rows.
// Everything is computed in double from the float inputs, one row at a time: memory is
// O(kv_len * head_dim) per KV head plus O(kv_len) per thread, never seq_len * kv_len.
#pragma once
#include <cstdint>
#include <vector>

#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {

struct RowStats {
  double min = 0, p10 = 0, mean = 0;
};

struct HeadFidelity {
  int64_t batch = 0, head = 0, kv_head = 0;  // head: the query head
  int64_t rows = 0;                          // rows dense attention gives at least one key
  int64_t kept_pairs = 0, dense_pairs = 0;
  double density = 0;  // kept_pairs / dense_pairs
  RowStats recall, oracle;
  double ratio = 1;  // recall.mean / oracle.mean (1 when both are 0)
  bool with_output = false;
  double max_abs = 0, max_rel = 0, mean_rel = 0;  // output error (with_output only)
  // Per-row values (the rows counted in `rows`, in order), for summaries over several heads.
  std::vector<double> row_recall, row_oracle;
};

struct FidelityOptions {
  bool with_output = true;  // also compare outputs (reads v); selection needs recall only
  int threads = 0;          // 0: the hardware's
};

// Evaluates every layout of `layouts` (each built for `op`) against dense attention on `data`,
// in one pass over the dense scores. Result [l][n]: layout l, head n in (batch, query head)
// order. Layouts must match the op's geometry (Error(invalid_input) otherwise).
std::vector<std::vector<HeadFidelity>> evaluate_fidelity(const Op& op, const QKV& data,
                                                         const std::vector<const Layout*>& layouts,
                                                         const FidelityOptions& = {});

// Over several heads (and samples): row statistics over all their rows, density over all their
// pairs, the worst head's mean recall, the largest max_rel and the mean of mean_rel over heads.
struct FidelitySummary {
  int64_t heads = 0, rows = 0;
  double density = 0;
  RowStats recall, oracle;
  double ratio = 1;
  double worst_head_recall = 1;  // min over heads of the head's mean recall (what selection checks)
  bool with_output = false;
  double max_rel = 0, mean_rel = 0;
};
FidelitySummary summarize_fidelity(const std::vector<HeadFidelity>& heads);

// min, p10 (nearest rank) and mean of `values` (all 0 when empty).
RowStats row_stats(std::vector<double> values);

}  // namespace sattn
