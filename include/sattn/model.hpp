// Model-level workloads (sattn-model(1)): a transformer's attention layers, read from a Hugging
// Face style config.json (shapes only, never weights) or a preset in models/, mapped to specs by
// a sparsity policy, and costed per layer and in total on every backend's analytical model
// (the selector's cost model, the accelerator's energy model and roofline, the IMC crossbar
// model), for a prefill or a decode phase, sparse against dense.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sattn/error.hpp"
#include "sattn/op.hpp"

namespace sattn {

// The attention class of a layer: local (sliding-window attention in the model itself) or global
// (full causal attention).
enum class LayerClass { local, global };
std::string_view to_string(LayerClass);

// The attention shapes of a model, as its config.json gives them.
struct ModelConfig {
  std::string name;        // preset name or the file's stem
  std::string file;        // where it was read from
  std::string model_type;  // llama, mistral, gemma2, gemma3, qwen2, gpt2, ...
  std::string source;      // a preset's citation ("_source"), else the file
  int64_t layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t max_position = 0;               // max_position_embeddings
  std::optional<int64_t> sliding_window;  // keys a local layer's query sees (itself included)
  std::optional<double> query_pre_attn_scalar;  // scale = query_pre_attn_scalar^-1/2
  std::optional<double> softcap;                // attn_logit_softcapping
  std::vector<LayerClass> classes;              // one per layer

