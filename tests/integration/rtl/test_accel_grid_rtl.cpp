// The RTL tile grid (hw/rtl/sattn_grid.sv under Verilator) against the grid model (run_grid):
// 1x1, 2x2 and 2x4, every spec, i8 and i4, causal and not, GQA, partial blocks, each schedule,
// multicast on and off, gangs of heads x query tiles: every output bit and every counter (per
// tile and the grid's) equal; the counter identities across tiles; the watchdog on a grid; grids
// and lanes not built in RTL.
// These tests need the grid harnesses built (ninja sattn_grid_harness): they fail without them.
#include <doctest/doctest.h>

#include <string>

#include "accel_test_support.hpp"
#include "backends/rocc/accel_grid.hpp"
#include "core/quant_scheme.hpp"
#include "sattn/error.hpp"

using namespace sattn;
using namespace sattn::accel_test;

namespace {

accel::Config grid_config(int rows, int cols, accel::Schedule s, bool multicast) {
  accel::Config cfg;  // the RTL grid's 16 lanes
  cfg.grid.rows = rows;
  cfg.grid.cols = cols;
  cfg.grid.schedule = s;
  cfg.grid.multicast = multicast;
  cfg.dram_latency_cycles = 7;
  return cfg;
}

// Every field both runs fill, compared one by one (so a failure names the counter).
void check_grid_equal(const accel::GridResult& rtl, const accel::GridResult& model) {
  CHECK(rtl.out_bits == model.out_bits);
  const accel::GridCounters &a = rtl.counters, &b = model.counters;
  CHECK(a.cycles == b.cycles);
  CHECK(a.dram_bytes_read == b.dram_bytes_read);
  CHECK(a.dram_bytes_written == b.dram_bytes_written);
  CHECK(a.multicast_loads == b.multicast_loads);
  CHECK(a.multicast_bytes == b.multicast_bytes);
  CHECK(a.group_tiles == b.group_tiles);
  CHECK(a.tasks == b.tasks);
  CHECK(a.groups == b.groups);
  CHECK(a.total == b.total);
  REQUIRE(a.tiles.size() == b.tiles.size());
  for (size_t i = 0; i < a.tiles.size(); ++i) {
    CAPTURE(i);
    const accel::TileCounters &x = a.tiles[i], &y = b.tiles[i];
    for (int e = 0; e < accel::kEventCount; ++e) {
      CAPTURE(accel::event_name(accel::Event(e)));
      CHECK(x.events.get(accel::Event(e)) == y.events.get(accel::Event(e)));
    }
    CHECK(x.stall_arbiter == y.stall_arbiter);
    CHECK(x.stall_multicast == y.stall_multicast);
    CHECK(x.multicast_bytes == y.multicast_bytes);
    CHECK(x.tasks == y.tasks);
    CHECK(x.finish_cycle == y.finish_cycle);
    CHECK(x.end_idle == y.end_idle);
  }
  CHECK(accel::grid_counter_difference(a, b).empty());
}

constexpr accel::Schedule kSchedules[] = {accel::Schedule::static_rr, accel::Schedule::zigzag, accel::Schedule::dynamic,
                                           accel::Schedule::lpt};

}  // namespace

TEST_CASE("accel grid rtl: 1x1 equals the grid model and the single-tile RTL") {
  for (Spec spec : kAllSpecs) {
    CAPTURE(to_string(spec));
    const Case c = make_case(spec, Precision::i8, int(spec) % 2 == 0, 40, 40, 32, 2, 1);
    for (accel::Schedule s : kSchedules) {
      const accel::Config cfg = grid_config(1, 1, s, true);
      const accel::Program p = program_of(c, cfg);
      const accel::GridResult rtl = accel::run_grid_rtl(p, cfg);
      check_grid_equal(rtl, accel::run_grid(p, cfg));
      const accel::RunResult tile = accel::run_rtl(p, cfg);
      CHECK(rtl.out_bits == tile.out_bits);
      // The tile's read-out (COUNTER commands) is not part of a grid's tasks: the same events but
      // the read-out's own commands and cycles.
      CHECK(rtl.counters.total.macs_issued == tile.counters.macs_issued);
      CHECK(rtl.counters.total.busy == tile.counters.busy);
      CHECK(rtl.counters.dram_bytes_read == tile.counters.dma_bytes_in);
      CHECK(rtl.counters.dram_bytes_written == tile.counters.dma_bytes_out);
    }
  }
}

