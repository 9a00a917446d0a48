// Shared pieces of the fast CPU kernel (kernel_fast.cpp drives, kernel_fast_block.cpp runs BSR
// layouts, kernel_fast_row.cpp runs CSR layouts and the integer datapath).
#pragma once
#include <cmath>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sattn/attention.hpp"
#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "sattn/tensor.hpp"

namespace sattn {
struct QuantizedQKV;
}
// Run-time ISA dispatch (docs/decisions.md "CPU kernels: one source, one object per ISA"): the
// kernel sources (kernel_fast_block/row/backward.cpp) are compiled once per ISA, each time with
// SATTN_CPU_ISA_NS naming an inline namespace (baseline, avx2, avx512), so every function and
// inline helper of one copy has its own mangled name. kernel_fast.cpp (baseline) picks a copy's
// Kernels table at run time (cpu_kernels()).
#ifndef SATTN_CPU_ISA_NS
#define SATTN_CPU_ISA_NS baseline
#endif

namespace sattn::fast {

// Keys per FlashAttention step of the GEMM paths: S (rows x keys) stays in L1/L2 and the
// GEMMs are still large enough to run near peak.
inline constexpr int64_t kMaxChunkKeys = 256;
// Keys per online-softmax step of the fused tile (kernel_fast_fused.cpp): S^T of 64 keys x 64
// lanes is 16 KiB (L1); 32 and 128 measured slower.
inline constexpr int64_t kFusedStepKeys = 64;
// Default query rows per CSR tile (op.attrs.tile_rows overrides): the unit that chooses between
// GEMM tiles and the gather path.
inline constexpr int64_t kDefaultTileRows = 32;
// Query rows per BSR task with fused tiles: adjacent block rows with the same kept blocks share
// one tile (two 64-row sub-tiles with AVX-512), halving the K/V traffic of a 64-row block row.
inline constexpr int64_t kFusedTaskRows = 128;
// Query rows per CSR task: gathered rows of a task share the K/V cache lines of each key window.
inline constexpr int64_t kCsrTaskRows = 1024;

// Everything a task reads: raw views of the (precision-adjusted) tensors and the shape.
struct Problem {
  const Layout* layout = nullptr;
  int64_t batch = 0, heads = 0, kv_heads = 0, group = 1;
  int64_t seq_len = 0, kv_len = 0, dim = 0;
  int64_t tile_rows = kDefaultTileRows;  // CSR tile height; BSR uses the block size
  int64_t task_rows = kCsrTaskRows;      // CSR task height (a multiple of tile_rows)
  int64_t block_rows_per_task = 1;       // BSR: block rows per task (fused tiles: kFusedTaskRows of rows)
  float score_scale = 1;                 // softmax scale * log2(e): scores live in the exp2 domain
  bool fused = true;                     // BSR block rows: fused tiles (false: cblas tile_step; SATTN_CPU_BLOCK_KERNEL)
  bool csr_fused = true;                 // CSR tiles: packed fused tiles (false: cblas tile_step; SATTN_CPU_CSR_KERNEL)
  float softcap2 = 0;                    // the op's softcap * log2(e) (the cap in the exp2 domain); 0 = none
  const float* q = nullptr;              // [batch, heads, seq_len, dim]
  const float* k = nullptr;              // [batch, kv_heads, kv_len, dim]
  const float* v = nullptr;              // fp32 values (dequantized for i8/i4)
  float* out = nullptr;                  // [batch, heads, seq_len, dim]
  float* lse = nullptr;                  // [batch, heads, seq_len] natural-log LSE, or null
  // Integer datapath (i8/i4): quantized Q and K, and scale_q * scale_k * softmax scale * log2(e).
  bool integer = false;
  const int8_t* q_int = nullptr;
  const int8_t* k_int = nullptr;
  float int_score_scale = 1;
  // A scheme other than per-tensor (run_quant_tile): its codes and scale tables, and (pv i8 or
  // fix16) its V codes as floats, [B, KVH, KV, D] (exact: |code| <= 32767).
  const QuantizedQKV* quant = nullptr;
  const float* quant_v = nullptr;
  // CSR layouts: per head of layout.heads, per row, 1 when the row's list equals the previous
  // row's (check_layout).
  const uint8_t* same_as_previous = nullptr;
  // bf16 on AMX tiles (amx_bf16_tiles(): the amx copy, BSR fused tiles, head_dim a multiple of
  // 32; kernel_fast_amx.cpp): K as bf16 codes like k (16 zero rows after the last head, since a
  // tile reads 16 keys at once), and V^T in panels (amx::prepare_head), vt_head_size codes per
  // (b, kv head). q then holds the bf16-rounded Q in fp32; k and v (the unrounded inputs) are not read.
  bool amx_bf16 = false;
  const uint16_t* k_bf16 = nullptr;
  const uint16_t* vt_bf16 = nullptr;
  int64_t vt_head_size = 0;

