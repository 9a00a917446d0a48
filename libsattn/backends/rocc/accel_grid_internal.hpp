// Internal to the grid model (accel_grid.cpp, accel_grid_events.cpp): what a program splits into,
// the plan both engines run (multicast groups, task groups, the hand-out order), the tile, and the
// final counters. One copy, so the per-cycle engine and the event engine cannot disagree on it.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/rocc/accel_grid.hpp"
#include "backends/rocc/accel_model_dispatch.hpp"

namespace sattn::accel::grid_detail {

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

Split split_program(const Program& p);

// Whether the distributor hands tasks out as tiles become free (dynamic, lpt) rather than all
// at the start (static, zigzag).
inline bool hands_out_dynamically(Schedule s) { return s == Schedule::dynamic || s == Schedule::lpt; }

inline bool is_shared_load(Funct f) { return f == Funct::load_k || f == Funct::load_v || f == Funct::load_idx; }
// Every DMA command: a tile that issues one leaves (or joins) its leader's beats; LOAD_SCALE (per head,
// never multicast) included, or a scheme tile would follow the leader's beats with its own bias rows.
inline bool is_load(Funct f) { return is_shared_load(f) || f == Funct::load_q || f == Funct::load_scale; }

inline const char* dma_state(const model::Dma& d) { return !d.busy() ? "idle" : d.receiving() ? "data" : "request"; }
inline const char* core_state(model::Core::State s) {
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
  int dma_width = 1;  // the DMA's load is shared by the dma_width tiles [i/w w, (i/w+1) w) (1: its own)
  bool done = false;
  int64_t wake = 0;  // skipped (a RUN counting down, nothing else possible) before this cycle
  TileCounters counters;
  bool feed_empty() const { return feed_pos >= feed.size(); }
};


// Task groups: `heads` heads of one GQA group times `query_tiles` consecutive query tiles of one
// (batch, KV head) (hw/README.md "Multicast"); in program order, member j = query tile j / heads,
// head j % heads. [run_lo, run_hi) is the zigzag run it belongs to: the consecutive groups of one
// batch and head of the first member (the RTL grid's host writes both into its task table,
// write_grid_plan).
struct Group {
  std::vector<const Task*> members;
  bool shared = false;
  size_t run_lo = 0, run_hi = 0;
};

// How a command's load is shared (GridPlan::shared_cmd; the RTL's mc field): not (each tile
// fetches its own), by the whole gang (m tiles), or by the heads of one query tile (`heads` tiles).
enum Share : uint8_t { kOwn = 0, kGang = 1, kHeads = 2 };

// What both engines run: the split program, the multicast group size m = heads x query_tiles
// (tiles [k m, (k+1) m) form gang k of G), the task groups, how each command's load is shared,
// and the order task groups are handed out in.
struct GridPlan {
  Split split;
  int m = 1, G = 1;
  int heads = 1, query_tiles = 1;
  std::vector<Group> groups;
  std::vector<uint8_t> shared_cmd;  // Share
  std::vector<size_t> order;
  // Tiles sharing a load of this kind (aligned blocks of tiles: [i / w w, (i / w + 1) w)).
  int width(uint8_t share) const { return share == kGang ? m : share == kHeads ? heads : 1; }
};
// cfg.validate()d first. The groups point into plan.split.tasks: keep the plan where it is.
std::unique_ptr<GridPlan> plan_grid(const Program&, const Config&);

// The tiles with their prologue, and (static, zigzag) every task group assigned; returns the next
// task group to hand out (order.size() unless dynamic).
size_t make_tiles(const Program&, const Config&, const GridPlan&, std::vector<Tile>& tiles);
// Gang `gang` takes task group g (its feed grows by the members' commands).
void assign_group(std::vector<Tile>& tiles, int m, int gang, const Group& g);

// The watchdog's error: the grid, the cycle, and the first stuck tiles' unit states.
Error watchdog_error(const GridConfig&, int64_t cycle, int remaining, const std::vector<Tile>& tiles);

// The result once every tile is done: makespan, per-tile and total counters, the output area.
void collect_grid(const Program&, std::vector<Tile>& tiles, const std::vector<uint8_t>& dram, GridResult& res);

}  // namespace sattn::accel::grid_detail
