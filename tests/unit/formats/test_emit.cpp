// Artifacts (libsattn/src/emit.cpp, emit_stream.cpp, artifacts_read.cpp, artifacts_format.cpp):
// emit -> read_artifacts round trips for every spec, streamed sliding windows against
// build_layout, the .desc register image and indices.txt on hand-worked cases, the CSR/BSR
// arrays' global offsets, corrupted artifacts, and staging (no partial output). Expected texts
// and numbers are worked out by hand from the definitions in layout.cpp's header comment and
// sattn-artifacts(7).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "formats/emit.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "formats/npy.hpp"
#include "formats/op_io.hpp"
#include "core/synthetic.hpp"

namespace {

using namespace sattn;
namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() / ("sattn_emit_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// The spec an op's own attributes describe (no cost model): these tests build plans by hand so
// that their expected files do not depend on the selector's tuning.
Spec described_spec(const Op& op) {
  const PatternAttrs& a = op.attrs;
  if (op.forced_spec) return *op.forced_spec;
  if (a.global_tokens && *a.global_tokens > 0) return Spec::block_local_global;
  if (a.nm_n && a.nm_m) return Spec::nm_structured;
  if (a.topk_k) return Spec::topk_per_query;
  if (a.lsh_buckets) return Spec::lsh;
  if (a.num_landmarks) return Spec::landmark;
  if (a.window_size) return Spec::sliding_window;
  if (a.keep_ratio || a.block_size) return Spec::bsr;
  return Spec::dense;
}

// A plan built by hand (no selector): `spec`, or the one the op's attributes describe.
Plan plan_for(const std::string& mlir, std::optional<Spec> spec = std::nullopt) {
  std::vector<Op> ops = parse_ops(mlir, "test.mlir");
  REQUIRE(ops.size() == 1);
  Plan p;
  p.op = ops.front();
  p.spec = spec ? *spec : described_spec(p.op);
  p.params = resolve_params(p.op, p.spec);
  return p;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::map<std::string, std::string> desc_map(const std::string& path) {
  std::map<std::string, std::string> m;
  std::istringstream in(slurp(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find(" = ");
    REQUIRE(eq != std::string::npos);
    m[line.substr(0, eq)] = line.substr(eq + 3);
  }
  return m;
}

void check_same_layout(const Layout& got, const Layout& want) {
  CHECK(got.spec == want.spec);
  CHECK(got.block == want.block);
  CHECK(got.rows == want.rows);
  CHECK(got.cols == want.cols);
  CHECK(got.block_size == want.block_size);
  CHECK(got.causal == want.causal);
  CHECK(got.causal_offset == want.causal_offset);
  CHECK(got.batch == want.batch);
  CHECK(got.kv_heads == want.kv_heads);
  CHECK(got.shared == want.shared);
  REQUIRE(got.heads.size() == want.heads.size());
  for (size_t h = 0; h < want.heads.size(); ++h) {
    CHECK(got.heads[h].ptr == want.heads[h].ptr);
    CHECK(got.heads[h].idx == want.heads[h].idx);
  }
}

// Expects read_artifacts to fail with an input error whose message names `file`.
void expect_input_error(const std::string& envelope, const std::string& file, const std::string& words) {
  try {
    read_artifacts(envelope);
    FAIL("read_artifacts accepted corrupted artifacts (" << words << ")");
  } catch (const Error& e) {
    INFO(e.what());
    CHECK(e.code() == ExitCode::invalid_input);
    CHECK(std::string(e.what()).find(file) != std::string::npos);
    CHECK(std::string(e.what()).find(words) != std::string::npos);
  }
}

const char* kTinyWindow = R"("sattn.sparse_attention"() { name = "tiny", seq_len = 4 : i64, heads = 2 : i64,
    kv_heads = 1 : i64, head_dim = 8 : i64, causal = true, window_size = 1 : i64 } : () -> ())";

}  // namespace

TEST_CASE("emit: every spec's artifacts read back as the plan and layout build_layout gives") {
  for (Spec spec : kAllSpecs) {
    const std::string name(to_string(spec));
    INFO("spec " << name);
    const Plan plan = plan_for(read_text(std::string(SATTN_EXAMPLES_DIR) + "/" + name + ".mlir"), spec);
    TempDir dir;
    EmitOptions opts;
    opts.out_dir = dir / "out";
    const nlohmann::json env = emit_artifacts(plan, opts);
    CHECK(env["schema"] == "sattn.artifacts/v1");
    CHECK(env["dir"] == opts.out_dir);

    const Artifacts a = read_artifacts(dir / "out/artifacts.json");
    CHECK(a.plan.spec == spec);
    CHECK(params_to_json(a.plan.params) == params_to_json(plan.params));
    CHECK(op_to_json(a.plan.op) == op_to_json(plan.op));

    // The reference: the same layout built directly, on the same (default synthetic) data.
    const QKV data = synthetic_qkv(plan.op.shape, kDefaultSeed);
    const Layout want = build_layout(plan.op, spec, plan.params, &data.q, &data.k);
    check_same_layout(a.layout, want);
    int64_t nnz = 0;
    for (const HeadLayout& h : want.heads) nnz += int64_t(h.idx.size());
    CHECK(env["nnz"] == nnz);
    CHECK(env["density"].get<double>() == doctest::Approx(want.density()).epsilon(1e-12));

    // Q/K/V travel with the layouts computed from them, and only then.
    const bool uses_data =
        is_data_dependent(spec) && !(spec == Spec::landmark && plan.op.attrs.landmark_iters.value_or(0) == 0);
    REQUIRE(a.data.has_value() == uses_data);
    if (uses_data) {
      CHECK(a.data->q.data == data.q.data);
      CHECK(a.data->k.data == data.k.data);
      CHECK(a.data->v.data == data.v.data);
    }
  }
}

TEST_CASE("emit: streamed sliding windows equal build_layout over random shapes, dilations and rings") {
  // sliding_window is written row by row without building the layout (emit_stream.cpp); the
  // arrays must be exactly the built layout's, including seq_len != kv_len, causal rows aligned
  // before key 0, rings shorter than the window, and empty rows.
  Rng rng(2024);
  auto pick = [&rng](int64_t lo, int64_t hi) { return lo + int64_t(rng.below(uint64_t(hi - lo + 1))); };
  for (int trial = 0; trial < 60; ++trial) {
    Op op;
    op.shape = Shape{pick(1, 2), 2, pick(1, 2), pick(1, 90), pick(1, 90), 4};
    op.shape.heads = op.shape.kv_heads * pick(1, 2);
    op.causal = rng.below(2) == 1;
    op.attrs.window_size = pick(1, std::min<int64_t>(op.shape.kv_len, 40));
    op.attrs.dilation = pick(1, std::min<int64_t>(op.shape.kv_len, 4));  // validate(): dilation <= kv_len
    op.attrs.wrap = rng.below(3) == 0;
    Plan plan;
    plan.op = op;
    plan.spec = Spec::sliding_window;
    plan.params = resolve_params(op, plan.spec);
    INFO("trial " << trial << ": " << op_to_json(op).dump());
    TempDir dir;
    EmitOptions opts;
    opts.out_dir = dir / "s";
    const nlohmann::json env = emit_artifacts(plan, opts);
    const Layout want = build_layout(op, plan.spec, plan.params, nullptr, nullptr);
    check_same_layout(read_artifacts(dir / "s/artifacts.json").layout, want);
    CHECK(env["allowed_pairs"] == want.allowed_pairs(0, 0) * op.shape.batch * op.shape.heads);
    CHECK(env["density"].get<double>() == doctest::Approx(want.density()).epsilon(1e-12));
  }
}

TEST_CASE("emit: indices.txt and indices.desc of a hand-worked causal sliding window") {
  // seq_len 4, window 1, causal: row i keeps keys i-1 and i that exist: {0}, {0,1}, {1,2}, {2,3}.
  const Plan plan = plan_for(kTinyWindow);
  TempDir dir;
  EmitOptions opts;
  opts.out_dir = dir / "a";
  emit_artifacts(plan, opts);
  CHECK(slurp(dir / "a/indices.txt") ==
        "# sattn indices v1 (format: sattn-artifacts(7))\n"
        "# spec: sliding_window\n"
        "# granularity: row (CSR: one line per query row, listing key indices)\n"
        "# lines: ROW: INDEX... ascending; FIRST-LAST stands for a run of 3 or more consecutive indices\n"
        "# shape: batch=1 heads=2 kv_heads=1 seq_len=4 kv_len=4 head_dim=8\n"
        "# causal: true (causal_offset=0)\n"
        "# block_size: 1\n"
        "# rows: 4 per layout\n"
        "# layouts: 1 (shared by every batch and kv head)\n"
        "# nnz: 7\n"
        "layout 0: shared nnz=7\n"
        "0: 0\n"
        "1: 0 1\n"
        "2: 1 2\n"
        "3: 2 3\n");

  const auto d = desc_map(dir / "a/indices.desc");
  const std::map<std::string, std::string> want = {{"desc_version", "1"},
                                                   {"spec", "1"},
                                                   {"spec_name", "sliding_window"},
                                                   {"layout_format", "0"},
                                                   {"batch", "1"},
                                                   {"heads", "2"},
                                                   {"kv_heads", "1"},
                                                   {"gqa_group_size", "2"},
                                                   {"seq_len", "4"},
                                                   {"kv_len", "4"},
                                                   {"head_dim", "8"},
                                                   {"causal", "1"},
                                                   {"causal_offset", "0"},
                                                   {"block_size", "1"},
                                                   {"window_size", "1"},
                                                   {"dilation", "1"},
                                                   {"wrap", "0"},
                                                   {"global_tokens", "0"},
                                                   {"window_blocks", "0"},
                                                   {"keep_ratio", "0"},
                                                   {"comp_block_size", "0"},
                                                   {"nm_n", "0"},
                                                   {"nm_m", "0"},
                                                   {"topk_k", "0"},
                                                   {"lsh_buckets", "0"},
                                                   {"lsh_rounds", "0"},
                                                   {"seed", "0"},
                                                   {"num_landmarks", "0"},
                                                   {"landmark_iters", "0"},
                                                   {"top_pages", "0"},
                                                   {"precision", "0"},
                                                   {"precision_name", "fp32"},
                                                   {"scale", "0.35355339059327373"},
                                                   {"scale_q", "0"},
                                                   {"scale_k", "0"},
                                                   {"scale_v", "0"},
                                                   {"shared", "1"},
                                                   {"layouts", "1"},
                                                   {"rows", "4"},
                                                   {"block_rows", "4"},
                                                   {"block_cols", "4"},
                                                   {"nnz", "7"},
                                                   {"nnz_0", "7"},
                                                   {"indices_file", "indices.txt"},
                                                   {"ptr_file", "row_ptr.npy"},
                                                   {"idx_file", "col_idx.npy"},
                                                   {"q_file", "none"},
                                                   {"k_file", "none"},
                                                   {"v_file", "none"},
                                                   {"envelope_file", "artifacts.json"}};
  CHECK(d == want);

  // The arrays, as numpy would see them.
  const NpyArray ptr = read_npy(dir / "a/row_ptr.npy");
  CHECK(ptr.shape == std::vector<int64_t>{1, 5});
  CHECK(std::vector<int64_t>(ptr.as<int64_t>().begin(), ptr.as<int64_t>().end()) ==
        std::vector<int64_t>{0, 1, 3, 5, 7});
  const NpyArray idx = read_npy(dir / "a/col_idx.npy");
  CHECK(std::vector<int32_t>(idx.as<int32_t>().begin(), idx.as<int32_t>().end()) ==
        std::vector<int32_t>{0, 0, 1, 1, 2, 2, 3});
  // Byte for byte what the library's own .npy writer produces for the same array.
  const std::string raw = slurp(dir / "a/col_idx.npy");
  const std::vector<uint8_t> ref = serialize_npy(idx);
  CHECK(raw == std::string(ref.begin(), ref.end()));
}

TEST_CASE("emit: indices.txt writes runs of three or more consecutive indices as FIRST-LAST") {
  // Ring window of half-width 1 over 6 keys: row i keeps (i-1) mod 6, i, (i+1) mod 6, sorted.
  const Plan plan = plan_for(R"("sattn.sparse_attention"() { seq_len = 6 : i64, heads = 1 : i64, head_dim = 4 : i64,
      window_size = 1 : i64, wrap = true } : () -> ())");
  TempDir dir;
  EmitOptions opts;
  opts.out_dir = dir / "r";
  emit_artifacts(plan, opts);
  const std::string txt = slurp(dir / "r/indices.txt");
  CHECK(txt.substr(txt.find("layout 0:")) ==
        "layout 0: shared nnz=18\n"
        "0: 0 1 5\n"
        "1: 0-2\n"
        "2: 1-3\n"
        "3: 2-4\n"
        "4: 3-5\n"
        "5: 0 4 5\n");
}

