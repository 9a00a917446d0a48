// The multi-tile grid of the accelerator (hw/README.md "Grid"): rows x cols copies of the tile
// (the model's Dma, Core and Dispatcher, accel_model.hpp) sharing one DRAM through a bandwidth
// arbiter (hw/sim/dram_model.hpp SharedDram), a multicast DMA that fetches a K/V/index load once
// for every tile of a GQA group working on the same query tile, and a work distributor that
// hands out tasks (one query tile of one head: LOAD_Q, its chunks, STORE) by a static
// round-robin, a zigzag (early and late causal query tiles paired), a dynamic schedule, or lpt
// (dynamic, the heaviest tasks first).
//
//   GridResult g = run_grid(build_program(op, layout, data, scales, cfg), cfg);
//
// A 1x1 grid runs the same command stream as run_model, so its tile counters and output bits
// equal run_model's; any grid's output bits equal the 1x1 grid's (tasks write disjoint rows).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/rocc/accel.hpp"

namespace sattn::accel {

namespace grid_detail {
struct GridPlan;  // the plan both model engines and the RTL grid's host run (accel_grid_internal.hpp)
}

// One tile's counters: its 13 events (the tile's own COUNTER unit) and what the grid adds.
struct TileCounters {
  Counters events;
  int64_t stall_arbiter = 0;    // cycles its DMA request waited for the shared DRAM port
  int64_t stall_multicast = 0;  // cycles its head command, a multicast load, waited for its group
  int64_t multicast_bytes = 0;  // bytes it received from another tile's multicast fetch
  int64_t tasks = 0;            // tasks (query tiles) it ran
  int64_t finish_cycle = 0;     // the cycle after its last active cycle
  int64_t end_idle = 0;         // grid cycles - finish_cycle: its share of the load imbalance
};

struct GridCounters {
  GridConfig grid;
  int group_tiles = 1;           // tiles per multicast group (1: no multicast)
  int group_heads = 1;           // of them, the heads of one query tile (group_tiles / group_heads query tiles)
  int64_t cycles = 0;            // makespan: the cycle after the last tile's last active cycle
  int64_t dram_bytes_read = 0;   // through the shared port (a multicast fetch counts once)
  int64_t dram_bytes_written = 0;
  int64_t multicast_loads = 0;   // loads fetched once for a group of group_tiles tiles
  int64_t multicast_bytes = 0;   // bytes delivered to group members without a read of their own
  int64_t tasks = 0, groups = 0;
  Counters total;                // the per-tile events summed
  std::vector<TileCounters> tiles;

  // 1 - mean(finish_cycle) / cycles: the fraction of tile-cycles idle at the end.
  double imbalance() const;
  // Read bytes over what the port could carry in `cycles` (ports x bytes per cycle).
  double dram_read_utilization(int dram_bytes_per_cycle) const;
  nlohmann::json to_json(int dram_bytes_per_cycle) const;  // totals + "tiles": [...]
};

struct GridResult {
  std::vector<int16_t> out_bits;  // the output area, as RunResult::out_bits
  GridCounters counters;
};

// Runs the program's tasks on cfg.grid (tiles, multicast, schedule, DRAM ports and arbitration).
// The program is build_program's: CONFIG prologue, tasks (LOAD_Q .. STORE), counter read-out (not
// run: the grid reads each tile's counters directly). Throws Error(runtime) when max_cycles
// passes (the watchdog, naming the stuck tiles' states) and Error(invalid_input) on a command the
// hardware rejects.
GridResult run_grid(const Program&, const Config&);

// The two engines run_grid can use, equal in every output bit, counter and error (the tests
// compare them). run_grid_stepped evaluates every tile every cycle (skipping only a RUN's countdown
// on a tile with nothing else to do): the definition, and what the RTL grid is checked against.
// run_grid_events (what run_grid runs) steps only the tiles something happens to: a tile that can
// only wait for a DRAM grant or beat, a RUN or STORE countdown, or a task is parked, its quiet
// cycles booked at once when it wakes, and the clock jumps over cycles where no tile is awake
// (accel_grid_events.cpp). An 8x10 grid at seq_len 16384 runs in seconds instead of minutes.
GridResult run_grid_stepped(const Program&, const Config&);
GridResult run_grid_events(const Program&, const Config&);

// ---------------------------------------------------------------------------------------------
// The RTL grid (hw/rtl/sattn_grid.sv): built for these shapes with kRtlGridLanes lanes (one
// harness each, hw/CMakeLists.txt); larger grids run in the model only.
inline constexpr const char* kRtlGridShapes[] = {"1x1", "2x2", "2x4"};
inline constexpr int kRtlGridLanes = 16;
std::string rtl_grid_shapes_text();  // "1x1, 2x2 and 2x4"
// libexec_dir()/sattn-accel-grid-sim-RxC-lanesN.
std::string grid_harness_path(const GridConfig&, int lanes);
// DIR/grid.txt: the task table and grid configuration the harness loads (hw/README.md "Grid MMIO").
void write_grid_plan(const grid_detail::GridPlan&, const Config&, const std::string& dir);
struct GridRtlTiming {
  std::string harness;
  int64_t sim_cycles = 0;
  double wall_seconds = 0, cpu_seconds = 0;
};
// Runs the program on the RTL grid; the result has every field run_grid fills. Errors: a grid or
// lanes value not built in RTL, or schedule lpt (model only) -> Error(usage); harness missing or crashed -> Error(external_tool);
// watchdog -> Error(runtime) naming every tile's state; a command the RTL rejects ->
// Error(invalid_input).
GridResult run_grid_rtl(const Program&, const Config&, const RtlOptions& = {}, GridRtlTiming* = nullptr);
// The first counter where two grid runs differ ("" when all agree).
std::string grid_counter_difference(const GridCounters& rtl, const GridCounters& model);

}  // namespace sattn::accel
