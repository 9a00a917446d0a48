// The DRAM timing model of the accelerator's two ports (hw/README.md "Timing"), shared by the
// Verilator harness and the C++ model (libsattn/backends/rocc/accel_model.cpp) so both see the
// same beats in the same cycles. Header-only, no dependencies.
//
// Per cycle: call the *_now() queries to get this cycle's port inputs, then, after the clock
// edge, advance() with what fired.
#pragma once
#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

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

// ---------------------------------------------------------------------------------------------
// The grid's shared DRAM (hw/README.md "Grid"): `ports` channels, each `bytes_per_cycle` wide,
// shared by `requesters` DMA engines (one per tile or multicast group). Requester r uses channel
// r % ports. Per channel and cycle the arbiter accepts at most one read request and one write
// beat among those offered, by `policy`: round_robin (the first requester after the one granted
// last) or fixed (the lowest index). An accepted read burst waits `latency` cycles (overlapping
// the bursts ahead of it); the channel then delivers the bursts' beats in the order accepted,
// gaining bytes_per_cycle credit per cycle (capped at one beat) while a burst's data is due.
// With one requester this is exactly ReadPort + WritePort above (the 1x1 grid equals the tile).
enum class Arbitration : uint8_t { round_robin = 0, fixed = 1 };

class SharedDram {
 public:
  SharedDram(int requesters, int ports, int latency, int bytes_per_cycle, Arbitration policy)
      : n_(requesters), ports_(std::max(1, ports)), latency_(latency), bw_(bytes_per_cycle), policy_(policy),
        ch_(size_t(ports_)) {
    for (Channel& c : ch_) c.wcredit = kBeat;
  }
  int ports() const { return ports_; }
  int channel_of(int requester) const { return requester % ports_; }

  // The cycle's read grants: `requesting[r]` says requester r offers a burst; returns, per
  // channel, the requester accepted (or -1). Call once per cycle before the edge.
  void arbitrate_reads(const std::vector<uint8_t>& requesting, std::vector<int>& granted) {
    pick(requesting, granted, /*writes=*/false);
  }
  // The cycle's write grants: one beat per channel from a writer whose channel has credit.
  void arbitrate_writes(const std::vector<uint8_t>& offering, std::vector<int>& granted) {
    pick(offering, granted, /*writes=*/true);
  }
  // Whether channel c delivers a beat this cycle (before the edge), to whom and from where.
  bool beat_now(int c) const {
    const Channel& ch = ch_[size_t(c)];
    return !ch.q.empty() && ch.q.front().wait == 0 && std::min(ch.credit + bw_, kBeat) >= kBeat;
  }
  int beat_owner(int c) const { return ch_[size_t(c)].q.front().owner; }
  uint64_t beat_addr(int c) const { return ch_[size_t(c)].q.front().addr; }
  // Whether channel c can take a write beat this cycle (its credit covers one).
  bool write_ready(int c) const { return ch_[size_t(c)].wcredit >= kBeat; }
  bool read_idle() const {
    for (const Channel& c : ch_)
      if (!c.q.empty()) return false;
    return true;
  }

  // Cycles from now until channel c delivers a beat if no request is accepted meanwhile
  // (INT64_MAX: no burst queued): the head's latency, then credit growing to a beat.
  int64_t cycles_to_beat(int c) const {
    const Channel& ch = ch_[size_t(c)];
    if (ch.q.empty()) return INT64_MAX;
    const int need = kBeat - ch.credit;  // a beat in the cycle where credit + bytes_per_cycle covers it
    return int64_t(ch.q.front().wait) + (need <= bw_ ? 0 : (need + bw_ - 1) / bw_ - 1);
  }
  // k cycles in which no request is accepted, no write beat is offered and no channel delivers a
  // beat (k <= every cycles_to_beat()): what k advance() calls would do (the grid's event engine).
  void skip(int64_t k) {
    for (Channel& ch : ch_) {
      if (!ch.q.empty()) {
        // The head's credit grows in the cycles after its latency; every latency counts down.
        const int64_t waiting = std::min<int64_t>(ch.q.front().wait, k);
        ch.credit = int(std::min<int64_t>(ch.credit + (k - waiting) * bw_, kBeat));
        for (Burst& b : ch.q) b.wait = int(std::max<int64_t>(0, b.wait - k));
      }
      ch.wcredit = int(std::min<int64_t>(ch.wcredit + int64_t(bw_) * k, kBeat));
    }
  }

  // k cycles with no read burst queued and nothing offered (what k advance() calls would do).
  void idle(int64_t k) {
    for (Channel& ch : ch_) ch.wcredit = int(std::min<int64_t>(ch.wcredit + int64_t(bw_) * k, kBeat));
  }

  // After the edge: the accepted read bursts (per channel: owner, addr, len; owner -1 = none) and
  // the accepted write beats (per channel: writer or -1).
  void advance(const std::vector<int>& read_granted, const std::vector<uint64_t>& addr,
               const std::vector<uint64_t>& len, const std::vector<int>& write_granted) {
    for (int c = 0; c < ports_; ++c) {
      Channel& ch = ch_[size_t(c)];
      // The head burst delivers when its latency is over; every burst's latency counts down.
      if (!ch.q.empty() && ch.q.front().wait == 0) {
        Burst& head = ch.q.front();
        const bool beat = std::min(ch.credit + bw_, kBeat) >= kBeat;
        ch.credit = std::min(ch.credit + bw_, kBeat);
        if (beat) {
          ch.credit -= kBeat;
          head.addr += kBeat;
          head.left = head.left > uint64_t(kBeat) ? head.left - kBeat : 0;
          if (head.left == 0) {
            ch.q.pop_front();
          }
        }
      }
      for (Burst& b : ch.q)
        if (b.wait > 0) --b.wait;
      const int r = read_granted[size_t(c)];
      if (r >= 0 && len[size_t(r)] > 0) {
        if (ch.q.empty()) ch.credit = 0;
        ch.q.push_back({r, latency_, addr[size_t(r)], len[size_t(r)]});
      }
      const int w = write_granted[size_t(c)];
      if (w >= 0) ch.wcredit -= kBeat;
      ch.wcredit = std::min(ch.wcredit + bw_, kBeat);
    }
  }

 private:
  struct Burst {
    int owner, wait;
    uint64_t addr, left;
  };
  struct Channel {
    std::deque<Burst> q;  // accepted bursts, served in order
    int credit = 0, wcredit = 0;
    int last_read = -1, last_write = -1;  // round-robin pointers
  };

  void pick(const std::vector<uint8_t>& want, std::vector<int>& granted, bool writes) {
    granted.assign(size_t(ports_), -1);
    for (int c = 0; c < ports_; ++c) {
      Channel& ch = ch_[size_t(c)];
      int& last = writes ? ch.last_write : ch.last_read;
      // Requesters of channel c are c, c + ports, c + 2 ports, ...: start after `last` (round
      // robin) or at the lowest (fixed).
      const int count = (n_ - c + ports_ - 1) / ports_;
      if (count <= 0 || (writes && ch.wcredit < kBeat)) continue;
      const int start = policy_ == Arbitration::round_robin && last >= 0 ? (last / ports_ + 1) % count : 0;
      for (int k = 0; k < count; ++k) {
        const int r = c + ((start + k) % count) * ports_;
        if (want[size_t(r)]) {
          granted[size_t(c)] = r;
          break;
        }
      }
      if (granted[size_t(c)] >= 0) last = granted[size_t(c)];
    }
  }

  int n_, ports_, latency_, bw_;
  Arbitration policy_;
  std::vector<Channel> ch_;
};

}  // namespace sattn::accel_sim
