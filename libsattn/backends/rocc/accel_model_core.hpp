// The model's compute core (hw/rtl/sattn_core.sv): scratchpads written by the DMA, the
// accumulators, and the RUN and STORE engines. RUN computes its rows when it starts
// (accel_model_core.cpp) and counts its cycles down (the RTL walks them; the totals are equal);
// STORE normalizes when it starts and steps the per-row normalize and write-beat cycles.
#pragma once
#include <cstring>
#include <vector>

#include "backends/rocc/accel_model.hpp"

namespace sattn::accel::model {

class Core {
 public:
  enum class State : uint8_t { idle, run, store_norm, store_write };

  State state() const { return state_; }
  bool busy() const { return state_ != State::idle; }
  bool in_run() const { return state_ == State::run; }
  // RUN's cycles left (edges until idle); the grid skips k < run_cycles_left() of them at once
  // for a tile where nothing else can happen meanwhile (accel_grid.cpp).
  int64_t run_cycles_left() const { return state_ == State::run ? run_left_ : 0; }
  void skip_run_cycles(int64_t k) { run_left_ -= k; }
  // STORE's normalize cycles left in this row (edges until its write beats); the grid's event
  // engine skips k < store_norm_cycles_left() of them for a parked tile (accel_grid_events.cpp).
  int64_t store_norm_cycles_left() const { return state_ == State::store_norm ? st_norm_left_ : 0; }
  void skip_store_norm_cycles(int64_t k) { st_norm_left_ -= int(k); }
  // The buffers the current (or last) RUN reads: K/V/index and Q.
  bool run_kvb() const { return run_kvb_; }
  bool run_qb() const { return run_qb_; }
  // This cycle an output beat is offered to the DRAM write port.
  bool writing() const { return state_ == State::store_write; }
  // The index RAM's read port (the DMA's gather): key index and run length of a slot.
  uint32_t index(bool buf, int slot) const { return idxmem_[buf][slot & (isa::kKSlots - 1)]; }
  uint32_t run_length(bool buf, int slot) const { return runmem_[buf][slot & (isa::kKSlots - 1)]; }

  // The DMA's scratchpad write alone (what step() does first; the grid's event engine delivers a
  // parked tile's beats with it).
  void dma_write(const SpWrite& sp) { write_scratchpad(sp); }
  // One clock edge: the DMA's scratchpad write, then RUN counts down and STORE steps its rows
  // (write_fire: the output beat offered this cycle was accepted).
  void step(const ConfigRegs&, const SpWrite&, bool write_fire);
  // RUN issued (the core is idle; rs1/rs2 are the command's operands): the arithmetic of
  // hw/README.md "RUN" over the scratchpads, and the cycles it takes.
  RunCost start_run(const ConfigRegs&, uint64_t rs1, uint64_t rs2);
  // STORE issued (the core is idle): normalizes rows 0..nq-1 into `dram` at addr and clears them;
  // the following steps take the normalize and write-beat cycles.
  void start_store(const ConfigRegs&, int nq, uint64_t addr, std::vector<uint8_t>& dram);

 private:
  // STORE per row before its D/LANES normalize cycles: one setup cycle, then one cycle per bit
  // of the reciprocal (a restoring divider).
  static constexpr int kStoreSetupCycles = 1;
  static constexpr int kRecipBits = 17;

  void write_scratchpad(const SpWrite&);
  void normalize_row(const ConfigRegs&, int r, int16_t* out);

