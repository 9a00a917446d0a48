// The model's compute core, once per command (hw/rtl/sattn_core.sv; the per-cycle part is in
// accel_model_core.hpp): RUN's and STORE's arithmetic of hw/README.md "Arithmetic" over the
// scratchpads the DMA filled, and the cycles they take.
#include <algorithm>
#include <bit>
#include <cstring>

#include "backends/rocc/accel_model_core.hpp"
#include "sattn/error.hpp"

namespace sattn::accel::model {

namespace {

// Two's-complement int48 / unsigned 40-bit wrap (the accumulators' widths).
int64_t wrap48(int64_t x) { return int64_t(uint64_t(x) << 16) >> 16; }
uint64_t mask40(uint64_t x) { return x & ((uint64_t(1) << 40) - 1); }

// E(u) of hw/README.md "exp2": the table entry of u's fraction shifted by its integer part.
uint16_t exp2_fixed(int64_t u) {
  if (uint64_t(u) >= uint64_t(isa::kExp2ZeroShift) << isa::kExp2FracBits) return 0;
  return uint16_t(isa::kExp2Table[size_t(u & ((1 << isa::kExp2FracBits) - 1))] >> (u >> isa::kExp2FracBits));
}

// t = (s * M) >> SH, saturated to int32 (hw/README.md "Scores").
int32_t scale_score(int32_t s, uint32_t mult, int shift) {
  const int64_t prod = (int64_t(s) * int64_t(mult)) >> shift;
  return int32_t(std::clamp<int64_t>(prod, INT32_MIN, INT32_MAX));
}

// Scheme scores (hw/README.md "Quantization schemes"): with scale words wq = {sq, mq} and
// wk = {sk, mk} (mantissa [15:0], shift [21:16]), t0 = (s * mq * mk) >> (sq + sk) (an arithmetic
// shift; 63 at most), or the per-tensor (s * M) >> SH; then t = sat32(t0 + bias).
int64_t scheme_product(int32_t s, uint32_t wq, uint32_t wk) {
  const int64_t prod = int64_t(s) * int64_t(wq & 0xffff) * int64_t(wk & 0xffff);
  const int sh = int(wq >> 16 & 63) + int(wk >> 16 & 63);
  return prod >> std::min(sh, 63);
}
int32_t biased_score(int64_t t0, int32_t bias) {
  return int32_t(std::clamp<int64_t>(t0 + int64_t(bias), INT32_MIN, INT32_MAX));
}

// The row kernels of RUN, compiled for AVX2 and the baseline (the model's speed is in them;
// the grid runs them 56 G MACs deep at seq_len 16384). Both are exact integer arithmetic, so the
// clones agree bit for bit.
// QK: the dot product of the query row with each allowed slot's key (int8 x int8 summed in int32,
// exact: |sum| <= 128 * 128 * kMaxHeadDim = 2^22 with head_dim up to 256).
[[gnu::target_clones("arch=x86-64-v4", "avx2", "default")]] void row_dots(const int8_t* q, const int8_t (*k)[isa::kMaxHeadDim],
                                                        uint64_t mask, int d, int32_t* dots) {
  for (uint64_t rem = mask; rem; rem &= rem - 1) {
    const int s = std::countr_zero(rem);
    int32_t sum = 0;
    for (int dd = 0; dd < d; ++dd) sum += int32_t(q[dd]) * int32_t(k[s][dd]);
    dots[s] = sum;
  }
}

// P.V: out[dd] = sum over the allowed slots of p[s] * v[s][dd], in int32 for int8 V (exact:
// p < 2^16, |v| <= 128, at most kKSlots = 64 slots, so |sum| < 2^29). Adding the sum to an int48
// accumulator and wrapping once equals wrapping after every product (wrap48 is arithmetic mod
// 2^48).
[[gnu::target_clones("arch=x86-64-v4", "avx2", "default")]] void row_pv(const uint16_t* p, const int8_t (*v)[isa::kMaxHeadDim],
                                                      uint64_t mask, int d, int32_t* out) {
  for (int dd = 0; dd < d; ++dd) out[dd] = 0;
  for (uint64_t rem = mask; rem; rem &= rem - 1) {
    const int s = std::countr_zero(rem);
    const int32_t ps = p[s];
    for (int dd = 0; dd < d; ++dd) out[dd] += ps * int32_t(v[s][dd]);
  }
}

// P.V with int16 V (v16: V = vhmem:vmem): a product reaches 2^31, so the sums are int64 (exact:
// |sum| < 2^16 * 2^15 * 64 = 2^37); wrapping once equals wrapping after every product, as above.
[[gnu::target_clones("arch=x86-64-v4", "avx2", "default")]] void row_pv16(const uint16_t* p, const int8_t (*vh)[isa::kMaxHeadDim],
                                                        const int8_t (*vl)[isa::kMaxHeadDim], uint64_t mask, int d,
                                                        int64_t* out) {
  for (int dd = 0; dd < d; ++dd) out[dd] = 0;
  for (uint64_t rem = mask; rem; rem &= rem - 1) {
    const int s = std::countr_zero(rem);
    const int64_t ps = p[s];
    for (int dd = 0; dd < d; ++dd)
      out[dd] += ps * int64_t(int16_t(uint16_t(uint8_t(vh[s][dd])) << 8 | uint8_t(vl[s][dd])));
  }
}

}  // namespace

RunCost Core::start_run(const ConfigRegs& m, uint64_t rs1, uint64_t rs2) {
  RunCost cost;
  const int nq = int(isa::kRunNq.get(rs2)), nk = int(isa::kRunNk.get(rs2));
  const bool kvb = m.dbuf && isa::kRunKvBuffer.get(rs2), qb = m.dbuf && isa::kRunQBuffer.get(rs2);
  const bool use_mask = isa::kRunUseMask.get(rs2), use_idx = isa::kRunUseIndex.get(rs2);
  const int32_t qpos0 = int32_t(uint32_t(isa::kRunQpos0.get(rs1))), kpos0 = int32_t(uint32_t(isa::kRunKpos0.get(rs1)));
  run_kvb_ = kvb;
  run_qb_ = qb;
  if (nq == 0 || nk == 0) return cost;
  const int C = m.chunks(), D = m.d;
  for (int r = 0; r < nq; ++r) {
    // Row start: the allowed slots (mask RAM & causal & bounds).
    const int32_t limit = int32_t(uint32_t(qpos0) + uint32_t(r) + uint32_t(m.off));
    uint64_t mask = 0;
    for (int s = 0; s < nk; ++s) {
      const int32_t kpos = use_idx ? int32_t(idxmem_[kvb][s]) : int32_t(uint32_t(kpos0) + uint32_t(s));
      if ((!use_mask || (maskmem_[kvb][r] >> s & 1)) && (!m.causal || kpos <= limit)) mask |= uint64_t(1) << s;
    }
    const int n = std::popcount(mask);
    cost.skipped += int64_t(nk - n) * 2 * D;
    cost.cycles += 1;
    if (n == 0) continue;
    // QK: scores and their max.
    int32_t bm = 0;
    bool first = true;
    row_dots(qmem_[qb][r], kmem_[kvb], mask, D, tbuf_);
    for (uint64_t rem = mask; rem; rem &= rem - 1) {
      const int s = std::countr_zero(rem);
      const int32_t sum = tbuf_[s];
      int32_t t;
      if (!m.scaled && !m.bias) {
        t = scale_score(sum, m.mult, m.shift);
      } else {
        const int64_t t0 = m.scaled ? scheme_product(sum, qsmem_[qb][r], ksmem_[kvb][s])
                                    : (int64_t(sum) * int64_t(m.mult)) >> m.shift;
        t = biased_score(t0, m.bias ? biasmem_[kvb][r >> m.bias_shift][s] : 0);
      }
      tbuf_[s] = t;
      if (first || t > bm) bm = t;
      first = false;
    }
    // Max/exp step and the rescale when the running max moves.
    const int32_t mnew = (mvalid_[r] && mrow_[r] > bm) ? mrow_[r] : bm;
    const int s0 = std::countr_zero(mask);
    const uint16_t p0 = exp2_fixed(int64_t(mnew) - int64_t(tbuf_[s0]));
    uint64_t lnew = lrow_[r];
    bool rescale = false;
    if (mvalid_[r] && mnew != mrow_[r]) {
      const uint16_t a = exp2_fixed(int64_t(mnew) - int64_t(mrow_[r]));
      lnew = mask40((lnew * a) >> 15);
      for (int dd = 0; dd < D; ++dd) acc_[r][dd] = wrap48((acc_[r][dd] * int64_t(a)) >> 15);
      rescale = true;
    }
    lrow_[r] = mask40(lnew + p0);
    mrow_[r] = mnew;
    mvalid_[r] = true;
    // P*V.
    uint16_t pbuf[isa::kKSlots];
    for (uint64_t rem = mask; rem; rem &= rem - 1) {
      const int s = std::countr_zero(rem);
      uint16_t p = p0;
      if (s != s0) {
        p = exp2_fixed(int64_t(mnew) - int64_t(tbuf_[s]));
        lrow_[r] = mask40(lrow_[r] + p);
      }
      pbuf[s] = p;
    }
    if (m.v16) {
      int64_t pv[isa::kMaxHeadDim];
      row_pv16(pbuf, vhmem_[kvb], vmem_[kvb], mask, D, pv);
      for (int dd = 0; dd < D; ++dd) acc_[r][dd] = wrap48(acc_[r][dd] + pv[dd]);
    } else {
      int32_t pv[isa::kMaxHeadDim];
      row_pv(pbuf, vmem_[kvb], mask, D, pv);
      for (int dd = 0; dd < D; ++dd) acc_[r][dd] = wrap48(acc_[r][dd] + int64_t(pv[dd]));
    }
    cost.cycles += int64_t(2) * n * C + 1 + (rescale ? C : 0);
    cost.mac_cycles += int64_t(2) * n * C;
    cost.macs += int64_t(2) * n * D;
  }
  run_left_ = cost.cycles;
  state_ = State::run;
  return cost;
}

// STORE's normalization of one row (hw/README.md "Normalization"), clearing the row.
void Core::normalize_row(const ConfigRegs& m, int r, int16_t* out) {
  const uint64_t l = lrow_[r];
  const int n = l == 0 ? 0 : 64 - std::countl_zero(l);
  const int e = n > 16 ? n - 16 : 0;
  const uint64_t lm = (l >> e) & 0xffff;
  // Restoring division, literally as the RTL steps it (quotient bits 16..0 of 2^31 / lm).
  uint64_t rem = 16384, recip = 0;
  for (int bit = kRecipBits - 1; bit >= 0; --bit) {
    const uint64_t r2 = rem << 1;
    if (r2 >= lm) {
      rem = (r2 - lm) & 0x1ffff;
      recip |= uint64_t(1) << bit;
    } else {
      rem = r2 & 0x1ffff;
    }
  }
  // Q8.8 output, or Q15.0 with int16 V (v16): 8 more bits of shift; 66-bit products.
  const int sh = 23 + e + (m.v16 ? 8 : 0);
  for (int dd = 0; dd < m.d; ++dd) {
    __int128 wide = __int128(acc_[r][dd]) * __int128(recip);
    wide = (wide + (__int128(1) << (sh - 1))) >> sh;
    int64_t o = int64_t(std::clamp<__int128>(wide, -32768, 32767));
    if (l == 0) o = 0;
    out[dd] = int16_t(std::clamp<int64_t>(o, -32768, 32767));
    acc_[r][dd] = 0;
  }
  mvalid_[r] = false;
  lrow_[r] = 0;
}

void Core::start_store(const ConfigRegs& m, int nq, uint64_t addr, std::vector<uint8_t>& dram) {
  if (nq == 0) return;
  st_nq_ = nq;
  st_row_ = 0;
  st_norm_left_ = kStoreSetupCycles + kRecipBits + m.chunks();
  state_ = State::store_norm;
  // The data is final now (no RUN can start before STORE ends); the beats only time it.
  std::vector<int16_t> row(size_t(m.d));
  for (int r = 0; r < nq; ++r) {
    normalize_row(m, r, row.data());
    const uint64_t row_addr = addr + uint64_t(r) * uint64_t(m.d) * 2;
    if (row_addr + row.size() * 2 > dram.size()) throw Error(ExitCode::invalid_input, "accel: STORE outside DRAM");
    std::memcpy(dram.data() + row_addr, row.data(), row.size() * 2);
  }
}

}  // namespace sattn::accel::model