  // The softmax scale the model uses: query_pre_attn_scalar^-1/2, else head_dim^-1/2.
  double scale() const;
};

// Parses config.json text. Missing or mistyped fields, contradictions (heads not divisible by
// kv_heads, hidden_size not divisible by heads, layer_types of the wrong length) and an unknown
// model_type are Error(invalid_input) naming the key, at file:line:col where the text shows it.
ModelConfig parse_model_config(const std::string& text, const std::string& file);
// A preset NAME (models/NAME.json in model_search_path()), a PATH (contains '/' or ends in .json),
// or "-": standard input.
ModelConfig load_model_config(const std::string& name_or_path);
// Where preset names are looked up, first match wins: ./models, <prefix>/share/sattn/models.
std::vector<std::string> model_search_path();
// The preset names found on the search path, sorted.
std::vector<std::string> model_presets();

// What one class of layers runs: a spec and its pattern attributes (unset: the spec's default;
// a sliding_window without window_size takes the config's sliding_window).
struct LayerRule {
  Spec spec = Spec::dense;
  PatternAttrs attrs;
  std::string where;  // "global", "layers[0]": for the report
  SourceLoc loc;      // where the rule is written (policy files)
};
struct LayerOverride {
  int64_t first = 0, last = 0;  // layers [first, last] (inclusive); `last: N` is first = -N, last = -1
  LayerRule rule;
};
struct ModelPolicy {
  std::string name;  // "native", "dense" or the file's stem
  std::string file;
  LayerRule local{Spec::sliding_window, {}, "local", {}};
  LayerRule global{Spec::dense, {}, "global", {}};
  std::vector<LayerOverride> layers;  // later entries win
};
// The built-in policies: "native" (local layers: the config's window; global layers: dense) and
// "dense" (every layer dense: the baseline every report compares against).
std::optional<ModelPolicy> builtin_policy(const std::string& name);
// A policy file (YAML, sattn.model-policy/v1): unknown keys, an unknown spec, a spec without a
// cost model, bad ranges are Error(invalid_input) at file:line:col naming the key.
ModelPolicy parse_model_policy(const std::string& text, const std::string& file);
ModelPolicy load_model_policy(const std::string& name_or_path);

// The phase to cost.
struct ModelPhase {
  enum class Kind { prefill, decode } kind = Kind::prefill;
  int64_t seq_len = 4096;   // prefill: the prompt length
  int64_t context = 4096;   // decode: keys every step attends to (kv_len)
  int64_t tokens = 128;     // decode: tokens generated
  int64_t chunk = 1;        // decode: queries per step (1, or a speculative/chunked step)
  int64_t steps() const { return (tokens + chunk - 1) / chunk; }
};

struct ModelOptions {
  ModelPhase phase;
  Precision precision = Precision::i8;  // the datapath's precision (cost model and energy)
  int64_t batch = 1;
  double clock_mhz = 1000;  // rvv and accelerator clocks: cycles to seconds
  double cpu_ghz = 3.0;     // host clock: the cpu model's cycles to seconds
  bool allow_beyond_max_position = false;  // else a length over max_position_embeddings is an error
};

// The costs of one op (one layer, one step) on every backend's analytical model.
struct LayerCost {
  double pairs = 0;        // allowed (query, key) pairs over every head and batch
  double density = 0;      // pairs / the causal dense pairs
  double flops = 0;        // 2 * MACs (QK^T and PV)
  double bytes = 0;        // host memory traffic: Q and O once, K/V as the cpu model moves them
  double cpu_cycles = 0;   // selector cost model, cpu constants
  double cpu_s = 0;        // cpu_cycles / cpu clock
  double rvv_cycles = 0;   // selector cost model, rvv constants (fitted to qemu counts)
  double rocc_cycles = 0;  // max(cost model, DRAM roofline)
  double rocc_dram_bytes = 0;
  double rocc_energy_pj = 0;  // MACs, scratchpad and DRAM bytes (energy model defaults)
  double imc_energy_pj = 0;
  double imc_latency_ns = 0;
  void add(const LayerCost&, double times = 1);
};

struct LayerReport {
  int64_t index = 0;
  LayerClass cls = LayerClass::global;
  Spec spec = Spec::dense;
  SpecParams params;
  std::string rule;   // which policy rule chose it
  Op op;              // the op of one step (prefill: the whole prompt)
  LayerCost sparse;   // under the policy, for the whole phase (decode: every step)
  LayerCost dense;    // all-dense baseline, for the whole phase
};

struct ModelReport {
  ModelConfig config;
  ModelPolicy policy;
  ModelOptions options;
  std::vector<LayerReport> layers;
  LayerCost sparse, dense;  // totals over layers
  // Seconds per backend (cpu, rvv, rocc, imc) for the phase, sparse and dense.
  std::map<std::string, double> seconds_sparse, seconds_dense;
};

// Costs every layer of `config` under `policy` for `options.phase`. Errors: Error(invalid_input)
// for a phase the model cannot take (beyond max_position_embeddings unless allowed) or a rule
// the layer's op cannot run (window_size > kv_len is clamped, not an error).
ModelReport cost_model(const ModelConfig&, const ModelPolicy&, const ModelOptions&);

// The costs of one op (one step) with a resolved spec: what cost_model() charges each layer.
// `new_tokens`: the keys the step adds (the IMC's cell writes).
LayerCost cost_layer(const Op&, Spec, const SpecParams&, const ModelOptions&, int64_t new_tokens);
// The accelerator's DRAM traffic for one op (bytes in + out), as its driver issues the DMA: per
// (batch, query head) and query tile of q_tile_rows rows (inside one block row for block
// layouts), Q once, the K and V rows of every key chunk the tile runs, the int16 output once;
// head_dim zero-padded as the driver runs it. Closed form per tile (dense, sliding_window without
// wrap, bsr, quest: the kept blocks of a row are counted whole, the diagonal one up to the
// tile's last allowed key chunk).
double accel_dram_bytes(const Op&, Spec, const SpecParams&, int64_t q_tile_rows = 64);
// The same walk of the driver's tiles, with what the accelerator's pipeline model needs: the
// bytes (in + out; Q and O apart), the query tiles, the key chunks and the K/V/index loads (each
// a DMA command that pays the DRAM latency), over every batch and query head.
struct AccelTraffic {
  double bytes = 0, q_bytes = 0, out_bytes = 0;
  double tiles = 0, chunks = 0, loads = 0;
  double first_chunk_bytes = 0;  // K/V (and index) bytes of every tile's first chunk, summed
};
AccelTraffic accel_traffic(const Op&, Spec, const SpecParams&, int64_t q_tile_rows = 64);

// --validate: a layer's op at a size the real backends run in seconds (queries and keys cut to
// `max_len`, one KV head, head_dim at most `max_head_dim`), its spec's window or blocks scaled
// with it.
struct ReducedLayer {
  Op op;
  SpecParams params;
};
ReducedLayer reduce_layer(const LayerReport&, const ModelPhase&, int64_t max_len, int64_t max_head_dim = 64);
// N layer indices spread evenly over the model (first and last included), at most `layers`.
std::vector<int64_t> sample_layers(int64_t layers, int64_t n);

// sattn.model/v1 JSON (one line), a text report, a gnuplot script (per-layer stacked accelerator
// cycles, sparse against dense) with the data inline.
std::string model_report_json(const ModelReport&, const std::string& tool);
std::string model_report_text(const ModelReport&);
std::string model_report_gnuplot(const ModelReport&);

}  // namespace sattn
