// Issue 18: the bounds on what readers accept (nesting depth at exactly 64 levels, YAML
// indentation, MLIR integer types, UTF-8), the one name cleaner and the contained-path rule,
// and the selector's sliding-window pair count (now counted in closed form in the middle rows)
// against the built layout over random shapes.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "formats/nesting.hpp"
#include "formats/op_io.hpp"
#include "layout_test_support.hpp"
#include "sattn/error.hpp"
#include "select/select_cost.hpp"
#include "support/io.hpp"

using namespace sattn;

namespace {

// The error an op text gives (code 0: none), and its line:col.
struct Outcome {
  int code = 0;
  int line = 0, col = 0;
  std::string message;
};

template <class F>
Outcome outcome_of(F&& f) {
  std::vector<std::string> warnings;
  try {
    f(&warnings);
  } catch (const Error& e) {
    return {int(e.code()), e.loc().line, e.loc().col, e.message()};
  }
  return {};
}

Outcome mlir(const std::string& text) {
  return outcome_of([&](std::vector<std::string>* w) { parse_mlir_ops(text, "t.mlir", w); });
}
Outcome json(const std::string& text) {
  return outcome_of([&](std::vector<std::string>* w) { parse_json_ops(text, "t.json", w); });
}
Outcome yaml(const std::string& text) {
  return outcome_of([&](std::vector<std::string>* w) { parse_yaml_ops(text, "t.yaml", w); });
}

std::string nested(int levels, char open, char close) { return std::string(levels, open) + std::string(levels, close); }

constexpr int kInvalid = int(ExitCode::invalid_input);

}  // namespace

TEST_CASE("limits: JSON nests at most 64 levels, counting the op's own object") {
  // {"seq_len": 16, "x": [[...]]}: the object is level 1, so 63 brackets make 64 levels.
  CHECK(json(R"({"seq_len": 16, "x": )" + nested(63, '[', ']') + "}").code == 0);
  const Outcome o = json(R"({"seq_len": 16, "x": )" + nested(64, '[', ']') + "}");
  CHECK(o.code == kInvalid);
  CHECK(o.line == 1);
  CHECK(o.col == 22 + 63);  // the 64th '[' (the first is at column 22)
  CHECK(o.message.find("nested deeper than 64 levels") != std::string::npos);
  // Brackets inside strings do not count.
  CHECK(json(R"({"seq_len": 16, "name": ")" + std::string(100, '[') + R"("})").code == 0);
}

TEST_CASE("limits: YAML flow collections nest at most 64 levels, block ones 256 columns") {
  CHECK(yaml("seq_len: 16\nx: " + nested(64, '[', ']') + "\n").code == 0);
  const Outcome o = yaml("seq_len: 16\nx: " + nested(65, '[', ']') + "\n");
  CHECK(o.code == kInvalid);
  CHECK(o.line == 2);
  CHECK(o.col == 4 + 64);
  CHECK(yaml("seq_len: 16\n# " + nested(100, '[', '[') + "\n").code == 0);  // a comment
  CHECK(yaml("seq_len: 16\nx:\n" + std::string(256, ' ') + "y: 1\n").code == 0);
  const Outcome deep = yaml("seq_len: 16\nx:\n" + std::string(257, ' ') + "y: 1\n");
  CHECK(deep.code == kInvalid);
  CHECK(deep.line == 3);
  CHECK(deep.col == 258);
  // "- - - 1": each indicator is a level; 300 of them are refused, not handed to yaml-cpp.
  std::string dashes;
  for (int i = 0; i < 300; ++i) dashes += "- ";
  CHECK(yaml("seq_len: 16\nx:\n" + dashes + "1\n").code == kInvalid);
}

TEST_CASE("limits: MLIR attribute values and modules nest at most 64 levels") {
  const std::string head = "\"sattn.sparse_attention\"() { seq_len = 16 : i64, x = ";
  CHECK(mlir(head + nested(64, '[', ']') + " } : () -> ()").code == 0);
  const Outcome o = mlir(head + nested(65, '[', ']') + " } : () -> ()");
  CHECK(o.code == kInvalid);
  CHECK(o.col == int(head.size()) + 65);
  const std::string op = "\"sattn.sparse_attention\"() { seq_len = 16 : i64 } : () -> ()";
  std::string modules64, modules65;
  for (int i = 0; i < 64; ++i) modules64 += "module {";
  modules65 = modules64 + "module {";
  CHECK(mlir(modules64 + op + std::string(64, '}')).code == 0);
  CHECK(mlir(modules65 + op + std::string(65, '}')).code == kInvalid);
}

TEST_CASE("limits: an MLIR integer must fit its type, as MLIR checks it") {
  auto with = [](const std::string& value) {
    return mlir("\"sattn.sparse_attention\"() { seq_len = 16 : i64, window_size = " + value + " } : () -> ()");
  };
  CHECK(with("255 : i8").code == 0);  // signless: -128 .. 255
  CHECK(with("256 : i8").code == kInvalid);
  CHECK(with("1000 : i8").message.find("integer 1000 does not fit type 'i8'") != std::string::npos);
  CHECK(with("2147483647 : si32").code == 0);
  CHECK(with("2147483648 : si32").code == kInvalid);
  CHECK(with("4294967295 : ui32").code == 0);
  CHECK(with("4294967296 : ui32").code == kInvalid);
  CHECK(with("-1 : ui32").message.find("does not fit type 'ui32'") != std::string::npos);
  CHECK(with("1 : i1").code == 0);
  CHECK(with("2 : i1").code == kInvalid);
  CHECK(with("4294967295 : i32").code == 0);
  CHECK(with("4294967296 : i32").code == kInvalid);
  // Negative values reach the range check of window_size, not the type check.
  CHECK(with("-128 : i8").message.find("must be >= 1") != std::string::npos);
  CHECK(with("-129 : i8").message.find("does not fit type 'i8'") != std::string::npos);
}

