// sattn::accel::run_grid_events: the grid's event engine (accel_grid.hpp). The same cycles as
// run_grid_stepped (accel_grid.cpp), whose per-cycle order it keeps (distributor, signals, issue,
// DRAM grants and beats, the clock edge of the tiles, the DRAM), but it steps only the tiles
// something happens to.
//
// After its clock edge a tile is *parked* when the next cycles cannot change it but by an event:
// it pushes no command (FIFO full or feed empty), its head command cannot issue, it writes no
// output beat, and its core is idle or counting down a RUN or a STORE row's normalization. Its
// DMA may wait for a DRAM grant or for its burst's beats: the request stays offered to the
// arbiter (its signals are kept), so the arbitration is the stepped engine's. A parked tile wakes
//   - at the start of a cycle: its countdown's last cycle, a task handed to its gang, or the last
//     task handed out (it may then be done);
//   - in the middle of a cycle, with the signals it was parked with: a read grant or a beat for
//     its gang (the gang of a multicast load follows its first tile's requests and beats).
// On waking, the parked cycles are booked at once: `cycles` and the stall cause of its signals
// (Dispatcher::book_cycles), arbiter stalls while its request waited, the countdown, and its
// finish cycle. When no tile is awake and no request or write is pending, the clock jumps to the
// next wake-up or DRAM beat (SharedDram::skip), never past the watchdog's cycle.
#include <algorithm>
#include <queue>
#include <tuple>

#include "backends/rocc/accel_grid.hpp"
#include "backends/rocc/accel_grid_internal.hpp"
#include "dram_model.hpp"
#include "sattn/error.hpp"

