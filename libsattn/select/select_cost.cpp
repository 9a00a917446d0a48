// The selector's cost model: sliding_window vs bsr vs dense on a target backend.
//
// MODEL (the reference for sattn-select(1), section COST MODEL)
//
// Symbols: B batch, H heads, Hkv kv_heads, G = H / Hkv (GQA group), Lq seq_len, Lk kv_len,
// d head_dim, e bytes per element (fp32 4, bf16 2, i8 1, i4 0.5), M = tile_M (default 16 query
// rows per tile), D = min(tile_D, d) (default d), S = tile_S (default: no cap), L1 = l1_bytes.
//
// Every candidate gets
//   pairs       allowed (q, k) pairs one query head computes;
//   macs        = B * H * pairs * 2d                    (QK^T and PV);
//   kv_bytes    K/V bytes moved into L1 / the scratchpad;
//   gathers     K/V rows fetched through an index (row layouts only);
//   gathered    = B * H * pairs * d: K elements fetched through an index (row layouts only);
//   chunk_work  (query row, key chunk) visits over every batch and head, each counted as
//               chunk_keys / 64 (row layouts: ceil(keys of the row / row_chunk_keys) a row;
//               block layouts: ceil(b / block_chunk_keys) per kept block and row; under
//               causal with block_tile_rows T > 0 (rvv: 4) the diagonal block is visited per
//               tile of T rows only up to the tile's last row's key limit, as the rvv block
//               kernel stops its chunk loop there: ceil(keys / block_chunk_keys) per tile row;
//               a tile of t < T rows counts t + tile_shared * (T - t) rows, its K/V loads being
//               shared by the rows it has: rvv 0.57, measured on one-query quest decode;
//               with block_chunk_by_keys (rocc) a block of b < block_chunk_keys keys counts
//               b / block_chunk_keys of a chunk: the accelerator's RUN of a short chunk is short);
//   score_macs  block-scoring work (bsr only);
// and costs, in modelled cycles, with the backend's constants (backend_costs(); e the precision):
//   total = (macs*mac + B*H*pairs*pair + kv_bytes*stream_byte + gathers*gather_row
//            + gathered*gather_elem[e] + chunk_work*(chunk + chunk_d[e]*d) + score_macs*score_mac) * prefer
// where prefer is 0.75 for the spec a --prefer-* hint names, 1.1 for the other of sliding_window
// and bsr, 1 otherwise.
//
// sliding_window (row layout; the CSR kernel works per query head and gathers K and V rows by
// index, so GQA groups do not share its loads):
//   positions n = 2w+1 (causal: w+1); span = min(n, Lk) keys per query; pairs = the exact count
//   of allowed positions, row by row (edge rows lose part of their window; with wrap every row
//   keeps span).
//   extent = min(Lk, (n-1)*dilation + 1): the key range one window covers;
//   tile_keys = min(Lk, extent + M - 1): the range a tile of M consecutive queries covers.
//   working set = 2 * min(tile_keys, S) * D * e (K and V of the resident key range).
//   Fits L1: each tile loads its range once and its rows re-gather from L1:
//     kv_bytes = B * H * ceil(Lq / M) * tile_keys * 2d * e.
//   Does not fit: every row re-gathers its keys from memory: kv_bytes = B * H * pairs * 2d * e.
//   gathers = B * H * pairs * 2.
//
// Block layouts (bsr, dense), block edge b; R = ceil(Lq / b) block rows, C = ceil(Lk / b) block
// columns; cand(br) = C, or under causal the columns not entirely in the future (as sattn-emit
// builds them). Kernels compute whole blocks but skip causally masked pairs: pairs = kept * b * b
// per head over full block rows, the diagonal block (the last candidate, always kept) counting
// only its allowed pairs under causal.
//   bsr:   kept = sum over br of max(ceil(keep_ratio * cand(br)), forced(br)), at most cand(br),
//          forced = the local block plus the global blocks among the candidates.
//   dense: b = min(64, max(Lq, Lk)), kept = sum over br of cand(br).
//   working set = 2 * b * D * e (one K block and one V block).
//   Fits L1: a K/V block is loaded once per block row and serves its b queries and the G query
//     heads of the group (the layout is shared by the group): kv_bytes = B * Hkv * kept * 2 b d e.
//   Does not fit: it is re-streamed for every tile of min(M, b) queries and every query head:
//     kv_bytes = B * H * kept * ceil(b / min(M, b)) * 2 b d e.
//   bsr scoring (what sattn-emit computes): pooling the group's queries and the keys, then one
//   d-long dot product per candidate block, or per compression sub-block when 0 < c =
//   comp_block_size < b (the score is the maximum over ceil(b / c) sub-blocks):
//     score_macs = B * Hkv * ((G * Lq + Lk) * d + sum over br of cand(br) * d * ceil(b / c)).
//   So compression blocks make scoring dearer by b / c, not cheaper: they buy selection quality.
//   quest: b = page_size, kept = sum over br of min(top_pages, cand(br)); the kernels run it as
//          any block layout (pairs, chunk work and K/V bytes as above; the diagonal page counted
//          as kept, which it is whenever its bound ranks it, the common case in decode). Its
//          selection (what sattn-emit computes): the per-page min/max summaries (2 compares per
//          key element) and one 2d-long bound per (query, query head, candidate page):
//     score_macs = B * Hkv * (2 * Lk * d + G * sum over br of rows(br) * cand(br) * 2d).
#include "select/select_cost.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "layout/layout_builders.hpp"

