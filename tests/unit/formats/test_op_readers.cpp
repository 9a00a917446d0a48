// Op readers, MLIR generic form: what they accept, and the location and message of each error.
// JSON, YAML and the JSON writers are in test_op_readers_json_yaml.cpp.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "formats/op_io.hpp"

using namespace sattn;

namespace {

// Where and why a reader failed.
struct Failure {
  int code = -1;  // ExitCode as int (doctest prints ints)
  std::string file;
  int line = 0, col = 0;
  std::string message;
};

Failure mlir_failure(std::string_view text) {
  try {
    parse_mlir_ops(text, "t.mlir");
  } catch (const Error& e) {
    return {int(e.code()), e.loc().file, e.loc().line, e.loc().col, e.message()};
  }
  return {};
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

constexpr int kInvalidInput = int(ExitCode::invalid_input);
const std::string kBadDir = std::string(SATTN_FIXTURES_DIR) + "/../bad/";

}  // namespace

TEST_CASE("mlir reader: several ops in a module, with comments between them") {
  const char* text = R"(// two ops
module {
  // the first
  "sattn.sparse_attention"() { name = "a", window_size = 8 : i64 } : () -> ()  // trailing comment
  "sattn.sparse_attention"() { topk_k = 16 : i64, seq_len = 256 : i64 } : () -> ()
}
)";
  std::vector<Op> ops = parse_mlir_ops(text, "t.mlir");
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].name == "a");
  CHECK(ops[0].attrs.window_size == 8);
  CHECK(ops[1].name == "op1");  // unnamed: "op<N>", N its index in the file
  CHECK(ops[1].attrs.topk_k == 16);
  CHECK(ops[1].shape.seq_len == 256);
  CHECK(ops[1].loc.file == "t.mlir");
  CHECK(ops[1].loc.line == 5);
  CHECK(ops[1].loc.col == 3);
}

TEST_CASE("mlir reader: ops without a module, and a module with a name and attributes") {
  CHECK(parse_mlir_ops(R"("sattn.sparse_attention"() {} : () -> ())", "t").size() == 1);
  CHECK(parse_mlir_ops(R"("sattn.sparse_attention"() : () -> ())", "t").size() == 1);
  const char* text = R"(module @m attributes {sattn.target = "rvv", nested = {a = 1 : i64}} {
  "sattn.sparse_attention"() { heads = 2 : i64 } : () -> ()
})";
  std::vector<Op> ops = parse_mlir_ops(text, "t");
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].shape.heads == 2);
}

TEST_CASE("mlir reader: attribute order and newlines inside the dictionary do not matter") {
  Op a = parse_mlir_ops(
      R"("sattn.sparse_attention"() { block_size = 32 : i64, keep_ratio = 0.5 : f64, seq_len = 512 : i64 } : () -> ())",
      "t")[0];
  Op b = parse_mlir_ops(R"("sattn.sparse_attention"() {
      seq_len = 512 : i64,
      keep_ratio = 0.5 : f64,

      block_size = 32 : i64
    }
    : () -> ())",
                        "t")[0];
  CHECK(op_to_json(a) == op_to_json(b));
  CHECK(b.attrs.block_size == 32);
  CHECK(b.attrs.keep_ratio == 0.5);
}

