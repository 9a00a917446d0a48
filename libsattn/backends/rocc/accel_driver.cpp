// sattn::accel driver: quantizes the inputs, lays out the DRAM image and lowers a layout to the
// accelerator's command stream (hw/README.md). Block layouts become contiguous key blocks; row
// layouts become gathered key chunks with per-row masks (the index records of LOAD_IDX).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "backends/rocc/accel.hpp"
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

struct Emitter {
  std::vector<Command> cmds;
  std::vector<uint8_t> idx_region;
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
  const size_t addr_cmds = em.cmds.size();
  for (int base = 0; base < isa::kAddrBaseCount; ++base)
    em.cmd(Funct::config, config_rs1(ConfigOp::addr) | isa::kConfigBase.put(uint64_t(base)), 0);
  return addr_cmds;
}

// One query tile [r0, r0 + nq) of one head against its keys: what every chunk command shares.
struct Tile {
  int64_t r0 = 0, nq = 0;
  uint64_t kv_off = 0, rowbytes = 0;
  bool qbuf = false;
  uint64_t run_rs1(int64_t k0) const {
    return isa::kRunQpos0.put(uint32_t(int32_t(r0))) | isa::kRunKpos0.put(uint32_t(int32_t(k0)));
  }
  // rs2 of a RUN over nk keys of buffer kvbuf (and the tile's Q buffer).
  uint64_t run_rs2(uint64_t nk, bool kvbuf) const {
    return isa::kRunNq.put(uint64_t(nq)) | isa::kRunNk.put(nk) | isa::kRunKvBuffer.put(kvbuf) | isa::kRunQBuffer.put(qbuf);
  }
};

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
      em.cmd(Funct::load_v, t.kv_off + uint64_t(k0) * t.rowbytes, rs2_count_buf(uint64_t(nk), kvbuf));
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
    em.cmd(Funct::load_v, t.kv_off, rs2_count_buf(nk, kvbuf) | gather);
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
          qbuf = cfg.double_buffer ? !qbuf : false;
          t.qbuf = qbuf;
          em.cmd(Funct::load_q, q_off + uint64_t(r0) * rowbytes, rs2_count_buf(uint64_t(t.nq), qbuf));
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
                 base_idx = align16(base_v + vb.size()), base_out = align16(base_idx + em.idx_region.size());
  p.out_offset = base_out;
  p.out_bytes = uint64_t(sh.batch * sh.heads * sh.seq_len * sh.head_dim) * 2;
  p.dram.assign(align16(base_out + p.out_bytes), 0);
  std::memcpy(p.dram.data() + base_q, qb.data(), qb.size());
  std::memcpy(p.dram.data() + base_k, kb.data(), kb.size());
  std::memcpy(p.dram.data() + base_v, vb.data(), vb.size());
  if (!em.idx_region.empty()) std::memcpy(p.dram.data() + base_idx, em.idx_region.data(), em.idx_region.size());
  uint64_t bases[isa::kAddrBaseCount] = {};
  bases[int(AddrBase::q)] = base_q;
  bases[int(AddrBase::k)] = base_k;
  bases[int(AddrBase::v)] = base_v;
  bases[int(AddrBase::idx)] = base_idx;
  bases[int(AddrBase::out)] = base_out;
  for (int i = 0; i < isa::kAddrBaseCount; ++i) em.cmds[addr_cmds + size_t(i)].rs2 = bases[i];
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
  std::tie(p.score_mult, p.score_shift) = score_multiplier(scales.q, scales.k, given.softmax_scale());
  const int64_t D = op.shape.head_dim;
  const std::vector<uint8_t> qb = quantized_bytes(pad_head_dim(data.q, D), scales.q, op.precision);
  const std::vector<uint8_t> kb = quantized_bytes(pad_head_dim(data.k, D), scales.k, op.precision);
  const std::vector<uint8_t> vb = quantized_bytes(pad_head_dim(data.v, D), scales.v, op.precision);
  Emitter em;
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