namespace sattn::select_detail {

namespace {

using nlohmann::json;

constexpr int64_t kDefaultTileM = 16;
constexpr int64_t kDenseBlock = 64;  // the dense layout's block edge (layout.cpp)
// Chunk work is counted in visits of this many keys: a visit to a chunk of K keys counts K / 64
// (the vector work of a visit is issued at the chunk's full width, whatever its keys).
constexpr double kVisitKeys = 64;
constexpr double kPreferred = 0.75;
constexpr double kNotPreferred = 1.1;

// Every integer in the model fits a double exactly up to 2^53; products are taken in double.
// A candidate while its terms are built as JSON; take() hands back the Candidate with the terms as
// JSON text (the public Candidate carries no JSON library type).
struct Draft : Candidate {
  json terms = json::object();  // shadows Candidate::terms (text) until take()
  Candidate take() const {
    Candidate out = *this;
    out.terms = terms.dump();
    return out;
  }
};

double ceil_div(double a, double b) {
  return std::ceil(a / b);
}

struct Common {
  double batch, heads, kv_heads, group, q_len, k_len, head_dim, elem;
  double tile_m, tile_d;
  std::optional<int64_t> tile_s;
  size_t precision;  // index into the per-precision constants: fp32, bf16, i8, i4
};

size_t precision_index(Precision p) {
  switch (p) {
    case Precision::fp32: return 0;
    case Precision::bf16: return 1;
    case Precision::i8: return 2;
    case Precision::i4: return 3;
  }
  return 0;
}

Common common_of(const Op& op) {
  const Shape& s = op.shape;
  Common c;
  c.batch = double(s.batch);
  c.heads = double(s.heads);
  c.kv_heads = double(s.kv_heads);
  c.group = double(s.group_size());
  c.q_len = double(s.seq_len);
  c.k_len = double(s.kv_len);
  c.head_dim = double(s.head_dim);
  c.elem = element_bytes(op.precision);
  c.tile_m = double(op.attrs.tile_M.value_or(kDefaultTileM));
  c.tile_d = double(std::min(op.attrs.tile_D.value_or(s.head_dim), s.head_dim));
  c.tile_s = op.attrs.tile_S;
  c.precision = precision_index(op.precision);
  return c;
}

double prefer_factor(Spec spec, const CostContext& ctx) {
  if (spec == Spec::bsr) return ctx.prefer_bsr ? kPreferred : ctx.prefer_sw ? kNotPreferred : 1.0;
  if (spec == Spec::sliding_window) return ctx.prefer_sw ? kPreferred : ctx.prefer_bsr ? kNotPreferred : 1.0;
  return 1.0;
}

// Whole numbers are written as JSON integers (32768, not 32768.0): easier to read and to diff.
void integers_where_whole(json& j) {
  for (auto& [key, v] : j.items()) {
    if (v.is_object()) integers_where_whole(v);
    if (!v.is_number_float()) continue;
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) v = int64_t(d);
  }
}

// Fills the cycle terms and the total from the work terms; `c.terms` already holds the
// candidate's own geometry terms. `pairs` is per query head; `visits` counts (query row, key
// chunk) visits over every batch and query head, in units of 64-key visits; `gathered` the K
// elements fetched by index.
void finish(Draft& c, const Common& k, double pairs, double kv_bytes, double gathers, double gathered,
            double visits, double score_macs, const CostContext& ctx) {
  const BackendCosts& bc = backend_costs(ctx.backend);
  const double all_pairs = k.batch * k.heads * pairs;
  const double macs = all_pairs * 2 * k.head_dim;
  const double factor = prefer_factor(c.spec, ctx);
  const size_t prec = k.precision;
  json cycles = {{"compute", macs * bc.mac + all_pairs * bc.pair},
                 {"memory", kv_bytes * bc.stream_byte},
                 {"gather", gathers * bc.gather_row + gathered * bc.gather_elem[prec]},
                 {"chunks", visits * (bc.chunk + bc.chunk_d[prec] * k.head_dim)},
                 {"scoring", score_macs * bc.score_mac}};
  double sum = 0;
  for (const auto& [name, v] : cycles.items()) sum += v.get<double>();
  c.terms["pairs"] = pairs;
  c.terms["macs"] = macs;
  c.terms["kv_bytes"] = kv_bytes;
  c.terms["gathers"] = gathers;
  c.terms["gathered_elements"] = gathered;
  c.terms["chunk_work"] = visits;
  c.terms["score_macs"] = score_macs;
  c.terms["l1_bytes"] = ctx.l1_bytes;
  c.terms["cycles"] = cycles;
  c.terms["prefer_factor"] = factor;
  integers_where_whole(c.terms);
  c.cost = sum * factor;
}

// Allowed pairs and chunk visits of block row `br` of a block layout that keeps `kept` of its
// candidate columns: the kernels skip what causal masking forbids, so under causal the last
// candidate column (the diagonal block, always kept) counts only its allowed pairs; the other
// kept columns count whole (a partial last key block counts its keys).
void block_row_work(const layout_detail::BlockGrid& grid, int64_t br, double kept, double chunk_keys,
                    int64_t tile_rows, double tile_shared, bool by_keys, double& pairs, double& visits) {
  const auto& a = grid.align;
  const int64_t b = grid.block;
  const int64_t r0 = br * b, r1 = std::min(r0 + b, a.rows);
  const double rows = double(r1 - r0);
  const int64_t cand = grid.candidate_end(br);
  if (cand == 0 || kept <= 0) return;
  const int64_t last_col = cand - 1;
  const int64_t last_width = std::min(b, a.cols - last_col * b);
  double diag = 0;
  if (a.causal) {
    for (int64_t r = r0; r < r1; ++r)
      diag += double(std::clamp<int64_t>(a.key_end(r) - last_col * b, 0, last_width));
  } else {
    diag = rows * double(last_width);
  }
  pairs += (kept - 1) * rows * double(b) + diag;
  if (tile_rows <= 0) {
    visits += rows * kept * (by_keys ? double(b) / chunk_keys : ceil_div(double(b), chunk_keys));
    return;
  }
  // The rvv block kernel (attn-block-rvv.inc.h) runs a block row in tiles of the largest power
  // of two <= min(tile_rows, rows left). A tile's K column and V row loads serve all its rows, so
  // a tile of t < tile_rows rows costs as t + tile_shared * (tile_rows - t) rows (a one-query
  // decode step: one-row tiles). Under causal each tile stops its chunk loop at its last row's
  // limit: the diagonal block's chunks past that limit are never visited.
  double row_visits = 0;
  for (int64_t i = r0; i < r1;) {
    int64_t t = 1;
    while (t * 2 <= tile_rows && t * 2 <= r1 - i) t *= 2;
    const double weight = double(t) + tile_shared * double(tile_rows - t);
    const int64_t keys =
        a.causal ? std::clamp<int64_t>(a.key_end(i + t - 1) - last_col * b, 0, last_width) : last_width;
    row_visits += weight * ((kept - 1) * ceil_div(double(b), chunk_keys) + ceil_div(double(keys), chunk_keys));
    i += t;
  }
  visits += row_visits;
}

// The shared part of bsr and dense: working set, K/V bytes.
void block_memory(Draft& c, const Common& k, double block, double kept, const CostContext& ctx,
                  double& kv_bytes) {
  const double row_bytes = 2 * k.head_dim * k.elem;  // one K row and one V row
  const double working_set = 2 * block * k.tile_d * k.elem;
  const bool fits = working_set <= double(ctx.l1_bytes);
  const double query_tile = std::min(k.tile_m, block);
  kv_bytes = fits ? k.batch * k.kv_heads * kept * block * row_bytes
                  : k.batch * k.heads * kept * ceil_div(block, query_tile) * block * row_bytes;
  c.terms["block_size"] = block;
  c.terms["kept_blocks"] = kept;
  c.terms["working_set_bytes"] = working_set;
  c.terms["l1_fit"] = fits;
  // Queries served by one K/V load: the block row's queries times the group's heads when resident.
  c.terms["kv_reuse"] = fits ? block * k.group : query_tile;
}

}  // namespace

