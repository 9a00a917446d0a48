// The accelerator grid's model (sattn::accel::run_grid, hw/README.md "Grid"): the 1x1 grid is the
// single-tile model exactly; any grid computes the same output bits; counter identities across
// tiles (MACs, busy cycles, DRAM bytes with and without multicast); the shared DRAM with one
// requester is the single tile's DRAM model; the watchdog; configuration checks.
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "accel_test_support.hpp"
#include "backends/rocc/accel_grid.hpp"
#include "dram_model.hpp"
#include "sattn/error.hpp"

using namespace sattn;
using namespace sattn::accel_test;

namespace {

accel::Config grid_config(int rows, int cols, accel::Schedule s, bool multicast) {
  accel::Config cfg;
  cfg.lanes = 8;
  cfg.grid.rows = rows;
  cfg.grid.cols = cols;
  cfg.grid.schedule = s;
  cfg.grid.multicast = multicast;
  return cfg;
}

constexpr accel::Schedule kSchedules[] = {accel::Schedule::static_rr, accel::Schedule::zigzag, accel::Schedule::dynamic,
                                           accel::Schedule::lpt};

}  // namespace

TEST_CASE("accel grid: 1x1 equals the single-tile model (counters and output bits)") {
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4})
      for (bool causal : {false, true}) {
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        CAPTURE(causal);
        const Case c = make_case(spec, prec, causal, 72, 72, 32, 4, 2);
        for (accel::Schedule s : {accel::Schedule::static_rr, accel::Schedule::dynamic}) {
          const accel::Config cfg = grid_config(1, 1, s, true);
          const accel::Program p = program_of(c, cfg);
          const accel::RunResult single = accel::run_model(p, cfg);
          const accel::GridResult g = accel::run_grid(p, cfg);
          CHECK(g.out_bits == single.out_bits);
          REQUIRE(g.counters.tiles.size() == 1);
          CHECK(g.counters.tiles[0].events == single.counters);
          CHECK(g.counters.cycles == single.counters.cycles);
          CHECK(g.counters.dram_bytes_read == single.counters.dma_bytes_in);
          CHECK(g.counters.dram_bytes_written == single.counters.dma_bytes_out);
          CHECK(g.counters.tiles[0].end_idle == 0);
          CHECK(g.counters.multicast_bytes == 0);
        }
      }
}

TEST_CASE("accel grid: 2x2 and 2x4, every schedule, multicast on and off: same output, same MACs") {
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4})
      for (bool causal : {false, true}) {
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        CAPTURE(causal);
        // GQA 2 (4 query heads, 2 KV heads), a partial last block (72 is not a multiple of 16).
        const Case c = make_case(spec, prec, causal, 72, 72, 32, 4, 2);
        const accel::Config one = grid_config(1, 1, accel::Schedule::static_rr, false);
        const accel::Program p = program_of(c, one);
        const accel::RunResult single = accel::run_model(p, one);
        for (auto [rows, cols] : {std::pair{2, 2}, std::pair{2, 4}})
          for (accel::Schedule s : kSchedules) {
            int64_t read_on = 0, read_off = 0;
            for (bool mc : {false, true}) {
              CAPTURE(rows);
              CAPTURE(cols);
              const std::string schedule = accel::schedule_name(s);
              CAPTURE(schedule);
              CAPTURE(mc);
              const accel::GridResult g = accel::run_grid(p, grid_config(rows, cols, s, mc));
              const accel::GridCounters& k = g.counters;
              CHECK(g.out_bits == single.out_bits);
              CHECK(k.total.macs_issued == single.counters.macs_issued);
              CHECK(k.total.macs_skipped == single.counters.macs_skipped);
              CHECK(k.total.busy == single.counters.busy);
              CHECK(k.total.dma_bytes_out == single.counters.dma_bytes_out);
              CHECK(k.dram_bytes_written == single.counters.dma_bytes_out);
              int64_t tasks = 0;
              for (const accel::TileCounters& t : k.tiles) {
                tasks += t.tasks;
                CHECK(t.end_idle == k.cycles - t.finish_cycle);
                CHECK(t.events.cycles == t.events.busy + t.events.stall_dma + t.events.stall_index +
                                             t.events.stall_softmax + t.events.stall_bank + t.events.stall_other);
              }
              CHECK(tasks == k.tasks);
              // Every byte a tile received came from its own read or a multicast delivery.
              CHECK(k.total.dma_bytes_in == k.dram_bytes_read + k.multicast_bytes);
              CHECK(k.imbalance() >= 0.0);
              CHECK(k.imbalance() < 1.0);
              if (!mc) CHECK(k.multicast_bytes == 0);
              (mc ? read_on : read_off) = k.dram_bytes_read;
              // The GQA group size: no gangs of query tiles here (odd query-tile counts; dense's
              // two, of 64 and 8 rows, too unequal to gang).
              if (mc) CHECK(k.group_tiles == 2);
            }
            CHECK(read_on <= read_off);
            // The K/V blocks of a GQA group's two heads are fetched once: fewer bytes whenever any
            // K/V block is loaded.
            CHECK(read_on < read_off);
          }
      }
}

