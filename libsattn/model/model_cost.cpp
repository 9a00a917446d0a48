// The model-level cost (sattn-model(1), COSTS): every layer's op, costed on each backend's
// analytical model, for a prefill or a decode phase, under the policy and all-dense.
//
// One layer, one step: op = {batch B, heads H, kv_heads Hkv, seq_len Lq, kv_len Lk, head_dim d,
// causal, scale}, with prefill Lq = Lk = S and decode Lq = chunk, Lk = context C (every step of
// a decode attends to C keys: the context the user asks about, not a growing one).
//   cpu     cycles of the selector's cost model with the cpu constants; seconds = cycles / cpu clock.
//   rvv     cycles of the selector's cost model with the rvv constants (fitted to the QEMU
//           instruction counts of sattn-run-rvv); seconds = cycles / --clock-mhz.
//   rocc    (head_dim zero-padded to a multiple of 16, as the driver runs it)
//           cycles = the selector's cost model with the rocc constants (fitted to sattn-sim,
//           the RUN cycles) through the driver's double-buffered tile pipeline at the
//           accelerator's DRAM defaults (16 bytes/cycle, 40 cycles per DMA command):
//           accel_pipeline_cycles(); dram_bytes = the DMA traffic of
//           the accelerator's driver (accel_dram_bytes: Q once, the K/V rows of every chunk of
//           every query tile of 64 rows and every query head, O once as int16); energy = the accelerator's energy model
//           (MACs x pJ/MAC + scratchpad bytes x pJ/byte + DRAM bytes x pJ/byte) where the
//           scratchpad bytes are the DRAM bytes written into it plus one K and one V row read per
//           allowed pair.
//   imc     the crossbar model of sattn-imc: Q.K^T and P.V of one (batch, kv head) mapped as
//           dense GEMMs (G*Lq x d x Lk and G*Lq x Lk x d), scaled by the layer's density;
//           energy x B*Hkv (every kv head has its arrays), latency x 1 (they run in parallel);
//           plus the cells written for the K/V the step adds (prefill: all Lk, decode: chunk).
//   flops   2 x MACs; bytes: Q and O once plus the cpu model's K/V bytes.
// The attention layers only: projections, MLPs and the KV cache's own traffic are not counted.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "backends/imc/imc.hpp"
#include "backends/rocc/accel.hpp"
#include "backends/rocc/energy.hpp"
#include "layout/layout_builders.hpp"
#include "select/select_cost.hpp"
#include "sattn/model.hpp"

namespace sattn {

void LayerCost::add(const LayerCost& o, double times) {
  pairs += o.pairs * times;
  flops += o.flops * times;
  bytes += o.bytes * times;
  cpu_cycles += o.cpu_cycles * times;
  cpu_s += o.cpu_s * times;
  rvv_cycles += o.rvv_cycles * times;
  rocc_cycles += o.rocc_cycles * times;
  rocc_dram_bytes += o.rocc_dram_bytes * times;
  rocc_energy_pj += o.rocc_energy_pj * times;
  imc_energy_pj += o.imc_energy_pj * times;
  imc_latency_ns += o.imc_latency_ns * times;
}

namespace {

using nlohmann::json;
using select_detail::CostContext;

double term(const Candidate& c, const char* key) {
  const json t = json::parse(c.terms);
  return t.at(key).get<double>();
}

Candidate price(const Op& op, Spec spec, const SpecParams& params, Target target) {
  CostContext ctx;
  ctx.backend = target;
  ctx.l1_bytes = select_detail::backend_costs(target).l1_bytes;
  switch (spec) {
    case Spec::sliding_window: return select_detail::cost_sliding_window(op, std::get<SlidingWindowParams>(params), ctx);
    case Spec::bsr: return select_detail::cost_bsr(op, std::get<BsrParams>(params), ctx);
    case Spec::quest: return select_detail::cost_quest(op, std::get<QuestParams>(params), ctx);
    default: return select_detail::cost_dense(op, ctx);
  }
}

// Causal dense pairs of one head: the rows' key_end summed.
double dense_pairs(const Op& op) {
  const double lq = double(op.shape.seq_len), off = double(op.shape.kv_len - op.shape.seq_len);
  return lq * off + lq * (lq + 1) / 2;
}

double accel_pipeline_cycles(double compute_cycles, const AccelTraffic& t, const accel::Config& cfg) {
  // Each query tile loads its Q, then its key chunks, double-buffered: chunk i+1's K/V (and
  // index) loads overlap chunk i's RUN, so a tile of chunks with DMA m_i and RUN c_i takes
  // m_1 + sum max(m_i+1, c_i) + c_n >= max(M + c_n, m_1 + C) (M, C the tile's sums; equal for
  // chunks alike). Its Q load comes before and its STORE after, neither overlapped, and every
  // DMA command pays the DRAM latency (one command at a time). The tiles are taken as alike:
  // compute and K/V traffic spread evenly over them, c_n = C / chunks.
  const double lat = double(cfg.dram_latency_cycles), bw = double(cfg.dram_bytes_per_cycle);
  if (t.tiles <= 0 || t.chunks <= 0) return compute_cycles;
  const double fixed = t.tiles * 2 * lat + (t.q_bytes + t.out_bytes) / bw;
  const double dma = t.loads * lat + (t.bytes - t.q_bytes - t.out_bytes) / bw;
  const double first = t.loads / t.chunks * t.tiles * lat + t.first_chunk_bytes / bw;  // every tile's m_1
  const double last = t.tiles * compute_cycles / t.chunks;                             // every tile's c_n
  return fixed + std::max(dma + last, first + compute_cycles);
}

struct ImcDense {
  double energy_pj = 0, latency_ns = 0;  // one (batch, kv head), dense, without writes
};

class Coster {
 public:
  explicit Coster(const ModelOptions& o) : o_(o) {
    imc_.cell = ImcCell::rram;
  }