const BackendCosts& backend_costs(Target b) {
  // cpu and imc: initial constants, not yet calibrated against measured runs.
  static const BackendCosts cpu{1.0 / 16, 1.0 / 16, 2, 1.0 / 16, 32768};   // 2x 8-wide FMA, 16 B/cycle
  static const BackendCosts imc{1.0 / 64, 1.0 / 2, 64, 1.0 / 8, 32768};    // K/V written into cells
  // rvv and rocc: fitted to the kernel cycles that sattn-run-rvv (VLEN 256, default core model)
  // and sattn-sim measure over the tuning configurations of bench/regret/sweep.yaml (relative
  // least squares, non-negative; docs/decisions.md "Selector cost model tuning"). Both measure
  // the kernel alone: bsr's block scoring runs on the host (sattn-emit), hence score_mac 0; the
  // RVV core model has every load hit the cache and the accelerator hides its DMA behind double
  // buffering, hence stream_byte 0 (their loads are in the per-element and per-chunk terms).
  static const BackendCosts rvv{.mac = 0.254, .stream_byte = 0, .gather_row = 27.9, .score_mac = 0,
                                .l1_bytes = 32768,
                                .gather_elem = {1.15, 2.63, 1.82, 1.16},  // vluxei32 K column, then widening
                                .chunk_d = {28.2, 43.3, 33.6, 24.1},      // full-width vfmacc and conversions
                                .pair = 1.24, .chunk = 556,               // softmax: reductions, vector exp
                                .row_chunk_keys = 64,                     // VLMAX(e32, m8) at VLEN 256
                                .block_chunk_keys = 32,                   // 4-row tiles at m4
                                .block_tile_rows = 4,                     // SATTN_DEFAULT_TILE_ROWS
                                .tile_shared = 0.57};                     // one-row tiles: sattn-run-rvv, quest decode
  static const BackendCosts rocc{.mac = 0.0575, .stream_byte = 0, .gather_row = 0.00171, .score_mac = 0,
                                 .l1_bytes = 65536,
                                 .gather_elem = {0.0013, 0.0013, 0.0013, 0.0013},
                                 .chunk_d = {0.421, 0.421, 0.421, 0.421},  // rescale, D/LANES
                                 .pair = 0, .chunk = 14.8,                 // row start, max/exp per RUN
                                 .row_chunk_keys = 64, .block_chunk_keys = 64,  // KSLOTS
                                 .block_chunk_by_keys = true};  // a 16-key page: a quarter of a chunk
  switch (b) {
    case Target::cpu: return cpu;
    case Target::rvv: return rvv;
    case Target::rocc: return rocc;
    case Target::imc: return imc;
  }
  return cpu;
}

