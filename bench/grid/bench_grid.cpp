// The accelerator grid's benchmark driver (bench/grid/run.py calls it): builds one op's program
// once (synthetic data, the default seed), runs it on a 1x1 grid (= the single-tile model),
// checks that output against the fp32 reference at the precision's tolerance, then runs every
// requested grid configuration and checks its output bits equal the 1x1 run's. Prints one JSON
// line per configuration (cycles, DRAM bytes, imbalance, multicast, per-tile finish cycles, the
// model's wall and CPU time, and the reference check's CPU time).
//
//   sattn_bench_grid SPEC SEQ_LEN CAUSAL(0|1) GRID:SCHEDULE:MULTICAST(on|heads|off)[:stepped] ...
// (on: gangs of a GQA group's heads x 2 query tiles; heads: the heads of one query tile only)
// (:stepped runs the per-cycle engine, run_grid_stepped, instead of run_grid's event engine: the
// same counters and bits, checked here too; its time is the engine comparison of grid.md).
// Shape: 32 heads, 8 KV heads, head_dim 64, i8, LANES 16; bsr keep 0.1 block 64,
// sliding_window window 256, block_local_global block 64, 1 window block, 64 global tokens.
#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/rocc/accel.hpp"
#include "backends/rocc/accel_grid.hpp"
#include "core/quant.hpp"
#include "core/synthetic.hpp"
#include "sattn/attention.hpp"
#include "sattn/layout.hpp"

using namespace sattn;

