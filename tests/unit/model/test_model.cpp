// sattn-model's library part: config.json parsing (each preset against the real config.json of
// its family, hand-written from the public values), layer classes, policies, and the layer costs
// (pairs worked out here from the causal and window definitions, not read from the code).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "sattn/model.hpp"

using namespace sattn;

namespace {

const std::string kFixtures = std::string(SATTN_FIXTURES_DIR) + "/model/";
const std::string kPresets = std::string(SATTN_EXAMPLES_DIR) + "/../models/";

std::vector<int64_t> globals(const ModelConfig& c) {
  std::vector<int64_t> g;
  for (size_t i = 0; i < c.classes.size(); ++i)
    if (c.classes[i] == LayerClass::global) g.push_back(int64_t(i));
  return g;
}

ErrorKind error_of(const std::string& text, std::string* message = nullptr, SourceLoc* loc = nullptr) {
  try {
    parse_model_config(text, "t.json");
  } catch (const Error& e) {
    if (message) *message = e.message();
    if (loc) *loc = e.loc();
    return e.kind();
  }
  return ErrorKind::ok;
}

struct Expected {
  const char* preset;
  const char* type;
  int64_t layers, heads, kv_heads, head_dim, max_position;
  int64_t window;  // 0: none
  double scale;
  double softcap;  // 0: none
  std::vector<int64_t> global_layers;  // {-1}: every layer global
};

}  // namespace

TEST_CASE("model: every preset matches the real config.json of its family") {
  const std::vector<Expected> cases = {
      {"gpt2", "gpt2", 12, 12, 12, 64, 1024, 0, 1 / 8.0, 0, {-1}},
      {"llama-3.1-8b", "llama", 32, 32, 8, 128, 131072, 0, 1 / std::sqrt(128.0), 0, {-1}},
      {"mistral-7b-v0.1", "mistral", 32, 32, 8, 128, 32768, 4096, 1 / std::sqrt(128.0), 0, {}},
      {"gemma-2-9b", "gemma2", 42, 16, 8, 256, 8192, 4096, 1 / 16.0, 50, {}},
      {"gemma-3-4b", "gemma3", 34, 8, 4, 256, 131072, 1024, 1 / 16.0, 0, {5, 11, 17, 23, 29}},
      {"qwen2.5-7b", "qwen2", 28, 28, 4, 128, 131072, 131072, 1 / std::sqrt(128.0), 0, {-1}},
  };
  for (const Expected& x : cases) {
    CAPTURE(x.preset);
    const ModelConfig preset = load_model_config(kPresets + x.preset + ".json");
    const ModelConfig real = load_model_config(kFixtures + x.preset + ".config.json");
    for (const ModelConfig* c : {&preset, &real}) {
      CHECK(c->model_type == x.type);
      CHECK(c->layers == x.layers);
      CHECK(c->heads == x.heads);
      CHECK(c->kv_heads == x.kv_heads);
      CHECK(c->head_dim == x.head_dim);
      CHECK(c->max_position == x.max_position);
      CHECK(c->sliding_window.value_or(0) == x.window);
      CHECK(c->scale() == doctest::Approx(x.scale).epsilon(1e-15));
      CHECK(c->softcap.value_or(0) == x.softcap);
      REQUIRE(c->classes.size() == size_t(x.layers));
      std::vector<int64_t> want = x.global_layers;
      if (want == std::vector<int64_t>{-1}) {
        want.clear();
        for (int64_t i = 0; i < x.layers; ++i) want.push_back(i);
      }
      if (std::string(x.type) == "gemma2")  // alternating, the first layer local
        for (int64_t i = 1; i < x.layers; i += 2) want.push_back(i);
      CHECK(globals(*c) == want);
    }
    CHECK(preset.source.find("huggingface.co") != std::string::npos);
  }
}

TEST_CASE("model: layer classes from layer_types, qwen's max_window_layers, and errors naming the key") {
  const ModelConfig q = parse_model_config(
      R"({"model_type":"qwen2","num_hidden_layers":6,"num_attention_heads":4,"hidden_size":256,
          "max_position_embeddings":4096,"sliding_window":512,"use_sliding_window":true,"max_window_layers":4})",
      "q.json");
  CHECK(globals(q) == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(q.kv_heads == 4);  // absent: as many as the query heads
  CHECK(q.head_dim == 64);

  std::string msg;
  SourceLoc loc;
  CHECK(error_of(R"({"model_type":"llama","num_attention_heads":4,"hidden_size":256,"max_position_embeddings":1})", &msg) ==
        ErrorKind::invalid_input);
  CHECK(msg.find("num_hidden_layers") != std::string::npos);
  CHECK(error_of("{\"model_type\":\"llama\",\n \"num_hidden_layers\":2,\"num_attention_heads\":6,\"num_key_value_heads\":4,"
                 "\"hidden_size\":384,\"max_position_embeddings\":64}",
                 &msg, &loc) == ErrorKind::invalid_input);
  CHECK(msg.find("num_key_value_heads (4) must divide num_attention_heads (6)") != std::string::npos);
  CHECK(loc.line == 2);
  CHECK(loc.col == 48);
  CHECK(error_of(R"({"model_type":"t5"})", &msg, &loc) == ErrorKind::invalid_input);
  CHECK(msg.find("unknown model_type 't5'") != std::string::npos);
  CHECK(loc.col == 2);
  CHECK(error_of(R"({"model_type":"llama","num_hidden_layers":2.5})", &msg) == ErrorKind::invalid_input);
  CHECK(msg.find("num_hidden_layers must be an integer") != std::string::npos);
  CHECK(error_of(R"({"model_type":"llama","num_hidden_layers":2,"num_attention_heads":3,"hidden_size":256,"max_position_embeddings":9})", &msg) ==
        ErrorKind::invalid_input);
  CHECK(msg.find("hidden_size (256) must be divisible by num_attention_heads (3)") != std::string::npos);
}

