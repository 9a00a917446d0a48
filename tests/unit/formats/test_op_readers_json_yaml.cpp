// Op readers, JSON and YAML forms; format detection; op_to_json / params_to_json.
#include <doctest/doctest.h>

#include <string>

#include "formats/op_io.hpp"

using namespace sattn;

namespace {

struct Failure {
  int code = -1;
  std::string file;
  int line = 0, col = 0;
  std::string message;
};

template <class F>
Failure failure_of(F&& read) {
  try {
    read();
  } catch (const Error& e) {
    return {int(e.code()), e.loc().file, e.loc().line, e.loc().col, e.message()};
  }
  return {};
}
Failure json_failure(std::string_view text) {
  return failure_of([&] { parse_json_ops(text, "t.json"); });
}
Failure yaml_failure(std::string_view text) {
  return failure_of([&] { parse_yaml_ops(text, "t.yaml"); });
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

constexpr int kInvalidInput = int(ExitCode::invalid_input);
const std::string kBadDir = std::string(SATTN_FIXTURES_DIR) + "/../bad/";
const std::string kExamplesDir = SATTN_EXAMPLES_DIR;

}  // namespace

TEST_CASE("json reader: a single object, with or without schema") {
  const char* text = R"({"schema": "sattn.op/v1", "name": "j", "heads": 4, "seq_len": 128, "causal": true,
    "keep_ratio": 0.5, "precision": "bf16", "seed": 18446744073709551615, "scale": 1})";
  std::vector<Op> ops = parse_json_ops(text, "t.json");
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].name == "j");
  CHECK(ops[0].shape.heads == 4);
  CHECK(ops[0].shape.kv_heads == 4);
  CHECK(ops[0].shape.kv_len == 128);
  CHECK(ops[0].causal);
  CHECK(ops[0].attrs.keep_ratio == 0.5);
  CHECK(ops[0].precision == Precision::bf16);
  CHECK(ops[0].attrs.seed == 18446744073709551615ull);
  CHECK(ops[0].scale == 1.0);
  CHECK(ops[0].loc.str() == "t.json:1:1");
  CHECK(ops[0].loc_of("causal").str() == "t.json:1:68");

  std::vector<Op> bare = parse_json_ops(R"({"window_size": 8})", "t.json");
  CHECK(bare[0].attrs.window_size == 8);
}

TEST_CASE("json reader: JSON Lines, one op per line, blank lines skipped") {
  const char* text = "{\"name\": \"a\", \"topk_k\": 4}\n\n{\"name\": \"b\",\n";
  Failure f = json_failure(text);  // the second object is cut off: its line is reported
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 3);
  CHECK(contains(f.message, "invalid JSON"));

  std::vector<Op> ops =
      parse_json_ops("{\"name\": \"a\", \"topk_k\": 4}\n\n{\"name\": \"b\", \"nm_n\": 1}\n", "t.jsonl");
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].attrs.topk_k == 4);
  CHECK(ops[1].name == "b");
  CHECK(ops[1].attrs.nm_n == 1);
  CHECK(ops[1].loc.str() == "t.jsonl:3:1");
  CHECK(ops[1].loc_of("nm_n").str() == "t.jsonl:3:15");
}

TEST_CASE("json reader: an array of objects") {
  const char* text = "[\n  {\"window_size\": 4},\n  {\"block_size\": 16, \"keep_ratio\": 0.25}\n]";
  std::vector<Op> ops = parse_json_ops(text, "t.json");
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].attrs.window_size == 4);
  CHECK(ops[0].name == "op0");
  CHECK(ops[1].name == "op1");
  CHECK(ops[1].loc.str() == "t.json:3:3");
  CHECK(ops[1].loc_of("keep_ratio").str() == "t.json:3:22");
  CHECK(contains(json_failure("[]").message, "no op found"));
}

TEST_CASE("json reader: a sattn.plan/v1 document is read through its op member") {
  const char* text = R"({"schema": "sattn.plan/v1", "spec": "bsr",
 "op": {"schema": "sattn.op/v1", "name": "p", "block_size": 32}})";
  std::vector<Op> ops = parse_json_ops(text, "plan.json");
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].name == "p");
  CHECK(ops[0].attrs.block_size == 32);
  CHECK(ops[0].loc_of("block_size").str() == "plan.json:2:47");
}