double element_bytes(Precision p) {
  switch (p) {
    case Precision::fp32: return 4;
    case Precision::bf16: return 2;
    case Precision::i8: return 1;
    case Precision::i4: return 0.5;
  }
  return 4;
}

int64_t key_blocks(const Op& op, int64_t block_size) {
  return (op.shape.kv_len + block_size - 1) / block_size;
}

std::string why_infeasible(const Op& op, Spec spec, const SpecParams& params) {
  // bsr selects among key blocks; with one there is nothing to select (it would be dense plus
  // the scoring).
  if (const auto* p = std::get_if<BsrParams>(&params); p && spec == Spec::bsr) {
    const int64_t blocks = key_blocks(op, p->block_size);
    if (blocks < 2)
      return "bsr needs at least 2 key blocks to select among; kv_len " + std::to_string(op.shape.kv_len) +
             " with block_size " + std::to_string(p->block_size) + " gives " + std::to_string(blocks);
  }
  return "";
}

Candidate cost_sliding_window(const Op& op, const SlidingWindowParams& p, const CostContext& ctx) {
  const Common k = common_of(op);
  Draft c;
  c.spec = Spec::sliding_window;
  const double positions = double(op.causal ? p.window_size + 1 : 2 * p.window_size + 1);
  const double span = std::min(positions, k.k_len);
  const BackendCosts& bc = backend_costs(ctx.backend);
  const double chunk_keys = double(bc.row_chunk_keys);
  // Exact allowed pairs per query head, and chunk visits per head: row i's keys are its aligned
  // position p plus t * dilation, t in [-w, w] ([-w, 0] causal), inside [0, key_end(i)) (the
  // layout's SlidingWindowRows). With wrap every row keeps min(positions, kv_len) keys.
  double pairs = 0, row_visits = 0;
  if (p.wrap) {
    pairs = k.q_len * span;
    row_visits = k.q_len * ceil_div(span, chunk_keys);
  } else {
    const auto a = layout_detail::alignment_of(op);
    const int64_t w = p.window_size, dil = p.dilation, last_t = op.causal ? 0 : w;
    auto floor_div = [](int64_t x, int64_t y) { return x >= 0 ? x / y : -((-x + y - 1) / y); };
    auto add_rows = [&](int64_t first, int64_t last) {  // rows [first, last), one by one
      for (int64_t i = first; i < last; ++i) {
        const int64_t pos = a.aligned(i), end = a.key_end(i);
        if (end <= 0) continue;
        const int64_t lo = std::max(-w, -floor_div(pos, dil));      // pos + t*dil >= 0
        const int64_t hi = std::min(last_t, floor_div(end - 1 - pos, dil));  // pos + t*dil < end
        if (hi < lo) continue;
        pairs += double(hi - lo + 1);
        row_visits += ceil_div(double(hi - lo + 1), chunk_keys);
      }
    };
    // Rows whose whole window fits (pos >= w*dil, and pos + last_t*dil < kv_len) all keep
    // last_t + w + 1 keys: counted at once, so that the cost of a huge op (and the memory guard's
    // refusal behind it) does not take a loop over seq_len. Only the edge rows are walked.
    const int64_t reach = w * dil, off = a.offset;  // both < 2^61: dilation <= kv_len
    const int64_t full_begin = std::clamp<int64_t>(reach - off, 0, a.rows);
    const int64_t full_end =
        std::max(full_begin, op.causal ? a.rows : std::clamp<int64_t>(a.cols - off - last_t * dil, 0, a.rows));
    add_rows(0, full_begin);
    const double full = double(last_t + w + 1);
    pairs += double(full_end - full_begin) * full;
    row_visits += double(full_end - full_begin) * ceil_div(full, chunk_keys);
    add_rows(full_end, a.rows);
  }
  const double visits = k.batch * k.heads * row_visits * chunk_keys / kVisitKeys;
  const double extent = std::min(k.k_len, (positions - 1) * double(p.dilation) + 1);
  const double tile_keys = std::min(k.k_len, extent + k.tile_m - 1);
  const double resident = k.tile_s ? std::min(tile_keys, double(*k.tile_s)) : tile_keys;
  const double working_set = 2 * resident * k.tile_d * k.elem;
  const bool fits = working_set <= double(ctx.l1_bytes);
  const double row_bytes = 2 * k.head_dim * k.elem;
  const double kv_bytes = fits ? k.batch * k.heads * ceil_div(k.q_len, k.tile_m) * tile_keys * row_bytes
                               : k.batch * k.heads * pairs * row_bytes;
  const double gathers = k.batch * k.heads * pairs * 2;
  const double gathered = k.batch * k.heads * pairs * k.head_dim;
  c.terms["span"] = span;
  c.terms["tile_keys"] = tile_keys;
  c.terms["working_set_bytes"] = working_set;
  c.terms["l1_fit"] = fits;
  c.terms["kv_reuse"] = fits ? k.tile_m : 1.0;
  finish(c, k, pairs, kv_bytes, gathers, gathered, visits, 0, ctx);
  return c.take();
}