TEST_CASE("model: policies") {
  const ModelPolicy p = parse_model_policy(
      "global: {spec: bsr, keep_ratio: 0.25}\nlayers:\n  - {first: 2, spec: dense}\n  - {last: 1, spec: dense}\n"
      "  - {range: [3, 4], spec: sliding_window, window_size: 8}\n",
      "p.yaml");
  CHECK(p.name == "p");
  CHECK(p.global.spec == Spec::bsr);
  CHECK(*p.global.attrs.keep_ratio == 0.25);
  CHECK(p.local.spec == Spec::sliding_window);  // not named: the native default
  REQUIRE(p.layers.size() == 3);
  CHECK(p.layers[0].first == 0);
  CHECK(p.layers[0].last == 1);
  CHECK(p.layers[1].first == -1);
  CHECK(p.layers[2].first == 3);
  CHECK(p.layers[2].last == 4);

  auto fails = [](const std::string& text, const std::string& want, int line, int col) {
    try {
      parse_model_policy(text, "p.yaml");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::invalid_input);
      CHECK_MESSAGE(e.message().find(want) != std::string::npos, e.message());
      CHECK(e.loc().line == line);
      CHECK(e.loc().col == col);
      return;
    }
    FAIL("no error for " << text);
  };
  fails("global: {spec: nope}", "global.spec: unknown spec 'nope'", 1, 16);
  fails("local: {spec: topk}", "no model-level cost model", 1, 15);
  fails("globl: {spec: bsr}", "unknown key 'globl'", 1, 1);
  fails("layers:\n  - {first: 1, index: 2, spec: dense}", "exactly one of", 2, 5);
}

TEST_CASE("model: layer costs, prefill and decode, against pairs counted here") {
  ModelConfig m = parse_model_config(
      R"({"model_type":"gemma3_text","num_hidden_layers":6,"num_attention_heads":4,"num_key_value_heads":2,
          "head_dim":32,"max_position_embeddings":4096,"sliding_window":16,"sliding_window_pattern":3})",
      "g.json");
  CHECK(globals(m) == std::vector<int64_t>{2, 5});
  ModelOptions o;
  o.phase.seq_len = 100;
  const ModelReport r = cost_model(m, *builtin_policy("native"), o);
  REQUIRE(r.layers.size() == 6);
  double window = 0, causal = 0;
  for (int64_t i = 0; i < 100; ++i) {
    window += double(std::min<int64_t>(i + 1, 16));
    causal += double(i + 1);
  }
  CHECK(r.layers[0].sparse.pairs == 4 * window);
  CHECK(r.layers[2].sparse.pairs == 4 * causal);
  CHECK(r.layers[0].dense.pairs == 4 * causal);
  CHECK(r.sparse.pairs == 4 * (4 * window + 2 * causal));
  CHECK(r.sparse.flops == 4 * 32 * r.sparse.pairs);
  CHECK(r.layers[0].sparse.density == doctest::Approx(window / causal));
  for (const LayerReport& l : r.layers) {
    // (Cycles and energy need not fall with the pairs: at this size the window's gathers cost the
    // rvv core more than dense blocks do, as the selector's cost model says.)
    CHECK(l.sparse.flops <= l.dense.flops);
    CHECK(l.sparse.rocc_cycles >= l.sparse.rocc_dram_bytes / 16);
    CHECK(l.sparse.imc_energy_pj <= l.dense.imc_energy_pj);
    CHECK(l.op.scale == doctest::Approx(1 / std::sqrt(32.0)));
  }
  // The dense baseline: the same figures for every layer, equal to the global layers' own.
  CHECK(r.layers[2].sparse.rocc_cycles == r.layers[2].dense.rocc_cycles);

  // Decode: 10 tokens, 4 per step (3 steps) at context 64; every step costs the same.
  ModelOptions d;
  d.phase.kind = ModelPhase::Kind::decode;
  d.phase.context = 64;
  d.phase.tokens = 10;
  d.phase.chunk = 4;
  const ModelReport rd = cost_model(m, *builtin_policy("dense"), d);
  double rows = 0;
  for (int64_t i = 0; i < 4; ++i) rows += double(64 - 4 + i + 1);
  CHECK(rd.layers[0].sparse.pairs == 3 * 4 * rows);
  CHECK(rd.sparse.pairs == rd.dense.pairs);
  ModelOptions big = d;
  big.phase.context = 8192;
  CHECK_THROWS_AS(cost_model(m, *builtin_policy("native"), big), Error);
  big.allow_beyond_max_position = true;
  CHECK(cost_model(m, *builtin_policy("native"), big).layers.size() == 6);
}
