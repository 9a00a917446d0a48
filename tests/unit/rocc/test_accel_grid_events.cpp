// The grid's event engine (run_grid_events, what run_grid runs) against its per-cycle engine
// (run_grid_stepped): every output bit, every counter of every tile and the watchdog's error
// equal, over every spec, i8 and i4, causal, GQA and partial blocks, each schedule, multicast on
// and off, and DRAM settings that exercise the parts the event engine skips (latency, slow ports,
// several ports, fixed arbitration, single buffering, small query tiles).
#include <doctest/doctest.h>

#include <random>
#include <string>

#include "accel_test_support.hpp"
#include "backends/rocc/accel_grid.hpp"
#include "core/quant_scheme.hpp"
#include "sattn/error.hpp"

using namespace sattn;
using namespace sattn::accel_test;

namespace {

struct GridCase {
  int rows = 1, cols = 1;
  accel::Schedule schedule = accel::Schedule::dynamic;
  bool multicast = true;
  int query_tiles = 2;  // multicast_query_tiles
  double idle_limit = 0.1;  // multicast_idle_limit
  int ports = 1;
  accel::Arbitration arbitration = accel::Arbitration::round_robin;
  int bytes_per_cycle = 16, latency = 40, lanes = 8, q_tile_rows = 64;
  bool double_buffer = true;

  accel::Config config() const {
    accel::Config c;
    c.lanes = lanes;
    c.double_buffer = double_buffer;
    c.dram_latency_cycles = latency;
    c.dram_bytes_per_cycle = bytes_per_cycle;
    c.q_tile_rows = q_tile_rows;
    c.grid.rows = rows;
    c.grid.cols = cols;
    c.grid.schedule = schedule;
    c.grid.multicast = multicast;
    c.grid.multicast_query_tiles = query_tiles;
    c.grid.multicast_idle_limit = idle_limit;
    c.grid.dram_ports = ports;
    c.grid.arbitration = arbitration;
    return c;
  }
  std::string name() const {
    return std::to_string(rows) + "x" + std::to_string(cols) + " " + accel::schedule_name(schedule) +
           (multicast ? " multicast query_tiles=" + std::to_string(query_tiles) : " unicast") + " ports=" + std::to_string(ports) + " " +
           accel::arbitration_name(arbitration) + " bw=" + std::to_string(bytes_per_cycle) +
           " latency=" + std::to_string(latency) + " lanes=" + std::to_string(lanes) +
           " q_tile_rows=" + std::to_string(q_tile_rows) + (double_buffer ? "" : " single-buffer");
  }
};

// A random configuration: grids up to 4x4 (and 8x10 now and then), every DRAM setting.
GridCase random_case(std::mt19937& rng) {
  static const std::pair<int, int> grids[] = {{1, 1}, {1, 2}, {2, 2}, {2, 4}, {3, 3}, {4, 4}, {2, 3}, {8, 10}};
  GridCase g;
  const auto [r, c] = grids[rng() % std::size(grids)];
  g.rows = r;
  g.cols = c;
  g.schedule = accel::Schedule(rng() % 4);
  g.multicast = rng() % 4 != 0;
  g.query_tiles = 1 << (rng() % 3);
  g.idle_limit = rng() % 2 ? 0.1 : 1.0;
  g.ports = 1 + int(rng() % std::min(3u, unsigned(r * c)));
  g.arbitration = rng() % 3 == 0 ? accel::Arbitration::fixed : accel::Arbitration::round_robin;
  static const int bws[] = {16, 16, 8, 5, 1};
  g.bytes_per_cycle = bws[rng() % std::size(bws)];
  static const int lats[] = {40, 0, 1, 7, 100};
  g.latency = lats[rng() % std::size(lats)];
  g.lanes = rng() % 2 ? 8 : 16;
  static const int qrows[] = {64, 64, 16, 5};
  g.q_tile_rows = qrows[rng() % std::size(qrows)];
  g.double_buffer = rng() % 5 != 0;
  return g;
}

void check_equal(const accel::Program& p, const GridCase& g) {
  CAPTURE(g.name());
  const accel::Config cfg = g.config();
  const accel::GridResult a = accel::run_grid_stepped(p, cfg), b = accel::run_grid_events(p, cfg);
  CHECK(a.out_bits == b.out_bits);
  const std::string ja = a.counters.to_json(cfg.dram_bytes_per_cycle).dump(),
                    jb = b.counters.to_json(cfg.dram_bytes_per_cycle).dump();
  CHECK(ja == jb);
  // to_json holds every field but the per-tile event counters beyond the ones it prints.
  REQUIRE(a.counters.tiles.size() == b.counters.tiles.size());
  for (size_t t = 0; t < a.counters.tiles.size(); ++t) {
    CAPTURE(t);
    CHECK(a.counters.tiles[t].events == b.counters.tiles[t].events);
    CHECK(a.counters.tiles[t].stall_arbiter == b.counters.tiles[t].stall_arbiter);
    CHECK(a.counters.tiles[t].stall_multicast == b.counters.tiles[t].stall_multicast);
  }
  CHECK(a.counters.total == b.counters.total);
  CHECK(a.counters.cycles == b.counters.cycles);
  CHECK(a.counters.multicast_loads == b.counters.multicast_loads);
  // The default watchdog's bound holds on every grid and DRAM setting (accel_watchdog.cpp).
  CHECK(a.counters.cycles <= accel::cycle_bound(p, cfg));
  CHECK(run_grid(p, cfg).counters.to_json(cfg.dram_bytes_per_cycle).dump() == jb);  // run_grid runs the events
}

}  // namespace