  // Scratchpads [buffer][row][column] (int8 after unpacking), index and mask RAMs.
  int8_t qmem_[isa::kBuffers][isa::kQRows][isa::kMaxHeadDim] = {};
  int8_t kmem_[isa::kBuffers][isa::kKSlots][isa::kMaxHeadDim] = {};
  int8_t vmem_[isa::kBuffers][isa::kKSlots][isa::kMaxHeadDim] = {};
  // Quantization schemes: V's high bytes (v16: V = vhmem:vmem), the Q scale words per row, the K
  // scale words per slot, the bias RAM [bias row][slot] (hw/README.md "Quantization schemes").
  int8_t vhmem_[isa::kBuffers][isa::kKSlots][isa::kMaxHeadDim] = {};
  uint32_t qsmem_[isa::kBuffers][isa::kQRows] = {};
  uint32_t ksmem_[isa::kBuffers][isa::kKSlots] = {};
  int32_t biasmem_[isa::kBuffers][isa::kQRows][isa::kKSlots] = {};
  uint32_t idxmem_[isa::kBuffers][isa::kKSlots] = {};
  uint32_t runmem_[isa::kBuffers][isa::kKSlots] = {};
  uint64_t maskmem_[isa::kBuffers][isa::kQRows] = {};
  // Row state: int48 accumulators, running max, unsigned 40-bit sum; the scores of a row.
  int64_t acc_[isa::kQRows][isa::kMaxHeadDim] = {};
  int32_t mrow_[isa::kQRows] = {};
  bool mvalid_[isa::kQRows] = {};
  uint64_t lrow_[isa::kQRows] = {};
  int32_t tbuf_[isa::kKSlots] = {};
  // Control.
  State state_ = State::idle;
  int64_t run_left_ = 0;
  bool run_kvb_ = false, run_qb_ = false;
  int st_nq_ = 0, st_row_ = 0, st_norm_left_ = 0, st_beat_ = 0;
};

// ------------------------------------------------------------------------------ every cycle
// The DMA's write (always into a buffer no RUN is reading: the dispatcher ensures it).
inline void Core::write_scratchpad(const SpWrite& sp) {
  switch (sp.kind) {
    case SpKind::index: {
      const int next = (sp.row + 1) & (isa::kKSlots - 1);
      std::memcpy(&idxmem_[sp.buf][sp.row], sp.raw, 4);
      std::memcpy(&runmem_[sp.buf][sp.row], sp.raw + 4, 4);
      std::memcpy(&idxmem_[sp.buf][next], sp.raw + 8, 4);
      std::memcpy(&runmem_[sp.buf][next], sp.raw + 12, 4);
      break;
    }
    case SpKind::mask: {
      const int next = (sp.row + 1) & (isa::kQRows - 1);
      std::memcpy(&maskmem_[sp.buf][sp.row], sp.raw, 8);
      std::memcpy(&maskmem_[sp.buf][next], sp.raw + 8, 8);
      break;
    }
    case SpKind::qscale:
    case SpKind::kscale:
    case SpKind::bias: {
      uint32_t* row = sp.kind == SpKind::qscale ? qsmem_[sp.buf]
                      : sp.kind == SpKind::kscale ? ksmem_[sp.buf]
                                                  : reinterpret_cast<uint32_t*>(biasmem_[sp.buf][sp.row]);
      for (int j = 0; j < 4; ++j) std::memcpy(&row[(sp.col + j) & (isa::kKSlots - 1)], sp.raw + 4 * j, 4);
      break;
    }
    case SpKind::v:
      if (sp.n == isa::kBeatBytes / 2) {  // v16: eight int16 values, low byte into vmem
        for (int j = 0; j < sp.n; ++j) {
          vmem_[sp.buf][sp.row][(sp.col + j) & (isa::kMaxHeadDim - 1)] = int8_t(sp.raw[2 * j]);
          vhmem_[sp.buf][sp.row][(sp.col + j) & (isa::kMaxHeadDim - 1)] = int8_t(sp.raw[2 * j + 1]);
        }
        break;
      }
      [[fallthrough]];
    default: {
      int8_t(*dst)[isa::kMaxHeadDim] = sp.kind == SpKind::q ? qmem_[sp.buf]
                                       : sp.kind == SpKind::k ? kmem_[sp.buf]
                                                              : vmem_[sp.buf];
      for (int j = 0; j < sp.n; ++j) dst[sp.row][(sp.col + j) & (isa::kMaxHeadDim - 1)] = sp.vals[j];
    }
  }
}

inline void Core::step(const ConfigRegs& cfg, const SpWrite& sp, bool write_fire) {
  if (sp.we) write_scratchpad(sp);
  switch (state_) {
    case State::idle: break;
    case State::run:
      if (--run_left_ == 0) state_ = State::idle;
      break;
    case State::store_norm:
      if (--st_norm_left_ == 0) {
        st_beat_ = 0;
        state_ = State::store_write;
      }
      break;
    case State::store_write:
      // 2 * D bytes per row.
      if (write_fire && ++st_beat_ == cfg.d * 2 / isa::kBeatBytes) {
        if (++st_row_ == st_nq_) {
          state_ = State::idle;
        } else {
          st_norm_left_ = kStoreSetupCycles + kRecipBits + cfg.chunks();
          state_ = State::store_norm;
        }
      }
      break;
  }
}

}  // namespace sattn::accel::model
