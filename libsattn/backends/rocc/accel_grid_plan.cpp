// The grid's plan, shared by its two engines (accel_grid_internal.hpp): the program split into
// the CONFIG prologue and tasks, the multicast and task groups, the hand-out order, the tiles'
// initial feeds, the watchdog's message and the final counters.
#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <tuple>

#include "backends/rocc/accel_grid_internal.hpp"
#include "sattn/error.hpp"

namespace sattn::accel::grid_detail {

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

namespace {

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


// The K/V chunks of a block-layout task as the driver emits them: (LOAD_K's index, K address)
// for each LOAD_K, LOAD_V, [LOAD_SCALE...], RUN; nullopt for a task with an index load (a CSR
// tile's index records and masks are its own) or K addresses not ascending.
std::optional<std::vector<std::pair<size_t, uint64_t>>> block_chunks(const Program& p, const Task& t) {
  const auto& c = p.commands;
  std::vector<std::pair<size_t, uint64_t>> out;
  for (size_t i = t.cmds.first; i < t.cmds.second; ++i) {
    if (c[i].funct == Funct::load_idx) return std::nullopt;
    if (c[i].funct != Funct::load_k) continue;
    if (i + 1 >= t.cmds.second || c[i + 1].funct != Funct::load_v) return std::nullopt;
    if (!out.empty() && c[i].rs1 <= out.back().second) return std::nullopt;
    out.push_back({i, c[i].rs1});
  }
  return out;
}

// A full group of several query tiles: the heads of each query tile (members [s h, (s+1) h))
// must be shareable as a GQA group is; then, when the query tiles have at least half of their
// chunks in common, a chunk every query tile loads is shared by the gang (kGang), one only some
// load by the heads of each query tile that loads it (kHeads; kOwn with one head); else every
// chunk is shared by the heads of its query tile only. Each member's chunks are in ascending K address order, so every member meets the
// gang's chunks in the same order. False when the tasks do not fit (then nothing is shared).
bool classify_shares(const Program& p, const Group& g, int heads, int query_tiles, uint64_t base_idx,
                     std::vector<uint8_t>& shared_cmd) {
  const auto& c = p.commands;
  const uint64_t no_buf = ~isa::kLoadBuffer.put(1);
  std::vector<std::vector<std::pair<size_t, uint64_t>>> lists;
  std::map<uint64_t, std::pair<size_t, int>> seen;  // K address -> (a LOAD_K with it, query tiles loading it)
  for (int s = 0; s < query_tiles; ++s) {
    const std::vector<const Task*> sub(g.members.begin() + s * heads, g.members.begin() + (s + 1) * heads);
    if (heads > 1 && !shareable(p, sub, base_idx)) return false;
    for (const Task* t : sub) {
      auto l = block_chunks(p, *t);
      if (!l) return false;
      lists.push_back(std::move(*l));
    }
    for (const auto& [i, addr] : lists.back()) {
      auto [it, fresh] = seen.emplace(addr, std::pair{i, 0});
      const Command &ak = c[it->second.first], &av = c[it->second.first + 1], &lk = c[i], &lv = c[i + 1];
      if (!fresh && ((ak.rs2 & no_buf) != (lk.rs2 & no_buf) || av.rs1 != lv.rs1 || (av.rs2 & no_buf) != (lv.rs2 & no_buf)))
        return false;
      ++it->second.second;
    }
  }
  // The query tiles share only when at least half of every query tile's chunks are common to all
  // of them: they then wait for each other at those chunks (a lock step), which costs more than
  // it saves when they share little (bsr's kept blocks, drawn per block row: +4.9% cycles for 4.7%
  // fewer bytes at 8x10, seq_len 16384; docs/decisions.md). Else the heads of each query tile
  // share as a GQA group does.
  int64_t common = 0;
  for (const auto& [addr, where] : seen) common += where.second == query_tiles;
  bool gang = true;
  for (int s = 0; s < query_tiles; ++s) gang = gang && 2 * common >= int64_t(lists[size_t(s * heads)].size());
  for (const auto& l : lists)
    for (const auto& [i, addr] : l) {
      const uint8_t share = gang && seen[addr].second == query_tiles ? kGang : heads > 1 ? kHeads : kOwn;
      shared_cmd[i] = shared_cmd[i + 1] = share;
    }
  return true;
}

}  // namespace

std::unique_ptr<GridPlan> plan_grid(const Program& prog, const Config& cfg) {
  const GridConfig& gc = cfg.grid;
  const int T = gc.tiles();
  auto plan = std::make_unique<GridPlan>();
  GridPlan& pl = *plan;
  pl.split = split_program(prog);
  const Split& split = pl.split;
  uint64_t base_idx = 0;
  for (size_t i = split.prologue.first; i < split.prologue.second; ++i) {
    const Command& c = prog.commands[i];
    if (ConfigOp(isa::kConfigSubop.get(c.rs1)) == ConfigOp::addr && isa::kConfigBase.get(c.rs1) == uint64_t(AddrBase::idx))
      base_idx = c.rs2;
  }

  // Multicast groups: tiles [k m, (k+1) m) form gang k; m = heads x query_tiles. heads is the
  // largest divisor of the GQA group size that divides the tile count; query_tiles the largest
  // q <= multicast_query_tiles with heads q dividing the tile count and every (batch, head)'s
  // query-tile count (so every task group is full), in block layouts only (a task with an index
  // load keeps 1), and when the ganged query tiles' work is about equal (below). Both 1 without
  // multicast.
  int mh = 1, mq = 1;
  if (gc.multicast) {
    for (int d = int(std::min<int64_t>(prog.shape.group_size(), T)); d > 1; --d)
      if (prog.shape.group_size() % d == 0 && T % d == 0) {
        mh = d;
        break;
      }
    std::map<std::pair<int64_t, int64_t>, int64_t> per_head;
    bool block = true;
    for (const Task& t : split.tasks) {
      ++per_head[{t.b, t.h}];
      for (size_t i = t.cmds.first; i < t.cmds.second && block; ++i) block = prog.commands[i].funct != Funct::load_idx;
    }
    for (int q = std::min(gc.multicast_query_tiles, T / mh); q > 1 && block; --q) {
      bool fits = T % (mh * q) == 0;
      for (const auto& [bh, n] : per_head) fits = fits && n % q == 0;
      if (fits) {
        mq = q;
        break;
      }
    }
  }
  // A gang takes the next group only when all its tiles are done with this one, so query tiles of
  // unequal work leave the lighter ones idle (non-causal block_local_global: each head's first query
  // tile, the global rows, reads every key block, its neighbour 3 or 4). Query tiles are ganged only
  // when that idle time (q x the heaviest member's work - the members' work, over the groups) is at
  // most multicast_idle_limit (10%) of the work (the RUNs' query rows x key slots, as lpt weighs tasks).
  if (mq > 1) {
    auto work = [&](const Task& t) {
      int64_t w = 0;
      for (size_t i = t.cmds.first; i < t.cmds.second; ++i)
        if (prog.commands[i].funct == Funct::run)
          w += int64_t(isa::kRunNq.get(prog.commands[i].rs2)) * int64_t(isa::kRunNk.get(prog.commands[i].rs2));
      return w;
    };
    int64_t total = 0, idle = 0, heaviest = 0, sum = 0, n = 0;
    for (size_t k = 0; k < split.tasks.size(); ++k) {
      const int64_t w = work(split.tasks[k]);
      total += w;
      heaviest = std::max(heaviest, w);
      sum += w;
      const bool last = k + 1 == split.tasks.size() || split.tasks[k + 1].b != split.tasks[k].b ||
                        split.tasks[k + 1].h != split.tasks[k].h;
      if (++n == mq || last) {  // a head's query tiles, mq at a time (every head has a multiple of mq)
        idle += int64_t(n) * heaviest - sum;
        heaviest = sum = n = 0;
      }
    }
    if (double(idle) > gc.multicast_idle_limit * double(total)) mq = 1;
  }
  const int m = mh * mq;
  pl.heads = mh;
  pl.query_tiles = mq;
  pl.m = m;
  pl.G = T / m;

  // Task groups: mh heads of one GQA group and mq consecutive query tiles; in program order,
  // members ordered query tile first (member j: query tile j / mh, head j % mh).
  std::vector<Group>& groups = pl.groups;
  std::vector<uint8_t>& shared_cmd = pl.shared_cmd;
  shared_cmd.assign(prog.commands.size(), kOwn);
  {
    std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, size_t> where;
    std::map<std::pair<int64_t, int64_t>, int64_t> ordinal;  // (batch, head) -> its query tiles seen
    std::vector<std::vector<std::vector<const Task*>>> by_tile;  // group -> query tile -> heads
    for (const Task& t : split.tasks) {
      const int64_t sub = (t.h % prog.shape.group_size()) / mh;
      const int64_t qi = ordinal[{t.b, t.h}]++;
      const auto key = std::make_tuple(t.b, t.kvh, sub, mq > 1 ? qi / mq : t.r0);
      auto it = where.find(key);
      if (it == where.end() || groups[it->second].members.size() == size_t(m)) {
        where[key] = groups.size();
        groups.push_back({});
        by_tile.push_back(std::vector<std::vector<const Task*>>(size_t(mq)));
        it = where.find(key);
      }
      groups[it->second].members.push_back(&t);
      by_tile[it->second][size_t(mq > 1 ? qi % mq : 0)].push_back(&t);
    }
    for (size_t k = 0; k < groups.size(); ++k) {
      Group& g = groups[k];
      const bool full = m > 1 && g.members.size() == size_t(m);
      if (mq == 1) {
        g.shared = full && shareable(prog, g.members, base_idx);
        if (g.shared)
          for (const Task* t : g.members)
            for (size_t i = t->cmds.first; i < t->cmds.second; ++i)
              shared_cmd[i] = is_shared_load(prog.commands[i].funct) ? kGang : kOwn;
        continue;
      }
      if (!full) continue;
      g.members.clear();  // query tile first: the heads of one query tile are neighbouring tiles
      for (const auto& hs : by_tile[k]) g.members.insert(g.members.end(), hs.begin(), hs.end());
      g.shared = classify_shares(prog, g, mh, mq, base_idx, shared_cmd);
    }
  }
  // Zigzag runs: consecutive groups of one (batch, head of the first member).
  for (size_t i = 0; i < groups.size();) {
    size_t j = i;
    const Task& a = *groups[i].members[0];
    while (j < groups.size() && groups[j].members[0]->b == a.b && groups[j].members[0]->h == a.h) ++j;
    for (size_t k = i; k < j; ++k) {
      groups[k].run_lo = i;
      groups[k].run_hi = j;
    }
    i = j;
  }
  // The order tasks are handed out in: program order, or (zigzag) each (batch, head set)'s
  // query tiles as first, last, second, second-to-last, ...
  std::vector<size_t>& order = pl.order;
  order.resize(groups.size());
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
  // lpt: the heaviest task groups first, program order among equals. A task's weight is its RUNs'
  // query rows x key slots (what its MAC work and cycles grow with); a group's weight is its
  // heaviest member's (the heads of one query tile agree: with one query tile, one is read).
  if (gc.schedule == Schedule::lpt) {
    std::vector<int64_t> weight(groups.size(), 0);
    for (size_t g = 0; g < groups.size(); ++g)
      for (size_t j = 0; j < (mq > 1 ? groups[g].members.size() : 1); ++j) {
        const Task& t = *groups[g].members[j];
        int64_t w = 0;
        for (size_t i = t.cmds.first; i < t.cmds.second; ++i)
          if (prog.commands[i].funct == Funct::run)
            w += int64_t(isa::kRunNq.get(prog.commands[i].rs2)) * int64_t(isa::kRunNk.get(prog.commands[i].rs2));
        weight[g] = std::max(weight[g], w);
      }
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return weight[a] > weight[b]; });
  }
  return plan;
}