TEST_CASE("mlir reader: every kind of value") {
  const char* text = R"("sattn.sparse_attention"() {
    name = "all", batch = 2 : i32, heads = 4 : index, kv_heads = 2, seq_len = 300 : i64, kv_len = 0x140 : i64,
    head_dim = 32 : i64, causal = true, wrap = 0, scale = 0.125 : f32, scale_q = 5.0e-2 : f64, scale_k = 1,
    scale_v = 2 : f32, precision = "i8", window_size = 4, dilation = 3 : i64, keep_ratio = 0.25,
    seed = 18446744073709551615 : i64, lsh_buckets = 16 : i64, lsh_rounds = 2 : i64, spec = "sw",
    block_size = 16, comp_block_size = 4, window_blocks = 2, global_tokens = 0, nm_n = 1, nm_m = 4,
    topk_k = 8, num_landmarks = 16, landmark_iters = 3, tile_M = 8, tile_S = 64, tile_D = 16, tile_rows = 4
  } : () -> ())";
  Op op = parse_mlir_ops(text, "t")[0];
  CHECK(op.name == "all");
  CHECK(op.shape.batch == 2);
  CHECK(op.shape.heads == 4);
  CHECK(op.shape.kv_heads == 2);
  CHECK(op.shape.seq_len == 300);
  CHECK(op.shape.kv_len == 320);
  CHECK(op.shape.head_dim == 32);
  CHECK(op.causal);
  CHECK(op.attrs.wrap == false);
  CHECK(op.scale == 0.125);
  CHECK(op.scale_q == 0.05);
  CHECK(op.scale_k == 1.0);
  CHECK(op.scale_v == 2.0);
  CHECK(op.precision == Precision::i8);
  CHECK(op.forced_spec == Spec::sliding_window);  // the prototype's alias
  CHECK(op.attrs.window_size == 4);
  CHECK(op.attrs.dilation == 3);
  CHECK(op.attrs.keep_ratio == 0.25);
  CHECK(op.attrs.seed == 18446744073709551615ull);
  CHECK(op.attrs.lsh_buckets == 16);
  CHECK(op.attrs.lsh_rounds == 2);
  CHECK(op.attrs.block_size == 16);
  CHECK(op.attrs.comp_block_size == 4);
  CHECK(op.attrs.window_blocks == 2);
  CHECK(op.attrs.global_tokens == 0);
  CHECK(op.attrs.nm_n == 1);
  CHECK(op.attrs.nm_m == 4);
  CHECK(op.attrs.topk_k == 8);
  CHECK(op.attrs.num_landmarks == 16);
  CHECK(op.attrs.landmark_iters == 3);
  CHECK(op.attrs.tile_M == 8);
  CHECK(op.attrs.tile_S == 64);
  CHECK(op.attrs.tile_D == 16);
  CHECK(op.attrs.tile_rows == 4);
}

TEST_CASE("mlir reader: a unit attribute and 0/1 integers are booleans") {
  Op op =
      parse_mlir_ops(R"("sattn.sparse_attention"() { causal, window_size = 4, wrap = 1 : i64 } : () -> ())", "t")[0];
  CHECK(op.causal);
  CHECK(op.attrs.wrap == true);
  Op typed = parse_mlir_ops(
      R"("sattn.sparse_attention"() { causal = false : i1, wrap = true : i1, window_size = 2 } : () -> ())", "t")[0];
  CHECK_FALSE(typed.causal);
  CHECK(typed.attrs.wrap == true);
  Failure f = mlir_failure(R"("sattn.sparse_attention"() { causal = 2 } : () -> ())");
  CHECK(f.code == kInvalidInput);
  CHECK(contains(f.message, "attribute 'causal': expected a boolean"));
}

TEST_CASE("mlir reader: defaults: kv_len = seq_len, kv_heads = heads, fp32, not causal") {
  Op op = parse_mlir_ops(R"("sattn.sparse_attention"() { seq_len = 333, heads = 6 } : () -> ())", "t")[0];
  CHECK(op.shape.kv_len == 333);
  CHECK(op.shape.kv_heads == 6);
  CHECK(op.precision == Precision::fp32);
  CHECK_FALSE(op.causal);
  CHECK_FALSE(op.scale.has_value());
  CHECK_FALSE(op.forced_spec.has_value());
  CHECK(op.name == "op0");
}

TEST_CASE("mlir reader: records where each attribute is written, under its canonical name") {
  const char* text =
      "\"sattn.sparse_attention\"() {\n  window_size = 8,\n    num_heads = 4, force_spec = \"bsr\"\n} : () -> ()";
  Op op = parse_mlir_ops(text, "f.mlir")[0];
  CHECK(op.loc_of("window_size").str() == "f.mlir:2:3");
  CHECK(op.loc_of("heads").str() == "f.mlir:3:5");
  CHECK(op.loc_of("spec").str() == "f.mlir:3:20");
  CHECK(op.shape.heads == 4);
  CHECK(op.forced_spec == Spec::bsr);
  CHECK(op.loc_of("topk_k").str() == "f.mlir:1:1");  // absent: the op's location
}