  // One step of one layer.
  LayerCost cost(const Op& op, Spec spec, const SpecParams& params, int64_t new_tokens) {
    const double e = select_detail::element_bytes(op.precision);
    const Shape& s = op.shape;
    const double q_o_bytes = 2.0 * double(s.batch * s.heads * s.seq_len * s.head_dim) * e;
    LayerCost c;
    const Candidate cpu = price(op, spec, params, Target::cpu);
    const Candidate rvv = price(op, spec, params, Target::rvv);
    // The accelerator runs a head_dim it does not divide zero-padded (hw/README.md): its cycles
    // and K/V bytes are those of the padded op.
    Op padded = op;
    padded.shape.head_dim = accel::padded_head_dim(s.head_dim, op.precision);
    const Candidate rocc = price(padded, spec, params, Target::rocc);
    const double per_head_pairs = term(cpu, "pairs");
    c.pairs = per_head_pairs * double(s.batch * s.heads);
    c.density = per_head_pairs / dense_pairs(op);
    const double macs = term(cpu, "macs");
    c.flops = 2 * macs;
    c.bytes = q_o_bytes + term(cpu, "kv_bytes");
    c.cpu_cycles = cpu.cost;
    c.cpu_s = cpu.cost / (o_.cpu_ghz * 1e9);
    c.rvv_cycles = rvv.cost;
    const AccelTraffic traffic = accel_traffic(op, spec, params, accel_.q_tile_rows);
    c.rocc_dram_bytes = traffic.bytes;
    c.rocc_cycles = accel_pipeline_cycles(rocc.cost, traffic, accel_);
    const double sram_bytes = c.rocc_dram_bytes + c.pairs * 2 * double(s.head_dim) * e;
    c.rocc_energy_pj = macs * energy_.mac_pj(op.precision) + sram_bytes * energy_.sram_byte_pj +
                       c.rocc_dram_bytes * energy_.dram_byte_pj + c.rocc_cycles * energy_.static_pj_per_cycle;
    const ImcDense d = imc_dense(op);
    const double heads = double(s.batch * s.kv_heads);
    c.imc_energy_pj = d.energy_pj * heads * c.density;
    c.imc_latency_ns = d.latency_ns * c.density;
    // K/V the step adds are written into the cells: K (d rows) and V (one row per key).
    ImcCounts w;
    const int wb = imc_weight_bits(op.precision, imc_);
    const double cells_per_weight = std::ceil(double(wb) / double(imc_.cell_bits));
    w.cells_written = heads * 2.0 * double(new_tokens) * double(s.head_dim) * cells_per_weight;
    w.critical_write_rows = std::min<int64_t>(imc_.rows, std::max<int64_t>(s.head_dim, new_tokens));
    const ImcCost wc = imc_cost(w, imc_, imc_.cell);
    c.imc_energy_pj += wc.energy_pj.total();
    c.imc_latency_ns += wc.latency_ns.total();
    return c;
  }

