// The RVV backend (sattn-run-rvv(1)): trials of the riscv64 runner under qemu with the counting
// plugin, the autotune sweep, the check against the reference, the sattn.result/v1 document.
#include "backends/rvv/run_rvv.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "core/quant.hpp"
#include "core/quant_scheme.hpp"
#include "formats/profile.hpp"
#include "sattn/error.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

std::string plugin_path() {
  const std::string path = libexec_dir() + "/libsattn-insn-count.so";
  if (access(path.c_str(), R_OK) != 0)
    throw Error(ExitCode::external_tool,
                "the QEMU plugin " + path + " is missing: it is built with the project by the host C compiler "
                "(ninja sattn-insn-count), or set SATTN_LIBEXEC_DIR to where it lies");
  return path;
}

// Everything about one run of one runner configuration.
struct Trial {
  int tile_rows = 0, lmul = 0;  // as resolved by the runner (runner.json)
  rvv::RunnerOutput out;
  rvv::InstructionMix mix;
  rvv::CycleEstimate cycles;
  ErrorStats error;
  bool passed = false;
};

// What every trial of one op shares.
struct OpContext {
  const Op* op;
  const Layout* layout;
  const QKV* data;
  Scales scales;
  Tensor reference;  // fp32 inputs, double accumulation
  double tolerance;
  Tolerance tol;     // the check's criteria (schemes: tolerance_of; else max_rel <= tolerance)
};

Trial run_trial(const OpContext& c, rvv::RunnerJob job, const rvv::CoreModel& core, const std::string& plugin,
                bool keep, const std::function<void(const std::string&)>& note) {
  TempDir dir("sattn-rvv");
  if (dir.path().find(',') != std::string::npos)
    throw Error(ExitCode::runtime, "the work directory " + dir.path() +
                                       " contains a comma, which qemu's -plugin option cannot pass: set TMPDIR");
  const std::string counts = dir.path() + "/insn-count.json";
  job.qemu_args = {"-plugin", plugin + ",out=" + counts};
  if (keep) {
    dir.keep();
    if (note) note("work directory kept: " + dir.path());
  }
  rvv::write_workdir(dir.path(), *c.op, *c.layout, *c.data, c.scales, job);
  Trial t;
  t.out = rvv::run_runner(dir.path(), *c.op, job);
  t.mix = rvv::read_instruction_mix(counts);
  if (t.mix.regions != 1)
    throw Error(ExitCode::external_tool, "the runner executed " + std::to_string(t.mix.regions) +
                                             " kernel regions, expected 1 (see target/rvv/README.md)",
                SourceLoc{counts});
  const nlohmann::json& r = t.out.runner;
  if (r.value("vlenb", 0) != job.vlen / 8)
    throw Error(ExitCode::external_tool, job.qemu + " ran with vlenb " + std::to_string(r.value("vlenb", 0)) +
                                             ", expected " + std::to_string(job.vlen / 8) + " (VLEN " +
                                             std::to_string(job.vlen) + "): does it support vlen=N?");
  t.tile_rows = r.value("tile_rows", job.tile_rows);
  t.lmul = r.value("lmul", job.lmul);
  t.cycles = rvv::model_cycles(core, t.mix, rvv::RegionShape{job.vlen, std::max(t.lmul, 1)});
  t.error = compare(t.out.out, c.reference);
  t.passed = within(t.error, c.tol);
  return t;
}

struct Sweep {
  std::vector<Trial> trials;
  size_t best = 0;
  nlohmann::json table = nlohmann::json::array();
};

// --autotune: tile_rows x LMUL (each fixed when given), best by modelled cycles among the
// configurations that pass the check. Every pair runs: the runner clamps LMUL to what a tile
// fits and picks the LMUL of partial tiles itself, so two requests that resolve to the same
// reported values can still differ.
Sweep autotune(const OpContext& c, const rvv::RunnerJob& base, const std::string& plugin, const RvvSettings& o,
               const std::string& progress_label) {
  const rvv::CoreModel& core = o.core;
  const bool vector = base.kernel == rvv::Kernel::rvv;
  const std::vector<int> tiles = o.tile_rows || !vector ? std::vector<int>{base.tile_rows}
                                                                     : std::vector<int>{1, 2, 4, 8};
  const std::vector<int> lmuls = o.lmul || !vector ? std::vector<int>{base.lmul}
                                                                : std::vector<int>{1, 2, 4, 8};
  Sweep s;
  for (int tile : tiles) {
    for (int lmul : lmuls) {
      if (o.progress)
        o.progress(progress_label + "autotune " + std::to_string(s.trials.size() + 1) + "/" +
                   std::to_string(tiles.size() * lmuls.size()) + ": tile_rows " + std::to_string(tile) + ", lmul " +
                   std::to_string(lmul));
      rvv::RunnerJob job = base;
      job.tile_rows = tile;
      job.lmul = lmul;
      Trial t = run_trial(c, job, core, plugin, o.keep_workdir, o.note);
      s.table.push_back({{"tile_rows", tile},
                         {"lmul", lmul},
                         {"resolved", {{"tile_rows", t.tile_rows}, {"lmul", t.lmul}}},
                         {"instructions", t.mix.total()},
                         {"modelled_cycles", std::llround(t.cycles.total)},
                         {"max_rel_error", t.error.finite ? nlohmann::json(t.error.max_rel) : nlohmann::json("inf")},
                         {"passed", t.passed}});
      s.trials.push_back(std::move(t));
    }
  }
  // Lowest modelled cycles among passing runs; if none passes, the lowest overall (reported as
  // failing, exit 5).
  auto better = [](const Trial& a, const Trial& b) {
    if (a.passed != b.passed) return a.passed;
    return a.cycles.total < b.cycles.total;
  };
  for (size_t n = 1; n < s.trials.size(); ++n)
    if (better(s.trials[n], s.trials[s.best])) s.best = n;
  return s;
}