TEST_CASE("mlir reader: aliases num_heads, num_kv_heads, force_spec") {
  Op op = parse_mlir_ops(
      R"("sattn.sparse_attention"() { num_heads = 8, num_kv_heads = 2, force_spec = "lsh" } : () -> ())", "t")[0];
  CHECK(op.shape.heads == 8);
  CHECK(op.shape.kv_heads == 2);
  CHECK(op.forced_spec == Spec::lsh);
}

TEST_CASE("mlir reader: gqa_group_size derives kv_heads, or must agree with it") {
  Op op = parse_mlir_ops(R"("sattn.sparse_attention"() { heads = 8, gqa_group_size = 4 } : () -> ())", "t")[0];
  CHECK(op.shape.kv_heads == 2);
  CHECK(op.attr_loc.count("gqa_group_size") == 1);

  Op agreeing = parse_mlir_ops(
      R"("sattn.sparse_attention"() { heads = 8, kv_heads = 4, gqa_group_size = 2 } : () -> ())", "t")[0];
  CHECK(agreeing.shape.kv_heads == 4);

  Failure disagree =
      mlir_failure(R"("sattn.sparse_attention"() { heads = 8, kv_heads = 4, gqa_group_size = 4 } : () -> ())");
  CHECK(disagree.code == kInvalidInput);
  CHECK(disagree.col == 55);
  CHECK(contains(disagree.message, "attribute 'gqa_group_size'"));
  CHECK(contains(disagree.message, "disagrees"));

  Failure zero = mlir_failure(R"("sattn.sparse_attention"() { gqa_group_size = 0 } : () -> ())");
  CHECK(zero.code == kInvalidInput);
  CHECK(contains(zero.message, "attribute 'gqa_group_size': must be >= 1"));
}

TEST_CASE("mlir reader: unknown attributes are warnings with their location") {
  std::vector<std::string> warnings;
  const char* text =
      "\"sattn.sparse_attention\"() {\n  windowsize = 8, other = [1, {a = 2}], window_size = 4\n} : () -> ()";
  std::vector<Op> ops = parse_mlir_ops(text, "w.mlir", &warnings);
  REQUIRE(ops.size() == 1);
  CHECK(ops[0].attrs.window_size == 4);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0] == "w.mlir:2:3: unknown attribute 'windowsize' ignored (did you mean 'window_size'?)");
  CHECK(warnings[1] == "w.mlir:2:19: unknown attribute 'other' ignored");
}

TEST_CASE("mlir reader: unterminated string") {
  Failure f = mlir_failure("\"sattn.sparse_attention\"() {\n  precision = \"bf16 } : () -> ()\n");
  CHECK(f.code == kInvalidInput);
  CHECK(f.file == "t.mlir");
  CHECK(f.line == 2);
  CHECK(f.col == 15);
  CHECK(contains(f.message, "unterminated string"));
}

TEST_CASE("mlir reader: missing '}' of the attribute dictionary") {
  Failure f = mlir_failure(R"("sattn.sparse_attention"() { window_size = 8 : i64 : () -> ())");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 1);
  CHECK(f.col == 52);
  CHECK(contains(f.message, "expected ',' or '}' after attribute 'window_size'"));
}

TEST_CASE("mlir reader: missing '}' of the module") {
  Failure f = mlir_failure("module {\n  \"sattn.sparse_attention\"() {} : () -> ()\n");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 3);
  CHECK(f.col == 1);
  CHECK(contains(f.message, "missing '}' to close the module opened at 1:8"));
}

TEST_CASE("mlir reader: missing ': () -> ()'") {
  Failure f =
      mlir_failure("\"sattn.sparse_attention\"() { window_size = 8 }\n\"sattn.sparse_attention\"() {} : () -> ()");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 1);
  CHECK(contains(f.message, "expected ': () -> ()'"));
  Failure partial = mlir_failure(R"("sattn.sparse_attention"() {} : () -> i32)");
  CHECK(partial.col == 39);
}

