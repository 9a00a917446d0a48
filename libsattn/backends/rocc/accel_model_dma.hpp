// The model's read DMA (hw/rtl/sattn_dma.sv): one load at a time, one outstanding burst at a
// time. Contiguous loads are one burst; gather loads (LOAD_K/LOAD_V with the gather bit) issue
// one burst per run of consecutive key indices from the index RAM. Each 16-byte beat goes into
// the scratchpad row it belongs to (i4 unpacked to two sign-extended int8, low nibble first).
// Header-only: all of it runs every cycle.
#pragma once
#include <cstring>

#include "backends/rocc/accel_model_core.hpp"

namespace sattn::accel::model {

class Dma {
 public:
  enum class State : uint8_t { idle, req, data };
  enum class Kind : uint8_t { idx = 0, q = 1, k = 2, v = 3 };  // sattn_dma.sv start_kind
  // This cycle's read request (rd_req, rd_addr, rd_len) and the run length of the current
  // gather slot (1 when the slot starts no run).
  struct Request {
    bool valid = false;
    uint64_t addr = 0, len = 0;
    uint32_t run_len = 1;
  };

  bool busy() const { return state_ != State::idle; }
  Kind kind() const { return kind_; }
  bool buffer() const { return buf_; }
  bool gather() const { return gather_; }
  // A LOAD_SCALE (scale words or bias rows; kind q: the Q side, k or v: the K/V side).
  bool aux() const { return aux_; }
  // In the data phase: a beat delivered this cycle is this load's.
  bool receiving() const { return state_ == State::data; }
  // In the data phase: the next beat ends the burst (the DMA then moves on: idle or the next
  // gather run). The grid's event engine delivers the other beats to a parked tile without
  // stepping it (accel_grid_events.cpp).
  bool last_beat() const { return left_ <= uint64_t(isa::kBeatBytes); }

  // This cycle's read request, from the registers and the core's index RAM.
  Request request(const ConfigRegs&, const Core&) const;
  // The scratchpad write of the beat `bytes` (16 bytes) arriving this cycle.
  SpWrite scratchpad_write(const ConfigRegs&, const uint8_t* bytes) const;
  // One clock edge: a request accepted by the DRAM (fire_rd) starts the data phase; a beat
  // (beat_fire) advances the row/column and ends the burst, or moves to the next gather run.
  void step(const ConfigRegs&, const Request&, bool fire_rd, bool beat_fire);
  // A LOAD issued (the DMA is idle): n rows or entries (and mrows mask rows for LOAD_IDX) from addr.
  // aux (LOAD_SCALE): mrows rows of n 32-bit words, each row padded to whole beats.
  void start(Kind, bool buf, bool gather, int n, int mrows, uint64_t addr, bool aux = false);

 private:
  // Index entries per beat (a beat holds two 8-byte entries or two 8-byte mask rows).
  static constexpr int kEntriesPerBeat = isa::kBeatBytes / isa::kIndexEntryBytes;
  static_assert(kEntriesPerBeat == 2 && isa::kBeatBytes / isa::kMaskRowBytes == 2);
  // The slot register is 7 bits wide (slots 0..64).
  static constexpr int kSlotMask = 127;

  // Bytes of one row of the current load: V rows are wider with v16; LOAD_SCALE rows are n words.
  int row_bytes(const ConfigRegs& cfg) const {
    if (aux_) return ((n_ + 3) >> 2) * isa::kBeatBytes;
    return kind_ == Kind::v ? cfg.vrowbytes() : cfg.rowbytes();
  }