TEST_CASE("accel grid: gangs of heads x query tiles: same output and MACs, fewer DRAM bytes") {
  // GQA 2 (4 query heads, 2 KV heads), 4 query tiles of 16 rows per head (56: the last block row
  // partial). 2x2: gangs of 2 heads x 2 query tiles; 2x4 with 4 query tiles: 2 heads x 4.
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4})
      for (bool causal : {false, true}) {
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        CAPTURE(causal);
        const Case c = make_case(spec, prec, causal, 56, 56, 32, 4, 2);
        accel::Config one = grid_config(1, 1, accel::Schedule::static_rr, false);
        one.q_tile_rows = 16;
        const accel::Program p = program_of(c, one);
        const accel::RunResult single = accel::run_model(p, one);
        const bool block = c.layout.block;
        for (auto [rows, cols, q] : {std::tuple{2, 2, 2}, std::tuple{2, 4, 4}})
          for (accel::Schedule s : kSchedules) {
            CAPTURE(rows);
            CAPTURE(cols);
            CAPTURE(accel::schedule_name(s));
            accel::Config cfg = grid_config(rows, cols, s, true);
            cfg.q_tile_rows = 16;
            cfg.grid.multicast_query_tiles = q;
            cfg.grid.multicast_idle_limit = 1;  // gang whenever the counts allow
            accel::Config heads = cfg, off = cfg;
            heads.grid.multicast_query_tiles = 1;
            off.grid.multicast = false;
            const accel::GridResult g = accel::run_grid(p, cfg);
            const accel::GridCounters& k = g.counters;
            CHECK(g.out_bits == single.out_bits);
            CHECK(k.total.macs_issued == single.counters.macs_issued);
            CHECK(k.total.macs_skipped == single.counters.macs_skipped);
            CHECK(k.total.busy == single.counters.busy);
            CHECK(k.total.dma_bytes_in == k.dram_bytes_read + k.multicast_bytes);
            int64_t tasks = 0;
            for (const accel::TileCounters& t : k.tiles) tasks += t.tasks;
            CHECK(tasks == k.tasks);
            // Block layouts gang query tiles (2 heads x q) when every head has a multiple of q
            // (quest's pages of 8 give 7 query tiles a head: none); CSR layouts keep the heads' groups.
            const bool gangs = block && p.tiles / 4 % q == 0;
            CHECK(k.group_tiles == (gangs ? 2 * q : 2));
            const int64_t read_heads = accel::run_grid(p, heads).counters.dram_bytes_read;
            const int64_t read_off = accel::run_grid(p, off).counters.dram_bytes_read;
            CHECK(k.dram_bytes_read <= read_heads);
            CHECK(read_heads < read_off);
            // block_local_global: query tiles q and q+1 load the global block and block q (causal:
            // {0, q-1, q} and {0, q, q+1}), fetched once per gang of 2 query tiles. A gang of all 4
            // query tiles has only the global block in common (less than half of tile 3's {0, 2, 3}):
            // its heads share as without query tiles.
            if (spec == Spec::block_local_global && q == 2) CHECK(k.dram_bytes_read < read_heads);
            if (!gangs) CHECK(k.dram_bytes_read == read_heads);
          }
      }
}