Candidate cost_bsr(const Op& op, const BsrParams& p, const CostContext& ctx) {
  const Common k = common_of(op);
  Draft c;
  c.spec = Spec::bsr;
  layout_detail::BlockGrid grid{layout_detail::alignment_of(op), p.block_size};
  const int64_t globals = (p.global_tokens + p.block_size - 1) / p.block_size;
  const double chunk_keys = double(backend_costs(ctx.backend).block_chunk_keys);
  const int64_t tile_rows = backend_costs(ctx.backend).block_tile_rows;
  double kept = 0, candidates = 0, pairs = 0, row_visits = 0;
  for (int64_t br = 0; br < grid.block_rows(); ++br) {
    const int64_t cand = grid.candidate_end(br);
    if (cand == 0) continue;
    const int64_t forced = std::min(globals, cand) + (grid.local_block(br) < globals ? 0 : 1);
    const double row_kept =
        double(std::min(cand, std::max(layout_detail::bsr_keep_count(p.keep_ratio, cand), forced)));
    kept += row_kept;
    candidates += double(cand);
    block_row_work(grid, br, row_kept, chunk_keys, tile_rows, backend_costs(ctx.backend).tile_shared,
                   backend_costs(ctx.backend).block_chunk_by_keys, pairs, row_visits);
  }
  double kv_bytes = 0;
  block_memory(c, k, double(p.block_size), kept, ctx, kv_bytes);
  const bool compressed = p.comp_block_size > 0 && p.comp_block_size < p.block_size;
  const double sub_blocks = compressed ? ceil_div(double(p.block_size), double(p.comp_block_size)) : 1;
  const double score_macs =
      k.batch * k.kv_heads * ((k.group * k.q_len + k.k_len) * k.head_dim + candidates * k.head_dim * sub_blocks);
  c.terms["candidate_blocks"] = candidates;
  c.terms["score_sub_blocks"] = sub_blocks;
  finish(c, k, pairs, kv_bytes, 0, 0, k.batch * k.heads * row_visits * chunk_keys / kVisitKeys, score_macs, ctx);
  return c.take();
}

