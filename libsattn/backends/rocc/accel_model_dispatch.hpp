// The model's top unit (hw/rtl/sattn_accel.sv): the command FIFO, the in-order dispatcher with
// its buffer hazards, the CONFIG registers, the event counters with snapshot/reset, and PROBE.
// Per cycle (inline here): the issue decision and the counters; per command
// (accel_model_dispatch.cpp): what a dispatched command does.
#pragma once
#include <algorithm>
#include <deque>
#include <vector>

#include "backends/rocc/accel_model_core.hpp"
#include "backends/rocc/accel_model_dma.hpp"

namespace sattn::accel::model {

// A cycle's signals between the units, computed from the registers before the edge.
struct Wires {
  bool dma_busy = false, dma_index_load = false;  // dma_index_load: the load is a LOAD_IDX
  Core::State core = Core::State::idle;
  bool pop = false;          // the dispatcher issues its head command
  Dma::Request rd;           // the DMA's read request
  bool fire_rd = false;      // ... accepted by the DRAM read port
  bool gather_fire = false;  // ... and it is a gather burst
  bool beat_fire = false;    // a read beat arrives for the DMA
  bool fire_wr = false;      // an output beat is accepted by the DRAM write port
  SpWrite sp;                // the DMA's scratchpad write
};

// The top of the accelerator: command FIFO, in-order dispatcher with buffer hazards, CONFIG
// registers, event counters with snapshots, PROBE.
class Dispatcher {
 public:
  Dispatcher(const std::vector<Command>& cmds, int lanes);

  const ConfigRegs& cfg() const { return cfg_; }
  bool have() const { return !fifo_.empty(); }
  // The head command's index (have() must hold), and the live counters (the grid reads them).
  size_t head() const { return fifo_.front(); }
  const int64_t* counters() const { return cnt_; }
  // k cycles of a RUN counting down with nothing else active (booked as the per-cycle step would).
  void add_run_cycles(int64_t k) { cnt_[int(Event::cycles)] += k; }
  bool full() const { return int(fifo_.size()) >= isa::kFifoDepth; }
  // Whether the head command issues this cycle: a unit it needs is busy, or a load would write
  // a buffer the running RUN reads (or the reverse), holds it.
  bool can_pop(const Dma&, const Core&) const;
  // One clock edge: counts the cycle's events, takes the offered command `push` (an index into
  // the commands, or -1), and when w.pop dispatches the head: CONFIG writes, loads start the DMA,
  // RUN/STORE start the core, COUNTER/PROBE answer into `responses`. Throws Error(invalid_input)
  // on a command the hardware rejects, naming its index.
  void step(const Wires& w, int64_t push, Dma&, Core&, std::vector<uint8_t>& dram, std::vector<uint64_t>& responses);
  // Whether a cycle with these signals is active (a unit works, or a command other than
  // COUNTER/PROBE waits), from the registers before the edge.
  bool active(const Wires& w) const;
  // Books k cycles' `cycles` and stall cause as step() books one, for k cycles with these signals
  // in which nothing is pushed, popped, received or written (the grid's event engine books a
  // parked tile's quiet cycles at once, accel_grid_events.cpp).
  void book_cycles(const Wires& w, int64_t k);
  // A read beat received in such a cycle (step() books it when w.beat_fire).
  void book_beat() { ev(Event::dma_bytes_in) += isa::kBeatBytes; }

 private:
  void dispatch(size_t index, Dma&, Core&, std::vector<uint8_t>& dram, std::vector<uint64_t>& responses,
                bool& reset_counters);
  int64_t& ev(isa::Event e) { return cnt_[int(e)]; }
  // COUNTER and PROBE answer at once and count as no activity (the harness fences them).
  static bool is_query(Funct f) { return f == Funct::counter || f == Funct::probe; }