namespace {

// This thread's CPU time: on a shared machine the wall time measures the load as much as the model.
double cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: sattn_bench_grid SPEC SEQ_LEN CAUSAL GRID:SCHEDULE:MULTICAST...\n");
    return 2;
  }
  const std::string spec_name = argv[1];
  const int64_t seq = std::stoll(argv[2]);
  Op op;
  op.shape = Shape{1, 32, 8, seq, seq, 64};
  op.causal = std::string(argv[3]) == "1";
  op.precision = Precision::i8;
  Spec spec;
  if (spec_name == "bsr") {
    spec = Spec::bsr;
    op.attrs.block_size = 64;
    op.attrs.keep_ratio = 0.1;
  } else if (spec_name == "sliding_window") {
    spec = Spec::sliding_window;
    op.attrs.window_size = 256;
  } else if (spec_name == "block_local_global") {
    spec = Spec::block_local_global;
    op.attrs.block_size = 64;
    op.attrs.window_blocks = 1;
    op.attrs.global_tokens = 64;
  } else {
    std::fprintf(stderr, "sattn_bench_grid: unknown spec %s\n", spec_name.c_str());
    return 2;
  }
  const QKV data = synthetic_qkv(op.shape);
  const Layout layout = build_layout(op, spec, resolve_params(op, spec), &data.q, &data.k);
  const Scales scales = resolve_scales(op, data.q, data.k, data.v);
  // The default watchdog scales with the program (accel::watchdog_cycles): the 1x1 run at
  // seq_len 16384 (0.7 to 7 G cycles) runs under it as it is.
  accel::Config cfg;
  const accel::Program prog = accel::build_program(op, layout, data, scales, cfg);

  // The 1x1 run, checked against the fp32 reference.
  auto t0 = std::chrono::steady_clock::now();
  double c0 = cpu_ms();
  const accel::GridResult one = accel::run_grid(prog, cfg);
  const double one_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const double one_cpu_ms = cpu_ms() - c0;
  accel::RunResult as_run;
  as_run.out_bits = one.out_bits;
  const Tensor out = accel::decode_output(prog, as_run);
  c0 = cpu_ms();
  const ErrorStats err = compare(out, reference_attention(op, layout, data.q, data.k, data.v));
  const double reference_cpu_ms = cpu_ms() - c0;
  if (!err.finite || err.max_rel > tolerance(op.precision)) {
    std::fprintf(stderr, "sattn_bench_grid: the 1x1 output is outside the tolerance (%g)\n", err.max_rel);
    return 5;
  }
  for (int a = 4; a < argc; ++a) {
    std::string c = argv[a];
    const bool stepped = c.size() > 8 && c.substr(c.size() - 8) == ":stepped";
    if (stepped) c.resize(c.size() - 8);
    const size_t p1 = c.find(':'), p2 = c.rfind(':');
    const auto g = accel::parse_grid(c.substr(0, p1));
    const auto sched = accel::parse_schedule(c.substr(p1 + 1, p2 - p1 - 1));
    if (!g || !sched) {
      std::fprintf(stderr, "sattn_bench_grid: bad configuration %s\n", c.c_str());
      return 2;
    }
    accel::Config k = cfg;
    k.grid.rows = g->first;
    k.grid.cols = g->second;
    k.grid.schedule = *sched;
    const std::string mc = c.substr(p2 + 1);  // on, heads (the GQA heads of one query tile only), off
    k.grid.multicast = mc == "on" || mc == "heads";
    if (mc == "heads") k.grid.multicast_query_tiles = 1;
    t0 = std::chrono::steady_clock::now();
    c0 = cpu_ms();
    const bool reuse = k.grid.tiles() == 1 && k.grid.multicast && !stepped;
    const accel::GridResult r = reuse ? one : stepped ? accel::run_grid_stepped(prog, k) : accel::run_grid(prog, k);
    const double ms = reuse ? one_ms : std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double cms = reuse ? one_cpu_ms : cpu_ms() - c0;
    if (stepped) {
      // The engines agree (as tests/unit/rocc/test_accel_grid_events.cpp checks on small ops).
      const accel::GridResult e = accel::run_grid(prog, k);
      if (e.out_bits != r.out_bits || e.counters.to_json(16).dump() != r.counters.to_json(16).dump()) {
        std::fprintf(stderr, "sattn_bench_grid: %s: the event and stepped engines disagree\n", c.c_str());
        return 5;
      }
    }
    if (r.out_bits != one.out_bits) {
      std::fprintf(stderr, "sattn_bench_grid: %s: the output bits differ from the 1x1 run's\n", c.c_str());
      return 5;
    }
    const accel::GridCounters& gc = r.counters;
    nlohmann::json fin = nlohmann::json::array();
    for (const accel::TileCounters& t : gc.tiles) fin.push_back(t.finish_cycle);
    nlohmann::ordered_json j = {
        {"spec", spec_name}, {"causal", op.causal}, {"seq_len", seq}, {"tiles", k.grid.tiles()},
        {"grid", k.grid.shape()}, {"schedule", accel::schedule_name(*sched)}, {"multicast", k.grid.multicast},
        {"multicast_mode", mc}, {"query_tiles", gc.group_tiles / gc.group_heads},
        {"engine", stepped ? "stepped" : "events"},
        {"cycles", gc.cycles}, {"macs_issued", gc.total.macs_issued}, {"busy_cycles", gc.total.busy},
        {"dram_bytes_read", gc.dram_bytes_read}, {"dram_bytes_written", gc.dram_bytes_written},
        {"utilization", double(gc.total.macs_issued) / (16.0 * k.grid.tiles() * double(gc.cycles))},
        {"check_passed", true}, {"max_rel_error", err.max_rel}, {"model_ms", ms}, {"model_cpu_ms", cms},
        {"reference_cpu_ms", reference_cpu_ms}, {"tasks", gc.tasks},
        {"group_tiles", gc.group_tiles}, {"imbalance", gc.imbalance()},
        {"dram_read_utilization", gc.dram_read_utilization(cfg.dram_bytes_per_cycle)},
        {"multicast_bytes", gc.multicast_bytes}, {"stall_arbiter", gc.to_json(16)["stall_arbiter"]},
        {"stall_multicast", gc.to_json(16)["stall_multicast"]}, {"finish_cycles", fin}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}