TEST_CASE("mlir reader: bad numbers") {
  Failure f = mlir_failure(R"("sattn.sparse_attention"() { window_size = 12x4 : i64 } : () -> ())");
  CHECK(f.code == kInvalidInput);
  CHECK(f.col == 44);
  CHECK(contains(f.message, "attribute 'window_size': bad number '12x4'"));
  Failure exponent = mlir_failure(R"("sattn.sparse_attention"() { scale = 1.5e : f32 } : () -> ())");
  CHECK(contains(exponent.message, "attribute 'scale': bad number '1.5e'"));
  Failure huge = mlir_failure(R"("sattn.sparse_attention"() { seq_len = 99999999999999999999 } : () -> ())");
  CHECK(contains(huge.message, "attribute 'seq_len': integer '99999999999999999999' out of range"));
  Failure float_as_int = mlir_failure(R"("sattn.sparse_attention"() { block_size = 6.5 : i64 } : () -> ())");
  CHECK(contains(float_as_int.message, "attribute 'block_size': float literal '6.5' with integer type 'i64'"));
}

TEST_CASE("mlir reader: wrong type for an attribute points at the value") {
  Failure f = mlir_failure("\"sattn.sparse_attention\"() {\n  window_size = \"x\"\n} : () -> ()");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 17);
  CHECK(f.message == "attribute 'window_size': expected an integer, got string \"x\"");
  CHECK(contains(mlir_failure(R"("sattn.sparse_attention"() { precision = 8 } : () -> ())").message,
                 "attribute 'precision': expected a string"));
  CHECK(contains(mlir_failure(R"("sattn.sparse_attention"() { keep_ratio = "half" } : () -> ())").message,
                 "attribute 'keep_ratio': expected a number"));
  CHECK(contains(mlir_failure(R"("sattn.sparse_attention"() { seed = -1 } : () -> ())").message,
                 "attribute 'seed': expected a non-negative integer"));
  CHECK(contains(mlir_failure(R"("sattn.sparse_attention"() { topk_k = 8.0 } : () -> ())").message,
                 "attribute 'topk_k': expected an integer, got float 8.0"));
}

TEST_CASE("mlir reader: duplicate attribute, also through an alias") {
  Failure f = mlir_failure(R"("sattn.sparse_attention"() { window_size = 8, window_size = 16 } : () -> ())");
  CHECK(f.code == kInvalidInput);
  CHECK(f.col == 47);
  CHECK(contains(f.message, "duplicate attribute 'window_size' (first given at 1:30)"));
  Failure alias = mlir_failure(R"("sattn.sparse_attention"() { heads = 8, num_heads = 8 } : () -> ())");
  CHECK(contains(alias.message, "attribute 'num_heads' repeats 'heads'"));
}

TEST_CASE("mlir reader: empty module and empty input") {
  Failure f = mlir_failure("// nothing here\nmodule {\n}\n");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 1);
  CHECK(contains(f.message, "no sattn.sparse_attention op found"));
  Failure empty = mlir_failure("");
  CHECK(empty.code == kInvalidInput);
  CHECK(contains(empty.message, "no sattn.sparse_attention op found"));
}

TEST_CASE("mlir reader: truncated file") {
  Failure f = mlir_failure("module {\n  \"sattn.sparse_attention\"() { window_size = 8 : i64,");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 54);
  CHECK(contains(f.message, "missing '}' to close the attribute dictionary opened at 2:30"));
  Failure after_equals = mlir_failure(R"("sattn.sparse_attention"() { window_size =)");
  CHECK(contains(after_equals.message, "attribute 'window_size': missing value"));
}

TEST_CASE("mlir reader: anything but modules and sattn ops is an error") {
  Failure other = mlir_failure("module {\n  \"sattn.softmax\"() {} : () -> ()\n}");
  CHECK(other.code == kInvalidInput);
  CHECK(other.line == 2);
  CHECK(other.col == 3);
  CHECK(contains(other.message, "expected \"sattn.sparse_attention\" op, found \"sattn.softmax\""));
  CHECK(contains(other.message, "(the sattn ops are sparse_attention, rvv_call and rocc_call)"));
  Failure func = mlir_failure("func.func @f() {\n}");
  CHECK(func.col == 1);
  CHECK(contains(func.message, "expected \"sattn.sparse_attention\" op, found 'func.func'"));
  Failure stray = mlir_failure(R"("sattn.sparse_attention"() {} : () -> ()
})");
  CHECK(stray.line == 2);
  CHECK(contains(stray.message, "unexpected '}'"));
}

