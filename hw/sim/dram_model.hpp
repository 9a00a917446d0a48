// The DRAM timing model of the accelerator's two ports (hw/README.md "Timing"), shared by the
// Verilator harness and the C++ model (libsattn/backends/rocc/accel_model.cpp) so both see the
// same beats in the same cycles. Header-only, no dependencies.
//
// Per cycle: call the *_now() queries to get this cycle's port inputs, then, after the clock
// edge, advance() with what fired.
#pragma once
#include <algorithm>
#include <cstdint>

namespace sattn::accel_sim {

inline constexpr int kBeat = 16;

// Read port: one outstanding burst. A burst accepted at an edge waits `latency` cycles, then
// gains `bytes_per_cycle` credit per cycle (capped at one beat) and delivers a beat in a cycle
// where the credit covers it.
class ReadPort {
 public:
  ReadPort(int latency, int bytes_per_cycle) : latency_(latency), bw_(bytes_per_cycle) {}
  bool ready() const { return !active_; }
  // Whether a beat is delivered in the current cycle (before the edge).
  bool beat_now() const { return active_ && wait_ == 0 && std::min(credit_ + bw_, kBeat) >= kBeat; }
  uint64_t beat_addr() const { return addr_; }
  // After the edge. `accepted`: a request fired at this edge (addr, len bytes).
  void advance(bool accepted, uint64_t addr, uint64_t len) {
    if (active_) {
      if (wait_ > 0) {
        --wait_;
      } else {
        const bool beat = std::min(credit_ + bw_, kBeat) >= kBeat;
        credit_ = std::min(credit_ + bw_, kBeat);
        if (beat) {
          credit_ -= kBeat;
          addr_ += kBeat;
          left_ = left_ > uint64_t(kBeat) ? left_ - kBeat : 0;
          if (left_ == 0) active_ = false;
        }
      }
    }
    if (accepted) {
      active_ = len > 0;
      wait_ = latency_;
      credit_ = 0;
      addr_ = addr;
      left_ = len;
    }
  }
  bool active() const { return active_; }

 private:
  int latency_, bw_;
  bool active_ = false;
  int wait_ = 0, credit_ = 0;
  uint64_t addr_ = 0, left_ = 0;
};

// Write port: accepts a beat in a cycle where its credit covers one; credit starts full and
// regains `bytes_per_cycle` per cycle, capped at one beat.
class WritePort {
 public:
  explicit WritePort(int bytes_per_cycle) : bw_(bytes_per_cycle) {}
  bool ready_now() const { return credit_ >= kBeat; }
  void advance(bool fired) {
    if (fired) credit_ -= kBeat;
    credit_ = std::min(credit_ + bw_, kBeat);
  }

 private:
  int bw_;
  int credit_ = kBeat;
};

}  // namespace sattn::accel_sim
