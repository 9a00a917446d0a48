// The in-memory-compute (IMC) crossbar cost model (DESIGN §5 "IMC", sattn-imc(1)).
//
// A NeuroSim-style analytic model: matrices are stored in crossbar sub-arrays (weight
// stationary), input vectors are applied bit-serially on the rows, column currents are digitized
// by shared ADCs and combined by shift-add and partial-sum adders; buffers and an H-tree carry
// inputs and outputs. Attention maps K (for Q·Kᵀ) and V (for P·V) onto crossbars; only the
// arrays holding keys some query uses are allocated, and an array is activated for a query only
// when the query uses one of its keys. Every figure is a parameter with a per-node preset.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "core/resources.hpp"
#include "sattn/backend.hpp"
#include "sattn/layout.hpp"
#include "sattn/op.hpp"

namespace sattn {

enum class ImcCell { sram, rram };
enum class KvPlacement { write, sram };  // K/V written into the configured cells, or kept in SRAM-IMC

// Device and circuit figures of one technology node and cell type (units in the names).
struct ImcFigures {
  double vdd_v = 0;
  double row_energy_fj_per_col = 0;       // word-line drive per activated row, per sub-array column
  double cell_read_energy_fj = 0;         // per cell on an activated row, per read step, input bit 1
  double read_ns = 0;                     // array read (bit-line settle) per step
  double adc_fom_fj = 0;                  // ADC energy per conversion step: E = fom * 2^adc_bits
  double adc_ns_per_bit = 0;              // ADC conversion time per output bit
  double shift_add_energy_pj = 0;         // per ADC conversion (shift and add into the column sum)
  double accum_energy_pj = 0;             // per partial-sum addition across sub-arrays
  double buffer_energy_pj_per_bit = 0;    // global buffer read or write
  double buffer_bits_per_cycle = 0;       // global buffer bandwidth
  double buffer_kib = 0;                  // global buffer capacity (area only)
  double interconnect_energy_pj_per_bit_mm = 0;  // H-tree wire energy
  double bus_bits_per_cycle = 0;          // H-tree bandwidth
  double write_energy_pj_per_cell = 0;    // programming one cell (K/V are dynamic)
  double write_ns_per_row = 0;            // programming one sub-array row
  double endurance_cycles = 0;            // writes a cell survives; 0 = unlimited
  double cell_area_f2 = 0;                // cell area in F^2
  double periphery_f2_per_line = 0;       // decoder/driver (per row) and mux/precharge (per column)
  double adc_area_um2 = 0;                // one 4-bit ADC; scales with 2^(bits-4)
  double accum_area_um2 = 0;              // shift-add unit per ADC
  double buffer_area_um2_per_kib = 0;
  double interconnect_area_fraction = 0;  // H-tree area as a fraction of everything else
  double write_driver_f2_per_col = 0;     // write drivers / level shifters per column
};

// The field table behind the YAML loader, the JSON echo and the man page: name, member, range.
struct ImcFigureField {
  const char* name;
  double ImcFigures::*member;
  double lo, hi;
};
const std::vector<ImcFigureField>& imc_figure_fields();

// The preset of a node (22, 28, 40 or 65 nm) and cell type; sources in sattn-imc(1).
ImcFigures imc_preset(int tech_nm, ImcCell cell);
std::vector<int> imc_tech_nodes();
double imc_default_clock_mhz(int tech_nm);

struct ImcParams {
  int tech_nm = 22;
  ImcCell cell = ImcCell::rram;
  int64_t rows = 128, cols = 128;  // sub-array size
  int cell_bits = 1;
  int adc_bits = 4;
  int64_t cols_per_adc = 8;
  int64_t parallel_rows = 0;  // rows driven at once; 0 = all rows of the sub-array
  std::optional<double> clock_mhz;  // default per node
  KvPlacement kv_placement = KvPlacement::write;
  int input_bits = 0, weight_bits = 0;  // 0: from the op's precision (GEMM: 8)
  double input_activity = 0.5;          // fraction of applied input bits that are 1
  // Figures set explicitly (config file or profile); the rest come from the preset.
  std::map<std::string, double> overrides;