TEST_CASE("mlir reader: sattn-opt's custom form and lowered backend calls") {
  // What `sattn-opt -sattn-lower-rvv` prints (custom form), and the generic form of a rocc call.
  const char* text = R"(module {
  sattn.sparse_attention {name = "plain", seq_len = 64 : i64, selection = "default: bsr", window_size = 4 : i64}
  sattn.rvv_call {batch = 1 : i64, blg_enabled = false, causal = true, comp_block_size = 0 : i64, dilation = 2 : i64, gqa_group_size = 2 : i64, head_dim = 16 : i64, heads = 4 : i64, kv_heads = 2 : i64, kv_len = 128 : i64, lsh_enabled = false, name = "sw", nm_enabled = false, precision = "bf16", scale = 2.500000e-01 : f64, selection = "cost: cheapest", seq_len = 128 : i64, spec = "sliding_window", topk_enabled = false, window_size = 8 : i64, wrap = false}
  "sattn.rocc_call"() {lsh_enabled = true, lsh_buckets = 4 : i64, lsh_rounds = 1 : i64, seed = 7 : ui64, seq_len = 64 : i64, spec = "lsh"} : () -> ()
  sattn.sparse_attention
}
)";
  std::vector<std::string> warnings;
  std::vector<Op> ops = parse_mlir_ops(text, "t.mlir", &warnings);
  CHECK(warnings.empty());  // selection and the flags are known attributes
  REQUIRE(ops.size() == 4);
  CHECK(ops[0].name == "plain");
  CHECK_FALSE(ops[0].forced_spec.has_value());
  CHECK(ops[1].forced_spec == Spec::sliding_window);
  CHECK(ops[1].shape.kv_heads == 2);
  CHECK(ops[1].attrs.dilation == 2);
  CHECK(ops[1].precision == Precision::bf16);
  CHECK(ops[1].loc.line == 3);
  CHECK(ops[1].loc.col == 3);
  CHECK(ops[2].forced_spec == Spec::lsh);
  CHECK(ops[2].attrs.seed == 7u);
  CHECK(ops[3].name == "op3");  // no attributes at all: the custom form prints no dictionary
  CHECK(parse_ops(" sattn.rvv_call {spec = \"dense\"}", "t").size() == 1);  // sniffed as MLIR
  // The module in generic form (`sattn-opt -mlir-print-op-generic`), with attributes.
  std::vector<Op> generic = parse_mlir_ops(R"("builtin.module"() ({
  "sattn.rvv_call"() {spec = "dense", seq_len = 32 : i64} : () -> ()
}) {sym_name = "m"} : () -> ())", "t.mlir");
  REQUIRE(generic.size() == 1);
  CHECK(generic[0].forced_spec == Spec::dense);
  Failure unclosed = mlir_failure("\"builtin.module\"() ({\n\"sattn.rvv_call\"() {spec = \"dense\"} : () -> ()\n})");
  CHECK(unclosed.line == 3);
  CHECK(contains(unclosed.message, "expected ': () -> ()' after the module"));
}

