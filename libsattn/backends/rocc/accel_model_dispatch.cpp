// The model's top unit, once per command (hw/rtl/sattn_accel.sv; the per-cycle part is in
// accel_model_dispatch.hpp): what a dispatched command does. A command the hardware cannot
// execute is an Error(invalid_input) naming its index (the RTL flags it and the harness stops).
#include <algorithm>
#include <string>

#include "backends/rocc/accel_model_dispatch.hpp"
#include "sattn/error.hpp"

namespace sattn::accel::model {

namespace {

[[noreturn]] void bad_command(size_t index, const std::string& why) {
  throw Error(ExitCode::invalid_input, "accel: command " + std::to_string(index) + " is illegal: " + why);
}

}  // namespace

Dispatcher::Dispatcher(const std::vector<Command>& cmds, int lanes) : cmds_(cmds) { cfg_.lanes = lanes; }

void Dispatcher::dispatch(size_t index, Dma& dma, Core& core, std::vector<uint8_t>& dram,
                          std::vector<uint64_t>& responses, bool& reset_counters) {
  const Command& c = cmds_[index];
  const uint64_t a = c.rs1, b = c.rs2;
  switch (c.funct) {
    case Funct::config:
      switch (ConfigOp(isa::kConfigSubop.get(a))) {
        case ConfigOp::shape: {
          const uint64_t dd = isa::kShapeHeadDim.get(b);
          const bool is_i4 = isa::kShapeI4.get(b);
          if (dd == 0 || dd > uint64_t(isa::kMaxHeadDim) || dd % isa::kHeadDimMultiple != 0 ||
              (is_i4 && dd % isa::kHeadDimMultipleI4 != 0))
            bad_command(index, "unsupported head_dim");
          cfg_.d = int(dd);
          cfg_.i4 = is_i4;
          cfg_.causal = isa::kShapeCausal.get(b);
          cfg_.dbuf = isa::kShapeDoubleBuffer.get(b);
          cfg_.off = int32_t(uint32_t(isa::kShapeCausalOffset.get(b)));
          break;
        }
        case ConfigOp::spec: break;  // recorded only: the datapath runs every spec
        case ConfigOp::scale:
          cfg_.mult = uint32_t(isa::kScaleMult.get(b));
          cfg_.shift = int(isa::kScaleShift.get(b));
          break;
        case ConfigOp::quant:
          cfg_.scaled = isa::kQuantScaled.get(b);
          cfg_.bias = isa::kQuantBias.get(b);
          cfg_.v16 = isa::kQuantV16.get(b);
          cfg_.bias_shift = int(isa::kQuantBiasShift.get(b));
          break;
        case ConfigOp::addr:
          if (isa::kConfigBase.get(a) >= uint64_t(isa::kAddrBaseCount)) bad_command(index, "no such base address");
          cfg_.base[isa::kConfigBase.get(a)] = b;
          break;
        default: bad_command(index, "unknown CONFIG sub-op");
      }
      break;
    case Funct::load_idx:
    case Funct::load_q:
    case Funct::load_k:
    case Funct::load_v: {
      const uint64_t n = isa::kLoadCount.get(b), mrows = isa::kLoadMaskRows.get(b);
      const int limit = c.funct == Funct::load_q ? isa::kQRows : isa::kKSlots;
      if (n > uint64_t(limit) || (c.funct == Funct::load_idx && mrows > uint64_t(isa::kQRows)))
        bad_command(index, "more than " + std::to_string(limit) + " rows");
      const Dma::Kind kind = c.funct == Funct::load_idx ? Dma::Kind::idx
                             : c.funct == Funct::load_q ? Dma::Kind::q
                             : c.funct == Funct::load_k ? Dma::Kind::k
                                                        : Dma::Kind::v;
      const AddrBase base = kind == Dma::Kind::idx ? AddrBase::idx
                            : kind == Dma::Kind::q ? AddrBase::q
                            : kind == Dma::Kind::k ? AddrBase::k
                                                   : AddrBase::v;
      const bool gather = isa::kLoadGather.get(b) && (kind == Dma::Kind::k || kind == Dma::Kind::v);
      dma.start(kind, cfg_.dbuf && isa::kLoadBuffer.get(b), gather, int(n), kind == Dma::Kind::idx ? int(mrows) : 0,
                cfg_.base[int(base)] + a);
      break;
    }
    case Funct::load_scale: {
      const uint64_t n = isa::kLoadScaleCount.get(b), rows = isa::kLoadScaleRows.get(b);
      const uint64_t target = isa::kLoadScaleTarget.get(b);
      if (target == 0) bad_command(index, "LOAD_SCALE target 0");
      if (n > uint64_t(isa::kKSlots) || rows > uint64_t(isa::kQRows) || (target != 3 && rows > 1))
        bad_command(index, "LOAD_SCALE beyond the scale or bias RAM");
      const Dma::Kind kind = target == 1 ? Dma::Kind::q : target == 2 ? Dma::Kind::k : Dma::Kind::v;
      dma.start(kind, cfg_.dbuf && isa::kLoadScaleBuffer.get(b), false, int(n), int(rows),
                cfg_.base[int(AddrBase::quant)] + a, /*aux=*/true);
      break;
    }
    case Funct::run: {
      if (isa::kRunNq.get(b) > uint64_t(isa::kQRows) || isa::kRunNk.get(b) > uint64_t(isa::kKSlots))
        bad_command(index, "more than " + std::to_string(isa::kQRows) + " rows or keys");
      const RunCost rc = core.start_run(cfg_, a, b);
      ev(Event::busy) += rc.mac_cycles;
      ev(Event::stall_softmax) += rc.cycles - rc.mac_cycles;
      ev(Event::macs_issued) += rc.macs;
      ev(Event::macs_skipped) += rc.skipped;
      break;
    }
    case Funct::store: {
      const uint64_t n = isa::kStoreRows.get(b);
      if (n > uint64_t(isa::kQRows)) bad_command(index, "more than " + std::to_string(isa::kQRows) + " rows");
      core.start_store(cfg_, int(n), cfg_.base[int(AddrBase::out)] + a, dram);
      break;
    }
    case Funct::counter: {
      const uint64_t e = isa::kCounterEvent.get(a);
      int64_t value = 0;
      if (e < uint64_t(isa::kEventCount)) value = isa::kCounterReadSnapshot.get(a) ? snap_[e] : cnt_[e];
      responses.push_back(uint64_t(value));
      if (isa::kCounterTakeSnapshot.get(a)) std::copy(cnt_, cnt_ + isa::kEventCount, snap_);
      if (isa::kCounterReset.get(a)) reset_counters = true;
      break;
    }
    case Funct::probe: {
      const auto [w0, w1] = capability_words(cfg_.lanes);
      responses.push_back(isa::kProbeWord.get(a) ? w1 : w0);
      break;
    }
    default: bad_command(index, "unknown funct " + std::to_string(int(c.funct)));
  }
}

}  // namespace sattn::accel::model
