// `sattn model` / sattn-model: a whole transformer's attention layers (a config.json or a preset),
// a sparsity policy, a prefill or decode phase; costs per layer and in total on every backend's
// analytical model, sparse against dense (sattn.model/v1, a table, a gnuplot script).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/output.hpp"
#include "sattn/model.hpp"
#include "support/io.hpp"

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
};

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
  if (!o.plot.empty()) write_atomic(o.plot, model_report_gnuplot(report));
  o.out.write(model_report_json(report, "sattn-model"), model_report_text(report));
  return 0;
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
  app.set_version_flag("--version", std::string("sattn-model ") + SATTN_VERSION, "Print the version and exit");
  app.add_option("model", o->model, "A preset name (models/NAME.json; --list) or a config.json path");
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
  o->out.format = "json";
  o->out.add_to(app, "Write the report to FILE, atomically", "json (sattn.model/v1) or text (per-layer table and totals)", "");
  return [o] { return model_action(*o); };
}

}  // namespace sattn