  int64_t parallel() const { return parallel_rows > 0 ? parallel_rows : rows; }
  double clock() const { return clock_mhz ? *clock_mhz : imc_default_clock_mhz(tech_nm); }
  // The preset of (tech_nm, cell) with the overrides applied.
  ImcFigures figures(ImcCell as) const;
  ImcFigures figures() const { return figures(cell); }
};

// Applies a YAML mapping (a --config file or a profile's `imc:` section) onto `p`. Unknown keys,
// wrong types and out-of-range values are Error(invalid_input) with file:line:col.
void apply_yaml(ImcParams& p, const YAML::Node& node, const std::string& file);
void load_imc_config(ImcParams& p, const std::string& path);
// Cross-field checks (cell_bits vs cell, parallel_rows <= rows, a weight fits a sub-array row...).
// Throws Error(invalid_input) naming the parameters.
void validate(const ImcParams&, int weight_bits);
nlohmann::json to_json(const ImcParams&);
std::string_view to_string(ImcCell);
std::string_view to_string(KvPlacement);

// ---- mapping ---------------------------------------------------------------------------------

// A half-open range of indices [lo, hi).
struct IndexRange {
  int64_t lo = 0, hi = 0;
};

// Event counts of one mapped workload (summed over everything it maps).
struct ImcCounts {
  int64_t arrays_allocated = 0;
  int64_t array_activations = 0;  // (input vector, sub-array) pairs that ran
  double row_activations = 0;     // rows driven, summed over input bits
  double cell_reads = 0;          // cells on driven rows, summed over input bits
  double adc_conversions = 0;
  double shift_adds = 0;
  double partial_sum_adds = 0;
  double buffer_bits = 0;
  double interconnect_bits = 0;
  double cells_written = 0;
  double macs = 0;
  // Digital peripheral work of a quantization scheme (ImcScheme): scale multiplies (scores by
  // their key scale, P rounding, V channel scales), additions (mean-Q bias, smoothing, Hadamard
  // butterflies) and the scale/mean table bits moved from the buffer. 0 for per-tensor.
  double scale_multiplies = 0, scale_adds = 0, scale_bits = 0;
  double mean_vectors = 0;  // mean-Q vectors applied on the K arrays (smooth_q), one per query block
  // Critical path: the busiest sub-array of each phase (phases run one after another).
  double critical_read_ns = 0;
  double critical_adc_ns = 0;
  int64_t critical_write_rows = 0;  // rows written into the most-written sub-array
  void add(const ImcCounts&);       // a phase after this one
};

// One weight-stationary matrix (k_rows x n_out) on crossbars: the rows take the input vector,
// each output takes cells_per_weight adjacent columns.
class CrossbarMapping {
 public:
  CrossbarMapping(const ImcParams&, const ImcFigures&, int64_t k_rows, int64_t n_out, int input_bits,
                  int weight_bits);
  // Marks the stored part: sub-arrays holding any of these rows and outputs are allocated and the
  // cells of (used rows x used outputs) are written when `charge_writes`.
  void store(const std::vector<IndexRange>& rows, const std::vector<IndexRange>& outs, bool charge_writes);
  // One input vector (applied `repeat` times): its nonzero rows and the outputs it needs; sorted,
  // disjoint ranges.
  void apply(const std::vector<IndexRange>& rows, const std::vector<IndexRange>& outs, int64_t repeat = 1);
  // The counts so far; the critical path is this matrix's busiest sub-array.
  ImcCounts counts() const;
  int64_t row_tiles() const { return row_tiles_; }
  int64_t col_tiles() const { return col_tiles_; }
  int64_t outputs_per_array() const { return outs_per_array_; }
  int cells_per_weight() const { return cells_per_weight_; }