TEST_CASE("accel grid: query tiles are ganged only when their work is about equal") {
  // GQA 4 on 2x4: gangs of 4 heads x 2 query tiles, or the 4 heads alone. Causal
  // block_local_global, 8 query tiles of 16 rows: key blocks {0}, {0,1}, then 3 each; the pairs
  // idle 1 block-run of 21 (< 10%): ganged. Non-causal: the first query tile (the global rows)
  // reads all 4 blocks, then 3, 4, 3: idle 2 of 14 (> 10%): not.
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    const int64_t seq = causal ? 128 : 64;
    const Case c = make_case(Spec::block_local_global, Precision::i8, causal, seq, seq, 32, 4, 1);
    accel::Config cfg = grid_config(2, 4, accel::Schedule::dynamic, true);
    cfg.q_tile_rows = 16;
    const accel::Program p = program_of(c, cfg);
    CHECK(accel::run_grid(p, cfg).counters.group_tiles == (causal ? 8 : 4));
    cfg.grid.multicast_idle_limit = 1;
    CHECK(accel::run_grid(p, cfg).counters.group_tiles == 8);
  }
}

TEST_CASE("accel grid: the shared DRAM with one requester is the single tile's DRAM model") {
  std::mt19937 rng(7);
  for (int bw : {16, 5, 1})
    for (int latency : {0, 3, 40}) {
      sattn::accel_sim::ReadPort rp(latency, bw);
      sattn::accel_sim::WritePort wp(bw);
      sattn::accel_sim::SharedDram shared(1, 1, latency, bw, sattn::accel_sim::Arbitration::round_robin);
      std::vector<uint8_t> want(1), wr(1);
      std::vector<int> rg, wg;
      std::vector<uint64_t> addr(1), len(1);
      int beats = 0;
      for (int cycle = 0; cycle < 3000; ++cycle) {
        // A requester that asks for a new burst (when the port is free) some of the time.
        want[0] = rp.ready() && rng() % 3 == 0;
        wr[0] = rng() % 2;
        addr[0] = uint64_t(rng() % 64) * 16;
        len[0] = uint64_t(1 + rng() % 6) * 16;
        shared.arbitrate_reads(want, rg);
        shared.arbitrate_writes(wr, wg);
        CHECK((rg[0] == 0) == bool(want[0] && rp.ready()));
        CHECK((wg[0] == 0) == bool(wr[0] && wp.ready_now()));
        CHECK(shared.beat_now(0) == rp.beat_now());
        if (rp.beat_now()) {
          CHECK(shared.beat_addr(0) == rp.beat_addr());
          ++beats;
        }
        rp.advance(want[0] && rp.ready(), addr[0], len[0]);
        wp.advance(wr[0] && wg[0] == 0);
        shared.advance(rg, addr, len, wg);
      }
      CHECK(beats > 100);
    }
}

TEST_CASE("accel grid: round-robin arbitration serves every requester; fixed serves the lowest") {
  for (auto policy : {sattn::accel_sim::Arbitration::round_robin, sattn::accel_sim::Arbitration::fixed}) {
    sattn::accel_sim::SharedDram d(4, 1, 0, 16, policy);
    std::vector<uint8_t> want(4, 1);
    std::vector<int> g;
    std::vector<int> served(4, 0);
    for (int i = 0; i < 8; ++i) {
      d.arbitrate_reads(want, g);
      REQUIRE(g[0] >= 0);
      ++served[size_t(g[0])];
      d.advance(g, std::vector<uint64_t>(4, 0), std::vector<uint64_t>(4, 0), std::vector<int>{-1});
    }
    if (policy == sattn::accel_sim::Arbitration::round_robin)
      for (int s : served) CHECK(s == 2);
    else
      CHECK(served[0] == 8);
  }
}

TEST_CASE("accel grid: the watchdog fires on a grid and names the tiles' states") {
  const Case c = make_case(Spec::bsr, Precision::i8, true, 72, 72, 32, 4, 2);
  accel::Config cfg = grid_config(2, 2, accel::Schedule::dynamic, true);
  const accel::Program p = program_of(c, cfg);
  cfg.max_cycles = 500;
  try {
    (void)accel::run_grid(p, cfg);
    FAIL("no watchdog");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    const std::string m = e.what();
    CHECK(m.find("accel grid 2x2: watchdog fired after 500 cycles") != std::string::npos);
    CHECK(m.find("tile 0: dma=") != std::string::npos);
  }
}

