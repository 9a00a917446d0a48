// `sattn model` / sattn-model: a whole transformer's attention layers (a config.json or a preset),
// a sparsity policy, a prefill or decode phase; costs per layer and in total on every backend's
// analytical model, sparse against dense (sattn.model/v1, a table, a gnuplot script).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "sattn/backend.hpp"
#include "sattn/formats.hpp"
#include "formats/data.hpp"
#include "sattn/model.hpp"
#include "sattn/quant.hpp"
#include "support/io.hpp"
#include "support/process.hpp"
#include "support/text_table.hpp"

namespace sattn {

namespace {

struct ModelCli {
  OutputFlags out;
  std::string model;
  std::string policy = "native";
  int64_t seq = 4096;
  std::string phase = "prefill";
  int64_t context = 0, tokens = 128, chunk = 1, batch = 1;
  std::string precision = "i8";
  double clock_mhz = 1000, cpu_ghz = 3.0;
  std::string plot;
  bool allow_long = false, list = false;
  int64_t validate = 0, validate_len = 256, validate_head_dim = 64;
};

// --validate N: N sampled layers, reduced (reduce_layer), run on the rvv core (QEMU) and the
// accelerator (RTL under Verilator); the model's cycles for the same reduced op beside the
// measured ones. The backends are found by the cost model they use, so a renamed backend is
// still found.
struct Validation {
  nlohmann::json json = nlohmann::json::array();
  TextTable table{{"layer", "class", "spec", "reduced op", "backend", "model cycles", "measured cycles", "model/measured", "check"}};
  bool passed = true;
};

Validation validate_layers(const ModelReport& rep, const ModelCli& o, bool progress) {
  Validation v;
  std::vector<const Backend*> backends;
  for (Target t : {Target::rvv, Target::rocc})
    for (const Backend* b : backend_registry())
      if (b->cost_target() == t && b->capabilities().checks_output) {
        backends.push_back(b);
        break;
      }
  BackendRunOptions run;
  run.tool = "sattn-model";
  for (const Backend* b : backends) b->require_available(run);  // exit 4 before any work
  ModelOptions opt = rep.options;
  for (int64_t index : sample_layers(int64_t(rep.layers.size()), o.validate)) {
    const LayerReport& l = rep.layers[size_t(index)];
    for (const Backend* b : backends) {
      throw_if_interrupted();
      ReducedLayer red = reduce_layer(l, rep.options.phase, o.validate_len, o.validate_head_dim);
      Op& op = red.op;
      op.softcap.reset();  // not run by these backends; the cost models do not price it either
      const auto& precisions = b->capabilities().precisions;
      if (std::find(precisions.begin(), precisions.end(), op.precision) == precisions.end()) op.precision = precisions.front();
      opt.precision = op.precision;
      // The cost models price the per-tensor integer datapath (not a scheme's scale handling):
      // validate against the same (issue 23's schemes on rvv cost more; bench/results/quant.md).
      if (op.precision == Precision::i8 || op.precision == Precision::i4) op.quant_scheme = per_tensor_scheme();
      const int64_t new_tokens = rep.options.phase.kind == ModelPhase::Kind::decode ? op.shape.seq_len : op.shape.kv_len;
      const LayerCost model = cost_layer(op, l.spec, red.params, opt, new_tokens);
      const double predicted = b->cost_target() == Target::rvv ? model.rvv_cycles : model.rocc_cycles;
      if (progress) std::cerr << "\rsattn model: validating layer " << index << " on " << b->name() << "...\x1b[K" << std::flush;
      BackendInput item;
      item.input = "(sattn model --validate)";
      item.plan.op = op;
      item.plan.spec = l.spec;
      item.plan.params = red.params;
      item.plan.backend = b->cost_target();
      item.plan.selection.kind = "override";
      item.plan.selection.reason = "sattn model --validate: layer " + std::to_string(index) + " (" + l.rule + ")";
      DataSource src;
      const QKV data = load_qkv(op, src);
      const BackendResult r = b->run(item, data, src, run);
      const nlohmann::json j = nlohmann::json::parse(r.json);
      const double measured = b->cost_target() == Target::rvv ? j.at("rvv").at("modelled_cycles").get<double>()
                                                              : j.at("sim").at("cycles").get<double>();
      const double ratio = measured > 0 ? predicted / measured : 0;
      v.passed = v.passed && r.passed;
      const Shape& s = op.shape;
      const std::string shape = "q" + std::to_string(s.seq_len) + " kv" + std::to_string(s.kv_len) + " h" +
                                std::to_string(s.heads) + " d" + std::to_string(s.head_dim) + " " +
                                std::string(to_string(op.precision));
      v.json.push_back({{"layer", index},
                        {"class", std::string(to_string(l.cls))},
                        {"spec", std::string(to_string(l.spec))},
                        {"backend", std::string(b->name())},
                        {"op", {{"seq_len", s.seq_len}, {"kv_len", s.kv_len}, {"heads", s.heads}, {"kv_heads", s.kv_heads},
                                {"head_dim", s.head_dim}, {"precision", std::string(to_string(op.precision))}}},
                        {"model_cycles", predicted},
                        {"measured_cycles", measured},
                        {"model_over_measured", ratio},
                        {"check_passed", r.passed}});
      v.table.add({std::to_string(index), std::string(to_string(l.cls)), std::string(to_string(l.spec)), shape,
                   std::string(b->name()), format_sig(predicted, 4), format_sig(measured, 4), format_sig(ratio, 3),
                   r.passed ? "ok" : "FAIL"});
    }
  }
  if (progress) std::cerr << "\r\x1b[K" << std::flush;
  return v;
}

int model_action(ModelCli& o) {
  o.out.check();
  if (o.list) {
    std::string text;
    for (const std::string& n : model_presets()) {
      const ModelConfig c = load_model_config(n);
      text += n + "\t" + c.model_type + ", " + std::to_string(c.layers) + " layers, " + std::to_string(c.heads) + "/" +
              std::to_string(c.kv_heads) + " heads, head_dim " + std::to_string(c.head_dim) + "\t" + c.source + "\n";
    }
    write_atomic(o.out.output, text);
    return 0;
  }
  if (o.model.empty()) throw Error(ExitCode::usage, "a MODEL is required: a preset name (--list) or a config.json path");
  ModelOptions opt;
  if (o.phase == "prefill") {
    opt.phase.kind = ModelPhase::Kind::prefill;
  } else if (o.phase == "decode") {
    opt.phase.kind = ModelPhase::Kind::decode;
  } else {
    throw Error(ExitCode::usage, "--phase must be prefill or decode (got '" + o.phase + "')");
  }
  auto positive = [](const char* flag, int64_t v) {
    if (v < 1 || v > (int64_t(1) << 30)) throw Error(ExitCode::usage, std::string(flag) + " must be in [1, 2^30] (got " + std::to_string(v) + ")");
  };
  positive("--seq", o.seq);
  positive("--tokens", o.tokens);
  positive("--chunk", o.chunk);
  if (o.batch < 1 || o.batch > 4096) throw Error(ExitCode::usage, "--batch must be in [1, 4096]");
  opt.phase.seq_len = o.seq;
  opt.phase.context = o.context > 0 ? o.context : o.seq;
  positive("--context", opt.phase.context);
  opt.phase.tokens = o.tokens;
  opt.phase.chunk = o.chunk;
  opt.batch = o.batch;
  const auto prec = parse_precision(o.precision);
  if (!prec) throw Error(ExitCode::usage, "--precision must be fp32, bf16, i8 or i4 (got '" + o.precision + "')");
  opt.precision = *prec;
  if (!(o.clock_mhz >= 1 && o.clock_mhz <= 100000)) throw Error(ExitCode::usage, "--clock-mhz must be in [1, 100000]");
  if (!(o.cpu_ghz > 0.01 && o.cpu_ghz <= 100)) throw Error(ExitCode::usage, "--cpu-ghz must be in (0.01, 100]");
  opt.clock_mhz = o.clock_mhz;
  opt.cpu_ghz = o.cpu_ghz;
  opt.allow_beyond_max_position = o.allow_long;
  const ModelConfig config = load_model_config(o.model);
  const ModelPolicy policy = load_model_policy(o.policy);
  const ModelReport report = cost_model(config, policy, opt);
  if (o.validate < 0 || o.validate > 1000) throw Error(ExitCode::usage, "--validate must be in [0, 1000]");
  if (o.validate_len < 16 || o.validate_len > 4096) throw Error(ExitCode::usage, "--validate-len must be in [16, 4096]");
  if (o.validate_head_dim < 1 || o.validate_head_dim > 4096)
    throw Error(ExitCode::usage, "--validate-head-dim must be in [1, 4096]");
  std::string json = model_report_json(report, "sattn-model"), text = model_report_text(report);
  int code = 0;
  if (o.validate > 0) {
    const Validation v = validate_layers(report, o, o.out.progress());
    nlohmann::json j = nlohmann::json::parse(json);
    j["validation"] = v.json;
    json = j.dump() + "\n";
    text += "\nvalidation (reduced layers on the real backends; rvv: QEMU instruction counts x the core model, "
            "rocc: RTL cycles):\n" + v.table.str();
    if (!v.passed) code = 5;
  }
  if (!o.plot.empty()) write_atomic(o.plot, model_report_gnuplot(report));
  o.out.write(json, text);
  return code;
}

}  // namespace

std::function<int()> configure_model(CLI::App& app) {
  auto o = std::make_shared<ModelCli>();
  app.description(
      "Cost a whole transformer's attention: every layer of MODEL (a preset such as llama-3.1-8b, see --list, or a\n"
      "Hugging Face config.json: shapes only) under a sparsity POLICY, for a prefill of --seq tokens or a decode of\n"
      "--tokens tokens at --context, on every backend's analytical model (cpu time, rvv and accelerator cycles,\n"
      "accelerator energy and DRAM bytes, IMC energy and latency, FLOPs), each against all-dense.\n"
      "  sattn model gemma-3-4b --seq 32768 --format text\n"
      "  sattn model mistral-7b-v0.1 --phase decode --context 16384 --tokens 256 --policy models/policies/global-bsr.yaml");
  app.add_option("model", o->model, "A preset name (models/NAME.json; --list), a config.json path, or '-' (stdin)");
  app.add_option("-p,--policy", o->policy,
                 "Sparsity policy: native (local layers: the config's window; global: dense), dense, or a YAML file "
                 "(sattn.model-policy/v1)")
      ->capture_default_str();
  app.add_option("--phase", o->phase, "prefill or decode")->capture_default_str();
  app.add_option("-s,--seq", o->seq, "Prefill: prompt length (also the decode context when --context is not given)")
      ->capture_default_str();
  app.add_option("--context", o->context, "Decode: keys each step attends to (default --seq)");
  app.add_option("--tokens", o->tokens, "Decode: tokens generated")->capture_default_str();
  app.add_option("--chunk", o->chunk, "Decode: queries per step (1, or a chunk)")->capture_default_str();
  app.add_option("--batch", o->batch, "Sequences at once")->capture_default_str();
  app.add_option("--precision", o->precision, "fp32, bf16, i8 or i4: the datapath the models cost")->capture_default_str();
  app.add_option("--clock-mhz", o->clock_mhz, "Clock of the rvv core and the accelerator (cycles to seconds)")
      ->capture_default_str();
  app.add_option("--cpu-ghz", o->cpu_ghz, "Host clock for the cpu model's cycles")->capture_default_str();
  app.add_flag("--allow-long", o->allow_long, "Cost lengths beyond the model's max_position_embeddings");
  app.add_option("--plot", o->plot, "Also write a gnuplot script (per-layer accelerator cycles, policy vs dense) to FILE");
  app.add_flag("--list", o->list, "List the presets (name, shape, source) and exit");
  app.add_option("--validate", o->validate,
                 "Also run N sampled layers, reduced, on the rvv core (QEMU) and the accelerator (Verilator): model/measured "
                 "cycles per layer");
  app.add_option("--validate-len", o->validate_len, "Queries/keys of a reduced layer (--validate)")->capture_default_str();
  app.add_option("--validate-head-dim", o->validate_head_dim,
                 "head_dim of a reduced layer: the model's, at most this (--validate; 256 runs Gemma's whole head)")
      ->capture_default_str();
  o->out.format = "json";
  o->out.add_to(app, "Write the report to FILE, atomically", "json (sattn.model/v1) or text (per-layer table and totals)",
                "No progress on stderr (--validate)");
  return [o] { return model_action(*o); };
}

}  // namespace sattn
