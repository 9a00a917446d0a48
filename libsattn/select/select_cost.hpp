// Internal to libsattn: the selector's cost model (select_cost.cpp), used by select.cpp. The
// formulas and constants are documented at the top of select_cost.cpp and in sattn-select(1).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sattn/select.hpp"

namespace sattn::select_detail {

// Per-backend constants of the cost model, in modelled cycles.
struct BackendCosts {
  double mac;          // per multiply-accumulate of QK^T and PV
  double stream_byte;  // per K/V byte brought into L1 / the scratchpad by contiguous loads or DMA
  double gather_row;   // per K or V row fetched through an index (row layouts)
  double score_mac;    // per multiply-add of bsr block scoring (pooling and score dot products)
  int64_t l1_bytes;    // L1 / scratchpad size when neither --l1-bytes nor SATTN_HW_L1_BYTES says
  // Per precision (indexed fp32, bf16, i8, i4: conversions and widening cost differently):
  std::array<double, 4> gather_elem{};  // per K element fetched through an index (row layouts: pairs * d)
  std::array<double, 4> chunk_d{};      // per chunk visit and head_dim element (vector work at full width)
  double pair = 0;               // per (query, key) pair, whatever d (softmax, P.V issue)
  double chunk = 0;              // per visit of one query row to one key chunk (row start, max, exp)
  int64_t row_chunk_keys = 64;   // keys per chunk of the row (CSR) kernel
  int64_t block_chunk_keys = 64; // keys per chunk of the block (BSR) kernel
  // Rows of a block-kernel tile whose causal limit cuts the diagonal block's chunks: each tile
  // of this many rows visits the diagonal block's chunks only up to its last row's limit. 0: the
  // whole diagonal block is visited by every row (what the accelerator is modelled as doing).
  int64_t block_tile_rows = 0;
  // Share of a full tile's per-row chunk work that a tile of fewer rows still pays per missing
  // row (its K column and V row loads serve however many rows it has): a tile of t <
  // block_tile_rows rows counts as t + tile_shared * (block_tile_rows - t) rows.
  double tile_shared = 0;
  // A block of b < block_chunk_keys keys counts as b / block_chunk_keys of a chunk visit, not a
  // whole one (the accelerator's softmax and rescale of a RUN scale with its keys); false: whole.
  bool block_chunk_by_keys = false;
};
const BackendCosts& backend_costs(Target);

// What the model needs beyond the op and the candidate's parameters.
struct CostContext {
  Target backend = Target::cpu;
  int64_t l1_bytes = 0;
  bool prefer_bsr = false;
  bool prefer_sw = false;
};

// The cost-model candidates: `cost` and `terms` filled, `feasible` left true.
Candidate cost_sliding_window(const Op&, const SlidingWindowParams&, const CostContext&);
Candidate cost_bsr(const Op&, const BsrParams&, const CostContext&);
Candidate cost_dense(const Op&, const CostContext&);
// topk_per_query (recall-constrained selection only): a row layout gathering topk_k keys per row,
// no L1 reuse, and scoring every allowed pair: score_macs = B * Hkv * (G * Lq + dense pairs) * d.
Candidate cost_topk(const Op&, const TopkParams&, const CostContext&);
// quest: a block layout of pages, top_pages kept per block row; its bound scoring in score_macs.
Candidate cost_quest(const Op&, const QuestParams&, const CostContext&);
// The candidate of any costed spec (sliding_window, bsr, topk_per_query, quest; dense for the
// others).
Candidate cost_of(const Op&, Spec, const SpecParams&, const CostContext&);

// Recall-constrained selection (select_recall.cpp): every recall_grid() point costed and scored
// on the calibration samples; the cheapest whose recall reaches options.min_recall is chosen
// (dense, with a warning, when no sparse point does). `disabled(spec)` says why a spec may not be
// used ("" when it may).
struct RecallChoice {
  Spec spec = Spec::dense;
  SpecParams params;
  PatternAttrs attrs;  // the chosen point's attributes: the plan's op carries them
  std::vector<Candidate> candidates;
  std::string reason;
  std::vector<std::string> warnings;
};
RecallChoice choose_by_recall(const Op&, const SelectOptions&, const CostContext&,
                              const std::function<std::string(Spec)>& disabled);

// Bytes per element of a precision (i4 packs two values per byte: 0.5).
double element_bytes(Precision);

// Key blocks of bsr with the resolved block size: ceil(kv_len / block_size).
int64_t key_blocks(const Op&, int64_t block_size);

// Why `spec` cannot run on `op` with resolved `params`, beyond what resolve_params() checks
// (bsr needs at least 2 key blocks); "" when it can.
std::string why_infeasible(const Op&, Spec, const SpecParams&);

}  // namespace sattn::select_detail
