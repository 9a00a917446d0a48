// sattn::accel::run_model: the bit-exact model of the accelerator (hw/README.md "Model vs RTL").
// Data: the arithmetic of hw/README.md "Arithmetic", executed per RUN/STORE on the same
// scratchpad contents the DMA beats put there. Timing: the control of hw/rtl stepped cycle by
// cycle (command FIFO, dispatcher, DMA with the shared DRAM model, RUN/STORE durations), so the
// counters equal the RTL's.
#include <algorithm>
#include <bit>
#include <cstring>
#include <deque>

#include "dram_model.hpp"
#include "backends/rocc/accel.hpp"
#include "sattn/error.hpp"

namespace sattn::accel {

namespace {

constexpr int kFifoDepth = 16;
constexpr int kDmax = kMaxHeadDim;

int64_t wrap40(int64_t x) { return int64_t(uint64_t(x) << 24) >> 24; }
uint64_t mask40(uint64_t x) { return x & ((uint64_t(1) << 40) - 1); }

uint16_t exp2_fixed(int64_t u) {
  if (uint64_t(u) >= 4096) return 0;
  return uint16_t(isa::kExp2Table[size_t(u & 255)] >> (u >> 8));
}

int32_t scale_score(int32_t s, uint32_t mult, int shift) {
  const int64_t prod = (int64_t(s) * int64_t(mult)) >> shift;
  return int32_t(std::clamp<int64_t>(prod, INT32_MIN, INT32_MAX));
}

// The machine: scratchpads, row state, configuration.
struct Machine {
  int lanes = 16;
  // configuration
  int d = 64;
  bool i4 = false, causal = false, dbuf = true;
  int32_t off = 0;
  uint32_t mult = 1;
  int shift = 0;
  uint64_t base[5] = {0, 0, 0, 0, 0};
  int chunks() const { return (d + lanes - 1) / lanes; }
  int rowbytes() const { return i4 ? d / 2 : d; }
  // memories
  int8_t qmem[2][kQRows][kDmax] = {};
  int8_t kmem[2][kKSlots][kDmax] = {};
  int8_t vmem[2][kKSlots][kDmax] = {};
  uint32_t idxmem[2][kKSlots] = {};
  uint32_t runmem[2][kKSlots] = {};
  uint64_t maskmem[2][kQRows] = {};
  int64_t acc[kQRows][kDmax] = {};
  int32_t mrow[kQRows] = {};
  bool mvalid[kQRows] = {};
  uint64_t lrow[kQRows] = {};
  int32_t tbuf[kKSlots] = {};
};

struct RunCost {
  int64_t cycles = 0, mac_cycles = 0, macs = 0, skipped = 0;
};

// One RUN, arithmetic and cycle count (hw/README.md "RUN", "Timing").
RunCost execute_run(Machine& m, int nq, int nk, bool kvb, bool qb, bool use_mask, bool use_idx, int32_t qpos0,
                    int32_t kpos0) {
  RunCost cost;
  const int C = m.chunks(), D = m.d;
  for (int r = 0; r < nq; ++r) {
    const int32_t limit = int32_t(uint32_t(qpos0) + uint32_t(r) + uint32_t(m.off));
    uint64_t mask = 0;
    for (int s = 0; s < nk; ++s) {
      const int32_t kpos = use_idx ? int32_t(m.idxmem[kvb][s]) : int32_t(uint32_t(kpos0) + uint32_t(s));
      if ((!use_mask || (m.maskmem[kvb][r] >> s & 1)) && (!m.causal || kpos <= limit)) mask |= uint64_t(1) << s;
    }
    const int n = std::popcount(mask);
    cost.skipped += int64_t(nk - n) * 2 * D;
    cost.cycles += 1;
    if (n == 0) continue;
    int32_t bm = 0;
    bool first = true;
    for (uint64_t rem = mask; rem; rem &= rem - 1) {
      const int s = std::countr_zero(rem);
      int32_t sum = 0;
      for (int dd = 0; dd < D; ++dd) sum += int32_t(m.qmem[qb][r][dd]) * int32_t(m.kmem[kvb][s][dd]);
      const int32_t t = scale_score(sum, m.mult, m.shift);
      m.tbuf[s] = t;
      if (first || t > bm) bm = t;
      first = false;
    }
    const int32_t mnew = (m.mvalid[r] && m.mrow[r] > bm) ? m.mrow[r] : bm;
    const int s0 = std::countr_zero(mask);
    const uint16_t p0 = exp2_fixed(int64_t(mnew) - int64_t(m.tbuf[s0]));
    uint64_t lnew = m.lrow[r];
    bool rescale = false;
    if (m.mvalid[r] && mnew != m.mrow[r]) {
      const uint16_t a = exp2_fixed(int64_t(mnew) - int64_t(m.mrow[r]));
      lnew = mask40((lnew * a) >> 15);
      for (int dd = 0; dd < D; ++dd) m.acc[r][dd] = wrap40((m.acc[r][dd] * int64_t(a)) >> 15);
      rescale = true;
    }
    m.lrow[r] = mask40(lnew + p0);
    m.mrow[r] = mnew;
    m.mvalid[r] = true;
    for (uint64_t rem = mask; rem; rem &= rem - 1) {
      const int s = std::countr_zero(rem);
      uint16_t p = p0;
      if (s != s0) {
        p = exp2_fixed(int64_t(mnew) - int64_t(m.tbuf[s]));
        m.lrow[r] = mask40(m.lrow[r] + p);
      }
      for (int dd = 0; dd < D; ++dd) m.acc[r][dd] = wrap40(m.acc[r][dd] + int64_t(p) * int64_t(m.vmem[kvb][s][dd]));
    }
    cost.cycles += int64_t(2) * n * C + 1 + (rescale ? C : 0);
    cost.mac_cycles += int64_t(2) * n * C;
    cost.macs += int64_t(2) * n * D;
  }
  return cost;
}

// STORE's normalization of one row (hw/README.md "Normalization"), clearing the row.
void normalize_row(Machine& m, int r, int16_t* out) {
  const uint64_t l = m.lrow[r];
  const int n = l == 0 ? 0 : 64 - std::countl_zero(l);
  const int e = n > 16 ? n - 16 : 0;
  const uint64_t lm = (l >> e) & 0xffff;
  // Restoring division, literally as the RTL steps it (quotient bits 16..0 of 2^31 / lm).
  uint64_t rem = 16384, recip = 0;
  for (int bit = 16; bit >= 0; --bit) {
    const uint64_t r2 = rem << 1;
    if (r2 >= lm) {
      rem = (r2 - lm) & 0x1ffff;
      recip |= uint64_t(1) << bit;
    } else {
      rem = r2 & 0x1ffff;
    }
  }
  for (int dd = 0; dd < m.d; ++dd) {
    int64_t o = m.acc[r][dd] * int64_t(recip);
    o = (o + (int64_t(1) << (22 + e))) >> (23 + e);
    if (l == 0) o = 0;
    out[dd] = int16_t(std::clamp<int64_t>(o, -32768, 32767));
    m.acc[r][dd] = 0;
  }
  m.mvalid[r] = false;
  m.lrow[r] = 0;
}

enum class DmaState { idle, req, data };
enum class CoreState { idle, run, store_norm, store_write };

}  // namespace

RunResult run_model(const Program& prog, const Config& cfg) {
  cfg.validate();
  auto m = std::make_unique<Machine>();
  m->lanes = cfg.lanes;
  std::vector<uint8_t> dram = prog.dram;
  accel_sim::ReadPort rp(cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle);
  accel_sim::WritePort wp(cfg.dram_bytes_per_cycle);

  // Counters (event order) and snapshots.
  int64_t cnt[kEventCount] = {}, snap[kEventCount] = {};
  auto ev = [&](Event e) -> int64_t& { return cnt[int(e)]; };
  RunResult res;
  res.source = "model";

  std::deque<size_t> fifo;  // command indices
  size_t next = 0;
  const auto& cmds = prog.commands;
  size_t expected_resp = 0;
  for (const Command& c : cmds) expected_resp += (c.funct == Funct::counter || c.funct == Funct::probe);

  // DMA registers.
  DmaState dstate = DmaState::idle;
  int dkind = 0;
  bool dbuf = false, dgather = false;
  int dn = 0, dmrows = 0, dslot = 0, drow = 0, dcol_beat = 0, didx_beat = 0;
  uint64_t dbase = 0, dleft = 0;
  // Core registers.
  CoreState cstate = CoreState::idle;
  int64_t run_left = 0;
  bool run_kvb = false, run_qb = false;
  int st_nq = 0, st_row = 0, st_norm_left = 0, st_beat = 0;
  uint64_t st_addr = 0;

  auto bad_command = [&](size_t i, const std::string& why) -> void {
    throw Error(ExitCode::invalid_input, "accel: command " + std::to_string(i) + " is illegal: " + why);
  };

  int64_t cycle = 0;
  for (;;) {
    const bool dma_busy = dstate != DmaState::idle;
    const bool core_busy = cstate != CoreState::idle;
    const bool have = !fifo.empty();
    const bool busy = dma_busy || core_busy || have;
    // Harness side.
    const bool fence = next < cmds.size() && (cmds[next].funct == Funct::counter || cmds[next].funct == Funct::probe);
    const bool offer = next < cmds.size() && (!fence || !busy);
    const bool fire_cmd = offer && int(fifo.size()) < kFifoDepth;
    const bool beat = rp.beat_now();
    const bool wr_ready = wp.ready_now();

    // Dispatcher.
    bool can_issue = false;
    const Command* h = have ? &cmds[fifo.front()] : nullptr;
    const bool in_run = cstate == CoreState::run;
    if (h) {
      const bool sel = m->dbuf && (h->rs2 >> 32 & 1);
      const bool rq = m->dbuf && (h->rs2 >> 33 & 1);
      switch (h->funct) {
        case Funct::config: can_issue = !dma_busy && !core_busy; break;
        case Funct::load_idx:
        case Funct::load_k:
        case Funct::load_v: can_issue = !dma_busy && !(in_run && run_kvb == sel); break;
        case Funct::load_q: can_issue = !dma_busy && !(in_run && run_qb == sel); break;
        case Funct::run:
          can_issue = !core_busy && !(dma_busy && ((dkind == 1 && dbuf == rq) || (dkind != 1 && dbuf == sel)));
          break;
        case Funct::store: can_issue = !core_busy; break;
        default: can_issue = true;
      }
    }
    const bool pop = have && can_issue;

    // DMA request this cycle.
    const bool rd_req = dstate == DmaState::req;
    uint64_t rd_addr = 0, rd_len = 0;
    uint32_t run_len = 1;
    if (rd_req || dstate == DmaState::data) {
      run_len = m->runmem[dbuf][dslot & 63] == 0 ? 1 : m->runmem[dbuf][dslot & 63];
      if (dgather) {
        rd_addr = dbase + uint64_t(m->idxmem[dbuf][dslot & 63]) * uint64_t(m->rowbytes());
        rd_len = uint64_t(run_len) * uint64_t(m->rowbytes());
      } else if (dkind == 0) {
        rd_addr = dbase;
        rd_len = uint64_t((dn + (dn & 1)) + (dmrows + (dmrows & 1))) * 8;
      } else {
        rd_addr = dbase;
        rd_len = uint64_t(dn) * uint64_t(m->rowbytes());
      }
    }
    const bool fire_rd = rd_req && rp.ready();
    const bool beat_fire = dstate == DmaState::data && beat;
    const bool fire_wr = cstate == CoreState::store_write && wr_ready;

    // Counters of this cycle (RUN cycles were booked in bulk at issue).
    const bool active = dma_busy || core_busy || (have && h->funct != Funct::counter && h->funct != Funct::probe);
    if (active) {
      ++ev(Event::cycles);
      if (cstate == CoreState::run) {
      } else if (cstate == CoreState::store_norm) {
        ++ev(Event::stall_softmax);
      } else if (cstate == CoreState::store_write) {
        ++ev(Event::stall_dma);
      } else if (dma_busy && dkind == 0) {
        ++ev(Event::stall_index);
      } else if (dma_busy) {
        ++ev(Event::stall_dma);
      } else {
        ++ev(Event::stall_other);
      }
    }
    if (beat_fire) ev(Event::dma_bytes_in) += 16;
    if (fire_wr) ev(Event::dma_bytes_out) += 16;
    if (fire_rd && dgather) ++ev(Event::gathers);

    // ---- clock edge: units advance from their pre-edge state.
    if (beat_fire) {
      if (rp.beat_addr() + 16 > dram.size()) throw Error(ExitCode::invalid_input, "accel: DMA read outside DRAM");
      const uint8_t* bytes = dram.data() + rp.beat_addr();
      if (dkind == 0) {
        const int entry_beats = (dn + (dn & 1)) / 2;
        if (didx_beat < entry_beats) {
          const int e0 = (2 * didx_beat) & 63;
          std::memcpy(&m->idxmem[dbuf][e0], bytes, 4);
          std::memcpy(&m->runmem[dbuf][e0], bytes + 4, 4);
          std::memcpy(&m->idxmem[dbuf][(e0 + 1) & 63], bytes + 8, 4);
          std::memcpy(&m->runmem[dbuf][(e0 + 1) & 63], bytes + 12, 4);
        } else {
          const int r0 = (2 * ((didx_beat - entry_beats) & 31)) & 63;
          std::memcpy(&m->maskmem[dbuf][r0], bytes, 8);
          std::memcpy(&m->maskmem[dbuf][(r0 + 1) & 63], bytes + 8, 8);
        }
      } else {
        int8_t vals[32];
        int nvals = 16, col = 0;
        if (m->i4) {
          nvals = 32;
          col = (dcol_beat & 7) * 32;
          for (int j = 0; j < 16; ++j) {
            vals[2 * j] = int8_t(int8_t(bytes[j] << 4) >> 4);
            vals[2 * j + 1] = int8_t(int8_t(bytes[j]) >> 4);
          }
        } else {
          col = (dcol_beat & 15) * 16;
          std::memcpy(vals, bytes, 16);
        }
        int8_t(*dst)[kDmax] = dkind == 1 ? m->qmem[dbuf] : dkind == 2 ? m->kmem[dbuf] : m->vmem[dbuf];
        for (int j = 0; j < nvals; ++j) dst[drow & 63][(col + j) & 127] = vals[j];
      }
    }
    switch (dstate) {
      case DmaState::idle: break;
      case DmaState::req:
        if (fire_rd) {
          dleft = rd_len;
          drow = dgather ? dslot : 0;
          dcol_beat = 0;
          didx_beat = 0;
          dstate = DmaState::data;
        }
        break;
      case DmaState::data:
        if (beat) {
          ++didx_beat;
          if (dcol_beat + 1 == m->rowbytes() / 16) {
            dcol_beat = 0;
            ++drow;
          } else {
            ++dcol_beat;
          }
          const bool last = dleft <= 16;
          dleft -= 16;
          if (last) {
            if (dgather && ((dslot + int(run_len)) & 127) < dn) {
              dslot = (dslot + int(run_len)) & 127;
              dstate = DmaState::req;
            } else {
              dstate = DmaState::idle;
            }
          }
        }
        break;
    }
    switch (cstate) {
      case CoreState::idle: break;
      case CoreState::run:
        if (--run_left == 0) cstate = CoreState::idle;
        break;
      case CoreState::store_norm:
        if (--st_norm_left == 0) {
          st_beat = 0;
          cstate = CoreState::store_write;
        }
        break;
      case CoreState::store_write:
        if (fire_wr && ++st_beat == m->d / 8) {
          if (++st_row == st_nq) {
            cstate = CoreState::idle;
          } else {
            st_norm_left = 18 + m->chunks();
            cstate = CoreState::store_norm;
          }
        }
        break;
    }
    if (fire_cmd) fifo.push_back(next++);
    if (pop) {
      const size_t index = fifo.front();
      fifo.pop_front();
      const Command& c = cmds[index];
      const uint64_t a = c.rs1, b = c.rs2;
      const bool sel = m->dbuf && (b >> 32 & 1);
      ++ev(Event::commands);
      const uint64_t n16 = b & 0xffff, n16b = b >> 16 & 0xffff;
      switch (c.funct) {
        case Funct::config:
          switch (a & 15) {
            case 0: {
              const uint64_t dd = b & 0xffff;
              const bool is_i4 = b >> 16 & 1;
              if (dd == 0 || dd > 128 || dd % 16 != 0 || (is_i4 && dd % 32 != 0)) bad_command(index, "unsupported head_dim");
              m->d = int(dd);
              m->i4 = is_i4;
              m->causal = b >> 17 & 1;
              m->dbuf = b >> 18 & 1;
              m->off = int32_t(uint32_t(b >> 32));
              break;
            }
            case 1: break;
            case 2:
              m->mult = uint32_t(b & 0x7fffffff);
              m->shift = int(b >> 32 & 63);
              break;
            case 3:
              if ((a >> 4 & 15) > 4) bad_command(index, "no such base address");
              m->base[a >> 4 & 7] = b;
              break;
            default: bad_command(index, "unknown CONFIG sub-op");
          }
          break;
        case Funct::load_idx:
        case Funct::load_q:
        case Funct::load_k:
        case Funct::load_v: {
          if (n16 > 64 || (c.funct == Funct::load_idx && n16b > 64)) bad_command(index, "more than 64 rows");
          dkind = c.funct == Funct::load_idx ? 0 : c.funct == Funct::load_q ? 1 : c.funct == Funct::load_k ? 2 : 3;
          const int base_sel = dkind == 0 ? 3 : dkind - 1;
          dbuf = sel;
          dgather = (b >> 33 & 1) && (dkind == 2 || dkind == 3);
          dn = int(n16);
          dmrows = dkind == 0 ? int(n16b) : 0;
          dbase = m->base[base_sel] + a;
          dslot = 0;
          if (n16 != 0 || (dkind == 0 && dmrows != 0)) dstate = DmaState::req;
          break;
        }
        case Funct::run: {
          if (n16 > 64 || n16b > 64) bad_command(index, "more than 64 rows or keys");
          run_kvb = sel;
          run_qb = m->dbuf && (b >> 33 & 1);
          if (n16 != 0 && n16b != 0) {
            const RunCost rc = execute_run(*m, int(n16), int(n16b), run_kvb, run_qb, b >> 34 & 1, b >> 35 & 1,
                                           int32_t(uint32_t(a)), int32_t(uint32_t(a >> 32)));
            ev(Event::busy) += rc.mac_cycles;
            ev(Event::stall_softmax) += rc.cycles - rc.mac_cycles;
            ev(Event::macs_issued) += rc.macs;
            ev(Event::macs_skipped) += rc.skipped;
            run_left = rc.cycles;
            cstate = CoreState::run;
          }
          break;
        }
        case Funct::store: {
          if (n16 > 64) bad_command(index, "more than 64 rows");
          if (n16 != 0) {
            st_nq = int(n16);
            st_row = 0;
            st_addr = m->base[4] + a;
            st_norm_left = 18 + m->chunks();
            cstate = CoreState::store_norm;
            // The data is final now (no RUN can start before STORE ends); beats only time it.
            std::vector<int16_t> row(size_t(m->d));
            for (int r = 0; r < st_nq; ++r) {
              normalize_row(*m, r, row.data());
              const uint64_t addr = st_addr + uint64_t(r) * uint64_t(m->d) * 2;
              if (addr + row.size() * 2 > dram.size()) throw Error(ExitCode::invalid_input, "accel: STORE outside DRAM");
              std::memcpy(dram.data() + addr, row.data(), row.size() * 2);
            }
          }
          break;
        }
        case Funct::counter: {
          const uint64_t e = a & 0xff;
          int64_t value = 0;
          if (e < uint64_t(kEventCount)) value = (a >> 8 & 1) ? snap[e] : cnt[e];
          // The dispatch itself counts as a command after the read (RTL: nonblocking update).
          if (e < uint64_t(kEventCount) && e == uint64_t(Event::commands) && !(a >> 8 & 1)) value -= 1;
          res.responses.push_back(uint64_t(value));
          if (a >> 9 & 1) {
            std::copy(cnt, cnt + kEventCount, snap);
            --snap[int(Event::commands)];  // the snapshot takes the pre-edge value too
          }
          if (a >> 10 & 1) std::fill(cnt, cnt + kEventCount, 0);
          break;
        }
        case Funct::probe: {
          const auto [w0, w1] = capability_words(cfg.lanes);
          res.responses.push_back((a & 1) ? w1 : w0);
          break;
        }
        default: bad_command(index, "unknown funct " + std::to_string(int(c.funct)));
      }
    }
    rp.advance(fire_rd, rd_addr, rd_len);
    wp.advance(fire_wr);
    ++cycle;
    const bool busy_after = dstate != DmaState::idle || cstate != CoreState::idle || !fifo.empty();
    if (next == cmds.size() && !busy_after && res.responses.size() == expected_resp) break;
    if (cycle >= cfg.max_cycles)
      throw Error(ExitCode::runtime, "accel model: watchdog fired after " + std::to_string(cycle) +
                                         " cycles (max_cycles); raise max_cycles if the problem is just large");
  }
  res.sim_cycles = cycle;
  for (int e = 0; e < kEventCount; ++e)
    if (prog.counter_reads_begin + e < int(res.responses.size()))
      res.counters.set(Event(e), int64_t(res.responses[size_t(prog.counter_reads_begin + e)]));
  res.out_bits.resize(prog.out_bytes / 2);
  if (prog.out_bytes) std::memcpy(res.out_bits.data(), dram.data() + prog.out_offset, prog.out_bytes);
  return res;
}

}  // namespace sattn::accel
