#include "backends/rocc/sim_run.hpp"

#include "backends/rocc/accel_grid.hpp"

#include "formats/profile.hpp"

#include "support/text_table.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include "sattn/attention.hpp"
#include "sattn/layout.hpp"
#include "formats/op_io.hpp"
#include "core/quant.hpp"
#include "core/quant_scheme.hpp"

namespace sattn {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

nlohmann::json error_json(const ErrorStats& e, double tol) {
  return {{"max_abs_error", e.finite ? nlohmann::json(e.max_abs) : nlohmann::json("inf")},
          {"max_rel_error", e.finite ? nlohmann::json(e.max_rel) : nlohmann::json("inf")},
          {"tolerance", tol},
          {"passed", e.finite && e.max_rel <= tol}};
}

// Scratchpad traffic (bytes), from the counters and hw/README.md's datapath: DMA fills write
// every byte read from DRAM into a scratchpad; a QK MAC reads one q and one k byte; a P.V MAC
// reads one v byte and read-modify-writes one int40 accumulator (5 + 5 bytes); STORE reads the
// int40 accumulator of every output element (dma_bytes_out / 2 of them). macs_issued is half
// QK, half P.V (2 x pairs x D). Skipped MACs take no cycle and read nothing.
int64_t scratchpad_bytes(const accel::Counters& c) {
  const int64_t half = c.macs_issued / 2;
  return c.dma_bytes_in + half * 2 + half * (1 + 10) + (c.dma_bytes_out / 2) * 5;
}

nlohmann::json stalls_json(const accel::Counters& c) {
  return {{"dma", c.stall_dma},         {"index", c.stall_index}, {"softmax", c.stall_softmax},
          {"bank_conflict", c.stall_bank}, {"other", c.stall_other}};
}

}  // namespace

Precision sim_precision(const Op& op, const std::optional<Precision>& forced, std::string* note) {
  if (forced) return *forced;
  if (op.precision == Precision::i8 || op.precision == Precision::i4) return op.precision;
  if (note)
    *note = "op '" + op.name + "' is " + std::string(to_string(op.precision)) +
            "; the accelerator's datapath is integer-only, so it runs at i8 (use --precision i4, or set the op's "
            "precision, to choose)";
  return Precision::i8;
}

std::string first_difference(const std::vector<int16_t>& rtl, const std::vector<int16_t>& model, const Shape& s) {
  if (rtl.size() != model.size())
    return "the output sizes differ: RTL " + std::to_string(rtl.size()) + " elements, model " +
           std::to_string(model.size());
  for (size_t n = 0; n < rtl.size(); ++n) {
    if (rtl[n] == model[n]) continue;
    const int64_t d = int64_t(n) % s.head_dim;
    const int64_t i = int64_t(n) / s.head_dim % s.seq_len;
    const int64_t h = int64_t(n) / (s.head_dim * s.seq_len) % s.heads;
    const int64_t b = int64_t(n) / (s.head_dim * s.seq_len * s.heads);
    return "element [" + std::to_string(b) + ", " + std::to_string(h) + ", " + std::to_string(i) + ", " +
           std::to_string(d) + "] (index " + std::to_string(n) + "): RTL " + std::to_string(rtl[n]) + ", model " +
           std::to_string(model[n]);
  }
  return "";
}

std::string counter_difference(const accel::Counters& rtl, const accel::Counters& model) {
  for (int e = 0; e < accel::kEventCount; ++e) {
    const auto ev = accel::Event(e);
    if (rtl.get(ev) != model.get(ev))
      return std::string(accel::event_name(ev)) + ": RTL " + std::to_string(rtl.get(ev)) + ", model " +
             std::to_string(model.get(ev));
  }
  return "";
}

double quantized_reference_tolerance(Precision p) {
  // Against a double reference fed the same dequantized inputs, what differs is the datapath's
  // fixed point: logits with 8 fractional bits in the log2 domain (a relative error of up to
  // 2^-9 * ln 2 ~ 1.4e-3 in each weight), the 15-bit exp table, and the Q8.8 output (half a
  // step, 1/512 of scale_v, relative to max|o|, which for i4 can be as small as a few scale_v).
  return p == Precision::i4 ? 2e-2 : 1e-2;
}