 private:
  ImcParams p_;
  ImcFigures f_;
  int64_t k_rows_, n_out_;
  int input_bits_, weight_bits_, cells_per_weight_, psum_bits_;
  int64_t outs_per_array_, adcs_per_array_, row_tiles_, col_tiles_;
  std::vector<uint8_t> allocated_;  // row_tiles x col_tiles
  std::vector<int64_t> written_rows_;
  std::vector<int64_t> stored_outs_;  // outputs stored per column tile
  std::vector<double> busy_read_ns_, busy_adc_ns_;
  ImcCounts c_;
  // Scratch per input vector.
  std::vector<int64_t> rows_in_tile_, groups_in_tile_, outs_in_tile_;
};

// Counts of attention on crossbars: per (batch, kv head), K is stored for Q·Kᵀ and V for P·V;
// each query row (once per query head of the group) activates the sub-arrays of its allowed keys.
struct AttentionCounts {
  ImcCounts qk, pv, total;
  bool sram_for_kv = false;  // K/V placed in SRAM-IMC arrays
};
// How a quantization scheme other than per-tensor (sattn/quant.hpp) maps (sattn-imc(1)
// QUANTIZATION SCHEMES): P.V runs at the scheme's P.V precision (fix16: 16-bit P applied
// bit-serially on 16-bit V cells; i8: 8/8; fp32: the op's bits); scores are multiplied by their
// key's scale (k not per tensor) and P is rounded (pv i8/fix16) in the digital periphery, one
// multiply per score; with smooth_q the mean of each block of `block` query rows is applied as
// one more input vector on the K arrays (over the union of the block's keys: array reads and ADC
// conversions) and its output added to each score of the block; V channel scales are one
// multiply per output element; smoothing and the rotation are additions on Q and K.
struct ImcScheme {
  int pv_input_bits = 0, pv_weight_bits = 0;
  bool k_scales = false, q_scales = false, v_channel = false, p_round = false;
  bool smooth_k = false, rotate = false;
  int64_t mean_block = 0;  // smooth_q: rows per mean vector; 0 = none
  int64_t k_groups = 1;    // K scales per (batch, kv head)
};
// The mapping of an integer op's scheme; nullopt for per-tensor (and fp32/bf16). `p`'s explicit
// input_bits/weight_bits win over the P.V precision's.
std::optional<ImcScheme> imc_scheme(const Op&, const ImcParams& p);
AttentionCounts map_attention(const Op&, const Layout&, const ImcParams&, int input_bits, int weight_bits,
                              const ImcScheme* scheme = nullptr);
ImcCounts map_gemm(int64_t m, int64_t k, int64_t n, const ImcParams&, int input_bits, int weight_bits);

// ---- cost ------------------------------------------------------------------------------------

struct ImcBreakdown {
  double array = 0, adc = 0, accumulation = 0, buffer = 0, interconnect = 0, writes = 0;
  double total() const { return array + adc + accumulation + buffer + interconnect + writes; }
};

struct ImcCost {
  ImcCounts counts;
  ImcBreakdown energy_pj, latency_ns, area_mm2;
  double ops = 0;  // 2 * MACs
  double tops() const;
  double tops_per_w() const;
  double tops_per_mm2() const;
};

// Energy, latency and area of mapped counts with the figures of `cell` (see sattn-imc(1) for the
// equations).
ImcCost imc_cost(const ImcCounts&, const ImcParams&, ImcCell cell);
nlohmann::json to_json(const ImcCost&, const ImcParams&, ImcCell cell);

// Bits applied per input / stored per weight for an op's precision: i8 -> 8, i4 -> 4, fp32 and
// bf16 -> 8 (mapped as 8-bit fixed point, noted in the report); a nonzero parameter wins.
int imc_input_bits(Precision, const ImcParams&);
int imc_weight_bits(Precision, const ImcParams&);

// ---- reports ---------------------------------------------------------------------------------

struct ImcOpReport {
  ImcCost sparse, dense;
  // A scheme other than per-tensor: its name, mapping, and the sparse cost of the same op under
  // per-tensor quantization (the scheme's overhead is sparse - sparse_per_tensor).
  std::optional<ImcScheme> scheme;
  std::string scheme_name;
  std::optional<ImcCost> sparse_per_tensor;
  ImcCell kv_cell = ImcCell::rram;
  int input_bits = 0, weight_bits = 0;
  double density = 0, dense_density = 0;
  std::vector<std::string> notes;
};
// Sparse (the op's layout) against dense (the same op with the dense spec).
ImcOpReport imc_attention(const Op&, const Layout& sparse, const Layout& dense, const ImcParams&);

struct ImcGemmReport {
  int64_t m = 0, k = 0, n = 0;
  ImcCost cost;
  int input_bits = 0, weight_bits = 0;
};
ImcGemmReport imc_gemm(int64_t m, int64_t k, int64_t n, const ImcParams&);

// ---- sweeps ----------------------------------------------------------------------------------

// "subarray=64x64,128x128;adc_bits=3..8;cell_bits=1,2": axes separated by ';', values by ',',
// integer ranges a..b. Axes: subarray, adc_bits, cell_bits, cols_per_adc, parallel_rows, tech.
// Returns one ImcParams per point (cartesian product, first axis slowest). Bad syntax or an
// unknown axis is Error(usage); values out of range are Error(invalid_input).
std::vector<ImcParams> parse_sweep(const std::string& spec, const ImcParams& base);
// The CSV header and one row per (point, report).
std::string imc_sweep_header();
std::string imc_sweep_row(const std::string& op, const ImcParams&, const ImcCost& sparse, const ImcCost* dense);

// Registers the `imc:` section checker of profiles (load_profile calls it).
void register_imc_profile_section();

// ---- the backend: one attention op, costed ---------------------------------------------------

// The parameters a profile gives: the defaults, then its imc: sections (base first).
ImcParams imc_params(const std::optional<std::string>& profile);
// The memory an op needs here: its spec's layout (and data, when the layout needs them and the
// input does not carry it) plus the dense layout it is compared with.
MemoryEstimate imc_memory(const BackendInput&);

// One attention op, ready to cost under any parameters: its layouts are built once.
struct ImcPrepared {
  std::string input;
  Op op;
  Spec spec;
  Layout sparse, dense;
};
// The input's layout when it carries one, else built (from `data` for data-dependent specs).
ImcPrepared prepare_imc(const BackendInput&, const QKV* data);
// The sattn.imc/v1 document of one op ("mode": "attention").
nlohmann::json imc_attention_json(const ImcPrepared&, const ImcOpReport&, const ImcParams&, const std::string& tool);

const Backend& imc_backend();

}  // namespace sattn