TEST_CASE("accel grid rtl: 2x2 and 2x4 bit-exact and counter-exact with the model") {
  // Every spec, i8 and i4, causal on alternate cases, GQA 2 (4 query heads, 2 KV heads), a partial
  // last block (40 is not a multiple of 16), each schedule, multicast on and off.
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4}) {
      CAPTURE(to_string(spec));
      CAPTURE(to_string(prec));
      const bool causal = (int(spec) + int(prec)) % 2 == 0;
      CAPTURE(causal);
      const Case c = make_case(spec, prec, causal, 40, 40, 32, 4, 2);
      const accel::Config one = grid_config(1, 1, accel::Schedule::static_rr, false);
      const accel::Program p = program_of(c, one);
      const accel::GridResult single = accel::run_grid(p, one);
      for (auto [rows, cols] : {std::pair{2, 2}, std::pair{2, 4}})
        for (accel::Schedule s : kSchedules) {
          int64_t read_on = 0, read_off = 0;
          for (bool mc : {false, true}) {
            CAPTURE(rows);
            CAPTURE(cols);
            const std::string schedule = accel::schedule_name(s);
            CAPTURE(schedule);
            CAPTURE(mc);
            const accel::Config cfg = grid_config(rows, cols, s, mc);
            const accel::GridResult model = accel::run_grid(p, cfg);
            const accel::GridResult rtl = accel::run_grid_rtl(p, cfg);
            check_grid_equal(rtl, model);
            // Both model engines: the RTL is cycle-identical to the per-cycle one and the event one.
            check_grid_equal(rtl, accel::run_grid_stepped(p, cfg));
            check_grid_equal(rtl, accel::run_grid_events(p, cfg));
            // Identities across tiles: the same output and MACs as one tile, every task run once.
            CHECK(rtl.out_bits == single.out_bits);
            CHECK(rtl.counters.total.macs_issued == single.counters.total.macs_issued);
            int64_t tasks = 0;
            for (const accel::TileCounters& t : rtl.counters.tiles) tasks += t.tasks;
            CHECK(tasks == single.counters.tasks);
            (mc ? read_on : read_off) = rtl.counters.dram_bytes_read;
            if (mc) CHECK(rtl.counters.multicast_loads > 0);
          }
          CHECK(read_on < read_off);  // multicast fetches each shared K/V/index block once
        }
    }
}

TEST_CASE("accel grid rtl: gangs of heads x query tiles bit-exact and counter-exact with the model") {
  // Multicast across query tiles (hw/README.md "Multicast"): a K/V chunk every query tile of a gang
  // loads is shared by the gang (mc 1), one only some load by the heads of each of those query
  // tiles (mc 2). Every spec, i8 and i4, causal on alternate cases, GQA 2, 4 query tiles of 16
  // rows per head with a partial last block (56), each schedule; 2x2 (2 heads x 2 query tiles)
  // and 2x4 (2 heads x 4 query tiles); CSR layouts keep the heads' groups.
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4}) {
      CAPTURE(to_string(spec));
      CAPTURE(to_string(prec));
      const bool causal = (int(spec) + int(prec)) % 2 == 0;
      CAPTURE(causal);
      const Case c = make_case(spec, prec, causal, 56, 56, 32, 4, 2);
      accel::Config one = grid_config(1, 1, accel::Schedule::static_rr, false);
      one.q_tile_rows = 16;
      const accel::Program p = program_of(c, one);
      const accel::GridResult single = accel::run_grid(p, one);
      for (auto [rows, cols, q] : {std::tuple{2, 2, 2}, std::tuple{2, 4, 4}})
        for (accel::Schedule s : kSchedules) {
          CAPTURE(rows);
          CAPTURE(cols);
          const std::string schedule = accel::schedule_name(s);
          CAPTURE(schedule);
          accel::Config cfg = grid_config(rows, cols, s, true);
          cfg.q_tile_rows = 16;
          cfg.grid.multicast_query_tiles = q;
          cfg.grid.multicast_idle_limit = 1;  // gang whenever the counts allow
          const accel::GridResult rtl = accel::run_grid_rtl(p, cfg);
          check_grid_equal(rtl, accel::run_grid_stepped(p, cfg));
          check_grid_equal(rtl, accel::run_grid_events(p, cfg));
          CHECK(rtl.out_bits == single.out_bits);
          CHECK(rtl.counters.total.macs_issued == single.counters.total.macs_issued);
          // Block layouts gang query tiles when every head has a multiple of q (quest's pages of
          // 8 give 7 query tiles a head: none); CSR layouts keep the heads' groups.
          CHECK(rtl.counters.group_tiles == (c.layout.block && p.tiles / 4 % q == 0 ? 2 * q : 2));
          CHECK(rtl.counters.multicast_loads > 0);
          accel::Config off = cfg;
          off.grid.multicast = false;
          CHECK(rtl.counters.dram_bytes_read < accel::run_grid(p, off).counters.dram_bytes_read);
        }
      // GQA 1 (2 heads, 2 KV heads) on 2x4: gangs of 2 query tiles, the chunks only one loads its own.
      if (c.layout.block) {
        const Case d = make_case(spec, prec, causal, 56, 56, 32, 2, 2);
        accel::Config cfg = grid_config(2, 4, accel::Schedule::dynamic, true);
        cfg.q_tile_rows = 16;
        cfg.grid.multicast_idle_limit = 1;
        const accel::Program pd = program_of(d, cfg);
        const accel::GridResult rtl = accel::run_grid_rtl(pd, cfg);
        check_grid_equal(rtl, accel::run_grid_stepped(pd, cfg));
        CHECK(rtl.counters.group_tiles == (pd.tiles / 2 % 2 == 0 ? 2 : 1));
      }
    }
}