void assign_group(std::vector<Tile>& tiles, int m, int gang, const Group& g) {
  for (size_t j = 0; j < g.members.size(); ++j) {
    Tile& t = tiles[size_t(gang * m) + j];
    t.feed.push_back(g.members[j]->cmds);
    ++t.counters.tasks;
  }
}

size_t make_tiles(const Program& prog, const Config& cfg, const GridPlan& pl, std::vector<Tile>& tiles) {
  const GridConfig& gc = cfg.grid;
  tiles.clear();
  tiles.resize(size_t(gc.tiles()));
  for (Tile& t : tiles) {
    t.disp = std::make_unique<model::Dispatcher>(prog.commands, cfg.lanes);
    t.feed.push_back(pl.split.prologue);
  }
  if (hands_out_dynamically(gc.schedule)) return 0;
  for (size_t i = 0; i < pl.order.size(); ++i)
    assign_group(tiles, pl.m, gc.schedule == Schedule::zigzag ? int((i / 2) % size_t(pl.G)) : int(i % size_t(pl.G)),
                 pl.groups[pl.order[i]]);
  return pl.order.size();
}

Error watchdog_error(const GridConfig& gc, int64_t cycle, int remaining, const std::vector<Tile>& tiles) {
  std::string states;
  int shown = 0;
  for (size_t i = 0; i < tiles.size() && shown < 4; ++i) {
    const Tile& t = tiles[i];
    if (t.done) continue;
    states += "; tile " + std::to_string(i) + ": dma=" + dma_state(t.dma) + " core=" + core_state(t.core->state()) +
              " fifo=" + (t.disp->have() ? "busy" : "empty") + " feed=" + (t.feed_empty() ? "empty" : "pending");
    ++shown;
  }
  return Error(ExitCode::runtime, "accel grid " + gc.shape() + ": watchdog fired after " + std::to_string(cycle) +
                                      " cycles (max_cycles) with " + std::to_string(remaining) + " tiles busy" + states);
}

void collect_grid(const Program& prog, std::vector<Tile>& tiles, const std::vector<uint8_t>& dram, GridResult& res) {
  GridCounters& out = res.counters;
  const int T = int(tiles.size());
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
}

}  // namespace sattn::accel::grid_detail