namespace sattn::accel {

using namespace grid_detail;

namespace {

// What a parked tile does every parked cycle, booked when it wakes.
struct Parked {
  int64_t from = 0;          // first cycle not stepped
  bool arbiter_wait = false;  // its read request waits for a grant
  enum class Countdown : uint8_t { none, run, store_norm } countdown = Countdown::none;
};

}  // namespace

GridResult run_grid_events(const Program& prog, const Config& cfg) {
  cfg.validate();
  const int64_t max_cycles = watchdog_cycles(prog, cfg);
  const GridConfig& gc = cfg.grid;
  const int T = gc.tiles();
  const std::unique_ptr<GridPlan> plan = plan_grid(prog, cfg);
  const int m = plan->m;
  const std::vector<Group>& groups = plan->groups;
  const std::vector<uint8_t>& shared_cmd = plan->shared_cmd;
  const std::vector<size_t>& order = plan->order;
  const size_t NT = size_t(T);
  std::vector<Tile> tiles;
  size_t next_group = make_tiles(prog, cfg, *plan, tiles);
  const bool dynamic = hands_out_dynamically(gc.schedule);

  std::vector<uint8_t> dram = prog.dram;
  accel_sim::SharedDram port(T, gc.dram_ports, cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle,
                             accel_sim::Arbitration(int(gc.arbitration)));
  GridResult res;
  GridCounters& out = res.counters;
  out.grid = gc;
  out.group_tiles = m;
  out.group_heads = plan->heads;
  out.tasks = int64_t(plan->split.tasks.size());
  out.groups = int64_t(groups.size());

  const size_t P = size_t(gc.dram_ports);
  std::vector<model::Wires> w(NT);
  std::vector<uint8_t> fire_cmd(NT), can_pop(NT), shared_head(NT), req(NT), wr(NT);
  std::vector<uint64_t> req_addr(NT), req_len(NT);
  std::vector<int> rgrant(P, -1), wgrant(P, -1), beat_channel(NT, -1);
  std::vector<uint8_t> fire_rd(NT), fire_wr(NT), have(NT), head_load(NT);
  std::vector<uint64_t> no_responses;  // tasks hold no COUNTER or PROBE
  int n_req = 0, n_wr = 0;             // tiles offering a read request / an output beat
  auto set_req = [&](size_t i, bool v) {
    n_req += int(v) - int(req[i]);
    req[i] = v;
  };
  auto set_wr = [&](size_t i, bool v) {
    n_wr += int(v) - int(wr[i]);
    wr[i] = v;
  };
  // A live tile's signals from its registers, as run_grid_stepped computes them.
  std::vector<uint8_t> fresh(NT, 0);  // the signals are this cycle's (computed after the last edge)
  auto signals = [&](size_t i) {
    Tile& t = tiles[i];
    model::Wires& x = w[i];
    x = model::Wires{};
    x.dma_busy = t.dma.busy();
    x.dma_index_load = t.dma.kind() == model::Dma::Kind::idx;
    x.core = t.core->state();
    fire_cmd[i] = !t.feed_empty() && !t.disp->full();
    can_pop[i] = t.disp->can_pop(t.dma, *t.core);
    have[i] = t.disp->have();
    shared_head[i] = have[i] ? shared_cmd[t.disp->head()] : kOwn;
    head_load[i] = have[i] && is_load(prog.commands[t.disp->head()].funct);
    x.rd = t.dma.request(t.disp->cfg(), *t.core);
    // A multicast load's requests come from the group's first tile only.
    set_req(i, x.rd.valid && i % size_t(t.dma_width) == 0);
    req_addr[i] = x.rd.addr;
    req_len[i] = x.rd.len;
    set_wr(i, t.core->writing());
    fresh[i] = 1;
  };

  // Parking. mode: 0 awake, 1 parked, 2 done.
  std::vector<uint8_t> mode(NT, 0);
  std::vector<Parked> parked(NT);
  // Countdown wake-ups: (cycle, tile), valid while the tile is parked with that wake-up cycle
  // (queued[i]); a tile woken early and parked again with the same countdown keeps its entry.
  std::vector<int64_t> queued(NT, INT64_MAX);
  using Wake = std::pair<int64_t, size_t>;
  std::priority_queue<Wake, std::vector<Wake>, std::greater<Wake>> wakeups;
  auto stale = [&](const Wake& e) { return mode[e.second] != 1 || queued[e.second] != e.first; };
  std::vector<size_t> awake(NT), woken, next_awake, dirty_gangs, granted_now, beats_now;
  for (size_t i = 0; i < NT; ++i) awake[i] = i;
  // Books the parked cycles [from, at) and makes the tile awake (it is stepped at `at`).
  auto wake = [&](size_t i, int64_t at) {
    if (mode[i] != 1) return false;
    Tile& t = tiles[i];
    const Parked& p = parked[i];
    const int64_t k = at - p.from;
    if (k > 0) {
      if (t.disp->active(w[i])) {
        t.disp->book_cycles(w[i], k);
        t.counters.finish_cycle = at - 1;
      }
      if (p.arbiter_wait) t.counters.stall_arbiter += k;
      if (p.countdown == Parked::Countdown::run) t.core->skip_run_cycles(k);
      if (p.countdown == Parked::Countdown::store_norm) t.core->skip_store_norm_cycles(k);
    }
    mode[i] = 0;
    return true;
  };
  // Wakes, in the middle of cycle `at`, the parked tiles that follow requester r's DMA.
  auto wake_gang_of = [&](size_t r, int64_t at) {
    const size_t g0 = m > 1 ? r / size_t(m) * size_t(m) : r;
    for (size_t j = g0; j < g0 + size_t(m); ++j)
      if (wake(j, at)) woken.push_back(j);
  };

  int remaining = T;
  int64_t cycle = 0;
  while (remaining > 0) {
    // Nothing awake and nothing offered to the DRAM: jump to the next wake-up or beat.
    if (awake.empty() && dirty_gangs.empty() && n_req == 0 && n_wr == 0) {
      while (!wakeups.empty() && stale(wakeups.top())) wakeups.pop();
      int64_t next = max_cycles - 1;  // the watchdog fires at max_cycles exactly
      if (!wakeups.empty()) next = std::min(next, wakeups.top().first);
      for (size_t c = 0; c < P; ++c) {
        const int64_t b = port.cycles_to_beat(int(c));
        if (b != INT64_MAX) next = std::min(next, cycle + b);
      }
      if (next > cycle) {
        port.skip(next - cycle);
        cycle = next;
      }
    }
    // Countdowns that end this cycle.
    while (!wakeups.empty() && wakeups.top().first <= cycle) {
      const Wake e = wakeups.top();
      wakeups.pop();
      if (stale(e)) continue;
      queued[e.second] = INT64_MAX;
      wake(e.second, cycle);
      fresh[e.second] = 0;
      awake.push_back(e.second);
    }
    // The distributor (dynamic): a group whose tiles have pushed all their commands takes the
    // next task group, lowest group first. Only gangs whose feed emptied at the last edge can be
    // empty now (every other empty gang took a task when it emptied, or none was left).
    if (!dirty_gangs.empty()) {
      std::sort(dirty_gangs.begin(), dirty_gangs.end());
      dirty_gangs.erase(std::unique(dirty_gangs.begin(), dirty_gangs.end()), dirty_gangs.end());
      for (size_t k : dirty_gangs) {
        if (next_group >= order.size()) break;
        bool empty = true;
        for (int j = 0; j < m; ++j) empty = empty && tiles[k * size_t(m) + size_t(j)].feed_empty();
        if (!empty) continue;
        assign_group(tiles, m, int(k), groups[order[next_group++]]);
        for (size_t j = k * size_t(m); j < (k + 1) * size_t(m); ++j) {
          if (wake(j, cycle)) awake.push_back(j);
          fresh[j] = 0;
        }
        // The last task is out: tiles waiting for one may be done at this edge.
        if (next_group >= order.size())
          for (size_t j = 0; j < NT; ++j)
            if (wake(j, cycle)) {
              fresh[j] = 0;
              awake.push_back(j);
            }
      }
      dirty_gangs.clear();
    }
    std::sort(awake.begin(), awake.end());
    // Each awake tile's signals from its registers.
    for (size_t i : awake)
      if (!fresh[i]) signals(i);
    // Issue: a multicast load issues on every tile of its group in the same cycle, or on none.
    for (size_t i : awake) {
      Tile& t = tiles[i];
      bool pop = can_pop[i];
      if (pop && shared_head[i]) {  // every tile sharing the load, each with a load shared alike at its head
        const size_t wd = size_t(plan->width(shared_head[i])), g0 = i / wd * wd;
        for (size_t j = g0; j < g0 + wd; ++j) pop = pop && !tiles[j].done && can_pop[j] && shared_head[j] == shared_head[i];
        if (!pop) ++t.counters.stall_multicast;
      }
      w[i].pop = pop;
    }
    // The shared DRAM: read grants, beats, write grants; a grant or a beat wakes its gang.
    woken.clear();
    granted_now.clear();
    beats_now.clear();
    if (n_req > 0) {
      port.arbitrate_reads(req, rgrant);
      for (size_t c = 0; c < P; ++c)
        if (rgrant[c] >= 0) {
          fire_rd[size_t(rgrant[c])] = 1;
          granted_now.push_back(size_t(rgrant[c]));
          wake_gang_of(size_t(rgrant[c]), cycle);
        }
    } else {
      std::fill(rgrant.begin(), rgrant.end(), -1);
    }
    for (size_t c = 0; c < P; ++c)
      if (port.beat_now(int(c))) {
        const size_t owner = size_t(port.beat_owner(int(c)));
        beat_channel[owner] = int(c);
        beats_now.push_back(owner);
        out.dram_bytes_read += isa::kBeatBytes;
        // The tiles whose DMA follows the owner's burst. A parked one takes a beat that does not
        // end the burst without a step: the scratchpad write, the DMA's row and column, and
        // the bytes counted (its cycle is a parked cycle like the others); the last beat wakes it.
        const size_t g0 = m > 1 ? owner / size_t(m) * size_t(m) : owner;
        for (size_t j = g0; j < g0 + size_t(m); ++j) {
          Tile& t = tiles[j];
          if (!t.dma.receiving() || j / size_t(t.dma_width) * size_t(t.dma_width) != owner) continue;
          if (mode[j] != 1 || t.dma.last_beat()) {
            if (wake(j, cycle)) woken.push_back(j);
            continue;
          }
          const uint64_t addr = port.beat_addr(int(c));
          if (addr + isa::kBeatBytes > dram.size()) throw Error(ExitCode::invalid_input, "accel: DMA read outside DRAM");
          t.core->dma_write(t.dma.scratchpad_write(t.disp->cfg(), dram.data() + addr));
          t.dma.step(t.disp->cfg(), w[j].rd, false, true);
          t.disp->book_beat();
          if (j != owner) t.counters.multicast_bytes += isa::kBeatBytes;
        }
      }
    if (!woken.empty()) {
      awake.insert(awake.end(), woken.begin(), woken.end());
      std::sort(awake.begin(), awake.end());
    }
    for (size_t i : awake)
      if (req[i] && !fire_rd[i]) ++tiles[i].counters.stall_arbiter;
    if (n_wr > 0) {
      port.arbitrate_writes(wr, wgrant);
      for (size_t c = 0; c < P; ++c)
        if (wgrant[c] >= 0) {
          fire_wr[size_t(wgrant[c])] = 1;
          out.dram_bytes_written += isa::kBeatBytes;
        }
    } else {
      std::fill(wgrant.begin(), wgrant.end(), -1);
    }
    // The clock edge of every awake tile.
    next_awake.clear();
    const bool no_more_tasks = !dynamic || next_group >= order.size();
    for (size_t i : awake) {
      Tile& t = tiles[i];
      model::Wires& x = w[i];
      const size_t src = i / size_t(t.dma_width) * size_t(t.dma_width);  // whose requests and beats this DMA follows
      x.fire_rd = x.rd.valid && fire_rd[src];
      x.gather_fire = x.fire_rd && t.dma.gather();
      const int ch = beat_channel[src];
      x.beat_fire = t.dma.receiving() && ch >= 0;
      x.fire_wr = fire_wr[i];
      if (x.beat_fire) {
        const uint64_t addr = port.beat_addr(ch);
        if (addr + isa::kBeatBytes > dram.size()) throw Error(ExitCode::invalid_input, "accel: DMA read outside DRAM");
        x.sp = t.dma.scratchpad_write(t.disp->cfg(), dram.data() + addr);
        if (src != i) t.counters.multicast_bytes += isa::kBeatBytes;
      }
      const bool pop_shared = x.pop && shared_head[i];
      if (pop_shared && i % size_t(plan->width(shared_head[i])) == 0) ++out.multicast_loads;
      t.dma.step(t.disp->cfg(), x.rd, x.fire_rd, x.beat_fire);
      t.core->step(t.disp->cfg(), x.sp, x.fire_wr);
      t.disp->step(x, fire_cmd[i] ? int64_t(t.feed[t.feed_pos].first + t.next_cmd) : -1, t.dma, *t.core, dram,
                   no_responses);
      // The DMA's load is the group's when the command that started it was a multicast load.
      if (x.pop && head_load[i]) t.dma_width = pop_shared ? plan->width(shared_head[i]) : 1;
      if (fire_cmd[i]) {
        const Range& r = t.feed[t.feed_pos];
        if (r.first + ++t.next_cmd >= r.second) {
          ++t.feed_pos;
          t.next_cmd = 0;
          if (dynamic && t.feed_empty()) dirty_gangs.push_back(i / size_t(m));
        }
      }
      const bool busy_after = t.dma.busy() || t.core->busy() || t.disp->have();
      const bool active = x.dma_busy || x.core != model::Core::State::idle || have[i];
      if (active) t.counters.finish_cycle = cycle;  // cycle 0 only pushes the first command
      if (!busy_after && t.feed_empty() && no_more_tasks) {
        t.done = true;
        --remaining;
        mode[i] = 2;
        set_req(i, false);
        set_wr(i, false);
        continue;
      }
      // The next cycle's signals; park the tile when only an event can change it.
      signals(i);
      bool park = !fire_cmd[i] && !can_pop[i] && !wr[i];
      int64_t until = INT64_MAX;
      Parked::Countdown cd = Parked::Countdown::none;
      if (park) {
        if (const int64_t left = t.core->run_cycles_left(); left > 0) {
          park = left >= 2;
          until = cycle + left;
          cd = Parked::Countdown::run;
        } else if (const int64_t nl = t.core->store_norm_cycles_left(); nl > 0) {
          park = nl >= 2;
          until = cycle + nl;
          cd = Parked::Countdown::store_norm;
        } else {
          park = !t.core->busy();
        }
        // A gang still waiting for its next task when none is left: done at the next edge.
        if (park && !busy_after && t.feed_empty() && no_more_tasks) park = false;
      }
      if (!park) {
        next_awake.push_back(i);
        continue;
      }
      mode[i] = 1;
      parked[i] = {cycle + 1, bool(req[i]), cd};
      w[i].pop = false;
      if (until != INT64_MAX && queued[i] != until) {
        queued[i] = until;
        wakeups.emplace(until, i);
      }
    }
    awake.swap(next_awake);
    // Clear this cycle's grants and beats.
    for (size_t r : granted_now) fire_rd[r] = 0;
    for (size_t o : beats_now) beat_channel[o] = -1;
    for (size_t c = 0; c < P; ++c)
      if (wgrant[c] >= 0) fire_wr[size_t(wgrant[c])] = 0;
    port.advance(rgrant, req_addr, req_len, wgrant);
    ++cycle;
    if (remaining > 0 && cycle >= max_cycles) throw watchdog_error(gc, cycle, remaining, tiles);
  }
  collect_grid(prog, tiles, dram, res);
  return res;
}

}  // namespace sattn::accel