TEST_CASE("accel watchdog: the default scales with the program, an explicit limit still fires") {
  // The default (max_cycles 0) is 4 x cycle_bound + 100000; cycle_bound is above every correct
  // run (the grids and DRAM settings of test_accel_grid_events check it too), and grows with
  // the work, so a large op needs no flag and a small hung one stops soon.
  const accel::Config defaults;
  CHECK(defaults.max_cycles == 0);
  int64_t last_bound = 0;
  for (int64_t seq : {72, 256}) {
    CAPTURE(seq);
    const Case c = make_case(Spec::bsr, Precision::i8, true, seq, seq, 32, 4, 2);
    for (auto [rows, cols] : {std::pair{1, 1}, std::pair{2, 2}}) {
      accel::Config cfg = grid_config(rows, cols, accel::Schedule::dynamic, true);
      const accel::Program p = program_of(c, cfg);
      const int64_t bound = accel::cycle_bound(p, cfg);
      CHECK(accel::watchdog_cycles(p, cfg) == 4 * bound + 100000);
      const int64_t cycles = rows == 1 ? accel::run_model(p, cfg).counters.cycles : accel::run_grid(p, cfg).counters.cycles;
      CHECK(cycles <= bound);
      CHECK(bound <= 10 * cycles * rows * cols);  // a bound, not a constant: a hang is caught soon
      if (rows == 1) {
        CHECK(bound > last_bound);
        last_bound = bound;
      }
      // An explicit limit is the watchdog, whatever the bound.
      cfg.max_cycles = cycles / 2;
      CHECK(accel::watchdog_cycles(p, cfg) == cycles / 2);
      try {
        if (rows == 1) (void)accel::run_model(p, cfg);
        else (void)accel::run_grid(p, cfg);
        FAIL("no watchdog");
      } catch (const Error& e) {
        CHECK(e.code() == ExitCode::runtime);
        CHECK(std::string(e.what()).find("watchdog fired after " + std::to_string(cycles / 2) + " cycles") !=
              std::string::npos);
      }
    }
  }
  accel::Config bad;
  bad.max_cycles = -1;
  CHECK_THROWS_AS(bad.validate(), Error);
}

TEST_CASE("accel grid: configuration: RxC parsing, the ISA's limits, schedules") {
  CHECK(accel::parse_grid("8x10") == std::pair{8, 10});
  CHECK(accel::parse_grid("2X4") == std::pair{2, 4});
  for (const char* bad : {"", "x", "8x", "x10", "8*10", "8x10x", "-1x2", "a x b", "123456x1"})
    CHECK_FALSE(accel::parse_grid(bad).has_value());
  CHECK(accel::parse_schedule("zigzag") == accel::Schedule::zigzag);
  CHECK(accel::parse_schedule("lpt") == accel::Schedule::lpt);
  CHECK(std::string(accel::schedule_name(accel::Schedule::lpt)) == "lpt");
  CHECK_FALSE(accel::parse_schedule("random").has_value());
  accel::Config cfg;
  cfg.grid.rows = accel::isa::kGridMaxRows;
  cfg.grid.cols = accel::isa::kGridMaxCols;
  CHECK_NOTHROW(cfg.validate());
  cfg.grid.rows = accel::isa::kGridMaxRows + 1;
  CHECK_THROWS_AS(cfg.validate(), Error);
}

TEST_CASE("accel grid: lpt hands the heavy global query tiles of block_local_global out first") {
  // Non-causal block_local_global: each head's first query tile holds the global rows (every key),
  // the others a window and the global columns. Dynamic hands the heavy tiles out in program order,
  // the last heads' late; lpt first. Same work, same output, a shorter makespan.
  // 8 heads without GQA on 8 tiles, 16 query tiles of 16 rows per head: the heavy tile is a quarter
  // of a tile's share, and dynamic hands the last head's out at seven eighths of the run.
  Case c = make_case(Spec::block_local_global, Precision::i8, false, 256, 256, 32, 8, 8);
  accel::Config dyn = grid_config(2, 4, accel::Schedule::dynamic, true), lpt = dyn;
  dyn.q_tile_rows = lpt.q_tile_rows = 16;
  lpt.grid.schedule = accel::Schedule::lpt;
  const accel::Program p = program_of(c, dyn);
  const accel::GridResult a = accel::run_grid(p, dyn), b = accel::run_grid(p, lpt);
  CHECK(a.out_bits == b.out_bits);
  CHECK(a.counters.total.macs_issued == b.counters.total.macs_issued);
  CHECK(a.counters.tasks == b.counters.tasks);
  MESSAGE("dynamic ", a.counters.cycles, " cycles, imbalance ", a.counters.imbalance(), "; lpt ", b.counters.cycles,
          " cycles, imbalance ", b.counters.imbalance());
  CHECK(b.counters.cycles < a.counters.cycles);
  CHECK(b.counters.imbalance() < a.counters.imbalance());
}