TEST_CASE("accel grid events: equal to the per-cycle engine, every spec, i8/i4, causal, GQA, partial blocks") {
  std::mt19937 rng(24);
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4})
      for (bool causal : {false, true}) {
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        CAPTURE(causal);
        // GQA 4 (8 query heads, 2 KV heads), a partial last block (72 is not a multiple of 16).
        const Case c = make_case(spec, prec, causal, 72, 72, 32, 8, 2);
        // The fixed cases: every schedule with multicast on and off on 2x2 and 2x4, default DRAM.
        for (auto [rows, cols] : {std::pair{2, 2}, std::pair{2, 4}})
          for (auto s : {accel::Schedule::static_rr, accel::Schedule::zigzag, accel::Schedule::dynamic, accel::Schedule::lpt})
            for (bool mc : {false, true}) {
              GridCase g;
              g.rows = rows;
              g.cols = cols;
              g.schedule = s;
              g.multicast = mc;
              check_equal(program_of(c, g.config()), g);
            }
        for (int k = 0; k < 4; ++k) {
          const GridCase g = random_case(rng);
          check_equal(program_of(c, g.config()), g);
        }
        // Gangs of heads x query tiles (4 query tiles per head: 64 rows in blocks of 16, the last
        // block row partial at 56): GQA 2, 4 and 1 (heads, KV heads), 2 and 4 query tiles per gang.
        for (int64_t seq : {64, 56})
          for (auto [heads, kv_heads, rows, cols, q] : {std::tuple{4, 2, 2, 2, 2}, std::tuple{4, 2, 2, 4, 4},
                                                        std::tuple{8, 2, 2, 4, 2}, std::tuple{2, 2, 2, 4, 2}}) {
            const Case d = make_case(spec, prec, causal, seq, seq, 32, heads, kv_heads);
            for (auto s : {accel::Schedule::static_rr, accel::Schedule::zigzag, accel::Schedule::dynamic, accel::Schedule::lpt}) {
              GridCase g;
              g.rows = rows;
              g.cols = cols;
              g.schedule = s;
              g.query_tiles = q;
              g.idle_limit = 1;  // gang whenever the counts allow
              g.q_tile_rows = 16;
              check_equal(program_of(d, g.config()), g);
            }
        }
      }
}

TEST_CASE("accel grid events: quantization schemes (scale words, bias, int16 V) equal the per-cycle engine") {
  // Scheme scores and int16 V (pv=fp32, pv=fix16) through the row kernels on a grid: both engines
  // agree with multicast on and off, and the output bits are the single-tile model's either way
  // (with multicast, a tile's per-head LOAD_SCALE after a multicast load must leave the leader's
  // beats: is_load counts LOAD_SCALE, in the model and in sattn_grid.sv).
  for (const char* name : {"smooth", "q=token,k=block,block=16,smooth=qk,pv=fp32,v=channel",
                           "q=block,k=head,block=8,smooth=q,pv=fix16,v=tensor"})
    for (Precision prec : {Precision::i8, Precision::i4})
      for (bool causal : {false, true}) {
        CAPTURE(name);
        CAPTURE(to_string(prec));
        CAPTURE(causal);
        std::string why;
        const auto scheme = parse_quant_scheme(name, &why);
        REQUIRE_MESSAGE(scheme, why);
        Case c = make_case(Spec::bsr, prec, causal, 72, 72, 32, 8, 2);
        c.op.quant_scheme = *scheme;
        for (auto s : {accel::Schedule::zigzag, accel::Schedule::dynamic, accel::Schedule::lpt})
          for (bool mc : {false, true}) {
            GridCase g;
            g.rows = 2;
            g.cols = 4;
            g.schedule = s;
            g.multicast = mc;
            const accel::Program p = program_of(c, g.config());
            REQUIRE(p.schemed);
            check_equal(p, g);
            CHECK(accel::run_grid_events(p, g.config()).out_bits == accel::run_model(p, g.config()).out_bits);
          }
      }
}

TEST_CASE("accel grid events: a larger bsr op on 8x10 and 4x4, DRAM-bound and not") {
  Case c = make_case(Spec::bsr, Precision::i8, true, 256, 256, 64, 8, 2);
  for (int bw : {16, 2})
    for (bool mc : {true, false})
      for (auto [rows, cols] : {std::pair{8, 10}, std::pair{4, 4}}) {
        GridCase g;
        g.rows = rows;
        g.cols = cols;
        g.multicast = mc;
        g.bytes_per_cycle = bw;
        g.q_tile_rows = 16;
        check_equal(program_of(c, g.config()), g);
      }
}

TEST_CASE("accel grid events: the watchdog fires at the same cycle with the same states") {
  const Case c = make_case(Spec::bsr, Precision::i8, true, 72, 72, 32, 8, 2);
  for (auto s : {accel::Schedule::static_rr, accel::Schedule::dynamic})
    for (int64_t max_cycles : {1, 2, 60, 500, 2000, 5000}) {
      GridCase g;
      g.rows = 2;
      g.cols = 2;
      g.schedule = s;
      accel::Config cfg = g.config();
      const accel::Program p = program_of(c, cfg);
      cfg.max_cycles = max_cycles;
      CAPTURE(max_cycles);
      std::string ea, eb;
      try {
        (void)accel::run_grid_stepped(p, cfg);
      } catch (const Error& e) {
        CHECK(e.code() == ExitCode::runtime);
        ea = e.what();
      }
      try {
        (void)accel::run_grid_events(p, cfg);
      } catch (const Error& e) {
        CHECK(e.code() == ExitCode::runtime);
        eb = e.what();
      }
      CHECK(ea == eb);
      if (max_cycles <= 500) CHECK(ea.find("watchdog fired after " + std::to_string(max_cycles) + " cycles") != std::string::npos);
    }
}