 private:
  ImcDense imc_dense(const Op& op) {
    const Shape& s = op.shape;
    const auto key = std::make_tuple(s.group_size() * s.seq_len, s.kv_len, s.head_dim, int(op.precision));
    if (auto it = imc_cache_.find(key); it != imc_cache_.end()) return it->second;
    const int ib = imc_input_bits(op.precision, imc_), wb = imc_weight_bits(op.precision, imc_);
    const int64_t m = s.group_size() * s.seq_len;
    ImcCounts qk = map_gemm(m, s.head_dim, s.kv_len, imc_, ib, wb);
    const ImcCounts pv = map_gemm(m, s.kv_len, s.head_dim, imc_, ib, wb);
    qk.add(pv);
    const ImcCost cost = imc_cost(qk, imc_, imc_.cell);
    ImcDense d{cost.energy_pj.total(), cost.latency_ns.total()};
    imc_cache_[key] = d;
    return d;
  }

  ModelOptions o_;
  ImcParams imc_;
  EnergyModel energy_;
  accel::Config accel_;
  std::map<std::tuple<int64_t, int64_t, int64_t, int>, ImcDense> imc_cache_;
};

// The rule that applies to layer i: the last override naming it, else its class's rule.
const LayerRule& rule_for(const ModelPolicy& p, int64_t i, int64_t layers, LayerClass cls) {
  const LayerRule* r = cls == LayerClass::local ? &p.local : &p.global;
  for (const LayerOverride& o : p.layers) {
    const int64_t first = o.first < 0 ? std::max<int64_t>(0, layers + o.first) : o.first;
    const int64_t last = o.first < 0 ? layers - 1 : o.last;
    if (i >= first && i <= last) r = &o.rule;
  }
  return *r;
}

Op layer_op(const ModelConfig& m, const ModelOptions& o, int64_t q, int64_t k) {
  Op op;
  op.name = m.name;
  op.shape = Shape{o.batch, m.heads, m.kv_heads, q, k, m.head_dim};
  op.causal = true;
  op.scale = m.scale();
  op.softcap = m.softcap;  // carried for the report and --validate; the cost models do not price the tanh
  op.precision = o.precision;
  return op;
}

// The op of a rule, its attributes filled (a sliding window from the config: HF's window counts
// the query itself, sattn's window_size the keys before it), clamped to the op's keys.
std::pair<Op, SpecParams> rule_op(Op op, const LayerRule& r, const ModelConfig& m) {
  op.attrs = r.attrs;
  if (r.spec == Spec::sliding_window) {
    if (!op.attrs.window_size) {
      if (!m.sliding_window)
        throw Error(ExitCode::invalid_input,
                    r.where + ": sliding_window needs a window_size: the model " + m.name + " has no sliding_window", r.loc);
      op.attrs.window_size = std::max<int64_t>(1, *m.sliding_window - 1);
    }
    op.attrs.window_size = std::min(*op.attrs.window_size, op.shape.kv_len);
    if (op.attrs.dilation) op.attrs.dilation = std::min(*op.attrs.dilation, op.shape.kv_len);
  }
  if (r.spec == Spec::bsr) {
    const int64_t longest = std::max(op.shape.seq_len, op.shape.kv_len);
    op.attrs.block_size = std::min(op.attrs.block_size.value_or(64), longest);
    if (op.attrs.comp_block_size) op.attrs.comp_block_size = std::min(*op.attrs.comp_block_size, *op.attrs.block_size);
    if (op.attrs.global_tokens) op.attrs.global_tokens = std::min(*op.attrs.global_tokens, op.shape.kv_len);
  }
  if (r.spec == Spec::quest) {
    // Pages no longer than the keys, and no more kept pages than there are (a short prefill).
    const int64_t longest = std::max(op.shape.seq_len, op.shape.kv_len);
    op.attrs.page_size = std::min(op.attrs.page_size.value_or(QuestParams{}.page_size), longest);
    const int64_t pages = (op.shape.kv_len + *op.attrs.page_size - 1) / *op.attrs.page_size;
    op.attrs.top_pages = std::min(op.attrs.top_pages.value_or(QuestParams{}.top_pages), pages);
  }
  try {
    validate(op);
    return {op, resolve_params(op, r.spec)};
  } catch (const Error& e) {
    throw Error(ExitCode::invalid_input, r.where + ": " + e.message(), r.loc);
  }
}

}  // namespace

double accel_dram_bytes(const Op& op, Spec spec, const SpecParams& params, int64_t q_tile_rows) {
  return accel_traffic(op, spec, params, q_tile_rows).bytes;
}

AccelTraffic accel_traffic(const Op& op, Spec spec, const SpecParams& params, int64_t q_tile_rows) {
  const Shape& s = op.shape;
  const auto a = layout_detail::alignment_of(op);
  const int64_t D = accel::padded_head_dim(s.head_dim, op.precision);
  const double rowbytes = op.precision == Precision::i4 ? double(D / 2) : double(D);
  const int64_t T = std::max<int64_t>(1, q_tile_rows), slots = accel::kKSlots;
  constexpr int64_t isa_entry_bytes = accel::isa::kIndexEntryBytes, isa_mask_bytes = accel::isa::kMaskRowBytes;
  double keys = 0;       // K (and V) rows loaded per query head
  double idx_bytes = 0;  // per query head: the gather path's index records (LOAD_IDX)
  double tiles = 0, chunks = 0, loads = 0;  // per query head: query tiles, key chunks, K/V/IDX loads
  double first = 0;  // per query head: the DMA bytes of each tile's first chunk, summed
  auto even = [](int64_t n) { return double(n + (n & 1)); };
  if (const auto* w = std::get_if<SlidingWindowParams>(&params)) {
    const int64_t last_t = op.causal ? 0 : w->window_size, span = w->window_size + last_t + 1;
    for (int64_t r0 = 0; r0 < a.rows; r0 += T) {
      const int64_t r1 = std::min(a.rows, r0 + T);
      const int64_t lo = std::max<int64_t>(0, a.aligned(r0) - w->window_size * w->dilation);
      const int64_t hi = std::min(a.key_end(r1 - 1), a.aligned(r1 - 1) + last_t * w->dilation + 1);
      double n = double(std::max<int64_t>(0, hi - lo));
      if (w->dilation > 1) n = std::min(n, double(r1 - r0) * double(span));
      if (w->wrap) n = std::min(double(a.cols), double(r1 - r0) * double(span));
      keys += n;
      // One record per chunk of KSLOTS gathered keys: an 8-byte entry per key and an 8-byte mask
      // per tile row, each list padded to an even count (accel_driver.cpp, Emitter::record).
      const int64_t nk = int64_t(n), tile_chunks = (nk + slots - 1) / slots;
      if (tile_chunks > 0)
        idx_bytes += double(isa_entry_bytes) * (double(tile_chunks - 1) * even(slots) + even(nk - (tile_chunks - 1) * slots)) +
                     double(isa_mask_bytes) * double(tile_chunks) * even(r1 - r0);
      tiles += 1;
      chunks += double(tile_chunks);
      loads += 3 * double(tile_chunks);  // LOAD_IDX, LOAD_K, LOAD_V
      if (tile_chunks > 0)
        first += double(std::min(nk, slots)) * 2 * rowbytes + double(isa_entry_bytes) * even(std::min(nk, slots)) +
                 double(isa_mask_bytes) * even(r1 - r0);
    }
  } else {
    int64_t b = 0;
    std::function<int64_t(int64_t, int64_t)> kept;  // (block row, candidates) -> kept blocks
    if (const auto* p = std::get_if<BsrParams>(&params)) {
      b = p->block_size;
      const int64_t globals = (p->global_tokens + b - 1) / b;
      const layout_detail::BlockGrid g{a, b};
      kept = [=](int64_t br, int64_t cand) {
        const int64_t forced = std::min(globals, cand) + (g.local_block(br) < globals ? 0 : 1);
        return std::min(cand, std::max(layout_detail::bsr_keep_count(p->keep_ratio, cand), forced));
      };
    } else if (const auto* p = std::get_if<QuestParams>(&params)) {
      b = p->page_size;
      kept = [=](int64_t, int64_t cand) { return std::min(p->top_pages, cand); };
    } else {  // dense (the policies' other specs are not block layouts)
      b = std::clamp<int64_t>(std::max(a.rows, a.cols), 1, 64);
      kept = [](int64_t, int64_t cand) { return cand; };
    }
    (void)spec;
    const layout_detail::BlockGrid grid{a, b};
    for (int64_t br = 0; br < grid.block_rows(); ++br) {
      const int64_t cand = grid.candidate_end(br);
      if (cand == 0) continue;
      const int64_t k = kept(br, cand), last = cand - 1, width = std::min(b, a.cols - last * b);
      for (int64_t r0 = br * b; r0 < std::min((br + 1) * b, a.rows); r0 += T) {
        const int64_t r1 = std::min({(br + 1) * b, a.rows, r0 + T});
        // The diagonal block's chunks of KSLOTS keys after the tile's last allowed key are skipped.
        int64_t diag = width, diag_chunks = (width + slots - 1) / slots;
        if (a.causal) {
          const int64_t allowed = std::clamp<int64_t>(a.key_end(r1 - 1) - last * b, 0, width);
          diag = std::min(width, (allowed + slots - 1) / slots * slots);
          diag_chunks = (allowed + slots - 1) / slots;
        }
        keys += double(k - 1) * double(b) + double(diag);
        const double tile_chunks = double(k - 1) * double((b + slots - 1) / slots) + double(diag_chunks);
        tiles += 1;
        chunks += tile_chunks;
        loads += 2 * tile_chunks;  // LOAD_K, LOAD_V
        // The tile's first chunk: of its first kept block, or of the diagonal one when it keeps one.
        const int64_t first_keys = k > 1 ? std::min(b, slots) : std::min<int64_t>(diag, slots);
        first += double(first_keys) * 2 * rowbytes;
      }
    }
  }
  const double heads = double(s.batch) * double(s.heads);
  const double q_in = heads * double(s.seq_len) * rowbytes, out = heads * double(s.seq_len) * double(D) * 2;
  AccelTraffic t;
  t.bytes = q_in + heads * (keys * 2 * rowbytes + idx_bytes) + out;
  t.q_bytes = q_in;
  t.out_bytes = out;
  t.tiles = heads * tiles;
  t.chunks = heads * chunks;
  t.loads = heads * loads;
  t.first_chunk_bytes = heads * first;
  return t;
}

LayerCost cost_layer(const Op& op, Spec spec, const SpecParams& params, const ModelOptions& o, int64_t new_tokens) {
  Coster coster(o);
  return coster.cost(op, spec, params, new_tokens);
}

ReducedLayer reduce_layer(const LayerReport& l, const ModelPhase& ph, int64_t max_len, int64_t max_head_dim) {
  const Shape& s = l.op.shape;
  Op op = l.op;
  const bool decode = ph.kind == ModelPhase::Kind::decode;
  const int64_t k = std::min(s.kv_len, max_len);
  const int64_t q = decode ? std::min({s.seq_len, k, int64_t(8)}) : std::min(s.seq_len, max_len);
  const double shrink = double(k) / double(s.kv_len);
  op.shape = Shape{1, s.group_size(), 1, q, k, std::min<int64_t>(s.head_dim, max_head_dim)};
  op.name = "layer" + std::to_string(l.index);
  op.attrs = PatternAttrs{};
  if (const auto* w = std::get_if<SlidingWindowParams>(&l.params)) {
    op.attrs.window_size = std::clamp<int64_t>(int64_t(std::llround(double(w->window_size) * shrink)), 1, k);
  } else if (const auto* b = std::get_if<BsrParams>(&l.params)) {
    // Keep at least 4 key blocks to select among (the block edge a power of two, 8..block_size).
    int64_t block = b->block_size;
    while (block > 8 && k / block < 4) block /= 2;
    op.attrs.block_size = block;
    op.attrs.keep_ratio = b->keep_ratio;
  } else if (const auto* qp = std::get_if<QuestParams>(&l.params)) {
    // The same page size, and the same fraction of the pages (at least 1), at least 4 pages.
    int64_t page = qp->page_size;
    while (page > 4 && k / page < 4) page /= 2;
    const double pages_full = double((s.kv_len + qp->page_size - 1) / qp->page_size);
    const int64_t pages = (k + page - 1) / page;
    op.attrs.page_size = page;
    op.attrs.top_pages =
        std::clamp<int64_t>(int64_t(std::llround(double(qp->top_pages) / pages_full * double(pages))), 1, pages);
  }
  validate(op);
  return {op, resolve_params(op, l.spec)};
}

std::vector<int64_t> sample_layers(int64_t layers, int64_t n) {
  std::vector<int64_t> out;
  n = std::clamp<int64_t>(n, 0, layers);
  for (int64_t t = 0; t < n; ++t) {
    const int64_t i = n == 1 ? 0 : int64_t(std::llround(double(t) * double(layers - 1) / double(n - 1)));
    if (out.empty() || out.back() != i) out.push_back(i);
  }
  return out;
}

ModelReport cost_model(const ModelConfig& m, const ModelPolicy& p, const ModelOptions& o) {
  const ModelPhase& ph = o.phase;
  const bool decode = ph.kind == ModelPhase::Kind::decode;
  const int64_t q = decode ? ph.chunk : ph.seq_len;
  const int64_t k = decode ? ph.context : ph.seq_len;
  const int64_t limit = int64_t(1) << 30;
  if (q < 1 || k < 1 || q > limit || k > limit)
    throw Error(ExitCode::usage, "the phase's lengths must be in [1, 2^30]");
  if (decode && q > k) throw Error(ExitCode::usage, "--chunk (" + std::to_string(q) + ") must be <= --context (" + std::to_string(k) + ")");
  if (k > m.max_position && !o.allow_beyond_max_position)
    throw Error(ExitCode::usage, std::string(decode ? "--context " : "--seq ") + std::to_string(k) +
                                     " exceeds the model's max_position_embeddings (" + std::to_string(m.max_position) +
                                     "); --allow-long costs it anyway");
  for (const LayerOverride& ov : p.layers)
    if (ov.first >= 0 && ov.first >= m.layers)
      throw Error(ExitCode::invalid_input, ov.rule.where + ": layer " + std::to_string(ov.first) + " does not exist (" +
                                               m.name + " has " + std::to_string(m.layers) + " layers)", ov.rule.loc);
  ModelReport rep;
  rep.config = m;
  rep.policy = p;
  rep.options = o;
  Coster coster(o);
  const double steps = decode ? double(ph.steps()) : 1.0;
  const int64_t new_tokens = decode ? ph.chunk : ph.seq_len;
  const Op base = layer_op(m, o, q, k);
  const LayerRule dense_rule{Spec::dense, {}, "dense", {}};
  const auto [dense_op, dense_params] = rule_op(base, dense_rule, m);
  const LayerCost dense_step = coster.cost(dense_op, Spec::dense, dense_params, new_tokens);
  // Layers with the same rule cost the same: cache by the rule's address.
  std::map<const LayerRule*, LayerCost> cache;
  for (int64_t i = 0; i < m.layers; ++i) {
    LayerReport l;
    l.index = i;
    l.cls = m.classes[size_t(i)];
    const LayerRule& r = rule_for(p, i, m.layers, l.cls);
    auto [op, params] = rule_op(base, r, m);
    l.op = op;
    l.spec = r.spec;
    l.params = params;
    l.rule = r.where;
    auto it = cache.find(&r);
    if (it == cache.end()) it = cache.emplace(&r, coster.cost(op, r.spec, params, new_tokens)).first;
    const double density = it->second.density;
    l.sparse.add(it->second, steps);
    l.sparse.density = density;
    l.dense.add(dense_step, steps);
    l.dense.density = dense_step.density;
    rep.sparse.add(l.sparse);
    rep.dense.add(l.dense);
    rep.layers.push_back(std::move(l));
  }
  rep.sparse.density = rep.dense.pairs > 0 ? rep.sparse.pairs / rep.dense.pairs : 0;
  rep.dense.density = 1;
  auto seconds = [&](const LayerCost& c) {
    const double hz = o.clock_mhz * 1e6;
    return std::map<std::string, double>{{"cpu", c.cpu_s},
                                         {"rvv", c.rvv_cycles / hz},
                                         {"rocc", c.rocc_cycles / hz},
                                         {"imc", c.imc_latency_ns * 1e-9}};
  };
  rep.seconds_sparse = seconds(rep.sparse);
  rep.seconds_dense = seconds(rep.dense);
  return rep;
}

}  // namespace sattn