TEST_CASE("limits: string attributes must be UTF-8") {
  auto named = [](const std::string& name) {
    return mlir("\"sattn.sparse_attention\"() { seq_len = 16 : i64, name = \"" + name + "\" } : () -> ()");
  };
  CHECK(named("caf\xc3\xa9").code == 0);          // é, well formed
  CHECK(named("\xf0\x9f\x98\x80").code == 0);     // U+1F600
  CHECK(named("caf\xe9").code == kInvalid);       // Latin-1 é
  CHECK(named("\xc0\xaf").code == kInvalid);      // overlong '/'
  CHECK(named("\xed\xa0\x80").code == kInvalid);  // a surrogate
  CHECK(named("\xf4\x90\x80\x80").code == kInvalid);  // past U+10FFFF
  CHECK(named("ab\xe2\x82").code == kInvalid);    // cut short
  CHECK(named("caf\xe9").message.find("not valid UTF-8 (byte 3") != std::string::npos);
}

TEST_CASE("limits: numbers beyond double are refused, not read as 0") {
  auto ratio = [](const std::string& v) {
    return mlir("\"sattn.sparse_attention\"() { seq_len = 64 : i64, spec = \"bsr\", keep_ratio = " + v + " } : () -> ()");
  };
  CHECK(ratio("1e999").message.find("number '1e999' out of range") != std::string::npos);
  CHECK(ratio("-1e999").code == kInvalid);
  CHECK(ratio("0.5").code == 0);
  CHECK(ratio("1.5").message.find("(got 1.5)") != std::string::npos);
}

TEST_CASE("safe_file_name: one cleaner for every name that becomes a path component") {
  CHECK(safe_file_name("attn0") == "attn0");
  CHECK(safe_file_name("/../../../tmp/x") == "_.._.._.._tmp_x");
  CHECK(safe_file_name("..") == "_.");
  CHECK(safe_file_name(".") == "_");
  CHECK(safe_file_name(".hidden") == "_hidden");
  CHECK(safe_file_name("a\\b") == "a_b");
  CHECK(safe_file_name(std::string("a\0b\n", 4)) == "a_b_");
  CHECK(safe_file_name("") == "op");
  CHECK(safe_file_name("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(safe_file_name(std::string(300, 'x')).size() == 128);
  CHECK(unique_file_names({"a/b", "a_b", "a_b", "a_b.2", ""}) ==
        std::vector<std::string>{"a_b", "a_b.2", "a_b.3", "a_b.2.2", "op"});
}

TEST_CASE("is_contained_path: relative, no '..', not empty") {
  CHECK(is_contained_path("q.npy"));
  CHECK(is_contained_path("sub/q.npy"));
  CHECK(is_contained_path("..q.npy"));  // a name, not a parent
  CHECK_FALSE(is_contained_path(""));
  CHECK_FALSE(is_contained_path("/etc/passwd"));
  CHECK_FALSE(is_contained_path("../q.npy"));
  CHECK_FALSE(is_contained_path("a/../../q.npy"));
  CHECK_FALSE(is_contained_path("a/.."));
  CHECK_FALSE(is_contained_path(std::string("q\0.npy", 6)));
}

TEST_CASE("select cost: sliding-window pairs equal the built layout's, over random shapes") {
  // The middle rows are counted at once (so a 2^30-row op costs no loop over rows); the count
  // must stay exact: compared with the layout itself, causal or not, seq_len != kv_len, dilation.
  Rng rng(1818);
  auto pick = [&rng](int64_t lo, int64_t hi) { return lo + int64_t(rng.below(uint64_t(hi - lo + 1))); };
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t seq = pick(1, 120), kv = pick(1, 120);
    Op op = layout_test::make_op(1, 1, 1, seq, kv, 4, rng.below(2) == 1);
    SlidingWindowParams p;
    p.window_size = pick(1, kv);
    p.dilation = pick(1, std::min<int64_t>(kv, 5));
    const Layout l = build_layout(op, Spec::sliding_window, p, nullptr, nullptr);
    const Candidate c = select_detail::cost_sliding_window(op, p, select_detail::CostContext{});
    CAPTURE(trial);
    CAPTURE(seq);
    CAPTURE(kv);
    CAPTURE(op.causal);
    CAPTURE(p.window_size);
    CAPTURE(p.dilation);
    CHECK(nlohmann::json::parse(c.terms).at("pairs").get<double>() == double(l.allowed_pairs(0, 0)));
  }
}

TEST_CASE("limits: window_blocks is bounded by the block columns once the block size is known") {
  // kv_len 64 in blocks of 16: 4 block columns; window_blocks 4 is the most that means anything.
  auto op = [](const std::string& wb) {
    return parse_mlir_ops("\"sattn.sparse_attention\"() { seq_len = 64 : i64, block_size = 16 : i64, window_blocks = " + wb +
                              " : i64 } : () -> ()",
                          "t.mlir")[0];
  };
  CHECK_NOTHROW(resolve_params(op("4"), Spec::block_local_global));
  try {
    resolve_params(op("5"), Spec::block_local_global);
    FAIL("window_blocks 5 over 4 block columns accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::invalid_input);
    CHECK(std::string(e.what()).find("5 exceeds the number of block columns (4)") != std::string::npos);
  }
}
