// sattn::accel::run_grid: the grid of tiles (accel_grid.hpp, hw/README.md "Grid"). Per cycle,
// as run_model does for one tile: the distributor hands out tasks, every tile's feed offers its
// next command to its FIFO, the tiles' issue decisions are made (a multicast load issues on all
// tiles of its group in the same cycle, or on none), the shared DRAM arbitrates the read
// requests and write beats and delivers its beats (a multicast beat to every tile of the group);
// then one clock edge of every tile's DMA, core and dispatcher, and of the DRAM.
#include "backends/rocc/accel_grid.hpp"

#include "backends/rocc/accel_grid_internal.hpp"

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

using namespace grid_detail;

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
          {"group_heads", group_heads},
          {"query_tiles", group_heads > 0 ? group_tiles / group_heads : 1},
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

GridResult run_grid(const Program& prog, const Config& cfg) { return run_grid_events(prog, cfg); }

GridResult run_grid_stepped(const Program& prog, const Config& cfg) {
  cfg.validate();
  const int64_t max_cycles = watchdog_cycles(prog, cfg);
  const GridConfig& gc = cfg.grid;
  const int T = gc.tiles();
  const std::unique_ptr<GridPlan> plan = plan_grid(prog, cfg);
  const Split& split = plan->split;
  const int m = plan->m, G = plan->G;
  const std::vector<Group>& groups = plan->groups;
  const std::vector<uint8_t>& shared_cmd = plan->shared_cmd;
  const std::vector<size_t>& order = plan->order;
  const size_t NT = size_t(T);
  std::vector<Tile> tiles;
  size_t next_group = make_tiles(prog, cfg, *plan, tiles);
  auto assign = [&](int gang, const Group& g) { assign_group(tiles, m, gang, g); };

  std::vector<uint8_t> dram = prog.dram;
  accel_sim::SharedDram port(T, gc.dram_ports, cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle,
                             accel_sim::Arbitration(int(gc.arbitration)));
  GridResult res;
  GridCounters& out = res.counters;
  out.grid = gc;
  out.group_tiles = m;
  out.group_heads = plan->heads;
  out.tasks = int64_t(split.tasks.size());
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
      next = std::min(next, max_cycles - 1);  // the watchdog fires at max_cycles exactly
      if (next > cycle && next != INT64_MAX) {
        port.idle(next - cycle);
        cycle = next;
      }
    }
    // The distributor (dynamic): a group whose tiles have pushed all their commands takes the
    // next task group, lowest group first.
    if (hands_out_dynamically(gc.schedule))
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
      shared_head[size_t(i)] = have[size_t(i)] ? shared_cmd[t.disp->head()] : kOwn;
      head_load[size_t(i)] = have[size_t(i)] && is_load(prog.commands[t.disp->head()].funct);
      x.rd = t.dma.request(t.disp->cfg(), *t.core);
      // A multicast load's requests come from the group's first tile only.
      req[size_t(i)] = x.rd.valid && i % t.dma_width == 0;
      req_addr[size_t(i)] = x.rd.addr;
      req_len[size_t(i)] = x.rd.len;
      wr[size_t(i)] = t.core->writing();
    }
    // Issue: a multicast load issues on every tile of its group in the same cycle, or on none.
    for (int i = 0; i < T; ++i) {
      Tile& t = tiles[size_t(i)];
      if (t.done || cycle < t.wake) continue;
      bool pop = can_pop[size_t(i)];
      if (pop && shared_head[size_t(i)]) {  // every tile sharing the load, each with a load shared alike at its head
        const int wd = plan->width(shared_head[size_t(i)]), g0 = i / wd * wd;
        for (int j = g0; j < g0 + wd; ++j)
          pop = pop && !tiles[size_t(j)].done && can_pop[size_t(j)] && shared_head[size_t(j)] == shared_head[size_t(i)];
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
      const int src = i / t.dma_width * t.dma_width;  // whose requests and beats this DMA follows
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
      if (pop_shared && i % plan->width(shared_head[size_t(i)]) == 0) ++out.multicast_loads;
      t.dma.step(t.disp->cfg(), x.rd, x.fire_rd, x.beat_fire);
      t.core->step(t.disp->cfg(), x.sp, x.fire_wr);
      t.disp->step(x, fire_cmd[size_t(i)] ? int64_t(t.feed[t.feed_pos].first + t.next_cmd) : -1, t.dma, *t.core, dram,
                   no_responses);
      // The DMA's load is the group's when the command that started it was a multicast load.
      if (x.pop && head_load[size_t(i)]) t.dma_width = pop_shared ? plan->width(shared_head[size_t(i)]) : 1;
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
      const bool no_more_tasks = !hands_out_dynamically(gc.schedule) || next_group >= order.size();
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
        shared_head[size_t(i)] = have[size_t(i)] ? shared_cmd[t.disp->head()] : kOwn;
        head_load[size_t(i)] = have[size_t(i)] && is_load(prog.commands[t.disp->head()].funct);
        fire_cmd[size_t(i)] = 0;
        w[size_t(i)].pop = false;
      }
    }
    port.advance(rgrant, req_addr, req_len, wgrant);
    ++cycle;
    if (remaining > 0 && cycle >= max_cycles) throw watchdog_error(gc, cycle, remaining, tiles);
  }
  collect_grid(prog, tiles, dram, res);
  return res;
}

}  // namespace sattn::accel