TEST_CASE("json reader: unsupported schema versions and kinds") {
  Failure v2 = json_failure(R"({"schema": "sattn.op/v2", "seq_len": 256})");
  CHECK(v2.code == kInvalidInput);
  CHECK(v2.col == 12);
  CHECK(contains(v2.message, "unsupported schema major version 2"));
  CHECK(contains(json_failure(R"({"schema": "sattn.result/v1"})").message, "expected an op"));
  CHECK(contains(json_failure(R"({"schema": 1})").message, "'schema' must be a string"));
}

TEST_CASE("json reader: parse errors are located by line and column") {
  Failure f = json_failure("{\"seq_len\": 256,\n \"window_size\": 8,,\n}");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 19);
  CHECK(contains(f.message, "invalid JSON"));
  Failure truncated = json_failure("{\"seq_len\": 256,\n \"precision\": \"bf");
  CHECK(truncated.line == 2);
  CHECK(contains(truncated.message, "invalid JSON"));
  CHECK(contains(json_failure("").message, "no op found"));
}

TEST_CASE("json reader: wrong type names the key and points at the value") {
  Failure f = json_failure("{\"seq_len\": 256,\n \"window_size\": \"8\"}");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 17);
  CHECK(f.message == "attribute 'window_size': expected an integer, got string \"8\"");
  CHECK(contains(json_failure(R"({"causal": null})").message, "attribute 'causal': expected a boolean"));
  CHECK(contains(json_failure(R"({"block_size": [1]})").message, "attribute 'block_size': expected an integer"));
  CHECK(contains(json_failure(R"([{"seq_len": 1}, 3])").message, "expected a JSON object"));
}

TEST_CASE("json reader: range errors point at the key") {
  Failure f = json_failure("{\"heads\": 6,\n  \"gqa_group_size\": 4}");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 3);
  CHECK(contains(f.message, "attribute 'gqa_group_size'"));
}

TEST_CASE("json reader: a repeated key is an error, not silently the last value") {
  Failure f = json_failure(R"({"topk_k": 4, "topk_k": 8})");
  CHECK(f.code == kInvalidInput);
  CHECK(f.col == 15);
  CHECK(contains(f.message, "duplicate attribute 'topk_k'"));
}

TEST_CASE("json reader: unknown keys warn; producer and schema do not") {
  std::vector<std::string> warnings;
  parse_json_ops(R"({"schema": "sattn.op/v1", "producer": {"tool": "x"}, "windw": 3})", "t.json", &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "t.json:1:54: unknown attribute 'windw' ignored");
}

TEST_CASE("yaml reader: a mapping") {
  const char* text =
      "# comment\nname: y\nheads: 8\nkv_heads: 2\ncausal: true\nprecision: \"i4\"\nscale_q: 0.1\nwrap: 1\nwindow_size: "
      "5\n";
  std::vector<Op> ops = parse_yaml_ops(text, "t.yaml");
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].name == "y");
  CHECK(ops[0].shape.kv_heads == 2);
  CHECK(ops[0].causal);
  CHECK(ops[0].precision == Precision::i4);
  CHECK(ops[0].scale_q == 0.1);
  CHECK(ops[0].attrs.wrap == true);
  CHECK(ops[0].loc.str() == "t.yaml:2:1");
  CHECK(ops[0].loc_of("window_size").str() == "t.yaml:9:1");
}

TEST_CASE("yaml reader: a sequence of mappings, and several documents") {
  std::vector<Op> seq = parse_yaml_ops("- {window_size: 4}\n- topk_k: 8\n  seq_len: 64\n", "t.yaml");
  REQUIRE(seq.size() == 2);
  CHECK(seq[0].attrs.window_size == 4);
  CHECK(seq[1].attrs.topk_k == 8);
  CHECK(seq[1].loc_of("seq_len").str() == "t.yaml:3:3");

  std::vector<Op> docs = parse_yaml_ops("name: a\nnm_n: 1\n---\nname: b\nlsh_buckets: 4\n---\n", "t.yaml");
  REQUIRE(docs.size() == 2);
  CHECK(docs[0].name == "a");
  CHECK(docs[1].name == "b");
  CHECK(docs[1].attrs.lsh_buckets == 4);
  CHECK(docs[1].loc_of("lsh_buckets").str() == "t.yaml:5:1");
}