TEST_CASE("emit: per-head BSR arrays hold global offsets, and indices.txt one section per layout") {
  // bsr, keep_ratio 1: every candidate block is kept. seq_len 5, block 2: 3 block rows and 3
  // block columns (the last ones partial); not causal, so every block row keeps {0, 1, 2}.
  // Two KV heads: two layouts of 9 entries; layout 1's pointers continue from 9.
  const Plan plan = plan_for(R"("sattn.sparse_attention"() { seq_len = 5 : i64, heads = 2 : i64, kv_heads = 2 : i64,
      head_dim = 4 : i64, block_size = 2 : i64, keep_ratio = 1.0 } : () -> ())");
  REQUIRE(plan.spec == Spec::bsr);
  TempDir dir;
  EmitOptions opts;
  opts.out_dir = dir / "b";
  opts.stem = "blocks";
  const nlohmann::json env = emit_artifacts(plan, opts);
  const NpyArray ptr = read_npy(dir / "b/block_row_ptr.npy");
  CHECK(ptr.shape == std::vector<int64_t>{2, 4});
  CHECK(std::vector<int64_t>(ptr.as<int64_t>().begin(), ptr.as<int64_t>().end()) ==
        std::vector<int64_t>{0, 3, 6, 9, 9, 12, 15, 18});
  CHECK(read_npy(dir / "b/block_col_idx.npy").shape == std::vector<int64_t>{18});
  const std::string txt = slurp(dir / "b/blocks.txt");
  CHECK(
      txt.find("# granularity: block (BSR: one line per block row of 2 queries, listing block columns of 2 keys)\n") !=
      std::string::npos);
  CHECK(txt.find("# layouts: 2 (one per batch and kv head: L = b * kv_heads + h)\n") != std::string::npos);
  CHECK(txt.find("layout 0: batch=0 kv_head=0 nnz=9\n0: 0-2\n1: 0-2\n2: 0-2\n"
                 "layout 1: batch=0 kv_head=1 nnz=9\n0: 0-2\n1: 0-2\n2: 0-2\n") != std::string::npos);
  const auto d = desc_map(dir / "b/blocks.desc");
  CHECK(d.at("spec") == "2");
  CHECK(d.at("layout_format") == "1");
  CHECK(d.at("block_size") == "2");
  CHECK(d.at("keep_ratio") == "1");
  CHECK(d.at("layouts") == "2");
  CHECK(d.at("rows") == "3");
  CHECK(d.at("nnz_0") == "9");
  CHECK(d.at("nnz_1") == "9");
  CHECK(d.at("q_file") == "q.npy");
  CHECK(d.at("indices_file") == "blocks.txt");
  // Statistics: 3 entries in every block row; 5 x 5 pairs allowed per layout, 2 query heads.
  CHECK(env["stats"]["row_nnz"] == nlohmann::json{{"min", 3}, {"mean", 3.0}, {"max", 3}});
  CHECK(env["stats"]["per_layout"][1]["kv_head"] == 1);
  CHECK(env["allowed_pairs"] == 50);
  CHECK(env["density"] == 1.0);
  const Artifacts a = read_artifacts(dir / "b/artifacts.json");
  CHECK(a.layout.heads[1].ptr == std::vector<int64_t>{0, 3, 6, 9});
}

