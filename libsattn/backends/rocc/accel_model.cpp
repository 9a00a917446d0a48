// sattn::accel::run_model: the bit-exact model of the accelerator (hw/README.md "Model vs RTL").
// The top loop of the model's units (accel_model.hpp: Dma, Core, Dispatcher, one per RTL
// module), driven the way the Verilator harness drives the RTL: per cycle, the command offered
// to the FIFO (COUNTER/PROBE fenced until idle) and the DRAM ports' beats (the shared DRAM model,
// hw/sim/dram_model.hpp); then one clock edge. Output bits, counters and cycles equal the RTL's.
#include <cstring>
#include <memory>

#include "dram_model.hpp"
#include "backends/rocc/accel_model_dispatch.hpp"
#include "sattn/error.hpp"

namespace sattn::accel {

RunResult run_model(const Program& prog, const Config& cfg) {
  cfg.validate();
  const int64_t max_cycles = watchdog_cycles(prog, cfg);
  std::vector<uint8_t> dram = prog.dram;
  accel_sim::ReadPort rp(cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle);
  accel_sim::WritePort wp(cfg.dram_bytes_per_cycle);
  const auto core = std::make_unique<model::Core>();  // the scratchpads are large: on the heap
  model::Dma dma;
  model::Dispatcher dispatcher(prog.commands, cfg.lanes);
  RunResult res;
  res.source = "model";

  const auto& cmds = prog.commands;
  const auto is_query = [](Funct f) { return f == Funct::counter || f == Funct::probe; };
  size_t next = 0, expected_resp = 0;
  for (const Command& c : cmds) expected_resp += is_query(c.funct);

  int64_t cycle = 0;
  for (;;) {
    // This cycle's signals, from the registers (the RTL's combinational logic).
    model::Wires w;
    w.dma_busy = dma.busy();
    w.dma_index_load = dma.kind() == model::Dma::Kind::idx;
    w.core = core->state();
    const bool busy = w.dma_busy || core->busy() || dispatcher.have();
    // The harness side: offer the next command (COUNTER/PROBE only when idle: the fence).
    const bool fence = next < cmds.size() && is_query(cmds[next].funct);
    const bool offer = next < cmds.size() && (!fence || !busy);
    const bool fire_cmd = offer && !dispatcher.full();
    w.pop = dispatcher.can_pop(dma, *core);
    w.rd = dma.request(dispatcher.cfg(), *core);
    w.fire_rd = w.rd.valid && rp.ready();
    w.gather_fire = w.fire_rd && dma.gather();
    w.beat_fire = dma.receiving() && rp.beat_now();
    w.fire_wr = core->writing() && wp.ready_now();
    if (w.beat_fire) {
      if (rp.beat_addr() + isa::kBeatBytes > dram.size())
        throw Error(ExitCode::invalid_input, "accel: DMA read outside DRAM");
      w.sp = dma.scratchpad_write(dispatcher.cfg(), dram.data() + rp.beat_addr());
    }

    // The clock edge: every unit advances from the registers above, in the RTL's order.
    dma.step(dispatcher.cfg(), w.rd, w.fire_rd, w.beat_fire);
    core->step(dispatcher.cfg(), w.sp, w.fire_wr);
    dispatcher.step(w, fire_cmd ? int64_t(next) : -1, dma, *core, dram, res.responses);
    if (fire_cmd) ++next;
    rp.advance(w.fire_rd, w.rd.addr, w.rd.len);
    wp.advance(w.fire_wr);
    ++cycle;

    const bool busy_after = dma.busy() || core->busy() || dispatcher.have();
    if (next == cmds.size() && !busy_after && res.responses.size() == expected_resp) break;
    if (cycle >= max_cycles)
      throw Error(ExitCode::runtime, "accel model: watchdog fired after " + std::to_string(cycle) +
                                         " cycles (max_cycles); raise max_cycles if the problem is just large");
  }
  res.sim_cycles = cycle;
  for (int e = 0; e < kEventCount; ++e)
    if (prog.counter_reads_begin + e < int(res.responses.size()))
      res.counters.set(Event(e), int64_t(res.responses[size_t(prog.counter_reads_begin + e)]));
  res.out_bits.resize(prog.out_bytes / 2);
  if (prog.out_bytes) std::memcpy(res.out_bits.data(), dram.data() + prog.out_offset, prog.out_bytes);
  return res;
}

}  // namespace sattn::accel
