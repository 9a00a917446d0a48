// sattn::accel::run_grid: the grid of tiles (accel_grid.hpp, hw/README.md "Grid"). Per cycle,
// as run_model does for one tile: the distributor hands out tasks, every tile's feed offers its
// next command to its FIFO, the tiles' issue decisions are made (a multicast load issues on all
// tiles of its group in the same cycle, or on none), the shared DRAM arbitrates the read
// requests and write beats and delivers its beats (a multicast beat to every tile of the group);
// then one clock edge of every tile's DMA, core and dispatcher, and of the DRAM.
#include "backends/rocc/accel_grid.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <tuple>

#include "backends/rocc/accel_model_dispatch.hpp"
#include "dram_model.hpp"
#include "sattn/error.hpp"

namespace sattn::accel {

namespace {

using Range = std::pair<size_t, size_t>;  // [begin, end) of command indices

// One task: a query tile of one (batch, head), its commands, and where it sits.
struct Task {
  Range cmds;
  int64_t b = 0, h = 0, kvh = 0, r0 = 0;
};

// What a program splits into: the CONFIG prologue every tile runs, and the tasks.
struct Split {
  Range prologue{0, 0};
  std::vector<Task> tasks;
};

Split split_program(const Program& p) {
  Split s;
  const auto& c = p.commands;
  size_t i = 0;
  while (i < c.size() && c[i].funct == Funct::config) ++i;
  s.prologue = {0, i};
  const Shape& sh = p.shape;
  const uint64_t rowbytes = uint64_t(p.precision == Precision::i4 ? sh.head_dim / 2 : sh.head_dim);
  const int64_t g = sh.group_size();
  while (i < c.size() && c[i].funct != Funct::counter && c[i].funct != Funct::probe) {
    if (c[i].funct != Funct::load_q)
      throw Error(ExitCode::invalid_input, "accel grid: command " + std::to_string(i) + " does not start a task (LOAD_Q)");
    Task t;
    t.cmds.first = i;
    const uint64_t row = c[i].rs1 / rowbytes;
    t.r0 = int64_t(row % uint64_t(sh.seq_len));
    const int64_t bh = int64_t(row / uint64_t(sh.seq_len));
    t.h = bh % sh.heads;
    t.b = bh / sh.heads;
    t.kvh = t.h / g;
    while (i < c.size() && c[i].funct != Funct::store) ++i;
    if (i == c.size()) throw Error(ExitCode::invalid_input, "accel grid: a task has no STORE");
    t.cmds.second = ++i;
    s.tasks.push_back(t);
  }
  return s;
}

// Bytes of the LOAD_IDX record a command reads (hw/README.md "LOAD_IDX").
uint64_t index_record_bytes(uint64_t rs2) {
  const uint64_t n = isa::kLoadCount.get(rs2), m = isa::kLoadMaskRows.get(rs2);
  return (n + (n & 1)) * isa::kIndexEntryBytes + (m + (m & 1)) * isa::kMaskRowBytes;
}

// Whether the tasks can share their K/V/index loads: the same commands but for LOAD_Q, RUN's
// query buffer and STORE, and index records of equal bytes.
bool shareable(const Program& p, const std::vector<const Task*>& members, uint64_t base_idx) {
  const auto& c = p.commands;
  const Task& a = *members[0];
  for (size_t m = 1; m < members.size(); ++m) {
    const Task& t = *members[m];
    if (t.cmds.second - t.cmds.first != a.cmds.second - a.cmds.first) return false;
    for (size_t k = 0; k < a.cmds.second - a.cmds.first; ++k) {
      const Command &x = c[a.cmds.first + k], &y = c[t.cmds.first + k];
      if (x.funct != y.funct) return false;
      // The buffer bits may differ (each tile writes its own buffer; the driver alternates
      // buffers across the whole stream): everything else must agree.
      const uint64_t no_buf = ~isa::kLoadBuffer.put(1);
      if (x.funct == Funct::load_k || x.funct == Funct::load_v) {
        if (x.rs1 != y.rs1 || (x.rs2 & no_buf) != (y.rs2 & no_buf)) return false;
      } else if (x.funct == Funct::load_idx) {
        const uint64_t len = index_record_bytes(x.rs2);
        if ((x.rs2 & no_buf) != (y.rs2 & no_buf) || base_idx + x.rs1 + len > p.dram.size() || base_idx + y.rs1 + len > p.dram.size() ||
            std::memcmp(&p.dram[base_idx + x.rs1], &p.dram[base_idx + y.rs1], len) != 0)
          return false;
      } else if (x.funct == Funct::run) {
        if (x.rs1 != y.rs1 || isa::kRunNk.get(x.rs2) != isa::kRunNk.get(y.rs2) ||
            isa::kRunUseMask.get(x.rs2) != isa::kRunUseMask.get(y.rs2) ||
            isa::kRunUseIndex.get(x.rs2) != isa::kRunUseIndex.get(y.rs2))
          return false;
      }
    }
  }
  return true;
}

bool is_shared_load(Funct f) { return f == Funct::load_k || f == Funct::load_v || f == Funct::load_idx; }
bool is_load(Funct f) { return is_shared_load(f) || f == Funct::load_q; }

const char* dma_state(const model::Dma& d) { return !d.busy() ? "idle" : d.receiving() ? "data" : "request"; }
const char* core_state(model::Core::State s) {
  switch (s) {
    case model::Core::State::idle: return "idle";
    case model::Core::State::run: return "run";
    case model::Core::State::store_norm: return "store_normalize";
    case model::Core::State::store_write: return "store_write";
  }
  return "?";
}

// One tile: its units, its feed of command ranges, and the grid's counters of it.
struct Tile {
  std::unique_ptr<model::Core> core = std::make_unique<model::Core>();  // large: on the heap
  model::Dma dma;
  std::unique_ptr<model::Dispatcher> disp;
  std::vector<Range> feed;
  size_t feed_pos = 0;   // ranges of `feed` before this one are pushed
  size_t next_cmd = 0;   // next command of feed[feed_pos]
  bool dma_shared = false;  // the DMA's current load is a multicast load of its group
  bool done = false;
  int64_t wake = 0;  // skipped (a RUN counting down, nothing else possible) before this cycle
  TileCounters counters;
  bool feed_empty() const { return feed_pos >= feed.size(); }
};

}  // namespace

double GridCounters::imbalance() const {
  if (cycles == 0 || tiles.empty()) return 0;
  double idle = 0;
  for (const TileCounters& t : tiles) idle += double(t.end_idle);
  return idle / (double(cycles) * double(tiles.size()));
}

double GridCounters::dram_read_utilization(int bytes_per_cycle) const {
  if (cycles == 0) return 0;
  return double(dram_bytes_read) / (double(cycles) * double(grid.dram_ports) * double(bytes_per_cycle));
}

nlohmann::json GridCounters::to_json(int bytes_per_cycle) const {
  nlohmann::json per_tile = nlohmann::json::array();
  for (size_t t = 0; t < tiles.size(); ++t) {
    const TileCounters& c = tiles[t];
    per_tile.push_back({{"tile", t},
                        {"row", int(t) / grid.cols},
                        {"col", int(t) % grid.cols},
                        {"tasks", c.tasks},
                        {"cycles", c.events.cycles},
                        {"busy", c.events.busy},
                        {"stalls",
                         {{"dma", c.events.stall_dma},
                          {"index", c.events.stall_index},
                          {"softmax", c.events.stall_softmax},
                          {"bank_conflict", c.events.stall_bank},
                          {"other", c.events.stall_other},
                          {"arbiter", c.stall_arbiter},
                          {"multicast", c.stall_multicast}}},
                        {"macs_issued", c.events.macs_issued},
                        {"dma_bytes_in", c.events.dma_bytes_in},
                        {"dma_bytes_out", c.events.dma_bytes_out},
                        {"multicast_bytes", c.multicast_bytes},
                        {"finish_cycle", c.finish_cycle},
                        {"end_idle", c.end_idle}});
  }
  int64_t arb = 0, mc = 0;
  for (const TileCounters& c : tiles) {
    arb += c.stall_arbiter;
    mc += c.stall_multicast;
  }
  return {{"grid", grid.shape()},
          {"tiles", grid.tiles()},
          {"multicast", grid.multicast},
          {"group_tiles", group_tiles},
          {"schedule", schedule_name(grid.schedule)},
          {"dram_ports", grid.dram_ports},
          {"dram_arbitration", arbitration_name(grid.arbitration)},
          {"cycles", cycles},
          {"tasks", tasks},
          {"groups", groups},
          {"dram_bytes_read", dram_bytes_read},
          {"dram_bytes_written", dram_bytes_written},
          {"dram_read_utilization", dram_read_utilization(bytes_per_cycle)},
          {"multicast_loads", multicast_loads},
          {"multicast_bytes", multicast_bytes},
          {"imbalance", imbalance()},
          {"busy", total.busy},
          {"stall_arbiter", arb},
          {"stall_multicast", mc},
          {"macs_issued", total.macs_issued},
          {"macs_skipped", total.macs_skipped},
          {"counters", total.to_json()},
          {"per_tile", per_tile}};
}

GridPlan plan_grid(const Program& prog, const GridConfig& gc) {
  const int T = gc.tiles();
  const Split split = split_program(prog);
  uint64_t base_idx = 0;
  for (size_t i = split.prologue.first; i < split.prologue.second; ++i) {
    const Command& c = prog.commands[i];
    if (ConfigOp(isa::kConfigSubop.get(c.rs1)) == ConfigOp::addr && isa::kConfigBase.get(c.rs1) == uint64_t(AddrBase::idx))
      base_idx = c.rs2;
  }
  GridPlan plan;
  plan.prologue = split.prologue;
  plan.tasks = split.tasks.size();

  // Multicast groups: tiles [k m, (k+1) m) form group k; m is the largest divisor of the GQA
  // group size that divides the tile count (1 without multicast).
  int m = 1;
  if (gc.multicast)
    for (int d = int(std::min<int64_t>(prog.shape.group_size(), T)); d > 1; --d)
      if (prog.shape.group_size() % d == 0 && T % d == 0) {
        m = d;
        break;
      }
  plan.group_tiles = m;

  // Task groups: m heads of one GQA group, the same (batch, query tile); in program order.
  std::vector<std::vector<const Task*>> members;
  {
    std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, size_t> where;
    for (const Task& t : split.tasks) {
      const int64_t sub = (t.h % prog.shape.group_size()) / m;
      const auto key = std::make_tuple(t.b, t.kvh, sub, t.r0);
      auto it = where.find(key);
      if (it == where.end() || members[it->second].size() == size_t(m)) {
        where[key] = members.size();
        members.push_back({});
        it = where.find(key);
      }
      members[it->second].push_back(&t);
    }
  }
  plan.groups.resize(members.size());
  for (size_t g = 0; g < members.size(); ++g) {
    GridPlan::Group& grp = plan.groups[g];
    grp.shared = m > 1 && members[g].size() == size_t(m) && shareable(prog, members[g], base_idx);
    grp.b = members[g][0]->b;
    grp.h = members[g][0]->h;
    for (const Task* t : members[g]) grp.members.push_back(t->cmds);
  }
  // Zigzag runs: consecutive groups of one (batch, head of the first member).
  for (size_t i = 0; i < plan.groups.size();) {
    size_t j = i;
    while (j < plan.groups.size() && plan.groups[j].b == plan.groups[i].b && plan.groups[j].h == plan.groups[i].h) ++j;
    for (size_t k = i; k < j; ++k) {
      plan.groups[k].run_lo = i;
      plan.groups[k].run_hi = j;
    }
    i = j;
  }
  return plan;
}

GridResult run_grid(const Program& prog, const Config& cfg) {
  cfg.validate();
  const GridConfig& gc = cfg.grid;
  const int T = gc.tiles();
  const GridPlan plan = plan_grid(prog, gc);
  const int m = plan.group_tiles;
  const int G = T / m;
  const auto& groups = plan.groups;
  std::vector<uint8_t> shared_cmd(prog.commands.size(), 0);
  for (const GridPlan::Group& g : groups)
    if (g.shared)
      for (const Range& r : g.members)
        for (size_t i = r.first; i < r.second; ++i) shared_cmd[i] = is_shared_load(prog.commands[i].funct);

  // The order tasks are handed out in: program order, or (zigzag) each (batch, head set)'s
  // query tiles as first, last, second, second-to-last, ...
  std::vector<size_t> order(groups.size());
  std::iota(order.begin(), order.end(), 0);
  if (gc.schedule == Schedule::zigzag) {
    std::vector<size_t> z;
    for (size_t i = 0; i < groups.size(); i = groups[i].run_hi)
      for (size_t lo = i, hi = groups[i].run_hi; lo < hi;) {
        z.push_back(lo++);
        if (lo < hi) z.push_back(--hi);
      }
    order = std::move(z);
  }

  const size_t NT = size_t(T);
  std::vector<Tile> tiles(NT);
  for (Tile& t : tiles) {
    t.disp = std::make_unique<model::Dispatcher>(prog.commands, cfg.lanes);
    t.feed.push_back(plan.prologue);
  }
  auto assign = [&](int gang, const GridPlan::Group& g) {
    for (size_t j = 0; j < g.members.size(); ++j) {
      Tile& t = tiles[size_t(gang * m) + j];
      t.feed.push_back(g.members[j]);
      ++t.counters.tasks;
    }
  };
  size_t next_group = 0;
  if (gc.schedule != Schedule::dynamic) {
    for (size_t i = 0; i < order.size(); ++i)
      assign(gc.schedule == Schedule::zigzag ? int((i / 2) % size_t(G)) : int(i % size_t(G)), groups[order[i]]);
    next_group = order.size();
  }

  std::vector<uint8_t> dram = prog.dram;
  accel_sim::SharedDram port(T, gc.dram_ports, cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle,
                             accel_sim::Arbitration(int(gc.arbitration)));
  GridResult res;
  GridCounters& out = res.counters;
  out.grid = gc;
  out.group_tiles = m;
  out.tasks = int64_t(plan.tasks);
  out.groups = int64_t(groups.size());

  const size_t P = size_t(gc.dram_ports);
  std::vector<model::Wires> w(NT);
  std::vector<uint8_t> fire_cmd(NT), can_pop(NT), shared_head(NT), req(NT), wr(NT);
  std::vector<uint64_t> req_addr(NT), req_len(NT);
  std::vector<int> rgrant(P), wgrant(P), beat_channel(NT);
  std::vector<uint8_t> fire_rd(NT), fire_wr(NT), have(NT), head_load(NT);
  std::vector<uint64_t> no_responses;  // tasks hold no COUNTER or PROBE
  int remaining = T;
  int64_t cycle = 0;
  while (remaining > 0) {
    // Every live tile is skipping and no burst is queued: jump to the first tile's wake-up.
    if (port.read_idle()) {
      int64_t next = INT64_MAX;
      for (const Tile& t : tiles)
        if (!t.done) next = std::min(next, t.wake);
      next = std::min(next, cfg.max_cycles - 1);  // the watchdog fires at max_cycles exactly
      if (next > cycle && next != INT64_MAX) {
        port.idle(next - cycle);
        cycle = next;
      }
    }
    // The distributor (dynamic): a group whose tiles have pushed all their commands takes the
    // next task group, lowest group first.
    if (gc.schedule == Schedule::dynamic)
      for (int k = 0; k < G && next_group < order.size(); ++k) {
        bool empty = true;
        for (int j = 0; j < m; ++j) empty = empty && tiles[size_t(k * m + j)].feed_empty();
        if (empty) assign(k, groups[order[next_group++]]);
      }
    // Each tile's signals from its registers, as in run_model.
    for (int i = 0; i < T; ++i) {
      Tile& t = tiles[size_t(i)];
      if (t.done) {
        req[size_t(i)] = wr[size_t(i)] = 0;
        continue;
      }
      if (cycle < t.wake) continue;  // its signals stay as set when it started skipping
      model::Wires& x = w[size_t(i)];
      x = model::Wires{};
      x.dma_busy = t.dma.busy();
      x.dma_index_load = t.dma.kind() == model::Dma::Kind::idx;
      x.core = t.core->state();
      fire_cmd[size_t(i)] = !t.feed_empty() && !t.disp->full();
      can_pop[size_t(i)] = t.disp->can_pop(t.dma, *t.core);
      have[size_t(i)] = t.disp->have();
      shared_head[size_t(i)] = have[size_t(i)] && shared_cmd[t.disp->head()];
      head_load[size_t(i)] = have[size_t(i)] && is_load(prog.commands[t.disp->head()].funct);
      x.rd = t.dma.request(t.disp->cfg(), *t.core);
      // A multicast load's requests come from the group's first tile only.
      req[size_t(i)] = x.rd.valid && (!t.dma_shared || i % m == 0);
      req_addr[size_t(i)] = x.rd.addr;
      req_len[size_t(i)] = x.rd.len;
      wr[size_t(i)] = t.core->writing();
    }
    // Issue: a multicast load issues on every tile of its group in the same cycle, or on none.
    for (int i = 0; i < T; ++i) {
      Tile& t = tiles[size_t(i)];
      if (t.done || cycle < t.wake) continue;
      bool pop = can_pop[size_t(i)];
      if (pop && shared_head[size_t(i)]) {
        const int g0 = i / m * m;
        for (int j = g0; j < g0 + m; ++j) pop = pop && !tiles[size_t(j)].done && can_pop[size_t(j)] && shared_head[size_t(j)];
        if (!pop) ++t.counters.stall_multicast;
      }
      w[size_t(i)].pop = pop;
    }
    // The shared DRAM: read grants, beats, write grants.
    port.arbitrate_reads(req, rgrant);
    std::fill(fire_rd.begin(), fire_rd.end(), 0);
    std::fill(beat_channel.begin(), beat_channel.end(), -1);
    for (size_t c = 0; c < P; ++c) {
      if (rgrant[c] >= 0) fire_rd[size_t(rgrant[c])] = 1;
      if (port.beat_now(int(c))) {
        beat_channel[size_t(port.beat_owner(int(c)))] = int(c);
        out.dram_bytes_read += isa::kBeatBytes;
      }
    }
    for (int i = 0; i < T; ++i)
      if (req[size_t(i)] && !fire_rd[size_t(i)]) ++tiles[size_t(i)].counters.stall_arbiter;
    port.arbitrate_writes(wr, wgrant);
    std::fill(fire_wr.begin(), fire_wr.end(), 0);
    for (size_t c = 0; c < P; ++c)
      if (wgrant[c] >= 0) {
        fire_wr[size_t(wgrant[c])] = 1;
        out.dram_bytes_written += isa::kBeatBytes;
      }
    // The clock edge of every tile.
    for (int i = 0; i < T; ++i) {
      Tile& t = tiles[size_t(i)];
      if (t.done || cycle < t.wake) continue;
      model::Wires& x = w[size_t(i)];
      const int src = t.dma_shared ? i / m * m : i;  // whose requests and beats this DMA follows
      x.fire_rd = x.rd.valid && fire_rd[size_t(src)];
      x.gather_fire = x.fire_rd && t.dma.gather();
      const int ch = beat_channel[size_t(src)];
      x.beat_fire = t.dma.receiving() && ch >= 0;
      x.fire_wr = fire_wr[size_t(i)];
      if (x.beat_fire) {
        const uint64_t addr = port.beat_addr(ch);
        if (addr + isa::kBeatBytes > dram.size()) throw Error(ExitCode::invalid_input, "accel: DMA read outside DRAM");
        x.sp = t.dma.scratchpad_write(t.disp->cfg(), dram.data() + addr);
        if (src != i) t.counters.multicast_bytes += isa::kBeatBytes;
      }
      const bool pop_shared = x.pop && shared_head[size_t(i)];
      if (pop_shared && i % m == 0) ++out.multicast_loads;
      t.dma.step(t.disp->cfg(), x.rd, x.fire_rd, x.beat_fire);
      t.core->step(t.disp->cfg(), x.sp, x.fire_wr);
      t.disp->step(x, fire_cmd[size_t(i)] ? int64_t(t.feed[t.feed_pos].first + t.next_cmd) : -1, t.dma, *t.core, dram,
                   no_responses);
      // The DMA's load is the group's when the command that started it was a multicast load.
      if (x.pop && head_load[size_t(i)]) t.dma_shared = pop_shared;
      if (fire_cmd[size_t(i)]) {
        const Range& r = t.feed[t.feed_pos];
        if (r.first + ++t.next_cmd >= r.second) {
          ++t.feed_pos;
          t.next_cmd = 0;
        }
      }
      const bool busy_after = t.dma.busy() || t.core->busy() || t.disp->have();
      const bool active = x.dma_busy || x.core != model::Core::State::idle || have[size_t(i)];
      if (active) t.counters.finish_cycle = cycle;  // cycle 0 only pushes the first command
      const bool no_more_tasks = gc.schedule != Schedule::dynamic || next_group >= order.size();
      if (!busy_after && t.feed_empty() && no_more_tasks) {
        t.done = true;
        --remaining;
      }
      // Skip ahead: a RUN counts down, the DMA is idle, the head command cannot issue before the
      // RUN ends and no command can be pushed (FIFO full, or no command left to come). Until the
      // RUN's last cycle only its countdown and the `cycles` counter move.
      const int64_t left = t.core->run_cycles_left();
      if (left >= 2 && !t.dma.busy() && (t.feed_empty() ? no_more_tasks : t.disp->full()) &&
          !t.disp->can_pop(t.dma, *t.core)) {
        const int64_t k = left - 1;
        t.core->skip_run_cycles(k);
        t.disp->add_run_cycles(k);
        t.counters.finish_cycle = cycle + k;
        t.wake = cycle + 1 + k;
        req[size_t(i)] = wr[size_t(i)] = can_pop[size_t(i)] = 0;
        have[size_t(i)] = t.disp->have();
        shared_head[size_t(i)] = have[size_t(i)] && shared_cmd[t.disp->head()];
        head_load[size_t(i)] = have[size_t(i)] && is_load(prog.commands[t.disp->head()].funct);
        fire_cmd[size_t(i)] = 0;
        w[size_t(i)].pop = false;
      }
    }
    port.advance(rgrant, req_addr, req_len, wgrant);
    ++cycle;
    if (remaining > 0 && cycle >= cfg.max_cycles) {
      std::string states;
      int shown = 0;
      for (int i = 0; i < T && shown < 4; ++i) {
        const Tile& t = tiles[size_t(i)];
        if (t.done) continue;
        states += "; tile " + std::to_string(i) + ": dma=" + dma_state(t.dma) + " core=" + core_state(t.core->state()) +
                  " fifo=" + (t.disp->have() ? "busy" : "empty") + " feed=" + (t.feed_empty() ? "empty" : "pending");
        ++shown;
      }
      throw Error(ExitCode::runtime, "accel grid " + gc.shape() + ": watchdog fired after " + std::to_string(cycle) +
                                         " cycles (max_cycles) with " + std::to_string(remaining) + " tiles busy" + states);
    }
  }
  int64_t last = 0;
  for (const Tile& t : tiles) last = std::max(last, t.counters.finish_cycle);
  out.cycles = last;
  out.tiles.resize(size_t(T));
  for (int i = 0; i < T; ++i) {
    TileCounters& c = tiles[size_t(i)].counters;
    for (int e = 0; e < kEventCount; ++e) c.events.set(Event(e), tiles[size_t(i)].disp->counters()[e]);
    c.end_idle = out.cycles - c.finish_cycle;
    out.multicast_bytes += c.multicast_bytes;
    for (int e = 0; e < kEventCount; ++e) out.total.set(Event(e), out.total.get(Event(e)) + c.events.get(Event(e)));
    out.tiles[size_t(i)] = c;
  }
  res.out_bits.resize(prog.out_bytes / 2);
  if (prog.out_bytes) std::memcpy(res.out_bits.data(), dram.data() + prog.out_offset, prog.out_bytes);
  return res;
}

}  // namespace sattn::accel