nlohmann::json error_json(const ErrorStats& e, bool abs) {
  if (!e.finite) return "inf";
  return abs ? e.max_abs : e.max_rel;
}

}  // namespace

RvvSettings rvv_settings(const std::optional<std::string>& profile) {
  RvvSettings s;
  if (profile) {
    for (const auto& [file, node] : load_profile(*profile).sections("rvv")) {
      s.core.apply_yaml(node, file);
      s.core.source = s.core.source == "built-in" ? file : s.core.source + ", " + file;
    }
  }
  return s;
}

std::string require_rvv_tools(const RvvSettings& o) {
  if (!find_executable(o.qemu))
    throw Error(ExitCode::external_tool, o.qemu + " not found: install it (apt-get install qemu-user), or name it with --qemu PATH");
  return plugin_path();
}

RvvRun run_rvv(const BackendInput& item, const QKV& data, const DataSource& src, const RvvSettings& o,
               const std::string& tool, const std::string& label) {
  const std::string plugin = plugin_path();
  const rvv::CoreModel& core = o.core;
  const int vlen = o.vlen ? o.vlen : core.vlen;
  if (vlen != 128 && vlen != 256 && vlen != 512 && vlen != 1024)
    throw Error(ExitCode::usage, "--vlen must be 128, 256, 512 or 1024 (got " + std::to_string(vlen) + ")");
  Op op = item.plan.op;
  if (o.precision) op.precision = *o.precision;
  const nlohmann::json data_desc = describe(src);
  const Layout layout = item.layout ? *item.layout
                                    : build_layout(op, item.plan.spec, item.plan.params, &data.q, &data.k);
  OpContext c{&op, &layout, &data, resolve_scales(op, data.q, data.k, data.v),
              reference_attention(op, layout, data.q, data.k, data.v), tolerance(op.precision), Tolerance{}};
  // i8/i4 run the op's quantization scheme (its quant_scheme, else the recommended one), checked
  // against the fp32 reference by the scheme's criteria (tolerance_of), as on the cpu backend;
  // per-tensor keeps the historical max-norm check.
  const bool integer = op.precision == Precision::i8 || op.precision == Precision::i4;
  const QuantScheme scheme = quant_scheme_of(op);
  const bool with_scheme = integer && !scheme.is_per_tensor();
  if (with_scheme) {
    c.tol = tolerance_of(op.precision, scheme);
    c.tolerance = std::isfinite(c.tol.max_rel) ? c.tol.max_rel : c.tol.rel_l1;
  } else {
    c.tol.max_rel = c.tolerance;
  }

  rvv::RunnerJob job;
  job.kernel = o.kernel;
  job.vlen = vlen;
  job.tile_rows = o.tile_rows ? *o.tile_rows : int(op.attrs.tile_rows.value_or(0));
  job.lmul = o.lmul.value_or(0);
  job.qemu = o.qemu;
  job.timeout_s = o.timeout_s;

  Sweep sweep;
  if (o.autotune) {
    sweep = autotune(c, job, plugin, o, label);
  } else {
    sweep.trials.push_back(run_trial(c, job, core, plugin, o.keep_workdir, o.note));
  }
  const Trial& t = sweep.trials[sweep.best];

  // Integer and bf16 paths: also the error against a reference fed the same rounded or
  // quantized values, which isolates kernel error from quantization error.
  nlohmann::json quantized = nullptr;
  if (with_scheme) {
    const ErrorStats e = compare(t.out.out, reference_attention_quantized(op, scheme, layout, data.q, data.k, data.v));
    quantized = {{"reference", "double reference of the same quantization scheme (codes, scales, means, P and V rounding)"},
                 {"max_abs_error", error_json(e, true)},
                 {"max_rel_error", error_json(e, false)},
                 {"rel_l1", e.finite ? nlohmann::json(e.rel_l1) : nlohmann::json("inf")}};
  } else if (op.precision != Precision::fp32) {
    const Tensor ref_q = reference_attention(op, layout, apply_precision(data.q, op.precision, c.scales.q),
                                             apply_precision(data.k, op.precision, c.scales.k),
                                             apply_precision(data.v, op.precision, c.scales.v));
    const ErrorStats e = compare(t.out.out, ref_q);
    quantized = {{"reference", "cpu reference on the inputs rounded/quantized as the kernel sees them"},
                 {"max_abs_error", error_json(e, true)},
                 {"max_rel_error", error_json(e, false)}};
  }

  nlohmann::json j = result_header(item.plan, op, op.precision, "rvv", data_desc, layout, tool);
  // Which check was made (sattn-run(1) --check): runs under QEMU are small, every row.
  j["check"] = {{"mode", "full"},
                {"rows_checked", op.shape.seq_len},
                {"rows", op.shape.seq_len},
                {"reference", "cpu reference: fp32 inputs, double accumulation"},
                {"max_abs_error", error_json(t.error, true)},
                {"max_rel_error", error_json(t.error, false)},
                {"tolerance", c.tolerance},
                {"passed", t.passed},
                {"quantized_reference", quantized}};
  if (with_scheme) {
    j["check"]["metric"] = std::isfinite(c.tol.max_rel) ? "max_rel" : "rel_l1";
    j["check"]["criteria"] = describe(c.tol);
    j["check"]["rel_l1"] = t.error.finite ? nlohmann::json(t.error.rel_l1) : nlohmann::json("inf");
    j["check"]["cosine"] = t.error.cosine;
    if (c.tol.min_cosine > -1) j["check"]["min_cosine"] = c.tol.min_cosine;
  }
  if (integer) j["check"]["quant_scheme"] = to_string(scheme);
  nlohmann::json instructions = rvv::to_json(t.mix);
  // The core model as the cycles were modelled: at the VLEN run (--vlen overrides the model's).
  nlohmann::json core_model = core.to_json();
  if (core_model.value("vlen", 0) != vlen) {
    core_model["vlen"] = vlen;
    core_model["source"] = core_model.value("source", std::string()) + ", --vlen " + std::to_string(vlen);
  }
  j["rvv"] = {{"kernel", rvv::to_string(o.kernel)},
              {"vlen", vlen},
              {"tile_rows", t.tile_rows},
              {"lmul", t.lmul},
              {"instructions", instructions},
              {"modelled_cycles", std::llround(t.cycles.total)},
              {"cycles", t.cycles.to_json()},
              {"core_model", core_model},
              {"runner", t.out.runner}};
  if (o.autotune) j["rvv"]["autotune"] = {{"objective", "modelled_cycles"}, {"sweep", sweep.table}};

  RvvRun run;
  run.result = std::move(j);
  run.op = op;
  run.vlen = vlen;
  run.tile_rows = t.tile_rows;
  run.lmul = t.lmul;
  run.instructions = t.mix.total();
  run.vector_instructions = t.mix.vector();
  run.cycles = t.cycles.total;
  run.error = t.error;
  run.tolerance = c.tolerance;
  run.tol = c.tol;
  run.passed = t.passed;
  run.out = t.out.out;
  return run;
}