  const float* q_row(int64_t b, int64_t h, int64_t i) const { return q + ((b * heads + h) * seq_len + i) * dim; }
  float* out_row(int64_t b, int64_t h, int64_t i) const { return out + ((b * heads + h) * seq_len + i) * dim; }
  float* lse_row(int64_t b, int64_t h, int64_t i) const { return lse ? lse + (b * heads + h) * seq_len + i : nullptr; }
  int64_t kv_offset(int64_t b, int64_t kvh) const { return (b * kv_heads + kvh) * kv_len * dim; }
};

// One sub-tile of a fused tile (kernel_fast_fused.cpp): up to fused_lanes() query rows, the SIMD
// lanes of every step. Arrays in Scratch::fused, lane-major (`vecs` vectors of lanes per entry).
struct FusedSubtile {
  int64_t first_row = 0, rows = 0, vecs = 0;
  int64_t diag = 0;  // lane q sees keys <= diag + q (causal)
  float* q_t = nullptr;      // dim x lanes: Q^T * score_scale
  float* o_t = nullptr;      // dim x lanes: unnormalized O^T
  float* row_max = nullptr;  // lanes: running max (exp2 domain)
  float* row_sum = nullptr;  // lanes: running sum
  uint16_t* q_pairs = nullptr;  // AMX tiles: Q^T as bf16 pairs of d (dim / 2 rows of lanes x 2)
};
// The online-softmax state of a fused tile of `rows` query rows.
struct FusedTile {
  FusedSubtile* sub = nullptr;
  int64_t count = 0, rows = 0, dim = 0;
};

// Per-thread scratch, grown on demand and reused across tasks (nothing allocated per element).
struct Scratch {
  std::vector<float> scores;          // tile rows x chunk keys (GEMM paths) or one row's key batch
  std::vector<float> acc;             // tile rows x dim: unnormalized output
  std::vector<float> row_max;         // running max per row (exp2 domain)
  std::vector<float> row_sum;         // running sum per row
  std::vector<float> k_gather;        // K rows of a chunk whose keys are not contiguous
  std::vector<float> v_gather;        // V rows of that chunk
  std::vector<float> q_gather;        // Q rows of a CSR tile of non-consecutive rows
  std::vector<float> union_k;         // K rows of the last gathered CSR union
  std::vector<float> union_v;         // V rows of the last gathered CSR union
  std::vector<int32_t> union_cached_keys;  // its keys
  const float* union_head = nullptr;       // its K head (identifies batch and KV head)
  std::vector<int32_t> keys;          // a chunk's column keys (BSR), a tile's key union (CSR),
                                      // one row's expanded keys (integer path)
  std::vector<int32_t> key_stamp;     // kv_len: last union build that saw the key
  std::vector<int32_t> key_position;  // kv_len: column of a key in the current union
  std::vector<int64_t> cursor;        // per row: position in its CSR list
  std::vector<int64_t> gather_rows;   // rows of a CSR task that no contiguous tile took
  std::vector<int64_t> tile_rows;     // rows of the current CSR tile, then of the gather path
  int32_t stamp = 0;
  std::vector<float> fused;                     // fused tiles: per sub-tile Q^T, O^T, max, sum
  std::vector<float> fused_scores;              // fused tiles: S^T / P^T of one step
  std::vector<FusedSubtile> fused_sub;          // fused tiles: the sub-tiles of the current tile
  // The scheme kernel (run_quant_tile): per key, the mean-Q bias of the query block whose stamp
  // it carries; a row's P codes and kept keys; the exact P.V sums (double chunk, int64 total).
  std::vector<float> quant_bias;
  std::vector<int32_t> quant_bias_stamp;
  int32_t quant_stamp = 0;
  const float* quant_mean = nullptr;  // the query block mean the current stamp belongs to
  std::vector<float> quant_p;
  std::vector<int32_t> quant_keys;
  std::vector<double> quant_acc;
  std::vector<int64_t> quant_acc_int;
  std::vector<uint64_t> lane_allow;             // packed CSR tiles: per key column, allowed lanes
  std::vector<uint16_t> amx_bf16;               // AMX tiles: P^T pairs of one step, each sub-tile's Q^T pairs
  std::vector<uint16_t> amx_k_gather;           // AMX tiles: bf16 K rows of a gathered chunk
  std::vector<uint16_t> amx_vt_gather;          // AMX tiles: V^T columns of a gathered chunk
};

struct Kernels;

// bf16 fused tiles on AMX (kernel_fast_amx.cpp, built with the AMX flags only; called by the
// avx512 copy's BSR driver when Problem::amx_bf16). begin loads the tile configuration into this
// thread and packs Q^T (q_tile: rows x dim, bf16-rounded fp32) into bf16 pairs; step runs one
// chunk of n contiguous keys (k_rows: n rows of bf16 K, vt: the V^T panel of its first key, a
// multiple of 32;
// scores scaled by score_scale, then soft-capped, then causal-masked); the tile's O^T, max and sum
// have the fused tile's layout, so fused_finish of the avx512 copy writes it out; end releases
// the tiles.
namespace amx {
FusedTile begin(Scratch&, const float* q_tile, int64_t rows, int64_t dim, int64_t first_query, int64_t causal_offset);
void step(FusedTile&, Scratch&, const uint16_t* k_rows, const uint16_t* vt, int64_t n,
          const int32_t* column_keys, bool causal, float score_scale, float softcap2);
void end();
// One (batch, kv head)'s K (kv_len x dim) as bf16 codes into k_out, and its V^T into vt_out in
// panels of 32 keys (panel p: dim rows of the 32 codes of keys 32p .. 32p + 31, zero past kv_len;
// ceil(kv_len / 32) * 32 * dim codes), so that a P.V tile (16 d x 32 keys) is 1 KiB of contiguous
// memory; both rounded as float_to_bf16.
void prepare_head(const float* k, const float* v, int64_t kv_len, int64_t dim, uint16_t* k_out, uint16_t* vt_out);
// bf16_to_float(float_to_bf16(x)) for n floats.
void round_to_bf16(const float* in, int64_t n, float* out);
}  // namespace amx

inline namespace SATTN_CPU_ISA_NS {

// The online-softmax state of a tile of `rows` query rows, held in Scratch.
struct TileState {
  float* acc;
  float* row_max;
  float* row_sum;
  int64_t rows;
  int64_t dim;
};
TileState begin_tile(Scratch&, int64_t rows, int64_t dim);
// Sets the disallowed entries of a rows x n score block (leading dimension ld) to -inf.
struct ScoreMask {
  virtual void apply(float* scores, int64_t ld, int64_t rows, int64_t n) const = 0;
  virtual ~ScoreMask() = default;
};
// Logit soft-capping in the exp2 domain: s = c2 * tanh(s / c2) (c2 = softcap * log2(e), since
// log2(e) * c * tanh(s / c) = c2 * tanh(s2 / c2) for s2 = log2(e) * s); nothing when c2 is 0.
inline void apply_softcap(float* scores, int64_t n, float softcap2) {
  if (softcap2 <= 0) return;
  const float inv = 1.0f / softcap2;
  for (int64_t t = 0; t < n; ++t) scores[t] = softcap2 * std::tanh(scores[t] * inv);
}
// One FlashAttention step with keys stored contiguously (n rows of K and V, `dim` floats each):
// scores = score_scale * Q K^T, soft-capped by `softcap2` (0: none), then `mask` (if given),
// then the online softmax update and acc += P V.
void tile_step(TileState&, Scratch&, const float* q_tile, const float* k_chunk, const float* v_chunk, int64_t n,
               float score_scale, const ScoreMask* mask, float softcap2 = 0);
// acc / row_sum into `out` (rows x dim); a row that saw no allowed key is written as 0. When
// `lse` is not null it receives the rows' natural-log log-sum-exp (-inf for an empty row).
void finish_tile(const TileState&, float* out, float* lse);
void finish_row(const TileState&, int64_t row, float* out, float* lse);

// Row i's keys: its CSR list, or (BSR, i in block row `tile`) its kept blocks expanded with the
// causal/bounds rule into scratch.keys. Shared by the row kernel and the quant kernel.
struct RowKeys {
  const int32_t* keys;
  int64_t count;
};
inline RowKeys row_keys(const Layout& layout, const HeadLayout& head, int64_t tile, int64_t i, Scratch& scratch) {
  if (!layout.block) return {head.idx.data() + head.ptr[i], head.ptr[i + 1] - head.ptr[i]};
  scratch.keys.clear();
  for (int64_t t = head.ptr[tile]; t < head.ptr[tile + 1]; ++t)
    for (int64_t j = int64_t(head.idx[t]) * layout.block_size, j_end = j + layout.block_size; j < j_end; ++j)
      if (layout.causal_ok(i, j)) scratch.keys.push_back(int32_t(j));
  return {scratch.keys.data(), int64_t(scratch.keys.size())};
}

// The fused tile (kernel_fast_fused.cpp), the default for BSR block rows (Problem::fused): the
// same FlashAttention step as tile_step with register-blocked SIMD micro-kernels instead of
// cblas_sgemm and a scores matrix. fused_begin packs the tile's query rows (q_tile: rows x dim,
// contiguous; first_query: the index of its first row; causal_offset: the layout's), fused_step
// runs one chunk of n contiguous keys (column_keys: their ascending indices, read only when
// `causal`), fused_finish writes out/lse like finish_tile.
FusedTile fused_begin(Scratch&, const float* q_tile, int64_t rows, int64_t dim, float score_scale,
                      int64_t first_query, int64_t causal_offset);
// `allow` (packed tiles of CSR rows; null: every lane may use every key): n x tile.count words,
// bit q of allow[c * tile.count + s] set iff lane q of sub-tile s (tile row s * fused_lanes() + q)
// may use key c; the other scores are -inf before the softmax, so a row sees exactly its keys.
void fused_step(FusedTile&, Scratch&, const float* k_chunk, const float* v_chunk, int64_t n,
                const int32_t* column_keys, bool causal, float softcap2, const uint64_t* allow = nullptr);
void fused_finish(const FusedTile&, float* out, float* lse);
// fused_finish for one tile row.
void fused_finish_row(const FusedTile&, int64_t row, float* out, float* lse);
// Query rows per sub-tile of this ISA copy (SIMD lanes x vectors).
int64_t fused_lanes();

// One task of (b, h) for BSR layouts: block rows [task, task + 1) * Problem::block_rows_per_task.
void run_block_row(const Problem&, Scratch&, int64_t b, int64_t h, int64_t task);
// One task: rows [task*task_rows, ...) of (b, h) for CSR layouts (fp32 path).
void run_csr_task(const Problem&, Scratch&, int64_t b, int64_t h, int64_t task);
// One task of the integer datapath (either layout kind); `tile` indexes block rows (BSR) or
// tile_rows-row tiles (CSR).
void run_integer_tile(const Problem&, Scratch&, int64_t b, int64_t h, int64_t tile);
// One task of the integer datapath of a quantization scheme other than per-tensor (p.quant),
// kernel_fast_quant.cpp; `tile` as for run_integer_tile.
void run_quant_tile(const Problem&, Scratch&, int64_t b, int64_t h, int64_t tile);
// fast_attention_backward of this ISA (kernel_fast_backward.cpp).
void attention_backward(const Op&, const Layout&, TensorView q, TensorView k, TensorView v, TensorView out,
                        TensorView dout, const float* lse, MutableTensorView dq, MutableTensorView dk,
                        MutableTensorView dv, const FastOptions&);
// Whether lists [first_list, end_list) of `head` are strictly ascending with entries in
// [0, limit): the per-pair part of check_layout, in each ISA copy so that it runs at that
// copy's vector width (it reads every pair of every call).
// same_as_previous (nullable, `lists` bytes): set to 1 where a list equals the one before it
// (compared while the pass reads them: CSR tiles of rows sharing one list, landmarks, then need
// no second pass over the lists).
bool lists_ascending_in_range(const HeadLayout& head, int64_t first_list, int64_t end_list, int64_t limit,
                              uint8_t* same_as_previous);
// This copy's entry points (defined in kernel_fast_block.cpp).
extern const Kernels kernels;

}  // inline namespace SATTN_CPU_ISA_NS

// The entry points of one ISA's copy of the kernels.
struct Kernels {
  CpuIsa isa;
  void (*block_row)(const Problem&, Scratch&, int64_t b, int64_t h, int64_t block_row);
  void (*csr_task)(const Problem&, Scratch&, int64_t b, int64_t h, int64_t task);
  void (*integer_tile)(const Problem&, Scratch&, int64_t b, int64_t h, int64_t tile);
  void (*quant_tile)(const Problem&, Scratch&, int64_t b, int64_t h, int64_t tile);
  void (*backward)(const Op&, const Layout&, TensorView, TensorView, TensorView, TensorView, TensorView, const float*,
                   MutableTensorView, MutableTensorView, MutableTensorView, const FastOptions&);
  bool (*lists_ok)(const HeadLayout&, int64_t first_list, int64_t end_list, int64_t limit, uint8_t* same_as_previous);
};
// The copy selected for this process (cpu_isa(); kernel_fast.cpp).
const Kernels& cpu_kernels();
// Whether BSR block rows run the fused tile (default; SATTN_CPU_BLOCK_KERNEL=fused) or the cblas
// tile_step (SATTN_CPU_BLOCK_KERNEL=gemm, the kernel before issue 25, kept for comparison).
// Throws Error(invalid_input) on another value.
bool fused_block_tiles();
// Whether the GEMM tiles of CSR rows (windows, shared unions, regrouped LSH buckets) run packed
// fused tiles with lane masks (default; SATTN_CPU_CSR_KERNEL=packed) or the cblas tile_step with
// a ListMask before them (SATTN_CPU_CSR_KERNEL=legacy, kept for comparison). Throws Error(invalid_input) on another value.
bool packed_csr_tiles();
// Whether this op runs on the AMX bf16 tiles: the process runs the amx copy (cpu_isa()), the op
// is bf16 with a positive scale and head_dim a multiple of 32, the layout is BSR with blocks of at
// least 16 rows, and the fused block tiles are on (SATTN_CPU_BLOCK_KERNEL). Otherwise bf16 runs
// the fp32 kernels on bf16-rounded copies.
bool amx_bf16_tiles(const Op&, const Layout&);

// Input checks shared by the forward and the backward (kernel_fast.cpp). `who` starts every
// message ("fast_attention", "fast_attention_backward"). Throw Error(invalid_input).
void check_view(const char* who, const char* name, const TensorView& t, const std::array<int64_t, 4>& want);
// same_as_previous (nullable): for CSR layouts, resized to heads x rows bytes, 1 where a row's
// list equals the previous row's (head index as in layout.heads). threads: for the pass over
// every pair, as FastOptions.threads (0: the hardware's; 1: the caller's thread only).
void check_layout(const char* who, const Op& op, const Layout& layout,
                  std::vector<uint8_t>* same_as_previous = nullptr, int threads = 1);
// Throws when [a, a + a_count) and [b, b + b_count) overlap (an output aliasing an input).
void check_disjoint(const char* who, const char* a_name, const float* a, int64_t a_count, const char* b_name,
                    const float* b, int64_t b_count);
// Worker threads for `tasks` tasks: FastOptions.threads (0: the hardware's), at most one per task.
int64_t worker_count(int threads_option, int64_t tasks);
// Runs work(worker, task) for task in [0, tasks) on `threads` threads (the caller's included),
// tasks handed out in order; rethrows the first exception once every worker has stopped. Checks
// for Ctrl-C before each task.
// progress (may be empty): called from the caller's thread with (tasks done, tasks), and once at
// the end with (tasks, tasks). Every worker runs under the caller's CancelScope.
void run_tasks(int64_t threads, int64_t tasks, const std::function<void(int64_t worker, int64_t task)>& work,
               const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace sattn::fast
