// sattn::accel driver: quantizes the inputs, lays out the DRAM image and lowers a layout to the
// accelerator's command stream (hw/README.md). Block layouts become contiguous key blocks; row
// layouts become gathered key chunks with per-row masks (the index records of LOAD_IDX).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "backends/rocc/accel.hpp"
#include "core/quant_scheme.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"

namespace sattn::accel {

namespace {

uint64_t align16(uint64_t x) { return (x + 15) & ~uint64_t(15); }

// int8 values of a tensor, then packed for i4 (two per byte, low nibble first).
std::vector<uint8_t> quantized_bytes(const Tensor& t, float scale, Precision p) {
  std::vector<int8_t> q(t.data.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = quantize(t.data[i], scale, p);
  if (p == Precision::i4) return pack_i4(q);
  return std::vector<uint8_t>(q.begin(), q.end());
}

// A scheme program's tables (hw/README.md "Quantization schemes"): the scale word of every Q and
// K row, and what the bias rows are computed from.
struct SchemeTables {
  const QuantizedQKV* z = nullptr;
  std::vector<uint32_t> q_words, k_words;  // [B*H*S], [B*KVH*KV]
  bool bias = false;
  int bias_shift = 0;
  double c0 = 0;  // softmax_scale * log2(e) * 256: score units -> the log2 domain, 8 fractional bits
};

struct Emitter {
  std::vector<Command> cmds;
  std::vector<uint8_t> idx_region;
  const SchemeTables* scheme = nullptr;
  std::vector<uint8_t> quant_region;  // scale words and bias rows (base QUANT)
  // rows x cols 32-bit words, each row padded to whole beats; returns its offset in the region.
  uint64_t words(const std::vector<uint32_t>& w, size_t rows, size_t cols) {
    const uint64_t off = quant_region.size();
    const size_t stride = (cols + 3) / 4 * 4;
    quant_region.resize(off + rows * stride * 4, 0);
    for (size_t r = 0; r < rows; ++r) std::memcpy(quant_region.data() + off + r * stride * 4, w.data() + r * cols, cols * 4);
    return off;
  }
  void cmd(Funct f, uint64_t rs1, uint64_t rs2) { cmds.push_back({f, rs1, rs2}); }
  // An index record (hw/README.md "LOAD_IDX"); returns its offset in the IDX region.
  uint64_t record(const std::vector<int32_t>& keys, const std::vector<uint64_t>& masks) {
    const uint64_t off = idx_region.size();
    constexpr size_t E = isa::kIndexEntryBytes, M = isa::kMaskRowBytes;
    static_assert(E == 8 && M == 8, "an entry is {int32 key index, int32 run length}; a mask row is 64 bits");
    const size_t n2 = keys.size() + (keys.size() & 1), m2 = masks.size() + (masks.size() & 1);
    idx_region.resize(off + E * n2 + M * m2, 0);
    uint8_t* p = idx_region.data() + off;
    for (size_t s = 0; s < keys.size(); ++s) {
      int32_t run = 0;
      if (s == 0 || keys[s] != keys[s - 1] + 1)
        for (size_t e = s; e < keys.size() && keys[e] == keys[s] + int32_t(e - s); ++e) ++run;
      std::memcpy(p + E * s, &keys[s], 4);
      std::memcpy(p + E * s + 4, &run, 4);
    }
    for (size_t r = 0; r < masks.size(); ++r) std::memcpy(p + E * n2 + M * r, &masks[r], M);
    return off;
  }
};

// rs2 of a load: the row count and the buffer.
uint64_t rs2_count_buf(uint64_t n, bool buf) { return isa::kLoadCount.put(n) | isa::kLoadBuffer.put(buf); }

}  // namespace

std::pair<uint32_t, int> score_multiplier(double scale_q, double scale_k, double softmax_scale) {
  const double c = scale_q * scale_k * softmax_scale * 1.4426950408889634 * 256.0;
  if (!(c > 0) || !std::isfinite(c)) throw Error(ExitCode::invalid_input, "accel: the score scale must be a positive number");
  for (int sh = 47; sh >= 0; --sh) {
    const double m = std::nearbyint(std::ldexp(c, sh));
    if (m < 2147483648.0) return {uint32_t(std::max(1.0, m)), sh};
  }
  return {0x7fffffffu, 0};  // logits beyond 2^23 per unit score: saturate the multiplier
}

namespace {

// What the accelerator cannot run is the op's input error (exit 3), named before any work.
void check_supported(const Op& op, const Layout& layout) {
  const Shape& sh = op.shape;
  auto bad = [&](const std::string& m) { throw Error(ExitCode::invalid_input, "accel: " + m, op.loc); };
  if (op.precision != Precision::i8 && op.precision != Precision::i4)
    bad("the accelerator computes in i8 or i4, not " + std::string(to_string(op.precision)) +
        " (set precision = \"i8\" or \"i4\")");
  if (padded_head_dim(sh.head_dim, op.precision) > kMaxHeadDim)
    bad("head_dim " + std::to_string(sh.head_dim) + " is not supported: padded to a multiple of " +
        std::to_string(op.precision == Precision::i4 ? isa::kHeadDimMultipleI4 : isa::kHeadDimMultiple) +
        " it must be at most " + std::to_string(kMaxHeadDim) + " (the scratchpad row, DMAX)");
  if (layout.rows != sh.seq_len || layout.cols != sh.kv_len) bad("the layout does not match the op's shape");
  if (sh.seq_len > INT32_MAX / 2 || sh.kv_len > INT32_MAX / 2) bad("sequence too long for 32-bit positions");
}

uint64_t config_rs1(ConfigOp op) { return isa::kConfigSubop.put(uint64_t(op)); }

// CONFIG shape, spec, scale, then one ADDR per base (their addresses are patched in once the DRAM
// image is laid out). Returns the index of the first ADDR command.
size_t emit_config(Emitter& em, const Op& op, const Layout& layout, const Config& cfg, const Program& p) {
  const bool i4 = op.precision == Precision::i4;
  const uint64_t shape_rs2 = isa::kShapeHeadDim.put(uint64_t(op.shape.head_dim)) | isa::kShapeI4.put(i4) |
                             isa::kShapeCausal.put(layout.causal) | isa::kShapeDoubleBuffer.put(cfg.double_buffer) |
                             isa::kShapeCausalOffset.put(uint32_t(int32_t(layout.causal_offset)));
  em.cmd(Funct::config, config_rs1(ConfigOp::shape), shape_rs2);
  em.cmd(Funct::config, config_rs1(ConfigOp::spec),
         isa::kSpecCode.put(uint64_t(int(layout.spec))) | isa::kSpecFormat.put(layout.block));
  em.cmd(Funct::config, config_rs1(ConfigOp::scale),
         isa::kScaleMult.put(p.score_mult) | isa::kScaleShift.put(uint64_t(p.score_shift)));
  if (p.schemed)
    em.cmd(Funct::config, config_rs1(ConfigOp::quant),
           isa::kQuantScaled.put(1) | isa::kQuantBias.put(p.scheme.smooth_q) | isa::kQuantV16.put(p.v16) |
               isa::kQuantBiasShift.put(uint64_t(p.bias_shift)));
  const size_t addr_cmds = em.cmds.size();
  // Base QUANT only in scheme programs: per-tensor programs are what they were before schemes.
  for (int base = 0; base < isa::kAddrBaseCount; ++base)
    if (p.schemed || AddrBase(base) != AddrBase::quant)
      em.cmd(Funct::config, config_rs1(ConfigOp::addr) | isa::kConfigBase.put(uint64_t(base)), 0);
  return addr_cmds;
}

// One query tile [r0, r0 + nq) of one head against its keys: what every chunk command shares.
struct Tile {
  int64_t b = 0, h = 0, kvh = 0;
  int64_t r0 = 0, nq = 0;
  uint64_t kv_off = 0, rowbytes = 0;
  uint64_t v_off = 0, vrowbytes = 0;  // V's own (wider with v16)
  bool qbuf = false;
  uint64_t run_rs1(int64_t k0) const {
    return isa::kRunQpos0.put(uint32_t(int32_t(r0))) | isa::kRunKpos0.put(uint32_t(int32_t(k0)));
  }
  // rs2 of a RUN over nk keys of buffer kvbuf (and the tile's Q buffer).
  uint64_t run_rs2(uint64_t nk, bool kvbuf) const {
    return isa::kRunNq.put(uint64_t(nq)) | isa::kRunNk.put(nk) | isa::kRunKvBuffer.put(kvbuf) | isa::kRunQBuffer.put(qbuf);
  }
};

// A scheme chunk: the K scale words of its slots (LOAD_SCALE target 2) and, with smooth_q, its
// bias rows (target 3): bias row i of the chunk is the query block of tile row i << bias_shift
// (bias_shift 0: of tile row i), and holds round(c0 * m_Q,block . k'_key) per slot.
void emit_chunk_scales(Emitter& em, const Tile& t, const std::vector<int32_t>& keys, bool kvbuf) {
  const SchemeTables& st = *em.scheme;
  const QuantizedQKV& z = *st.z;
  const size_t nk = keys.size();
  std::vector<uint32_t> kw(nk);
  for (size_t s = 0; s < nk; ++s) kw[s] = st.k_words[size_t(z.k_row(t.b, t.kvh, keys[s]))];
  const uint64_t buf = isa::kLoadScaleBuffer.put(kvbuf);
  em.cmd(Funct::load_scale, em.words(kw, 1, nk),
         isa::kLoadScaleCount.put(nk) | isa::kLoadScaleRows.put(1) | isa::kLoadScaleTarget.put(2) | buf);
  if (!st.bias) return;
  const int64_t g = st.bias_shift, rows = (t.nq + (int64_t(1) << g) - 1) >> g;
  std::vector<uint32_t> bw(size_t(rows) * nk);
  for (int64_t i = 0; i < rows; ++i) {
    const float* mean = z.mean_of(t.b, t.h, t.r0 + (i << g));
    for (size_t s = 0; s < nk; ++s) {
      const float* kr = z.k_smooth.data() + z.k_row(t.b, t.kvh, keys[s]) * z.dim;
      double dot = 0;
      for (int64_t c = 0; c < z.dim; ++c) dot += double(mean[c]) * double(kr[c]);
      const double v = std::clamp(std::nearbyint(st.c0 * dot), double(INT32_MIN), double(INT32_MAX));
      bw[size_t(i) * nk + s] = uint32_t(int32_t(v));
    }
  }
  em.cmd(Funct::load_scale, em.words(bw, size_t(rows), nk),
         isa::kLoadScaleCount.put(nk) | isa::kLoadScaleRows.put(uint64_t(rows)) | isa::kLoadScaleTarget.put(3) | buf);
}

// BSR: the tile's kept key blocks in chunks of up to kKSlots contiguous keys (chunks with no
// allowed pair under causal are skipped).
void emit_block_chunks(Emitter& em, Program& p, const Layout& layout, const HeadLayout& hl, const Tile& t,
                       const Config& cfg, bool& kvbuf) {
  const int64_t kv_len = layout.cols, off = layout.causal_offset;
  const int64_t br = t.r0 / layout.block_size;
  for (int64_t e = hl.ptr[size_t(br)]; e < hl.ptr[size_t(br) + 1]; ++e) {
    const int64_t c = hl.idx[size_t(e)];
    const int64_t c_end = std::min(kv_len, (c + 1) * layout.block_size);
    for (int64_t k0 = c * layout.block_size; k0 < c_end; k0 += kKSlots) {
      const int64_t nk = std::min<int64_t>(kKSlots, c_end - k0);
      if (layout.causal && k0 > t.r0 + t.nq - 1 + off) continue;  // no allowed pair in this chunk
      kvbuf = cfg.double_buffer ? !kvbuf : false;
      em.cmd(Funct::load_k, t.kv_off + uint64_t(k0) * t.rowbytes, rs2_count_buf(uint64_t(nk), kvbuf));
      em.cmd(Funct::load_v, t.v_off + uint64_t(k0) * t.vrowbytes, rs2_count_buf(uint64_t(nk), kvbuf));
      if (em.scheme) {
        std::vector<int32_t> keys(static_cast<size_t>(nk));
        for (int64_t s = 0; s < nk; ++s) keys[size_t(s)] = int32_t(k0 + s);
        emit_chunk_scales(em, t, keys, kvbuf);
      }
      em.cmd(Funct::run, t.run_rs1(k0), t.run_rs2(uint64_t(nk), kvbuf));
      ++p.chunks;
    }
  }
}

// CSR: the union of the tile rows' keys, in chunks of up to kKSlots gathered keys, each with an
// index record and one mask per row.
void emit_gather_chunks(Emitter& em, Program& p, const HeadLayout& hl, const Tile& t, const Config& cfg, bool& kvbuf) {
  std::vector<int32_t> keys;
  for (int64_t r = t.r0; r < t.r0 + t.nq; ++r)
    keys.insert(keys.end(), hl.idx.begin() + hl.ptr[size_t(r)], hl.idx.begin() + hl.ptr[size_t(r) + 1]);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (size_t c0 = 0; c0 < keys.size(); c0 += kKSlots) {
    const size_t nk = std::min<size_t>(kKSlots, keys.size() - c0);
    const std::vector<int32_t> chunk(keys.begin() + long(c0), keys.begin() + long(c0 + nk));
    std::vector<uint64_t> masks(size_t(t.nq), 0);
    for (int64_t r = t.r0; r < t.r0 + t.nq; ++r) {
      const auto first = hl.idx.begin() + hl.ptr[size_t(r)], last = hl.idx.begin() + hl.ptr[size_t(r) + 1];
      for (size_t s = 0; s < nk; ++s)
        if (std::binary_search(first, last, chunk[s])) masks[size_t(r - t.r0)] |= uint64_t(1) << s;
    }
    const uint64_t rec = em.record(chunk, masks);
    kvbuf = cfg.double_buffer ? !kvbuf : false;
    const uint64_t gather = isa::kLoadGather.put(1);
    em.cmd(Funct::load_idx, rec, rs2_count_buf(nk, kvbuf) | isa::kLoadMaskRows.put(uint64_t(t.nq)));
    em.cmd(Funct::load_k, t.kv_off, rs2_count_buf(nk, kvbuf) | gather);
    em.cmd(Funct::load_v, t.v_off, rs2_count_buf(nk, kvbuf) | gather);
    if (em.scheme) emit_chunk_scales(em, t, chunk, kvbuf);
    em.cmd(Funct::run, t.run_rs1(0), t.run_rs2(nk, kvbuf) | isa::kRunUseMask.put(1) | isa::kRunUseIndex.put(1));
    ++p.chunks;
  }
}

// Every (batch, head): its query tiles (within a block row for BSR, so every row of a tile shares
// its block list), each loaded, run against its chunks, and stored.
void emit_heads(Emitter& em, Program& p, const Op& op, const Layout& layout, const Config& cfg) {
  const Shape& sh = op.shape;
  const int64_t D = sh.head_dim, g = sh.group_size();
  const uint64_t rowbytes = uint64_t(op.precision == Precision::i4 ? D / 2 : D);
  const uint64_t vrowbytes = p.v16 ? uint64_t(2 * D) : rowbytes;
  bool qbuf = false, kvbuf = false;
  const int64_t tile = cfg.q_tile_rows;
  for (int64_t b = 0; b < sh.batch; ++b) {
    for (int64_t h = 0; h < sh.heads; ++h) {
      const int64_t kvh = h / g;
      const HeadLayout& hl = layout.head(b, kvh);
      p.allowed_pairs += layout.allowed_pairs(b, kvh);
      const uint64_t q_off = uint64_t((b * sh.heads + h) * sh.seq_len) * rowbytes;
      const uint64_t o_off = uint64_t((b * sh.heads + h) * sh.seq_len) * uint64_t(D) * 2;
      const int64_t span = layout.block ? layout.block_size : sh.seq_len;
      for (int64_t r_begin = 0; r_begin < sh.seq_len; r_begin += span) {
        const int64_t r_end = std::min(sh.seq_len, r_begin + span);
        for (int64_t r0 = r_begin; r0 < r_end; r0 += tile) {
          Tile t;
          t.r0 = r0;
          t.nq = std::min(tile, r_end - r0);
          t.kv_off = uint64_t((b * sh.kv_heads + kvh) * sh.kv_len) * rowbytes;
          t.rowbytes = rowbytes;
          t.v_off = uint64_t((b * sh.kv_heads + kvh) * sh.kv_len) * vrowbytes;
          t.vrowbytes = vrowbytes;
          t.b = b;
          t.h = h;
          t.kvh = kvh;
          qbuf = cfg.double_buffer ? !qbuf : false;
          t.qbuf = qbuf;
          em.cmd(Funct::load_q, q_off + uint64_t(r0) * rowbytes, rs2_count_buf(uint64_t(t.nq), qbuf));
          if (em.scheme) {  // the tile rows' Q scale words (LOAD_SCALE target 1), with the Q buffer
            const auto first = em.scheme->q_words.begin() + (b * sh.heads + h) * sh.seq_len + r0;
            em.cmd(Funct::load_scale, em.words(std::vector<uint32_t>(first, first + t.nq), 1, size_t(t.nq)),
                   isa::kLoadScaleCount.put(uint64_t(t.nq)) | isa::kLoadScaleRows.put(1) |
                       isa::kLoadScaleTarget.put(1) | isa::kLoadScaleBuffer.put(qbuf));
          }
          ++p.tiles;
          if (layout.block)
            emit_block_chunks(em, p, layout, hl, t, cfg, kvbuf);
          else
            emit_gather_chunks(em, p, hl, t, cfg, kvbuf);
          em.cmd(Funct::store, o_off + uint64_t(r0) * uint64_t(D) * 2, isa::kStoreRows.put(uint64_t(t.nq)));
        }
      }
    }
  }
}

// Counter read-out: one snapshot, then one snapshot read per event.
void emit_counter_readout(Emitter& em, Program& p) {
  int responses = 0;
  for (const Command& c : em.cmds) responses += (c.funct == Funct::counter || c.funct == Funct::probe);
  em.cmd(Funct::counter, isa::kCounterTakeSnapshot.put(1), 0);
  p.counter_reads_begin = responses + 1;
  for (int e = 0; e < kEventCount; ++e)
    em.cmd(Funct::counter, isa::kCounterReadSnapshot.put(1) | isa::kCounterEvent.put(uint64_t(e)), 0);
}

// The DRAM image: Q, K, V, index records, output; each region 16-byte aligned. Patches the ADDR
// commands (from `addr_cmds` on) with the regions' bases.
void lay_out_dram(Program& p, Emitter& em, size_t addr_cmds, const std::vector<uint8_t>& qb,
                  const std::vector<uint8_t>& kb, const std::vector<uint8_t>& vb) {
  const Shape& sh = p.shape;
  const uint64_t base_q = 0, base_k = align16(base_q + qb.size()), base_v = align16(base_k + kb.size()),
                 base_idx = align16(base_v + vb.size()), base_quant = align16(base_idx + em.idx_region.size()),
                 base_out = align16(base_quant + em.quant_region.size());
  p.out_offset = base_out;
  p.out_bytes = uint64_t(sh.batch * sh.heads * sh.seq_len * sh.head_dim) * 2;
  p.dram.assign(align16(base_out + p.out_bytes), 0);
  std::memcpy(p.dram.data() + base_q, qb.data(), qb.size());
  std::memcpy(p.dram.data() + base_k, kb.data(), kb.size());
  std::memcpy(p.dram.data() + base_v, vb.data(), vb.size());
  if (!em.idx_region.empty()) std::memcpy(p.dram.data() + base_idx, em.idx_region.data(), em.idx_region.size());
  if (!em.quant_region.empty())
    std::memcpy(p.dram.data() + base_quant, em.quant_region.data(), em.quant_region.size());
  p.quant_bytes = int64_t(em.quant_region.size());
  uint64_t bases[isa::kAddrBaseCount] = {};
  bases[int(AddrBase::q)] = base_q;
  bases[int(AddrBase::k)] = base_k;
  bases[int(AddrBase::v)] = base_v;
  bases[int(AddrBase::idx)] = base_idx;
  bases[int(AddrBase::out)] = base_out;
  bases[int(AddrBase::quant)] = base_quant;
  for (size_t i = addr_cmds; i < em.cmds.size() && em.cmds[i].funct == Funct::config; ++i)
    em.cmds[i].rs2 = bases[isa::kConfigBase.get(em.cmds[i].rs1)];
}

// t with its head_dim zero-padded to `dim` (zeros quantize to 0 and add nothing to a dot product).
Tensor pad_head_dim(const Tensor& t, int64_t dim) {
  if (t.shape[3] == dim) return t;
  Tensor out(t.shape[0], t.shape[1], t.shape[2], dim);
  const int64_t rows = t.shape[0] * t.shape[1] * t.shape[2], d = t.shape[3];
  for (int64_t r = 0; r < rows; ++r) std::copy_n(t.data.data() + r * d, d, out.data.data() + r * dim);
  return out;
}

}  // namespace

namespace {

// x > 0 as a scale word's (mantissa in [2^15, 2^16), shift) with x ~ mantissa * 2^-shift; the
// shift may fall outside 0..63 here (encode_words rebalances and clamps).
std::pair<uint32_t, int> split_scale(double x) {
  int e = 0;
  const double f = std::frexp(x, &e);  // x = f * 2^e, f in [0.5, 1)
  double m = std::nearbyint(std::ldexp(f, 16));
  if (m >= 65536.0) m = 32768.0, ++e;
  return {uint32_t(m), 16 - e};
}

// The Q and K scale words of hw/README.md "Quantization schemes": only the sum of a Q and a K
// shift matters, so one offset A moves shift between the two tables to bring both into 0..63
// (fq * fk < 2^31 or so always fits: larger products saturate every score anyway); what still
// falls outside is clamped (a shift below 0: the mantissa saturates; above 63: it is shifted out).
void encode_words(const std::vector<double>& fq, const std::vector<double>& fk, std::vector<uint32_t>& wq,
                  std::vector<uint32_t>& wk) {
  std::vector<std::pair<uint32_t, int>> sq, sk;
  int qmin = INT32_MAX;
  for (double x : fq) sq.push_back(split_scale(x)), qmin = std::min(qmin, sq.back().second);
  for (double x : fk) sk.push_back(split_scale(x));
  const int a = -qmin;  // the smallest Q shift becomes 0
  auto word = [](std::pair<uint32_t, int> ms, int offset) {
    int sh = ms.second + offset;
    uint32_t m = ms.first;
    if (sh < 0) m = 0xffff, sh = 0;
    if (sh > 63) m = sh - 63 >= 16 ? 0 : m >> (sh - 63), sh = 63;
    return uint32_t(m) | uint32_t(sh) << 16;
  };
  for (const auto& ms : sq) wq.push_back(word(ms, a));
  for (const auto& ms : sk) wk.push_back(word(ms, -a));
}

// The scheme's program settings and scale words: every Q row's word encodes
// q_scale * softmax_scale * log2(e) * 256, every K row's k_scale; the bias rows are grouped by
// query block when blocks align with the tiles (bias_shift = log2(block)), else one per row.
void build_scheme(Program& p, SchemeTables& st, const QuantizedQKV& z, const Op& op, const Layout& layout,
                  const Config& cfg) {
  p.schemed = true;
  p.scheme = z.scheme;
  p.v16 = z.scheme.pv == PvPrecision::fix16;
  p.v_scale = z.v_scale;
  const int64_t block = z.scheme.block;
  const bool pow2 = block >= 1 && block <= isa::kQRows && (block & (block - 1)) == 0;
  const bool aligned = cfg.q_tile_rows % block == 0 && (!layout.block || layout.block_size % block == 0);
  p.bias_shift = z.scheme.smooth_q && pow2 && aligned ? std::countr_zero(uint64_t(block)) : 0;
  st.z = &z;
  st.bias = z.scheme.smooth_q;
  st.bias_shift = p.bias_shift;
  st.c0 = op.softmax_scale() * 1.4426950408889634 * 256.0;
  std::vector<double> fq(z.q_scale.size()), fk(z.k_scale.size());
  for (size_t i = 0; i < fq.size(); ++i) fq[i] = double(z.q_scale[i]) * st.c0;
  for (size_t j = 0; j < fk.size(); ++j) fk[j] = double(z.k_scale[j]);
  encode_words(fq, fk, st.q_words, st.k_words);
}

// The DRAM bytes of a scheme's Q, K (int8 codes, packed for i4) and V (int16 little-endian with
// v16, else codes at the op's precision), head_dim zero-padded to D.
void scheme_bytes(const QuantizedQKV& z, int64_t D, bool v16, std::vector<uint8_t>& qb, std::vector<uint8_t>& kb,
                  std::vector<uint8_t>& vb) {
  const int64_t d = z.dim;
  auto pad = [&](const std::vector<int8_t>& codes) {
    std::vector<int8_t> out(codes.size() / size_t(d) * size_t(D), 0);
    for (size_t r = 0; r < codes.size() / size_t(d); ++r)
      std::copy_n(codes.begin() + long(r * size_t(d)), d, out.begin() + long(r * size_t(D)));
    if (z.precision == Precision::i4) return pack_i4(out);
    return std::vector<uint8_t>(out.begin(), out.end());
  };
  qb = pad(z.q_codes);
  kb = pad(z.k_codes);
  const size_t rows = z.v_codes.size() / size_t(d);
  if (v16) {
    vb.assign(rows * size_t(D) * 2, 0);
    for (size_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < d; ++c) {
        const uint16_t u = uint16_t(z.v_codes[r * size_t(d) + size_t(c)]);
        vb[(r * size_t(D) + size_t(c)) * 2] = uint8_t(u & 0xff);
        vb[(r * size_t(D) + size_t(c)) * 2 + 1] = uint8_t(u >> 8);
      }
    return;
  }
  // pv=fp32: V codes at the op's precision with the scheme's V scales (per tensor or channel).
  const size_t vrows = z.v_dequant.size() / size_t(d);
  std::vector<int8_t> codes(z.v_dequant.size());
  for (size_t r = 0; r < vrows; ++r) {
    const size_t head = r / size_t(z.kv_len);
    for (int64_t c = 0; c < d; ++c) {
      const float s = z.v_scale[head * size_t(d) + size_t(c)];
      codes[r * size_t(d) + size_t(c)] = int8_t(std::nearbyint(z.v_dequant[r * size_t(d) + size_t(c)] / s));
    }
  }
  vb = pad(codes);
}

}  // namespace

std::string scheme_support(const QuantScheme& scheme, const Capabilities& caps) {
  if (scheme.is_per_tensor()) return "";
  if (!caps.quant_scales) return "the accelerator has no scale words (PROBE quant_scales = 0)";
  if (scheme.pv == PvPrecision::i8)
    return "pv=i8 (P rounded to 127 levels) has no datapath on the accelerator: its P is 16-bit fixed point "
           "(pv=fp32 or pv=fix16 run)";
  if (scheme.pv == PvPrecision::fix16 && !caps.pv_fix16) return "no int16 V datapath (PROBE pv_fix16 = 0)";
  return "";
}

int64_t padded_head_dim(int64_t head_dim, Precision p) {
  const int64_t m = p == Precision::i4 ? isa::kHeadDimMultipleI4 : isa::kHeadDimMultiple;
  return (head_dim + m - 1) / m * m;
}

Program build_program(const Op& given, const Layout& layout, const QKV& data, const Scales& scales, const Config& cfg) {
  cfg.validate();
  check_supported(given, layout);
  // A head_dim the MAC array does not divide runs zero-padded (exact: the padded columns of Q and
  // K add 0 to every score, those of V give output columns that are dropped). The softmax scale
  // stays the op's (1/sqrt of the real head_dim unless explicit).
  Op op = given;
  op.shape.head_dim = padded_head_dim(given.shape.head_dim, given.precision);
  Program p;
  p.shape = op.shape;
  p.logical_head_dim = given.shape.head_dim;
  p.precision = op.precision;
  p.scales = scales;
  const int64_t D = op.shape.head_dim;
  Emitter em;
  if (given.quant_scheme && !given.quant_scheme->is_per_tensor()) {
    const std::string why = scheme_support(*given.quant_scheme, decode_capabilities(capability_words(cfg.lanes).first,
                                                                                    capability_words(cfg.lanes).second));
    if (!why.empty())
      throw Error(ExitCode::invalid_input,
                  "accel: quant_scheme " + to_string(*given.quant_scheme) + " cannot run on the accelerator: " + why,
                  given.loc_of("quant_scheme"));
    const QuantizedQKV z = quantize_qkv(given, *given.quant_scheme, data.q, data.k, data.v);
    SchemeTables st;
    build_scheme(p, st, z, given, layout, cfg);
    em.scheme = &st;
    std::vector<uint8_t> qb, kb, vb;
    scheme_bytes(z, D, p.v16, qb, kb, vb);
    const size_t addr_cmds = emit_config(em, op, layout, cfg, p);
    emit_heads(em, p, op, layout, cfg);
    emit_counter_readout(em, p);
    lay_out_dram(p, em, addr_cmds, qb, kb, vb);
    p.commands = std::move(em.cmds);
    return p;
  }
  std::tie(p.score_mult, p.score_shift) = score_multiplier(scales.q, scales.k, given.softmax_scale());
  const std::vector<uint8_t> qb = quantized_bytes(pad_head_dim(data.q, D), scales.q, op.precision);
  const std::vector<uint8_t> kb = quantized_bytes(pad_head_dim(data.k, D), scales.k, op.precision);
  const std::vector<uint8_t> vb = quantized_bytes(pad_head_dim(data.v, D), scales.v, op.precision);
  const size_t addr_cmds = emit_config(em, op, layout, cfg, p);
  emit_heads(em, p, op, layout, cfg);
  emit_counter_readout(em, p);
  lay_out_dram(p, em, addr_cmds, qb, kb, vb);
  p.commands = std::move(em.cmds);
  return p;
}

void write_program(const Program& p, const std::string& dir) {
  std::string text = "sattn-accel-program v1\n";
  text += "dram_bytes " + std::to_string(p.dram.size()) + "\n";
  text += "out_offset " + std::to_string(p.out_offset) + "\n";
  text += "out_bytes " + std::to_string(p.out_bytes) + "\n";
  text += "commands " + std::to_string(p.commands.size()) + "\n";
  char line[64];
  for (const Command& c : p.commands) {
    std::snprintf(line, sizeof line, "%u %016llx %016llx\n", unsigned(c.funct), (unsigned long long)c.rs1,
                  (unsigned long long)c.rs2);
    text += line;
  }
  const std::filesystem::path d(dir);
  write_atomic((d / "program.txt").string(), text);
  write_atomic((d / "dram.bin").string(), std::string(reinterpret_cast<const char*>(p.dram.data()), p.dram.size()));
}

Tensor decode_output(const Program& p, const RunResult& r) {
  const Shape& s = p.shape;  // head_dim padded; the output drops the padded columns
  const int64_t d = p.logical_head_dim > 0 ? p.logical_head_dim : s.head_dim;
  Tensor out(s.batch, s.heads, s.seq_len, d);
  const size_t want = size_t(s.batch * s.heads * s.seq_len * s.head_dim);
  if (r.out_bits.size() != want)
    throw Error(ExitCode::runtime, "accel: the output has " + std::to_string(r.out_bits.size()) + " values, expected " +
                                       std::to_string(want));
  const int64_t rows = s.batch * s.heads * s.seq_len;
  if (p.schemed) {  // per channel of the row's (batch, KV head); Q15.0 with v16, else Q8.8
    const double unit = p.v16 ? 1.0 : 256.0;
    const int64_t g = s.group_size();
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t bh = row / s.seq_len, b = bh / s.heads, kvh = bh % s.heads / g;
      const float* vs = p.v_scale.data() + (b * s.kv_heads + kvh) * d;
      for (int64_t c = 0; c < d; ++c)
        out.data[size_t(row * d + c)] = float(double(r.out_bits[size_t(row * s.head_dim + c)]) / unit * double(vs[c]));
    }
    return out;
  }
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t c = 0; c < d; ++c)
      out.data[size_t(row * d + c)] = float(double(r.out_bits[size_t(row * s.head_dim + c)]) / 256.0 * double(p.scales.v));
  return out;
}

QKV dequantized_inputs(const Program& p, const QKV& d) {
  return {apply_precision(d.q, p.precision, p.scales.q), apply_precision(d.k, p.precision, p.scales.k),
          apply_precision(d.v, p.precision, p.scales.v)};
}

}  // namespace sattn::accel
