// The RoCC sparse-attention accelerator's host side (DESIGN §5 "RoCC"): the driver that turns an
// op + layout + data into a command stream and a DRAM image, the bit-exact C++ model of the
// datapath, and the runner of the Verilator harness. hw/README.md is the ISA and the exact
// integer arithmetic; this file follows it literally.
//
//   Program p = build_program(op, layout, data, scales, cfg);   // quantize, DRAM image, commands
//   RunResult m = run_model(p, cfg);                             // bit-exact model
//   RunResult r = run_rtl(p, cfg, {});                           // the RTL under Verilator
//   m.out_bits == r.out_bits;  Tensor o = decode_output(p, r);  // float, vs the fp32 reference
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "sattn/quant.hpp"
#include "core/quant.hpp"
#include "core/synthetic.hpp"
#include "sattn/tensor.hpp"
#include "sattn_isa.hpp"  // generated from hw/isa/isa.toml at build time (target sattn_isa)

namespace sattn::accel {

// ---------------------------------------------------------------------------------------------
// ISA constants (hw/README.md "Commands"): the generated sattn::accel::isa, the one encoding of
// the driver, the model, the harness and the RTL. Funct (funct7), ConfigOp (CONFIG sub-ops),
// AddrBase (CONFIG ADDR bases) and Event (COUNTER event ids) are its enums; the operand fields
// are isa::k<Command><Field>.
using isa::AddrBase;
using isa::ConfigOp;
using isa::Event;
using isa::Funct;

// Hardware limits (the same for every LANES; PROBE reports them).
inline constexpr int kQRows = isa::kQRows;     // query rows per tile (Q scratchpad rows per buffer)
inline constexpr int kKSlots = isa::kKSlots;   // key slots per chunk (K/V scratchpad rows per buffer)
inline constexpr int kMaxHeadDim = isa::kMaxHeadDim;
inline constexpr int kBeatBytes = isa::kBeatBytes;  // DMA bus width

// Counter events, in COUNTER event-id order (hw/README.md "Counters").
inline constexpr int kEventCount = isa::kEventCount;
const char* event_name(Event);

struct Counters {
  int64_t cycles = 0;         // cycles the accelerator was active (= busy + all stalls)
  int64_t busy = 0;           // cycles the MAC array issued MACs
  int64_t stall_dma = 0;      // waiting on DRAM (Q/K/V loads, output writes)
  int64_t stall_index = 0;    // waiting on an index (LOAD_IDX) load
  int64_t stall_softmax = 0;  // max/exp/rescale steps and output normalization
  int64_t stall_bank = 0;     // scratchpad bank conflicts (none in this design: always 0)
  int64_t stall_other = 0;    // command issue and configuration
  int64_t macs_issued = 0;    // = 2 x allowed pairs x head_dim
  int64_t macs_skipped = 0;   // masked pairs inside loaded tiles x 2 x head_dim
  int64_t dma_bytes_in = 0;
  int64_t dma_bytes_out = 0;
  int64_t gathers = 0;        // indexed DMA bursts (one per run of consecutive gathered keys)
  int64_t commands = 0;       // commands dispatched

  int64_t get(Event) const;
  void set(Event, int64_t);
  nlohmann::json to_json() const;  // {"cycles": .., "busy": .., ...} in event order
  bool operator==(const Counters&) const = default;
};

// ---------------------------------------------------------------------------------------------
// The multi-tile grid (hw/README.md "Grid"): rows x cols copies of the tile sharing one DRAM.
// lpt: dynamic, the heaviest tasks first (longest processing time first; hw/README.md "Grid").
enum class Schedule : uint8_t { static_rr = 0, zigzag = 1, dynamic = 2, lpt = 3 };
const char* schedule_name(Schedule);                 // "static", "zigzag", "dynamic", "lpt"
std::optional<Schedule> parse_schedule(const std::string&);
enum class Arbitration : uint8_t { round_robin = 0, fixed = 1 };
const char* arbitration_name(Arbitration);           // "round_robin", "fixed"
std::optional<Arbitration> parse_arbitration(const std::string&);

struct GridConfig {
  int rows = 1, cols = 1;        // 1..isa::kGridMaxRows x 1..isa::kGridMaxCols
  bool multicast = true;         // K/V/index loads of a GQA group's tiles fetched once
  // With multicast: up to this many consecutive query tiles of a (batch, KV head) share their K/V
  // chunks too (1: only the heads of a GQA group, one query tile; hw/README.md "Multicast").
  int multicast_query_tiles = 2;
  // ... when the tiles of a gang's lighter query tiles would idle at most this fraction of the
  // work (the tests set 1 to gang whenever the counts allow).
  double multicast_idle_limit = 0.10;
  Schedule schedule = Schedule::dynamic;
  int dram_ports = 1;            // DRAM channels (each dram_bytes_per_cycle wide)
  Arbitration arbitration = Arbitration::round_robin;
  int tiles() const { return rows * cols; }
  std::string shape() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};
// "RxC" (e.g. "8x10"); nullopt when malformed (the range is checked by Config::validate).
std::optional<std::pair<int, int>> parse_grid(const std::string&);

// ---------------------------------------------------------------------------------------------
// Parameters of a run. A profile's `accel:` section sets them (apply_yaml).
struct Config {
  int lanes = 16;                 // MAC lanes: 8, 16 or 32 (a harness per value)
  bool double_buffer = true;      // false: the single-buffer ablation (loads and compute serialize)
  int dram_latency_cycles = 40;   // first beat of a read burst arrives this many cycles after the request
  int dram_bytes_per_cycle = 16;  // read and write bandwidth, 1..16 (the bus is 16 bytes wide)
  int64_t max_cycles = 0;         // watchdog; 0: scaled to the program (watchdog_cycles)
  double clock_mhz = 1000;        // for seconds and energy-per-second figures only
  int q_tile_rows = 64;           // query rows per tile, 1..64 (driver)
  GridConfig grid;                // the tile grid (1x1: the single tile of the RTL)