TEST_CASE("accel grid rtl: quantization schemes (LOAD_SCALE, bias rows, int16 V) with multicast") {
  // A tile's per-head LOAD_SCALE right after a multicast K/V load must leave the leader's beats
  // (is_load counts LOAD_SCALE in sattn_grid.sv and in the model): RTL == both model engines, and
  // the output bits are the single-tile model's, multicast on and off.
  for (const char* name : {"smooth", "q=block,k=head,block=8,smooth=q,pv=fix16,v=tensor"})
    for (Precision prec : {Precision::i8, Precision::i4}) {
      CAPTURE(name);
      CAPTURE(to_string(prec));
      std::string why;
      const auto scheme = parse_quant_scheme(name, &why);
      REQUIRE_MESSAGE(scheme, why);
      Case c = make_case(Spec::bsr, prec, prec == Precision::i8, 40, 40, 32, 4, 2);
      c.op.quant_scheme = *scheme;
      const accel::Config one = grid_config(1, 1, accel::Schedule::static_rr, false);
      const accel::Program p = program_of(c, one);
      REQUIRE(p.schemed);
      const accel::GridResult single = accel::run_grid(p, one);
      for (bool mc : {false, true}) {
        CAPTURE(mc);
        const accel::Config cfg = grid_config(2, 2, accel::Schedule::dynamic, mc);
        const accel::GridResult rtl = accel::run_grid_rtl(p, cfg);
        check_grid_equal(rtl, accel::run_grid_stepped(p, cfg));
        check_grid_equal(rtl, accel::run_grid_events(p, cfg));
        CHECK(rtl.out_bits == single.out_bits);
      }
    }
}

TEST_CASE("accel grid rtl: DRAM channels, fixed arbitration, a fractional-beat bandwidth") {
  const Case c = make_case(Spec::bsr, Precision::i8, true, 72, 72, 32, 8, 2);
  for (int ports : {1, 2, 3})
    for (accel::Arbitration arb : {accel::Arbitration::round_robin, accel::Arbitration::fixed})
      for (int bw : {16, 5}) {
        CAPTURE(ports);
        CAPTURE(accel::arbitration_name(arb));
        CAPTURE(bw);
        accel::Config cfg = grid_config(2, 4, accel::Schedule::dynamic, true);
        cfg.grid.dram_ports = ports;
        cfg.grid.arbitration = arb;
        cfg.dram_bytes_per_cycle = bw;
        const accel::Program p = program_of(c, cfg);
        const accel::GridResult model = accel::run_grid(p, cfg);
        const accel::GridResult rtl = accel::run_grid_rtl(p, cfg);
        check_grid_equal(rtl, model);
        int64_t arbiter_stalls = 0;
        for (const accel::TileCounters& t : rtl.counters.tiles) arbiter_stalls += t.stall_arbiter;
        if (ports == 1) CHECK(arbiter_stalls > 0);  // eight tiles contend for one channel
      }
  // The comparison sees a difference: the RTL under another schedule than the model's.
  accel::Config a = grid_config(2, 4, accel::Schedule::static_rr, true), b = a;
  b.grid.schedule = accel::Schedule::zigzag;
  const accel::Program p = program_of(c, a);
  CHECK_FALSE(accel::grid_counter_difference(accel::run_grid_rtl(p, a).counters, accel::run_grid(p, b).counters).empty());
}

