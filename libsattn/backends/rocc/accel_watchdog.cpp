// The accelerator's watchdog (hw/README.md "Watchdog"): a limit that scales with the program.
// cycle_bound sums every command's worst case, as if nothing overlapped: each DRAM burst waits
// its full latency and moves its beats at the configured bandwidth, a RUN visits every slot of
// every row with a rescale per row, a STORE waits for write credit on every beat. Any correct run
// (one tile or a grid, whose shared DRAM serializes the bursts) is faster; a hang is not.
#include <algorithm>
#include <limits>

#include "backends/rocc/accel.hpp"

namespace sattn::accel {

namespace {

int64_t sat_add(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max() : a + b;
}
int64_t sat_mul(int64_t a, int64_t b) {
  return b != 0 && a > std::numeric_limits<int64_t>::max() / b ? std::numeric_limits<int64_t>::max() : a * b;
}

}  // namespace

int64_t cycle_bound(const Program& p, const Config& cfg) {
  const int64_t latency = cfg.dram_latency_cycles;
  // Cycles per 16-byte beat at dram_bytes_per_cycle (rounded up), and per burst: the request, the
  // latency, one beat more for an unaligned start.
  const int64_t beat = (isa::kBeatBytes + cfg.dram_bytes_per_cycle - 1) / std::max(1, cfg.dram_bytes_per_cycle);
  auto bursts = [&](int64_t n, int64_t bytes) {
    return n * (latency + 2 + beat) + (bytes + isa::kBeatBytes - 1) / isa::kBeatBytes * beat;
  };
  // The CONFIG state the commands run under (the prologue sets it; DMAX until then).
  int64_t d = isa::kMaxHeadDim;
  bool i4 = false, v16 = false;
  int64_t prologue = 0, rest = 0;
  bool in_prologue = true;
  for (const Command& c : p.commands) {
    const int64_t rowbytes = i4 ? d / 2 : d;
    const int64_t chunks = (d + cfg.lanes - 1) / cfg.lanes;
    int64_t k = 4;  // FIFO, dispatch, the harness's fence of COUNTER/PROBE
    switch (c.funct) {
      case Funct::config:
        if (ConfigOp(isa::kConfigSubop.get(c.rs1)) == ConfigOp::shape) {
          d = std::max<int64_t>(1, int64_t(isa::kShapeHeadDim.get(c.rs2)));
          i4 = isa::kShapeI4.get(c.rs2) != 0;
        } else if (ConfigOp(isa::kConfigSubop.get(c.rs1)) == ConfigOp::quant) {
          v16 = isa::kQuantV16.get(c.rs2) != 0;
        }
        break;
      case Funct::load_q: k += bursts(1, int64_t(isa::kLoadCount.get(c.rs2)) * rowbytes); break;
      case Funct::load_k:
      case Funct::load_v: {
        const int64_t n = int64_t(isa::kLoadCount.get(c.rs2));
        const int64_t row = c.funct == Funct::load_v && v16 ? 2 * d : rowbytes;
        k += bursts(isa::kLoadGather.get(c.rs2) ? std::max<int64_t>(1, n) : 1, n * row);
        break;
      }
      case Funct::load_idx: {
        const int64_t n = int64_t(isa::kLoadCount.get(c.rs2)), m = int64_t(isa::kLoadMaskRows.get(c.rs2));
        k += bursts(1, (n + 1) * isa::kIndexEntryBytes + (m + 1) * isa::kMaskRowBytes);
        break;
      }
      case Funct::load_scale:
        k += bursts(1, int64_t(isa::kLoadScaleCount.get(c.rs2)) * std::max<int64_t>(1, isa::kLoadScaleRows.get(c.rs2)) * 4);
        break;
      case Funct::run: {
        // Per row: row start, QK and P.V over every slot, max/exp, a rescale.
        const int64_t nq = int64_t(isa::kRunNq.get(c.rs2)), nk = int64_t(isa::kRunNk.get(c.rs2));
        k += nq * (4 + chunks * (2 * nk + 1));
        break;
      }
      case Funct::store:
        // Per row: setup, the 17-cycle divider, normalization, D/8 beats at the write bandwidth.
        k += int64_t(isa::kStoreRows.get(c.rs2)) * (24 + chunks + (2 * d + isa::kBeatBytes - 1) / isa::kBeatBytes * beat);
        break;
      default: break;
    }
    if (c.funct != Funct::config) in_prologue = false;
    (in_prologue ? prologue : rest) = sat_add(in_prologue ? prologue : rest, k);
  }
  // Every tile of a grid runs the prologue; the tasks are shared out.
  return sat_add(sat_mul(prologue, cfg.grid.tiles()), rest);
}

int64_t watchdog_cycles(const Program& p, const Config& cfg) {
  if (cfg.max_cycles > 0) return cfg.max_cycles;
  return sat_add(sat_mul(cycle_bound(p, cfg), 4), 100000);
}

}  // namespace sattn::accel