TEST_CASE("mlir reader: a backend call needs a spec its flags agree with") {
  Failure no_spec = mlir_failure("\"sattn.rvv_call\"() {seq_len = 64 : i64} : () -> ()");
  CHECK(no_spec.code == kInvalidInput);
  CHECK(no_spec.col == 1);
  CHECK(contains(no_spec.message, "sattn.rvv_call needs a 'spec' attribute"));
  Failure flag = mlir_failure("sattn.rocc_call {spec = \"bsr\",\n  blg_enabled = true}");
  CHECK(flag.line == 2);
  CHECK(flag.col == 3);
  CHECK(contains(flag.message, "attribute 'blg_enabled': true disagrees with spec 'bsr'"));
  Failure off = mlir_failure("sattn.rvv_call {spec = \"nm_structured\", nm_enabled = false}");
  CHECK(contains(off.message, "attribute 'nm_enabled': false disagrees with spec 'nm_structured'"));
  Failure type = mlir_failure("sattn.rvv_call {spec = \"dense\", topk_enabled = \"no\"}");
  CHECK(contains(type.message, "attribute 'topk_enabled': expected a boolean (true/false or 0/1), got string \"no\""));
  Failure selection = mlir_failure("sattn.sparse_attention {selection = 3}");
  CHECK(contains(selection.message, "attribute 'selection': expected a string, got integer 3"));
  // On the op itself the flags mean nothing: unknown attributes, as anywhere.
  std::vector<std::string> warnings;
  parse_mlir_ops("sattn.sparse_attention {nm_enabled = true}", "t.mlir", &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK(contains(warnings[0], "t.mlir:1:25: unknown attribute 'nm_enabled' ignored"));
}

TEST_CASE("mlir reader: range errors from validate() point at the attribute") {
  Failure f = mlir_failure("\"sattn.sparse_attention\"() {\n  block_size = 64, keep_ratio = 1.5 : f64\n} : () -> ()");
  CHECK(f.code == kInvalidInput);
  CHECK(f.line == 2);
  CHECK(f.col == 20);
  CHECK(contains(f.message, "attribute 'keep_ratio'"));
}

TEST_CASE("mlir reader: unknown spec and precision list the valid names") {
  Failure spec = mlir_failure(R"("sattn.sparse_attention"() { spec = "diagonal" } : () -> ())");
  CHECK(spec.code == kInvalidInput);
  CHECK(spec.col == 37);
  CHECK(contains(spec.message, "attribute 'spec': unknown spec 'diagonal'"));
  for (Spec s : kAllSpecs) CHECK(contains(spec.message, to_string(s)));
  Failure precision = mlir_failure(R"("sattn.sparse_attention"() { precision = "fp16" } : () -> ())");
  CHECK(contains(precision.message, "attribute 'precision': unknown precision 'fp16' (valid: fp32, bf16, i8, i4)"));
}

TEST_CASE("mlir reader: every example op parses") {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SATTN_EXAMPLES_DIR)) {
    if (entry.path().extension() != ".mlir") continue;
    CAPTURE(entry.path().string());
    std::vector<std::string> warnings;
    std::vector<Op> ops = read_ops(entry.path().string(), OpFormat::automatic, &warnings);
    CHECK(warnings.empty());
    CHECK(ops.size() == (entry.path().filename() == "multi.mlir" ? 3u : 1u));
    ++files;
  }
  CHECK(files >= 11);
  Op gqa = read_ops(std::string(SATTN_EXAMPLES_DIR) + "/gqa_causal.mlir")[0];
  CHECK(gqa.shape.heads == 8);
  CHECK(gqa.shape.kv_heads == 2);
  CHECK(gqa.causal);
  Op ring = read_ops(std::string(SATTN_EXAMPLES_DIR) + "/ring.mlir")[0];
  CHECK(ring.attrs.wrap == true);
  CHECK(ring.attrs.window_size.has_value());
}

TEST_CASE("mlir reader: the malformed files in tests/bad fail where their comment says") {
  struct Case {
    const char* file;
    int line, col;
    const char* fragment;
  };
  const Case cases[] = {
      {"unterminated.mlir", 3, 67, "unterminated string"},
      {"missing_brace.mlir", 3, 75, "expected ',' or '}'"},
      {"missing_module_brace.mlir", 4, 1, "missing '}' to close the module"},
      {"missing_signature.mlir", 4, 1, "expected ': () -> ()'"},
      {"bad_number.mlir", 3, 46, "attribute 'window_size': bad number '12x4'"},
      {"bad_type.mlir", 5, 19, "attribute 'window_size': expected an integer"},
      {"duplicate.mlir", 3, 55, "duplicate attribute 'window_size'"},
      {"keep_ratio_range.mlir", 5, 5, "attribute 'keep_ratio'"},
      {"gqa_indivisible.mlir", 3, 49, "attribute 'gqa_group_size'"},
      {"unknown_spec.mlir", 3, 39, "unknown spec 'diagonal'"},
      {"empty_module.mlir", 2, 1, "no sattn.sparse_attention op found"},
      {"other_op.mlir", 3, 3, "expected \"sattn.sparse_attention\" op"},
      {"truncated.mlir", 4, 1, "missing '}'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    std::string path = kBadDir + c.file;
    try {
      read_ops(path);
      FAIL("no error for " << c.file);
    } catch (const Error& e) {
      CHECK(int(e.code()) == kInvalidInput);
      CHECK(e.loc().file == path);
      CHECK(e.loc().line == c.line);
      CHECK(e.loc().col == c.col);
      CHECK(contains(e.message(), c.fragment));
    }
  }
}