TEST_CASE("accel grid rtl: the watchdog fires on a grid and names every tile's state") {
  const Case c = make_case(Spec::dense, Precision::i8, false, 32, 32, 16, 4, 2);
  accel::Config cfg = grid_config(2, 2, accel::Schedule::static_rr, true);
  cfg.dram_bytes_per_cycle = 1;  // a slow DRAM: the first loads take thousands of cycles
  const accel::Program p = program_of(c, cfg);
  REQUIRE(accel::run_grid(p, cfg).counters.cycles > 5000);
  cfg.max_cycles = 5000;
  try {
    accel::run_grid_rtl(p, cfg);
    FAIL("the RTL grid finished without DRAM data");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    const std::string what = e.what();
    CHECK(what.find("accel grid 2x2: the RTL watchdog fired") != std::string::npos);
    CHECK(what.find("max_cycles = 5000") != std::string::npos);
    CAPTURE(what);
    CHECK(what.find("tile 3: ") != std::string::npos);
    CHECK(what.find("dma=") != std::string::npos);
    CHECK(what.find("core=") != std::string::npos);
  }
}

TEST_CASE("accel grid rtl: grids, lanes and schedules not built in RTL are usage errors") {
  const Case c = make_case(Spec::dense, Precision::i8, false, 16, 16, 16, 2, 1);
  accel::Config cfg = grid_config(4, 4, accel::Schedule::static_rr, true);
  const accel::Program p = program_of(c, cfg);
  try {
    accel::run_grid_rtl(p, cfg);
    FAIL("a 4x4 RTL grid ran");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::usage);
    CHECK(std::string(e.what()).find("the 4x4 grid runs in the model only: the RTL grid is built as 1x1, 2x2 and 2x4") !=
          std::string::npos);
  }
  cfg = grid_config(2, 2, accel::Schedule::static_rr, true);
  cfg.lanes = 8;
  CHECK_THROWS_WITH_AS(accel::run_grid_rtl(p, cfg), doctest::Contains("the RTL grid is built with 16 lanes"), Error);
}

TEST_CASE("accel grid rtl: lpt (the task table in the driver's heaviest-first order, dynamic hand-out)") {
  // Non-causal block_local_global: each head's first query tile holds the global rows (every key),
  // so lpt hands the tasks out in an order far from program order; the RTL runs it cycle for cycle
  // as the model does, and differently from dynamic.
  Case c = make_case(Spec::block_local_global, Precision::i8, false, 128, 128, 32, 4, 2);
  for (auto [rows, cols] : {std::pair{2, 2}, std::pair{2, 4}})
    for (bool mc : {false, true}) {
      CAPTURE(rows);
      CAPTURE(cols);
      CAPTURE(mc);
      accel::Config cfg = grid_config(rows, cols, accel::Schedule::lpt, mc);
      cfg.q_tile_rows = 16;
      const accel::Program p = program_of(c, cfg);
      const accel::GridResult rtl = accel::run_grid_rtl(p, cfg);
      check_grid_equal(rtl, accel::run_grid(p, cfg));
      check_grid_equal(rtl, accel::run_grid_stepped(p, cfg));
      accel::Config dyn = cfg;
      dyn.grid.schedule = accel::Schedule::dynamic;
      const accel::GridResult d = accel::run_grid_rtl(p, dyn);
      CHECK(rtl.out_bits == d.out_bits);
      CHECK(rtl.counters.cycles != d.counters.cycles);
    }
}