SimSettings sim_settings(const std::optional<std::string>& profile) {
  SimSettings s;
  if (profile) {
    const Profile p = load_profile(*profile);
    for (const auto& [file, node] : p.sections("rocc")) s.config.apply_yaml(node, file);
    for (const auto& [file, node] : p.sections("energy")) s.energy.apply_yaml(node, file);
  }
  return s;
}

SimRun run_sim(const BackendInput& item, const QKV& data, const nlohmann::json& data_desc, const SimSettings& settings,
               const std::string& tool) {
  SimSettings s = settings;  // a profile's grid may be narrowed to the RTL's one tile below
  SimRun r;
  Op op = item.plan.op;
  std::string note;
  op.precision = sim_precision(op, s.precision, &note);
  if (!note.empty()) r.notes.push_back(note);
  // An integer op without a quant_scheme runs the recommended scheme, as on every backend
  // (sattn-quant(7)): the driver computes its scale tables and mean-Q bias rows from the data and
  // loads them by DMA (LOAD_SCALE, CONFIG QUANT). The per-tensor scheme runs when named.
  if (!op.quant_scheme) op.quant_scheme = quant_scheme_of(op);

  // A grid the RTL is not built as (accel::kRtlGridShapes) runs in the model only. One that came
  // from a profile (not --grid) does not stop an RTL run: the RTL runs its one tile, with a note
  // (hw/README.md "Grid"); --grid RxC without --model-only is a usage error.
  bool rtl_shape = false;
  for (const char* shape : accel::kRtlGridShapes) rtl_shape = rtl_shape || s.config.grid.shape() == shape;
  if (s.config.grid.tiles() > 1 && !s.model_only && !s.grid_from_flag &&
      !(rtl_shape && s.config.lanes == accel::kRtlGridLanes)) {
    r.notes.push_back("the profile's " + s.config.grid.shape() +
                      " grid runs in the model only (sattn-sim --model-only); the RTL ran one tile");
    s.config.grid.rows = s.config.grid.cols = 1;
    s.config.grid.dram_ports = 1;
  }
  const accel::GridConfig& gc = s.config.grid;
  const bool on_grid = gc.tiles() > 1;
  // The RTL grid is built for a few shapes (accel::kRtlGridShapes) with the default lanes; any
  // other grid runs in the model only.
  if (on_grid && !s.model_only) {
    bool built = false;
    for (const char* shape : accel::kRtlGridShapes) built = built || gc.shape() == shape;
    if (!built)
      throw Error(ExitCode::usage, "the " + gc.shape() + " grid runs in the model only: the RTL grid is built as " +
                                       accel::rtl_grid_shapes_text() + " (add --model-only)");
    if (s.config.lanes != accel::kRtlGridLanes)
      throw Error(ExitCode::usage, "the RTL grid is built with " + std::to_string(accel::kRtlGridLanes) +
                                       " lanes (add --model-only to run " + std::to_string(s.config.lanes) + " lanes on a grid)");
  }

  auto t0 = std::chrono::steady_clock::now();
  std::optional<Layout> built;
  if (!item.layout) built = build_layout(op, item.plan.spec, item.plan.params, &data.q, &data.k);
  const Layout& layout = item.layout ? *item.layout : *built;
  const double layout_ms = item.layout ? 0.0 : ms_since(t0);

  // The op's scale_q/k/v where given (sattn-calibrate writes them), else absmax of the data.
  const Scales scales = resolve_scales(op, data.q, data.k, data.v);
  t0 = std::chrono::steady_clock::now();
  const accel::Program program = accel::build_program(op, layout, data, scales, s.config);
  const double build_ms = ms_since(t0);

  // The RTL first: its watchdog (--max-cycles) is the one that must fire on a run that cannot
  // finish, with the state of each unit; then the model on the same command stream.
  // On a grid, a grid run's counters as one run's: cycles is the makespan, every other event
  // summed over the tiles, DMA bytes those through the shared DRAM port.
  auto as_run = [](const accel::GridResult& g, const std::string& source) {
    accel::RunResult run;
    run.source = source;
    run.out_bits = g.out_bits;
    run.counters = g.counters.total;
    run.counters.cycles = g.counters.cycles;
    run.counters.dma_bytes_in = g.counters.dram_bytes_read;
    run.counters.dma_bytes_out = g.counters.dram_bytes_written;
    run.sim_cycles = g.counters.cycles;
    return run;
  };
  std::optional<accel::RunResult> rtl;
  std::optional<accel::GridResult> grid_rtl;
  double rtl_ms = 0;
  if (!s.model_only) {
    t0 = std::chrono::steady_clock::now();
    if (on_grid) {
      accel::GridRtlTiming timing;
      grid_rtl = accel::run_grid_rtl(program, s.config, s.rtl, &timing);
      rtl = as_run(*grid_rtl, timing.harness);
      rtl->sim_cycles = timing.sim_cycles;
      rtl->wall_seconds = timing.wall_seconds;
      rtl->cpu_seconds = timing.cpu_seconds;
      if (timing.wall_seconds > 0) rtl->cycles_per_second = double(timing.sim_cycles) / timing.wall_seconds;
      if (timing.cpu_seconds > 0) rtl->cpu_cycles_per_second = double(timing.sim_cycles) / timing.cpu_seconds;
    } else {
      rtl = accel::run_rtl(program, s.config, s.rtl);
    }
    rtl_ms = ms_since(t0);
  }
  t0 = std::chrono::steady_clock::now();
  std::optional<accel::GridResult> grid_run;
  accel::RunResult model;
  if (on_grid) {
    grid_run = accel::run_grid(program, s.config);
    model = as_run(*grid_run, "model");
  } else {
    model = accel::run_model(program, s.config);
  }
  const double model_ms = ms_since(t0);

  std::string output_diff, counters_diff;
  if (rtl) {
    output_diff = first_difference(rtl->out_bits, model.out_bits, op.shape);
    counters_diff = grid_rtl ? accel::grid_counter_difference(grid_rtl->counters, grid_run->counters)
                             : counter_difference(rtl->counters, model.counters);
    r.model_match = output_diff.empty() && counters_diff.empty();
    if (!output_diff.empty()) r.failures.push_back("RTL output differs from the bit-exact model at " + output_diff);
    if (!counters_diff.empty()) r.failures.push_back("RTL counters differ from the bit-exact model: " + counters_diff);
  }
  const accel::RunResult& ran = rtl ? *rtl : model;
  const accel::Counters& c = ran.counters;
  r.out = accel::decode_output(program, ran);

  // Against the fp32 reference (the documented tolerance) and, tightly, against the reference fed
  // the same quantized inputs (catches datapath bugs the wide tolerance would hide).
  t0 = std::chrono::steady_clock::now();
  // A quantization scheme (hw/README.md "Quantization schemes"): the same-quantized reference is
  // reference_attention_quantized (the scheme's codes, scales and mean-Q bias, in double), and the
  // fp32 check uses the scheme's metrics (sattn-quant(7): i8 max-norm, i4 relative L1 and cosine).
  const Tensor ref = reference_attention(op, layout, data.q, data.k, data.v);
  Tensor ref_q;
  if (program.schemed) {
    ref_q = reference_attention_quantized(op, program.scheme, layout, data.q, data.k, data.v);
  } else {
    const QKV deq = accel::dequantized_inputs(program, data);
    ref_q = reference_attention(op, layout, deq.q, deq.k, deq.v);
  }
  const double reference_ms = ms_since(t0);
  const ErrorStats err = compare(r.out, ref), err_q = compare(r.out, ref_q);
  const double tol = tolerance(op.precision), tol_q = quantized_reference_tolerance(op.precision);
  const Tolerance scheme_tol = tolerance_of(op.precision, program.scheme);
  const bool ok_ref = program.schemed ? within(err, scheme_tol) : err.finite && err.max_rel <= tol;
  const bool ok_q = err_q.finite && err_q.max_rel <= tol_q;
  r.within_tolerance = ok_ref && ok_q;
  if (!ok_ref && program.schemed)
    r.failures.push_back("output differs from the fp32 reference: max relative error " + format_sci(err.max_rel) +
                         ", relative L1 " + format_sci(err.rel_l1) + ", cosine " + std::to_string(err.cosine) +
                         "; the check asks " + describe(scheme_tol));
  else if (!ok_ref)
    r.failures.push_back("output differs from the fp32 reference: max relative error " +
                         (err.finite ? format_sci(err.max_rel) : std::string("inf")) + " > tolerance " + format_sci(tol));
  if (!ok_q)
    r.failures.push_back("output differs from the reference on the same quantized inputs: max relative error " +
                         (err_q.finite ? format_sci(err_q.max_rel) : std::string("inf")) + " > tolerance " + format_sci(tol_q));

  const int64_t dram_bytes = c.dma_bytes_in + c.dma_bytes_out;
  RooflineInputs rin;
  rin.macs = c.macs_issued;
  rin.lanes = s.config.lanes * gc.tiles();
  rin.dram_bytes = dram_bytes;
  rin.dram_bytes_per_cycle = s.config.dram_bytes_per_cycle * (on_grid ? gc.dram_ports : 1);
  rin.dram_latency_cycles = s.config.dram_latency_cycles;
  rin.actual_cycles = c.cycles;
  const Roofline roof = roofline(rin);
  EnergyEvents ev;
  ev.precision = op.precision;
  ev.macs = c.macs_issued;
  ev.sram_bytes = scratchpad_bytes(c);
  ev.dram_bytes = dram_bytes;
  ev.cycles = c.cycles * gc.tiles();  // every tile's static energy over the run
  const EnergyBreakdown energy = estimate_energy(s.energy, ev);

  nlohmann::json j = result_header(item.plan, item.plan.op, op.precision, "rocc", data_desc, layout, tool);
  nlohmann::json check = error_json(err, tol);
  check["reference"] = "cpu reference: fp32 inputs, double accumulation";
  if (program.schemed) {
    check["tolerance"] = std::isfinite(scheme_tol.max_rel) ? scheme_tol.max_rel : scheme_tol.rel_l1;
    check["passed"] = ok_ref;
    check["metric"] = std::isfinite(scheme_tol.max_rel) ? "max_rel" : "rel_l1";
    check["criteria"] = describe(scheme_tol);
  }
  check["rel_l1"] = err.finite ? nlohmann::json(err.rel_l1) : nlohmann::json("inf");
  check["cosine"] = err.cosine;
  if (op.precision == Precision::i8 || op.precision == Precision::i4) check["quant_scheme"] = to_string(program.scheme);
  // Which check was made (sattn-run(1) --check): the accelerator's runs are small, every row.
  check["mode"] = "full";
  check["rows_checked"] = op.shape.seq_len;
  check["rows"] = op.shape.seq_len;
  check["passed"] = r.passed();
  check["quantized_reference"] = error_json(err_q, tol_q);
  check["quantized_reference"]["reference"] =
      program.schemed ? "same-quantized reference (reference_attention_quantized): the scheme's codes, scales and bias, double"
                      : "cpu reference on the dequantized i8/i4 inputs, double accumulation";
  check["model_match"] = s.model_only ? nlohmann::json(nullptr) : nlohmann::json(r.model_match);
  if (!output_diff.empty()) check["first_output_difference"] = output_diff;
  if (!counters_diff.empty()) check["first_counter_difference"] = counters_diff;
  j["check"] = check;

  const double util =
      c.cycles > 0 ? double(c.macs_issued) / (double(s.config.lanes) * double(gc.tiles()) * double(c.cycles)) : 0.0;
  nlohmann::json sim = {
      {"engine", s.model_only ? "model" : "rtl"},
      {"harness", s.model_only ? nlohmann::json(nullptr) : nlohmann::json(ran.source)},
      {"config", s.config.to_json()},
      {"lanes", s.config.lanes},
      {"double_buffer", s.config.double_buffer},
      {"scales", {{"q", scales.q}, {"k", scales.k}, {"v", scales.v},
                  {"source", op.scale_q || op.scale_k || op.scale_v ? "op (absmax where the op gives none)" : "absmax"}}},
      {"cycles", c.cycles},
      {"seconds", double(c.cycles) / (s.config.clock_mhz * 1e6)},
      {"utilization", util},
      {"busy_cycles", c.busy},
      {"stalls", stalls_json(c)},
      {"macs_issued", c.macs_issued},
      {"macs_skipped", c.macs_skipped},
      {"dma_bytes_in", c.dma_bytes_in},
      {"dma_bytes_out", c.dma_bytes_out},
      {"gathers", c.gathers},
      {"commands", c.commands},
      {"tiles", program.tiles},
      {"chunks", program.chunks},
      {"roofline", roof.to_json()},
      {"energy_pj", energy.to_json()},
      {"energy_events", {{"macs", ev.macs}, {"sram_bytes", ev.sram_bytes}, {"dram_bytes", ev.dram_bytes}}},
      {"energy_model", s.energy.to_json()},
      {"sim_cycles", ran.sim_cycles},
      {"model_match", check["model_match"]},
  };
  if (grid_run) sim["grid"] = (grid_rtl ? *grid_rtl : *grid_run).counters.to_json(s.config.dram_bytes_per_cycle);
  if (program.schemed)
    sim["quant"] = {{"scheme", to_string(program.scheme)},
                    {"scale_and_bias_bytes", program.quant_bytes},
                    {"v16", program.v16},
                    {"bias", program.scheme.smooth_q},
                    {"bias_rows_per_query_block", program.bias_shift > 0},
                    {"tables", op.quant_tables ? "fixed (artifacts)" : "computed from the data"}};
  j["sim"] = sim;
  if (!r.notes.empty()) j["notes"] = r.notes;
  // Wall time only here, so results diff byte for byte once "timing" is dropped (docs/robustness.md).
  j["timing"] = {{"layout_ms", layout_ms},
                 {"build_program_ms", build_ms},
                 {"model_ms", model_ms},
                 {"rtl_ms", rtl_ms},
                 {"reference_ms", reference_ms},
                 {"sim_wall_seconds", ran.wall_seconds},
                 {"sim_speed_cycles_per_s", s.model_only ? nlohmann::json(nullptr) : nlohmann::json(ran.cycles_per_second)},
                 {"sim_cpu_seconds", ran.cpu_seconds},
                 {"sim_speed_cpu_cycles_per_s",
                  ran.cpu_cycles_per_second > 0 ? nlohmann::json(ran.cpu_cycles_per_second) : nlohmann::json(nullptr)}};
  r.result = std::move(j);
  return r;
}