TEST_CASE("emit: corrupted artifacts are input errors naming the file") {
  TempDir dir;
  EmitOptions opts;
  opts.out_dir = dir / "c";
  emit_artifacts(plan_for(kTinyWindow), opts);
  const std::string env = dir / "c/artifacts.json";
  const std::string col = dir / "c/col_idx.npy", ptr = dir / "c/row_ptr.npy", desc = dir / "c/indices.desc";
  const std::string good_col = slurp(col), good_ptr = slurp(ptr), good_desc = slurp(desc), good_env = slurp(env);
  REQUIRE_NOTHROW(read_artifacts(env));

  auto edit_col = [&](size_t element, int32_t value) {
    NpyArray a = read_npy(col);
    std::memcpy(a.bytes.data() + element * 4, &value, 4);
    write_npy(col, a);
  };
  SUBCASE("a column index out of range") {
    edit_col(6, 4);  // kv_len is 4
    expect_input_error(env, "col_idx.npy", "out of range");
  }
  SUBCASE("indices not sorted") {
    edit_col(1, 1), edit_col(2, 0);  // row 1 becomes "1 0"
    expect_input_error(env, "col_idx.npy", "not sorted");
  }
  SUBCASE("a repeated index") {
    edit_col(2, 0);  // row 1 becomes "0 0"
    expect_input_error(env, "col_idx.npy", "not sorted and unique");
  }
  SUBCASE("a truncated .npy") {
    spit(col, good_col.substr(0, good_col.size() - 3));
    expect_input_error(env, "col_idx.npy", "truncated");
  }
  SUBCASE("row pointers that decrease") {
    NpyArray a = read_npy(ptr);
    const int64_t back = 0;
    std::memcpy(a.bytes.data() + 2 * 8, &back, 8);  // 0 1 3 5 7 -> 0 1 0 5 7
    write_npy(ptr, a);
    expect_input_error(env, "row_ptr.npy", "pointers decrease");
  }
  SUBCASE("an array of the wrong shape") {
    write_npy(col, make_npy(std::vector<int32_t>{0, 0, 1, 1, 2, 2}, {6}));
    expect_input_error(env, "col_idx.npy", "does not match the envelope");
  }
  SUBCASE(".desc disagreeing with the arrays") {
    std::string d = good_desc;
    d.replace(d.find("nnz_0 = 7"), 9, "nnz_0 = 8");
    spit(desc, d);
    expect_input_error(env, "indices.desc", "'nnz_0 = 8' disagrees");
  }
  SUBCASE(".desc disagreeing with the plan") {
    std::string d = good_desc;
    d.replace(d.find("window_size = 1"), 15, "window_size = 2");
    spit(desc, d);
    expect_input_error(env, "indices.desc", "window_size");
  }
  SUBCASE(".desc numbers compare by value") {
    std::string d = good_desc;
    d.replace(d.find("window_size = 1"), 15, "window_size = 1.0");
    spit(desc, d);
    CHECK_NOTHROW(read_artifacts(env));
  }
  SUBCASE(".desc without a key") {
    std::string d = good_desc;
    d.erase(d.find("dilation = 1\n"), 13);
    spit(desc, d);
    expect_input_error(env, "indices.desc", "missing key 'dilation'");
  }
  SUBCASE("an unknown schema major version") {
    std::string e = good_env;
    e.replace(e.find("sattn.artifacts/v1"), 18, "sattn.artifacts/v2");
    spit(env, e);
    expect_input_error(env, "artifacts.json", "unsupported schema major version 2");
  }
  SUBCASE("envelope params disagreeing with the op") {
    std::string e = good_env;
    e.replace(e.find("\"window_size\": 1,\n    \"wrap\""), 16, "\"window_size\": 3");
    spit(env, e);
    expect_input_error(env, "artifacts.json", "window_size");
  }
  SUBCASE("an envelope that is not JSON") {
    spit(env, good_env.substr(0, 40));
    expect_input_error(env, "artifacts.json", "invalid JSON");
  }
}