Candidate cost_topk(const Op& op, const TopkParams& p, const CostContext& ctx) {
  const Common k = common_of(op);
  Draft c;
  c.spec = Spec::topk_per_query;
  const auto a = layout_detail::alignment_of(op);
  const double chunk_keys = double(backend_costs(ctx.backend).row_chunk_keys);
  double pairs = 0, dense_pairs = 0, row_visits = 0;
  for (int64_t i = 0; i < a.rows; ++i) {
    const double end = double(a.key_end(i)), kept = std::min(double(p.topk_k), end);
    pairs += kept;
    dense_pairs += end;
    row_visits += ceil_div(kept, chunk_keys);
  }
  // The kept keys are scattered: no reuse in L1, every pair gathers its K and V rows.
  const double row_bytes = 2 * k.head_dim * k.elem;
  const double kv_bytes = k.batch * k.heads * pairs * row_bytes;
  const double gathers = k.batch * k.heads * pairs * 2;
  const double gathered = k.batch * k.heads * pairs * k.head_dim;
  // Selecting scores every allowed pair with the group-summed query (layout.cpp).
  const double score_macs = k.batch * k.kv_heads * (k.group * k.q_len + dense_pairs) * k.head_dim;
  c.terms["span"] = double(p.topk_k);
  c.terms["working_set_bytes"] = 2 * std::min(double(p.topk_k), k.k_len) * k.tile_d * k.elem;
  c.terms["l1_fit"] = false;
  c.terms["kv_reuse"] = 1.0;
  finish(c, k, pairs, kv_bytes, gathers, gathered, k.batch * k.heads * row_visits * chunk_keys / kVisitKeys,
         score_macs, ctx);
  return c.take();
}