  // Replaces the fields `node` names (lanes, double_buffer, dram_latency_cycles,
  // dram_bytes_per_cycle, max_cycles, clock_mhz, q_tile_rows, grid "RxC", multicast, schedule,
  // dram_ports, dram_arbitration). Unknown keys, wrong types and
  // out-of-range values are Error(invalid_input) with file:line:col. All or nothing.
  void apply_yaml(const YAML::Node& node, const std::string& file);
  // Range checks (Error(invalid_input) naming the field); build_program and run_model call it.
  void validate() const;
  nlohmann::json to_json() const;
};
// Registers the strict checker of the profile section `accel` (idempotent).
void register_accel_profile_section();

// One RoCC command: funct7 and the two source registers.
struct Command {
  Funct funct = Funct::config;
  uint64_t rs1 = 0, rs2 = 0;
  bool operator==(const Command&) const = default;
};

// Everything the accelerator needs, as the model and the harness both read it.
struct Program {
  std::vector<uint8_t> dram;       // the DRAM image (inputs, index records, output area zeroed)
  std::vector<Command> commands;   // ends with a COUNTER snapshot and one read per event
  uint64_t out_offset = 0, out_bytes = 0;  // the output area: int16 [batch, heads, seq_len, head_dim]
  int counter_reads_begin = 0;     // index of the first COUNTER read among the responses
  // What decode_output and the checks need.
  Shape shape;                   // head_dim padded to the MAC array's multiple (padded_head_dim)
  int64_t logical_head_dim = 0;  // the op's head_dim: decode_output keeps these columns
  Precision precision = Precision::i8;
  Scales scales;          // the quantization scales used
  uint32_t score_mult = 0;  // CONFIG SCALE: t = (s * score_mult) >> score_shift (hw/README.md)
  int score_shift = 0;
  int64_t allowed_pairs = 0;  // over batch and query heads
  int64_t tiles = 0, chunks = 0;
  // A quantization scheme other than per-tensor (hw/README.md "Quantization schemes"): the scale
  // words, bias rows and int16 V it loads; the output is in units of v_scale per channel
  // ([batch, kv_heads, logical head_dim]), Q15.0 with v16, else Q8.8.
  bool schemed = false;
  QuantScheme scheme;
  bool v16 = false;
  std::vector<float> v_scale;
  int bias_shift = 0;
  int64_t quant_bytes = 0;  // bytes of scale words and bias rows in the DRAM image
};

// The watchdog (hw/README.md "Watchdog"): cfg.max_cycles when it is set (> 0); else (0, the
// default) 4 x cycle_bound + 100000, a limit that scales with the workload. run_model, run_grid*,
// run_rtl and run_grid_rtl stop a run that reaches it (Error(runtime)).
int64_t watchdog_cycles(const Program&, const Config&);
// An upper bound of the cycles any correct run of the program takes on cfg's grid: every
// command's worst case summed as if nothing overlapped (each burst waits its full latency and
// bandwidth, a RUN visits every slot of every row, a STORE waits on every beat), the CONFIG
// prologue once per tile.
int64_t cycle_bound(const Program&, const Config&);

// Quantizes q/k/v exactly like quant.hpp's quantize() with `scales` (i8 or i4; other
// precisions are Error(invalid_input)), lays out the DRAM image and emits the command stream.
// A head_dim that is not a multiple of 16 (32 for i4) is zero-padded up to one (exact; costs
// padded/head_dim more MACs and bytes); padded beyond 256 (DMAX) is Error(invalid_input).
// An op whose quant_scheme is set and not per-tensor runs that scheme (scales, smoothing and
// rotation from quantize_qkv, its fixed tables when the op carries them); a scheme the
// accelerator cannot run (scheme_support) is Error(invalid_input) with the reason. Otherwise
// (no scheme, or per-tensor) `scales` are the per-tensor scales.
Program build_program(const Op&, const Layout&, const QKV& fp32_data, const Scales&, const Config&);
// Whether the accelerator runs `scheme` (from its PROBE capabilities: quant_scales and pv_fix16):
// "" when it does, else the reason (pv=i8 has no datapath here).
std::string scheme_support(const QuantScheme& scheme, const struct Capabilities& caps);
// head_dim rounded up to the multiple the MAC array needs (16; 32 for i4).
int64_t padded_head_dim(int64_t head_dim, Precision);

// The score multiplier: (mult, shift) with mult < 2^31 such that s * mult / 2^shift ~
// s * scale_q * scale_k * softmax_scale * log2(e) * 256 (hw/README.md "Scores").
std::pair<uint32_t, int> score_multiplier(double scale_q, double scale_k, double softmax_scale);

struct RunResult {
  std::vector<int16_t> out_bits;  // the output area: int16 Q8.8 in units of scale_v
  Counters counters;
  std::vector<uint64_t> responses;  // rd of every COUNTER/PROBE command, in order
  int64_t sim_cycles = 0;           // cycles simulated (harness: reset to last response)
  double wall_seconds = 0;          // harness wall time of the simulation loop
  double cycles_per_second = 0;     // sim_cycles / wall_seconds (0 for the model)
  double cpu_seconds = 0;           // harness CPU time of the simulation loop (0: not reported)
  double cpu_cycles_per_second = 0;  // sim_cycles / cpu_seconds (0 for the model or when not reported)
  std::string source;               // "model" or the harness path
};

// The bit-exact model: replays the command stream over the DRAM image. Output bits and every
// counter match the RTL (hw/README.md "Model"). Throws Error(invalid_input) on a command the
// hardware would reject (its message names the command index).
RunResult run_model(const Program&, const Config&);

struct RtlOptions {
  std::string harness;     // empty: harness_path(cfg.lanes)
  std::string trace_file;  // FST waveform when not empty
  double timeout_s = 0;    // wall-clock limit of the harness process (0 = none; the watchdog is max_cycles)
  bool keep_workdir = false;
};
// libexec_dir()/sattn-accel-sim-lanes<N>.
std::string harness_path(int lanes);
// Runs the program on the Verilator harness. Errors: harness missing or crashed ->
// Error(external_tool) (missing: "apt-get install verilator" and how to rebuild); watchdog
// (max_cycles passed) -> Error(runtime) with the unit states it reported; a command the RTL
// rejected -> Error(invalid_input).
RunResult run_rtl(const Program&, const Config&, const RtlOptions& = {});

// The output as float [batch, heads, seq_len, head_dim]: out_bits / 256 * scale_v.
Tensor decode_output(const Program&, const RunResult&);

// The tensors the datapath sees, dequantized (for the tight check against the reference).
QKV dequantized_inputs(const Program&, const QKV& fp32_data);

// ---------------------------------------------------------------------------------------------
// PROBE (hw/README.md "PROBE"): word 0 = capabilities, word 1 = scratchpad bytes.
struct Capabilities {
  int version = 0;
  int lanes = 0;
  uint8_t spec_mask = 0;       // bit = spec code (sattn-artifacts(7)): 0xff = every spec
  uint8_t precision_mask = 0;  // bit = precision code: bit 2 i8, bit 3 i4
  int q_rows = 0, k_slots = 0, max_head_dim = 0;
  bool double_buffer = false, causal = false, gather = false;
  bool quant_scales = false;  // LOAD_SCALE and CONFIG QUANT: fine-grained scales, smoothing (bias)
  bool pv_fix16 = false;      // CONFIG QUANT v16: int16 V, the P.V of pv=fix16
  int64_t scratchpad_bytes = 0;  // Q + K + V + index + mask RAM, both buffers
  bool supports(Spec) const;
  bool supports(Precision) const;
  nlohmann::json to_json() const;
};
Capabilities decode_capabilities(uint64_t word0, uint64_t word1);
// What the RTL of `lanes` should answer (for tests and for the model's PROBE).
std::pair<uint64_t, uint64_t> capability_words(int lanes);
// Runs a PROBE program on the RTL harness of cfg.lanes.
Capabilities probe_rtl(const Config&, const RtlOptions& = {});

// ---------------------------------------------------------------------------------------------
// Program files (hw/README.md "Program file"): DIR/program.txt + DIR/dram.bin.
void write_program(const Program&, const std::string& dir);

}  // namespace sattn::accel