TEST_CASE("yaml reader: document markers, directives and end markers") {
  std::vector<Op> ops = parse_yaml_ops("%YAML 1.2\n---\nname: a\n...\n--- {name: b, topk_k: 3}\n# end\n", "t.yaml");
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].name == "a");
  CHECK(ops[0].loc.str() == "t.yaml:3:1");
  CHECK(ops[1].name == "b");
  CHECK(ops[1].loc_of("topk_k").str() == "t.yaml:5:15");
}

TEST_CASE("yaml reader: junk that makes yaml-cpp's LoadAll loop is an error, not a hang") {
  Failure f = yaml_failure(",\nseq_len: 256\n");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 1);
  CHECK(contains(f.message, "invalid YAML"));
  Failure second = yaml_failure("seq_len: 256\n---\n, a: 1\n");
  CHECK(second.line == 3);
  CHECK(contains(second.message, "invalid YAML"));
}

TEST_CASE("yaml reader: quoted scalars are strings, plain ones numbers or booleans") {
  Failure quoted = yaml_failure("window_size: \"8\"\n");
  CHECK(quoted.code == kInvalidInput);
  CHECK(quoted.col == 14);
  CHECK(contains(quoted.message, "attribute 'window_size': expected an integer, got string \"8\""));
  Failure word = yaml_failure("seq_len: 256\nhead_dim: sixty-four\n");
  CHECK(word.line == 2);
  CHECK(word.col == 11);
  CHECK(contains(word.message, "attribute 'head_dim': expected an integer"));
  Failure missing = yaml_failure("seq_len:\n");
  CHECK(contains(missing.message, "attribute 'seq_len': missing value"));
  CHECK(parse_yaml_ops("spec: bsr\n", "t")[0].forced_spec == Spec::bsr);
}

TEST_CASE("yaml reader: syntax errors, wrong shapes, unknown keys") {
  Failure f = yaml_failure("seq_len: 256\ntile: [16, 32\nprecision: bf16\n");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line >= 2);
  CHECK(contains(f.message, "invalid YAML"));
  CHECK(contains(yaml_failure("- 1\n- 2\n").message, "expected a mapping"));
  CHECK(contains(yaml_failure("just a string\n").message, "expected a mapping"));
  CHECK(contains(yaml_failure("").message, "no op found"));
  CHECK(contains(yaml_failure("schema: sattn.op/v3\n").message, "unsupported schema major version 3"));
  Failure dup = yaml_failure("topk_k: 4\nnum_heads: 2\nheads: 2\n");
  CHECK(dup.line == 3);
  CHECK(contains(dup.message, "attribute 'heads' repeats 'num_heads'"));

  std::vector<std::string> warnings;
  parse_yaml_ops("seq_len: 256\nwindowsize: 8\n", "u.yaml", &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == "u.yaml:2:1: unknown attribute 'windowsize' ignored (did you mean 'window_size'?)");
}

TEST_CASE("op readers: format detection by content and by extension") {
  CHECK(parse_ops("// c\n\"sattn.sparse_attention\"() {} : () -> ()", "x").size() == 1);
  CHECK(parse_ops("  {\"topk_k\": 2}", "x")[0].attrs.topk_k == 2);
  CHECK(parse_ops("[{\"topk_k\": 2}]", "x")[0].attrs.topk_k == 2);
  CHECK(parse_ops("topk_k: 2\n", "x")[0].attrs.topk_k == 2);
  CHECK(parse_ops("topk_k: 2\n", "x", OpFormat::yaml)[0].attrs.topk_k == 2);
  Op json = read_ops(kExamplesDir + "/op.json")[0];
  CHECK(json.name == "sliding_window_json");
  CHECK(json.attrs.window_size == 32);
  Op yaml = read_ops(kExamplesDir + "/op.yaml")[0];
  CHECK(yaml.name == "bsr_yaml");
  CHECK(yaml.precision == Precision::bf16);
  CHECK(yaml.attrs.keep_ratio == 0.25);
}