namespace {

class RvvBackend final : public Backend {
 public:
  std::string_view name() const override { return "rvv"; }
  std::string_view summary() const override {
    return "RVV 1.0 kernels under qemu-riscv64: exact instruction mix, modelled cycles";
  }
  Target cost_target() const override { return Target::rvv; }
  BackendCapabilities capabilities() const override {
    return {{Precision::fp32, Precision::bf16, Precision::i8, Precision::i4}, true, true,
            "qemu-riscv64 (apt-get install qemu-user) and the riscv64 runners built with the project",
            /*softcap=*/false, /*quant_schemes=*/true};
  }
  void require_available(const BackendRunOptions& o) const override { require_rvv_tools(rvv_settings(o.profile)); }
  BackendResult run(const BackendInput& item, const QKV& data, const DataSource& src,
                    const BackendRunOptions& o) const override {
    const CancelScope cancel(o.cancel);  // this call's cancellation
    const RvvRun r = run_rvv(item, data, src, rvv_settings(o.profile), o.tool);
    BackendResult b = checked_result(r.result, r.out, r.error, r.tolerance, r.passed);
    if (!r.passed) b.failures = {check_failure(r.error, r.tol)};  // the scheme's metrics
    return b;
  }
};

}  // namespace

const Backend& rvv_backend() {
  static const RvvBackend backend;
  return backend;
}

}  // namespace sattn