  State state_ = State::idle;
  Kind kind_ = Kind::idx;
  bool buf_ = false, gather_ = false, aux_ = false;
  int n_ = 0, mrows_ = 0, slot_ = 0, row_ = 0, col_beat_ = 0, idx_beat_ = 0;
  uint64_t base_ = 0, left_ = 0;
};

inline Dma::Request Dma::request(const ConfigRegs& cfg, const Core& core) const {
  Request r;
  r.valid = state_ == State::req;
  if (state_ == State::idle) return r;
  const uint32_t run = core.run_length(buf_, slot_);
  r.run_len = run == 0 ? 1 : run;
  const uint64_t rowbytes = uint64_t(row_bytes(cfg));
  if (aux_) {
    r.addr = base_;
    r.len = uint64_t(mrows_) * rowbytes;
  } else if (gather_) {
    r.addr = base_ + uint64_t(core.index(buf_, slot_)) * rowbytes;
    r.len = uint64_t(r.run_len) * rowbytes;
  } else if (kind_ == Kind::idx) {
    // The record: n entries, then mrows mask rows, each padded to whole beats.
    r.addr = base_;
    r.len = uint64_t(n_ + (n_ & 1)) * isa::kIndexEntryBytes + uint64_t(mrows_ + (mrows_ & 1)) * isa::kMaskRowBytes;
  } else {
    r.addr = base_;
    r.len = uint64_t(n_) * rowbytes;
  }
  return r;
}

inline SpWrite Dma::scratchpad_write(const ConfigRegs& cfg, const uint8_t* bytes) const {
  SpWrite w;
  w.we = true;
  w.buf = buf_;
  if (kind_ == Kind::idx) {
    const int entry_beats = (n_ + (n_ & 1)) / kEntriesPerBeat;
    if (idx_beat_ < entry_beats) {
      w.kind = SpKind::index;
      w.row = (kEntriesPerBeat * idx_beat_) & (isa::kKSlots - 1);
    } else {
      w.kind = SpKind::mask;
      w.row = (kEntriesPerBeat * ((idx_beat_ - entry_beats) & 31)) & (isa::kQRows - 1);
    }
    std::memcpy(w.raw, bytes, isa::kBeatBytes);
    return w;
  }
  w.kind = SpKind(int(kind_));
  w.row = row_ & (isa::kQRows - 1);
  if (aux_) {  // four 32-bit words of row row_ from word col
    w.kind = kind_ == Kind::q ? SpKind::qscale : kind_ == Kind::k ? SpKind::kscale : SpKind::bias;
    w.col = (col_beat_ & 15) * 4;
    std::memcpy(w.raw, bytes, isa::kBeatBytes);
    return w;
  }
  if (kind_ == Kind::v && cfg.v16) {  // eight int16 V values from column col
    w.n = isa::kBeatBytes / 2;
    w.col = (col_beat_ & 31) * w.n;
    std::memcpy(w.raw, bytes, isa::kBeatBytes);
    return w;
  }
  if (cfg.i4) {
    w.n = 2 * isa::kBeatBytes;
    w.col = (col_beat_ & 7) * w.n;
    for (int j = 0; j < isa::kBeatBytes; ++j) {
      w.vals[2 * j] = int8_t(int8_t(bytes[j] << 4) >> 4);
      w.vals[2 * j + 1] = int8_t(int8_t(bytes[j]) >> 4);
    }
  } else {
    w.n = isa::kBeatBytes;
    w.col = (col_beat_ & 15) * w.n;
    std::memcpy(w.vals, bytes, isa::kBeatBytes);
  }
  return w;
}

inline void Dma::step(const ConfigRegs& cfg, const Request& rd, bool fire_rd, bool beat_fire) {
  switch (state_) {
    case State::idle: break;
    case State::req:
      if (fire_rd) {
        left_ = rd.len;
        row_ = gather_ ? slot_ : 0;
        col_beat_ = 0;
        idx_beat_ = 0;
        state_ = State::data;
      }
      break;
    case State::data:
      if (beat_fire) {
        ++idx_beat_;
        if (col_beat_ + 1 == row_bytes(cfg) / isa::kBeatBytes) {
          col_beat_ = 0;
          ++row_;
        } else {
          ++col_beat_;
        }
        const bool last = left_ <= uint64_t(isa::kBeatBytes);
        left_ -= isa::kBeatBytes;
        if (last) {
          // A gather moves on to the next run start; anything else is done.
          if (gather_ && ((slot_ + int(rd.run_len)) & kSlotMask) < n_) {
            slot_ = (slot_ + int(rd.run_len)) & kSlotMask;
            state_ = State::req;
          } else {
            state_ = State::idle;
          }
        }
      }
      break;
  }
}

inline void Dma::start(Kind kind, bool buf, bool gather, int n, int mrows, uint64_t addr, bool aux) {
  kind_ = kind;
  aux_ = aux;
  buf_ = buf;
  gather_ = gather;
  n_ = n;
  mrows_ = mrows;
  base_ = addr;
  slot_ = 0;
  if (aux ? (n != 0 && mrows != 0) : (n != 0 || (kind == Kind::idx && mrows != 0))) state_ = State::req;
}

}  // namespace sattn::accel::model