Candidate cost_quest(const Op& op, const QuestParams& p, const CostContext& ctx) {
  const Common k = common_of(op);
  Draft c;
  c.spec = Spec::quest;
  layout_detail::BlockGrid grid{layout_detail::alignment_of(op), p.page_size};
  const double chunk_keys = double(backend_costs(ctx.backend).block_chunk_keys);
  const int64_t tile_rows = backend_costs(ctx.backend).block_tile_rows;
  double kept = 0, candidates = 0, bound_rows = 0, pairs = 0, row_visits = 0;
  for (int64_t br = 0; br < grid.block_rows(); ++br) {
    const int64_t cand = grid.candidate_end(br);
    if (cand == 0) continue;
    const double row_kept = double(std::min(p.top_pages, cand));
    const double rows = double(std::min((br + 1) * p.page_size, op.shape.seq_len) - br * p.page_size);
    kept += row_kept;
    candidates += double(cand);
    bound_rows += rows * double(cand);
    block_row_work(grid, br, row_kept, chunk_keys, tile_rows, backend_costs(ctx.backend).tile_shared,
                   backend_costs(ctx.backend).block_chunk_by_keys, pairs, row_visits);
  }
  double kv_bytes = 0;
  block_memory(c, k, double(p.page_size), kept, ctx, kv_bytes);
  const double score_macs = k.batch * k.kv_heads * (2 * k.k_len * k.head_dim + k.group * bound_rows * 2 * k.head_dim);
  c.terms["candidate_blocks"] = candidates;
  c.terms["top_pages"] = double(p.top_pages);
  finish(c, k, pairs, kv_bytes, 0, 0, k.batch * k.heads * row_visits * chunk_keys / kVisitKeys, score_macs, ctx);
  return c.take();
}

Candidate cost_of(const Op& op, Spec spec, const SpecParams& params, const CostContext& ctx) {
  switch (spec) {
    case Spec::quest: return cost_quest(op, std::get<QuestParams>(params), ctx);
    case Spec::sliding_window: return cost_sliding_window(op, std::get<SlidingWindowParams>(params), ctx);
    case Spec::bsr: return cost_bsr(op, std::get<BsrParams>(params), ctx);
    case Spec::topk_per_query: return cost_topk(op, std::get<TopkParams>(params), ctx);
    default: return cost_dense(op, ctx);
  }
}

Candidate cost_dense(const Op& op, const CostContext& ctx) {
  const Common k = common_of(op);
  Draft c;
  c.spec = Spec::dense;
  const int64_t block = std::min(kDenseBlock, std::max(op.shape.seq_len, op.shape.kv_len));
  layout_detail::BlockGrid grid{layout_detail::alignment_of(op), block};
  const double chunk_keys = double(backend_costs(ctx.backend).block_chunk_keys);
  const int64_t tile_rows = backend_costs(ctx.backend).block_tile_rows;
  double kept = 0, pairs = 0, row_visits = 0;
  for (int64_t br = 0; br < grid.block_rows(); ++br) {
    const double cand = double(grid.candidate_end(br));
    kept += cand;
    block_row_work(grid, br, cand, chunk_keys, tile_rows, backend_costs(ctx.backend).tile_shared,
                   backend_costs(ctx.backend).block_chunk_by_keys, pairs, row_visits);
  }
  double kv_bytes = 0;
  block_memory(c, k, double(block), kept, ctx, kv_bytes);
  finish(c, k, pairs, kv_bytes, 0, 0, k.batch * k.heads * row_visits * chunk_keys / kVisitKeys, 0, ctx);
  return c.take();
}

}  // namespace sattn::select_detail