  const std::vector<Command>& cmds_;
  std::deque<size_t> fifo_;  // command indices
  ConfigRegs cfg_;
  int64_t cnt_[isa::kEventCount] = {}, snap_[isa::kEventCount] = {};
};

// ------------------------------------------------------------------------------ every cycle
inline bool Dispatcher::can_pop(const Dma& dma, const Core& core) const {
  if (fifo_.empty()) return false;
  const Command& h = cmds_[fifo_.front()];
  // The buffer a command names; buffer 0 whatever it says in single-buffer mode.
  const bool sel = cfg_.dbuf && isa::kLoadBuffer.get(h.rs2);
  switch (h.funct) {
    case Funct::config: return !dma.busy() && !core.busy();
    case Funct::load_idx:
    case Funct::load_k:
    case Funct::load_v: return !dma.busy() && !(core.in_run() && core.run_kvb() == sel);
    case Funct::load_q: return !dma.busy() && !(core.in_run() && core.run_qb() == sel);
    case Funct::run: {
      const bool kvb = cfg_.dbuf && isa::kRunKvBuffer.get(h.rs2), qb = cfg_.dbuf && isa::kRunQBuffer.get(h.rs2);
      const bool loads_q = dma.kind() == Dma::Kind::q;
      return !core.busy() && !(dma.busy() && ((loads_q && dma.buffer() == qb) || (!loads_q && dma.buffer() == kvb)));
    }
    case Funct::store: return !core.busy();
    case Funct::load_scale: {  // target 1 (Q scale words) is on the Q side, 2 and 3 on the K/V side
      const bool q_side = isa::kLoadScaleTarget.get(h.rs2) == 1;
      const bool b = cfg_.dbuf && isa::kLoadScaleBuffer.get(h.rs2);
      return !dma.busy() && !(core.in_run() && (q_side ? core.run_qb() : core.run_kvb()) == b);
    }
    default: return true;
  }
}

inline bool Dispatcher::active(const Wires& w) const {
  return w.dma_busy || w.core != Core::State::idle || (have() && !is_query(cmds_[fifo_.front()].funct));
}

// Exactly one of busy/stall_* per active cycle; RUN's MAC and softmax cycles were booked when it
// was issued.
inline void Dispatcher::book_cycles(const Wires& w, int64_t k) {
  ev(Event::cycles) += k;
  if (w.core == Core::State::run) {
  } else if (w.core == Core::State::store_norm) {
    ev(Event::stall_softmax) += k;
  } else if (w.core == Core::State::store_write) {
    ev(Event::stall_dma) += k;
  } else if (w.dma_busy && w.dma_index_load) {
    ev(Event::stall_index) += k;
  } else if (w.dma_busy) {
    ev(Event::stall_dma) += k;
  } else {
    ev(Event::stall_other) += k;
  }
}

inline void Dispatcher::step(const Wires& w, int64_t push, Dma& dma, Core& core, std::vector<uint8_t>& dram,
                             std::vector<uint64_t>& responses) {
  // Active this cycle (from the registers before the edge).
  const bool was_active = active(w);
  if (push >= 0) fifo_.push_back(size_t(push));
  // Dispatch first: COUNTER reads the counters as they were before this edge (the RTL's
  // nonblocking updates), then this cycle's events are added, then a COUNTER reset clears all.
  bool reset_counters = false;
  if (w.pop) {
    const size_t index = fifo_.front();
    fifo_.pop_front();
    dispatch(index, dma, core, dram, responses, reset_counters);
    ++ev(Event::commands);
  }
  if (was_active) book_cycles(w, 1);
  if (w.beat_fire) ev(Event::dma_bytes_in) += isa::kBeatBytes;
  if (w.fire_wr) ev(Event::dma_bytes_out) += isa::kBeatBytes;
  if (w.gather_fire) ++ev(Event::gathers);
  if (reset_counters) std::fill(cnt_, cnt_ + isa::kEventCount, 0);
}

}  // namespace sattn::accel::model