TEST_CASE("op readers: the malformed JSON and YAML files in tests/bad") {
  struct Case {
    const char* file;
    int line;
    const char* fragment;
  };
  const Case cases[] = {
      {"truncated.json", 3, "invalid JSON"},
      {"schema_v2.json", 1, "unsupported schema major version 2"},
      {"bad_type.json", 3, "attribute 'causal': expected a boolean"},
      {"bad.yaml", 4, "invalid YAML"},
      {"bad_type.yaml", 3, "attribute 'head_dim': expected an integer"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    Failure f = failure_of([&] { read_ops(kBadDir + c.file); });
    CHECK(f.code == kInvalidInput);
    CHECK(f.file == kBadDir + c.file);
    CHECK(f.line >= c.line);  // YAML may notice an unclosed sequence a line later
    CHECK(f.line <= c.line + 1);
    CHECK(contains(f.message, c.fragment));
  }
  std::vector<std::string> warnings;
  std::vector<Op> ops = read_ops(kBadDir + "unknown_key.yaml", OpFormat::automatic, &warnings);
  CHECK(ops.size() == 1);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0] == kBadDir + "unknown_key.yaml:3:1: unknown attribute 'windowsize' ignored (did you mean 'window_size'?)");
}

TEST_CASE("op_to_json: writes the shape, numerics and present attributes; round trip is stable") {
  const char* text =
      R"("sattn.sparse_attention"() { name = "r", heads = 8, gqa_group_size = 2, seq_len = 100, kv_len = 50,
    causal = true, scale = 0.3, precision = "i8", scale_q = 0.05, spec = "blg", block_size = 16, global_tokens = 4,
    window_blocks = 2, wrap = false, seed = 12345678901234, keep_ratio = 0.1 } : () -> ())";
  Op op = parse_mlir_ops(text, "t")[0];
  nlohmann::json j = op_to_json(op);
  CHECK(j["schema"] == "sattn.op/v1");
  CHECK(j["name"] == "r");
  CHECK(j["heads"] == 8);
  CHECK(j["kv_heads"] == 4);
  CHECK(j["seq_len"] == 100);
  CHECK(j["kv_len"] == 50);
  CHECK(j["batch"] == 1);
  CHECK(j["head_dim"] == 64);
  CHECK(j["causal"] == true);
  CHECK(j["scale"] == 0.3);
  CHECK(j["precision"] == "i8");
  CHECK(j["scale_q"] == 0.05);
  CHECK_FALSE(j.contains("scale_k"));
  CHECK(j["spec"] == "block_local_global");
  CHECK(j["block_size"] == 16);
  CHECK(j["wrap"] == false);
  CHECK(j["seed"] == 12345678901234ull);
  CHECK(j["keep_ratio"] == 0.1);
  CHECK_FALSE(j.contains("window_size"));
  CHECK_FALSE(j.contains("gqa_group_size"));

  std::vector<Op> again = parse_json_ops(j.dump(), "rt.json");
  REQUIRE(again.size() == 1);
  CHECK(op_to_json(again[0]) == j);
  CHECK(parse_json_ops(j.dump(2), "rt.json").size() == 1);  // pretty-printed too

  for (const char* example : {"/multi.mlir", "/lsh.mlir", "/op.yaml"}) {
    CAPTURE(example);
    for (const Op& o : read_ops(kExamplesDir + example)) {
      nlohmann::json first = op_to_json(o);
      CHECK(op_to_json(parse_json_ops(first.dump(), "rt.json")[0]) == first);
    }
  }
}

TEST_CASE("params_to_json: names the spec and every field") {
  nlohmann::json sw = params_to_json(SlidingWindowParams{16, 2, true});
  CHECK(sw == nlohmann::json{{"spec", "sliding_window"}, {"window_size", 16}, {"dilation", 2}, {"wrap", true}});
  nlohmann::json bsr = params_to_json(BsrParams{32, 0.5, 8, 0});
  CHECK(bsr["spec"] == "bsr");
  CHECK(bsr["keep_ratio"] == 0.5);
  CHECK(bsr["comp_block_size"] == 8);
  CHECK(params_to_json(DenseParams{}) == nlohmann::json{{"spec", "dense"}});
  CHECK(params_to_json(LshParams{4, 2, 99})["seed"] == 99);
  CHECK(params_to_json(LandmarkParams{})["num_landmarks"] == 64);
  CHECK(params_to_json(NmParams{})["spec"] == "nm_structured");
  CHECK(params_to_json(TopkParams{7})["topk_k"] == 7);
  CHECK(params_to_json(BlockLocalGlobalParams{})["window_blocks"] == 1);
}
