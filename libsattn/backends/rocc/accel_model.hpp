// The bit-exact model's units (hw/README.md "Model vs RTL"), one per RTL module:
//   Dma         accel_model_dma.hpp       hw/rtl/sattn_dma.sv    read DMA: bursts, gathers, beats
//   Core        accel_model_core.hpp/cpp  hw/rtl/sattn_core.sv   scratchpads, row state, RUN, STORE
//   Dispatcher  accel_model_dispatch.hpp/cpp  hw/rtl/sattn_accel.sv  command FIFO, in-order
//               dispatch, CONFIG registers, counters, PROBE
// Each unit holds its registers and has step(): one clock edge. run_model (accel_model.cpp)
// evaluates a cycle's signals from the registers first (Wires, the RTL's combinational logic),
// then steps the units in the RTL's order (DMA, core, dispatcher); the dispatcher's start
// pulses reach units that are idle, as in the RTL, where an idle unit takes them at that edge.
// What runs every cycle is defined inline in the unit headers (the model's speed is its loop);
// what runs once per command is in the .cpp files. Internal to backends/rocc; the API is
// accel.hpp. This header: what the units share.
#pragma once
#include <cstdint>

#include "backends/rocc/accel.hpp"

namespace sattn::accel::model {

// The CONFIG registers (sattn_accel.sv cfg_*, base[]): written by the dispatcher, read by all.
struct ConfigRegs {
  int lanes = 16;
  int d = 64;
  bool i4 = false, causal = false, dbuf = true;
  int32_t off = 0;
  uint32_t mult = 1;
  int shift = 0;
  uint64_t base[isa::kAddrBaseCount] = {};
  // CONFIG QUANT (hw/README.md "Quantization schemes"): per-row/per-slot scale words, the bias
  // RAM, int16 V; all off at reset (the per-tensor datapath).
  bool scaled = false, bias = false, v16 = false;
  int bias_shift = 0;
  // MAC-array cycles per row of D values: ceil(D / LANES).
  int chunks() const { return (d + lanes - 1) / lanes; }
  // Bytes of one Q/K/V row in DRAM: D (i8) or D / 2 (i4).
  int rowbytes() const { return i4 ? d / 2 : d; }
  // Bytes of one V row: 2 x D with int16 V (v16), else rowbytes().
  int vrowbytes() const { return v16 ? 2 * d : rowbytes(); }
};

// What a DMA beat writes into the core's memories (sattn_dma.sv sp_*): two index entries, two
// mask rows, or n int8 values of a Q/K/V row from column col, or (v16) 8 int16 V values in raw,
// or 4 scale/bias words in raw at row, col. Only `we` is set when no beat
// arrives (the data fields are then left unset: the model builds one every cycle).
enum class SpKind : uint8_t { index = 0, q = 1, k = 2, v = 3, mask = 4, qscale = 5, kscale = 6, bias = 7 };
struct SpWrite {
  bool we = false;
  SpKind kind;
  bool buf;
  int row, col, n;
  uint8_t raw[isa::kBeatBytes];      // index and mask beats
  int8_t vals[2 * isa::kBeatBytes];  // Q/K/V values (i4 unpacked: 32 per beat)
};

// The cycles and MACs of one RUN (booked on the counters when it is issued).
struct RunCost {
  int64_t cycles = 0, mac_cycles = 0, macs = 0, skipped = 0;
};

}  // namespace sattn::accel::model