namespace {

// The accelerator in the registry: the bit-exact model and the RTL under Verilator.
class RoccBackend final : public Backend {
 public:
  std::string_view name() const override { return "rocc"; }
  std::string_view summary() const override {
    return "the RoCC accelerator: RTL under Verilator, bit-exact with its C++ model; cycles, counters, energy";
  }
  Target cost_target() const override { return Target::rocc; }
  BackendCapabilities capabilities() const override {
    BackendCapabilities c{{Precision::i8, Precision::i4}, true, true,
                          "the Verilator harness built with the project (apt-get install verilator)", /*softcap=*/false};
    c.max_head_dim = accel::kMaxHeadDim;  // DMAX: any head_dim up to it, zero-padded to 16 (i4: 32)
    // The schemes it runs come from the PROBE capability bits the RTL answers (hw/README.md
    // "PROBE"): LOAD_SCALE and CONFIG QUANT (quant_scales), int16 V (pv_fix16); P is always 16-bit
    // fixed point, so pv=i8 has no datapath here.
    const auto [w0, w1] = accel::capability_words(16);
    const accel::Capabilities caps = accel::decode_capabilities(w0, w1);
    c.quant_schemes = caps.quant_scales;
    c.quant_pv = {PvPrecision::fp32};
    if (caps.pv_fix16) c.quant_pv.push_back(PvPrecision::fix16);
    return c;
  }
  BackendResult run(const BackendInput& item, const QKV& data, const DataSource& src,
                    const BackendRunOptions& o) const override {
    const CancelScope cancel(o.cancel);  // this call's cancellation
    const SimRun r = run_sim(item, data, describe(src), sim_settings(o.profile), o.tool);
    BackendResult b;
    b.json = r.result.dump();
    b.passed = r.passed();
    b.notes = r.notes;
    b.failures = r.failures;
    b.out = r.out;
    return b;
  }
};

}  // namespace

const Backend& rocc_backend() {
  static const RoccBackend backend;
  return backend;
}

}  // namespace sattn