TEST_CASE("emit: a failure leaves no output and no staging directory") {
  TempDir dir;
  SUBCASE("Q/K data whose shape does not match the op") {
    const Plan plan = plan_for(R"("sattn.sparse_attention"() { seq_len = 8 : i64, heads = 2 : i64, head_dim = 4 : i64,
        topk_k = 2 : i64 } : () -> ())");
    fs::create_directories(dir.path / "data");
    const Tensor small(1, 2, 4, 4);  // seq_len 4, not 8
    for (const char* n : {"q.npy", "k.npy", "v.npy"}) write_npy(dir / (std::string("data/") + n), tensor_to_npy(small));
    EmitOptions opts;
    opts.out_dir = dir / "out/nested";
    opts.data.dir = dir / "data";
    try {
      emit_artifacts(plan, opts);
      FAIL("shape mismatch accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::invalid_input);
      CHECK(std::string(e.what()).find("q.npy") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir.path / "out"));
  }
  SUBCASE("an output directory below a regular file") {
    spit(dir / "file", "x");
    EmitOptions opts;
    opts.out_dir = dir / "file/sub";
    try {
      emit_artifacts(plan_for(kTinyWindow), opts);
      FAIL("unwritable directory accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::runtime);
    }
  }
  // Only what the test itself created is left.
  for (const auto& e : fs::directory_iterator(dir.path)) {
    INFO(e.path());
    CHECK((e.path().filename() == "data" || e.path().filename() == "file"));
  }
}

TEST_CASE("emit: an existing directory is replaced whole; a user's only with force; --out-stem adds") {
  // Issue 18: old and new files are never mixed (this test once asserted the merge).
  TempDir dir;
  EmitOptions opts;
  opts.out_dir = dir / "d";
  emit_artifacts(plan_for(kTinyWindow), opts);
  spit(dir / "d/notes.txt", "mine");
  emit_artifacts(plan_for(kTinyWindow), opts);  // a previous output: replaced whole
  CHECK(!fs::exists(dir / "d/notes.txt"));
  CHECK_NOTHROW(read_artifacts(dir / "d/artifacts.json"));

  fs::create_directories(dir.path / "u");  // the user's directory: refused, untouched
  spit(dir / "u/notes.txt", "mine");
  opts.out_dir = dir / "u";
  try {
    emit_artifacts(plan_for(kTinyWindow), opts);
    FAIL("a user's non-empty directory was replaced");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    CHECK(std::string(e.what()).find("--force") != std::string::npos);
  }
  CHECK(slurp(dir / "u/notes.txt") == "mine");
  CHECK(!fs::exists(dir / "u/artifacts.json"));
  opts.stage.merge = true;  // --out-stem: the files are added, others kept
  emit_artifacts(plan_for(kTinyWindow), opts);
  CHECK(slurp(dir / "u/notes.txt") == "mine");
  CHECK_NOTHROW(read_artifacts(dir / "u/artifacts.json"));
  opts.stage = {.force = true};  // --force: replaced whole
  emit_artifacts(plan_for(kTinyWindow), opts);
  CHECK(!fs::exists(dir / "u/notes.txt"));
  for (const auto& e : fs::directory_iterator(dir.path)) CHECK((e.path().filename() == "d" || e.path().filename() == "u"));
}

TEST_CASE("io: AtomicFile and StagedDirectory appear only on commit") {
  TempDir dir;
  {
    AtomicFile f(dir / "never");
    f.write("partial");
  }
  {
    AtomicFile f(dir / "big");
    const std::string chunk(3 << 20, 'x');  // larger than the buffer: written through
    f.write("a");
    f.write(chunk);
    f.write("b");
    f.commit();
  }
  CHECK_FALSE(fs::exists(dir.path / "never"));
  CHECK(fs::file_size(dir.path / "big") == (3u << 20) + 2);
  {
    StagedDirectory s(dir / "x/y");
    spit(s.staging_path() + "/f", "1");
  }
  CHECK_FALSE(fs::exists(dir.path / "x"));
  {
    StagedDirectory s(dir / "x/y");
    spit(s.staging_path() + "/f", "1");
    s.commit();
  }
  CHECK(slurp(dir / "x/y/f") == "1");
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path))
    entries += e.path().filename().string().rfind(".sattn-stage", 0) == 0;
  CHECK(entries == 0);
}
