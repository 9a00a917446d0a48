// The attention op and its sparsity specs (DESIGN §3).
//
// An Op holds what the user wrote: the shape, numerics and the flat set of pattern
// attributes (window_size, keep_ratio, ...). A spec's parameters are resolved from those
// attributes by resolve_params(), which fills defaults and validates ranges.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sattn/error.hpp"
#include "sattn/quant.hpp"

namespace sattn {

enum class Spec { dense, sliding_window, bsr, block_local_global, nm_structured, topk_per_query, lsh, landmark, quest };
inline constexpr Spec kAllSpecs[] = {Spec::dense,          Spec::sliding_window, Spec::bsr, Spec::block_local_global,
                                     Spec::nm_structured,  Spec::topk_per_query, Spec::lsh, Spec::landmark,
                                     Spec::quest};

enum class Precision { fp32, bf16, i8, i4 };

std::string_view to_string(Spec);
std::string_view to_string(Precision);
// Accepts canonical names and the prior prototype's aliases ("block_topk" -> bsr, "blg",
// "sliding_global" -> block_local_global, "nm" -> nm_structured, "topk" -> topk_per_query, "sw").
std::optional<Spec> parse_spec(std::string_view);
std::optional<Precision> parse_precision(std::string_view);
// Whether a spec's layout depends on the Q/K data (bsr, nm, topk, lsh, landmark with iters, quest).
bool is_data_dependent(Spec);
// Row (CSR) or block (BSR) granularity of the spec's layout.
bool is_block_spec(Spec);

struct Shape {
  int64_t batch = 1;
  int64_t heads = 8;
  int64_t kv_heads = 8;  // GQA: heads % kv_heads == 0
  int64_t seq_len = 1024;  // queries
  int64_t kv_len = 1024;   // keys
  int64_t head_dim = 64;
  int64_t group_size() const { return heads / kv_heads; }
};

// Pattern attributes as written. Absent means "use the spec's default".
struct PatternAttrs {
  std::optional<int64_t> window_size, dilation;
  std::optional<bool> wrap;
  std::optional<int64_t> block_size, comp_block_size, window_blocks, global_tokens;
  std::optional<double> keep_ratio;
  std::optional<int64_t> nm_n, nm_m;
  std::optional<int64_t> topk_k;
  std::optional<int64_t> lsh_buckets, lsh_rounds;
  std::optional<uint64_t> seed;
  std::optional<int64_t> num_landmarks, landmark_iters;
  std::optional<int64_t> page_size, top_pages;  // quest
  // Tile hints for the cost model and kernels (tile_rows: rows per kernel tile).
  std::optional<int64_t> tile_M, tile_S, tile_D, tile_rows;
};

struct Op {
  std::string name;  // optional; "op<N>" when absent
  SourceLoc loc;     // where the op starts
  Shape shape;
  bool causal = false;
  std::optional<double> scale;  // softmax scale; default 1/sqrt(head_dim)
  // Logit soft-capping (Gemma 2): each scaled score s becomes softcap * tanh(s / softcap) before
  // the softmax. Absent: no capping.
  std::optional<double> softcap;
  Precision precision = Precision::fp32;
  std::optional<double> scale_q, scale_k, scale_v;  // i8/i4 symmetric per-tensor scales
  // i8/i4: how Q, K, V and P are quantized (sattn/quant.hpp, attribute `quant_scheme`). Absent:
  // the backend's default (quant_scheme_of: the recommended scheme where the backend runs it).
  std::optional<QuantScheme> quant_scheme;
  // Fixed scale tables for quant_scheme (read from artifacts; never serialized with the op).
  // Absent: the scales and means are computed from the data (dynamic quantization).
  std::shared_ptr<const QuantTables> quant_tables;
  std::optional<Spec> forced_spec;                  // `spec` or `force_spec` attribute
  PatternAttrs attrs;
  // Where each attribute was written (for error messages); keys are attribute names.
  std::map<std::string, SourceLoc> attr_loc;

  double softmax_scale() const;
  // Location of an attribute if known, else of the op.
  SourceLoc loc_of(const std::string& attr) const;
};

// Resolved, validated per-spec parameters (defaults filled). These are what plans echo.
struct DenseParams {};
struct SlidingWindowParams {
  int64_t window_size = 64;  // half-width: keys p-w*d .. p+w*d (causal: p-w*d .. p)
  int64_t dilation = 1;
  bool wrap = false;  // ring mode: positions wrap modulo kv_len
};
struct BsrParams {
  int64_t block_size = 64;
  double keep_ratio = 0.125;  // keep max(1, ceil(keep_ratio * candidates)) blocks per block row
  int64_t comp_block_size = 0;  // >0: score blocks from compressed (mean-pooled) sub-blocks
  int64_t global_tokens = 0;    // global blocks are always kept
};
struct BlockLocalGlobalParams {
  int64_t block_size = 64;
  int64_t window_blocks = 1;  // local blocks on each side of the diagonal block
  int64_t global_tokens = 0;  // rounded up to whole blocks: global block rows and columns
};
struct NmParams {
  int64_t nm_n = 2;
  int64_t nm_m = 8;  // keep nm_n of every nm_m consecutive keys, by score
};
struct TopkParams {
  int64_t topk_k = 64;
};
struct LshParams {
  int64_t lsh_buckets = 8;
  int64_t lsh_rounds = 1;
  uint64_t seed = 0;
};
struct LandmarkParams {
  int64_t num_landmarks = 64;
  int64_t landmark_iters = 0;  // k-means-lite refinement iterations over K
};
// quest (decode-time page selection, Tang et al. 2024): keys are cut into pages of page_size;
// each page is summarized by its elementwise min and max key, and a query block keeps the
// top_pages pages of highest upper bound sum_d max(q_d * min_d, q_d * max_d).
struct QuestParams {
  int64_t page_size = 16;
  int64_t top_pages = 16;
};
using SpecParams = std::variant<DenseParams, SlidingWindowParams, BsrParams, BlockLocalGlobalParams, NmParams,
                                TopkParams, LshParams, LandmarkParams, QuestParams>;

// Validates the shape, numerics and every attribute that is present (ranges, GQA divisibility,
// nm_n <= nm_m, ...). Throws Error(invalid_input) naming the attribute and its location.
void validate(const Op&);
// Defaults + validation of one spec's parameters against the op's shape. Throws
// Error(invalid_input) when the spec cannot run on this op (e.g. window_size > kv_len).
SpecParams resolve_params(const Op&, Spec);


}  // namespace sattn
