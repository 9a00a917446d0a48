// The C API (sattn.h) from C++: statuses and messages of every error kind, the DLPack checks,
// the select options (flags, environment, profile), layouts against the C++ API, the forward and
// backward against the reference, the thread-local error. (tests/arch/c_api.sh runs the C99
// program against the installed library.)
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/cuda/run_cuda.hpp"
#include "core/synthetic.hpp"
#include "formats/npy.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/formats.hpp"
#include "sattn/layout.hpp"
#include "sattn/sattn.h"
#include "sattn/select.hpp"

using namespace sattn;

namespace {

struct Dl {
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  DLTensor t{};
  Dl(float* data, std::vector<int64_t> s) : shape(std::move(s)) {
    t.data = data;
    t.device = DLDevice{kDLCPU, 0};
    t.ndim = int(shape.size());
    t.dtype = DLDataType{kDLFloat, 32, 1};
    t.shape = shape.data();
  }
};

std::vector<int64_t> dims(const Tensor& t) { return {t.shape[0], t.shape[1], t.shape[2], t.shape[3]}; }

struct Handles {
  sattn_op* op = nullptr;
  sattn_plan* plan = nullptr;
  sattn_layout* layout = nullptr;
  ~Handles() {
    sattn_layout_free(layout);
    sattn_plan_free(plan);
    sattn_op_free(op);
  }
};

const char* kOp = R"({"name": "t", "batch": 2, "heads": 4, "kv_heads": 2, "seq_len": 40, "kv_len": 56,
  "head_dim": 12, "causal": true, "topk_k": 9})";

}  // namespace

TEST_CASE("C API: op parsing in every format, index and count, statuses and file:line:col messages") {
  sattn_op* op = nullptr;
  size_t count = 0;
  REQUIRE(sattn_op_parse("- {name: a, heads: 2, seq_len: 8, head_dim: 4}\n- {name: b, heads: 2, seq_len: 16, head_dim: 4}\n",
                         size_t(-1), "ops.yaml", SATTN_FORMAT_YAML, 1, &op, &count) == SATTN_OK);
  CHECK(count == 2);
  CHECK(std::string(sattn_op_name(op)) == "b");
  sattn_shape shape{};
  CHECK(sattn_op_shape(op, &shape) == SATTN_OK);
  CHECK(shape.seq_len == 16);
  sattn_op_free(op);
  const std::string mlir = std::string(SATTN_EXAMPLES_DIR) + "/sliding_window.mlir";
  REQUIRE(sattn_op_read(mlir.c_str(), SATTN_FORMAT_AUTO, 0, &op, &count) == SATTN_OK);
  const std::vector<Op> cpp = read_ops(mlir);
  CHECK(count == cpp.size());
  CHECK(std::string(sattn_op_name(op)) == cpp[0].name);
  CHECK(sattn_op_scale(op) == doctest::Approx(cpp[0].softmax_scale()));
  sattn_op_free(op);
  op = reinterpret_cast<sattn_op*>(&count);  // must be reset to NULL on failure
  CHECK(sattn_op_read(mlir.c_str(), SATTN_FORMAT_AUTO, 99, &op, nullptr) == SATTN_USAGE);
  CHECK(op == nullptr);
  CHECK(std::string(sattn_last_error()).find("index 99 is out of range") != std::string::npos);
  CHECK(sattn_op_parse("{\"heads\": 3, \"kv_heads\": 2}", size_t(-1), "gqa.json", SATTN_FORMAT_AUTO, 0, &op, nullptr) ==
        SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).rfind("gqa.json:1:", 0) == 0);
  CHECK(sattn_op_read("/nonexistent/sattn/op.json", SATTN_FORMAT_AUTO, 0, &op, nullptr) == SATTN_RUNTIME);
  CHECK(sattn_op_parse(nullptr, 0, nullptr, SATTN_FORMAT_AUTO, 0, &op, nullptr) == SATTN_USAGE);
  CHECK(std::string(sattn_last_error()) == "sattn_op_parse: text is NULL");
  CHECK(std::string(sattn_status_string(SATTN_INVALID_INPUT)) == "invalid input");
  CHECK(int(SATTN_CHECK_FAILED) == int(ErrorKind::check_failed));
  CHECK(int(SATTN_EXTERNAL_TOOL) == int(ErrorKind::external_tool));
}

TEST_CASE("C API: last error is per thread") {
  sattn_op* op = nullptr;
  REQUIRE(sattn_op_parse("{\"seq_len\": 0}", size_t(-1), "main.json", SATTN_FORMAT_AUTO, 0, &op, nullptr) ==
          SATTN_INVALID_INPUT);
  const std::string mine = sattn_last_error();
  std::string other;
  std::thread([&] {
    other = sattn_last_error();
    sattn_op* o = nullptr;
    CHECK(sattn_op_parse("{\"heads\": 0}", size_t(-1), "thread.json", SATTN_FORMAT_AUTO, 0, &o, nullptr) ==
          SATTN_INVALID_INPUT);
  }).join();
  CHECK(other.empty());
  CHECK(std::string(sattn_last_error()) == mine);
  CHECK(mine.rfind("main.json:1:", 0) == 0);
}

TEST_CASE("C API: select options are the CLI's flags, over the environment and the profile") {
  Handles h;
  REQUIRE(sattn_op_parse(kOp, size_t(-1), "op.json", SATTN_FORMAT_AUTO, 0, &h.op, nullptr) == SATTN_OK);
  sattn_select_options o;
  sattn_select_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.l1_bytes == -1);
  // The spec the C++ selector picks with no options, then the same with that spec disabled.
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  const Op cpp_op = parse_ops(kOp, "op.json")[0];
  const Plan cpp = select_spec(cpp_op, resolve_select_request({}));
  CHECK(std::string(sattn_plan_spec(h.plan)) == std::string(to_string(cpp.spec)));
  const std::string first = sattn_plan_spec(h.plan);
  sattn_plan_free(h.plan);
  h.plan = nullptr;
  o.disable = first.c_str();
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) != first);
  sattn_plan_free(h.plan);
  h.plan = nullptr;
  // The environment applies when the options leave a field unset, and the options win over it.
  setenv("SATTN_FORCE_SPEC", "landmark", 1);
  sattn_select_options_init(&o);
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) == "landmark");
  CHECK(std::string(sattn_plan_reason(h.plan)).find("SATTN_FORCE_SPEC=landmark") != std::string::npos);
  sattn_plan_free(h.plan);
  h.plan = nullptr;
  o.force_spec = "dense";
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) == "dense");
  CHECK(std::string(sattn_plan_kind(h.plan)) == "override");
  unsetenv("SATTN_FORCE_SPEC");
  sattn_plan_free(h.plan);
  h.plan = nullptr;
  // A profile: its defaults reach the plan's op (precision bf16 here).
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "sattn-capi-test-profile";
  std::filesystem::create_directories(dir);
  const std::string profile = (dir / "p.yaml").string();
  std::ofstream(profile) << "schema: sattn.profile/v1\nname: p\ndefaults:\n  precision: bf16\n";
  sattn_select_options_init(&o);
  o.profile = profile.c_str();
  const sattn_status st = sattn_select(h.op, &o, &h.plan);
  INFO(sattn_last_error());
  REQUIRE(st == SATTN_OK);
  sattn_op* planned = nullptr;
  REQUIRE(sattn_plan_op(h.plan, &planned) == SATTN_OK);
  CHECK(std::string(sattn_op_precision(planned)) == "bf16");
  sattn_op_free(planned);
  std::filesystem::remove_all(dir);
  sattn_plan_free(h.plan);  // a failing call sets its output to NULL: free before reusing it
  h.plan = nullptr;
  // Bad option values are usage errors naming the option.
  sattn_select_options_init(&o);
  o.force_spec = "nope";
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  CHECK(std::string(sattn_last_error()).find("--force-spec: unknown spec 'nope'") != std::string::npos);
  sattn_select_options_init(&o);
  o.backend = "gpu";
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  sattn_select_options_init(&o);
  o.prefer_bsr = o.prefer_sw = 1;
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  CHECK(h.plan == nullptr);
  // A caller built against an older, shorter struct: the fields past its struct_size are unset.
  sattn_select_options_init(&o);
  o.force_spec = "dense";
  o.struct_size = offsetof(sattn_select_options, force_spec);
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) == first);
}

TEST_CASE("C API: a quality target (min_recall, data, seed) selects as sattn-select --min-recall does") {
  Handles h;
  REQUIRE(sattn_op_parse(kOp, size_t(-1), "op.json", SATTN_FORMAT_AUTO, 0, &h.op, nullptr) == SATTN_OK);
  const Op cpp_op = parse_ops(kOp, "op.json")[0];
  unsetenv("SATTN_MIN_RECALL");
  sattn_select_options o;
  sattn_select_options_init(&o);
  CHECK(o.min_recall == -1);
  CHECK(o.seed == -1);
  CHECK(o.data == nullptr);
  CHECK(o.data_count == 0);
  auto plan_json = [&] { return nlohmann::json::parse(sattn_plan_json(h.plan)); };
  auto reset = [&] {
    sattn_plan_free(h.plan);
    h.plan = nullptr;
  };
  // 1.0: only dense reaches it; 0: the cheapest point of the grid, whatever its recall.
  o.min_recall = 1.0;
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) == "dense");
  CHECK(std::string(sattn_plan_kind(h.plan)) == "recall");
  CHECK(plan_json()["selection"]["min_recall"] == 1.0);
  reset();
  o.min_recall = 0;
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  {
    const nlohmann::json j = plan_json();
    double cheapest = 1e300;
    for (const auto& c : j["selection"]["candidates"])
      if (c["feasible"].get<bool>()) cheapest = std::min(cheapest, c["cost"].get<double>());
    bool chosen_cheapest = false;
    for (const auto& c : j["selection"]["candidates"])
      if (c["terms"].value("chosen", false)) chosen_cheapest = c["cost"].get<double>() == cheapest;
    CHECK(chosen_cheapest);
    CHECK(std::string(sattn_plan_spec(h.plan)) != "dense");
  }
  reset();
  // The same choice as the C++ API for the same request: a target in between, on a data
  // directory and on a seeded synthetic sample.
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "sattn-capi-test-recall";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "s");
  const QKV d = synthetic_qkv(cpp_op.shape, 11);
  write_npy((dir / "s" / "q.npy").string(), tensor_to_npy(d.q));
  write_npy((dir / "s" / "k.npy").string(), tensor_to_npy(d.k));
  write_npy((dir / "s" / "v.npy").string(), tensor_to_npy(d.v));
  const std::string sample = (dir / "s").string();
  const char* samples[] = {sample.c_str()};
  o.min_recall = 0.6;
  o.data = samples;
  o.data_count = 1;
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  SelectRequest req;
  req.min_recall = 0.6;
  req.data = {sample};
  const Plan cpp = select_spec(cpp_op, resolve_select_request(req));
  CHECK(cpp.selection.kind == "recall");
  CHECK(std::string(sattn_plan_spec(h.plan)) == std::string(to_string(cpp.spec)));
  CHECK(std::string(sattn_plan_reason(h.plan)) == cpp.selection.reason);
  CHECK(std::string(sattn_plan_reason(h.plan)).find("1 calibration sample:") != std::string::npos);
  reset();
  sattn_select_options_init(&o);
  o.min_recall = 0.6;
  o.seed = 3;
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  req.data.clear();
  req.seed = 3;
  const Plan seeded = select_spec(cpp_op, resolve_select_request(req));
  CHECK(std::string(sattn_plan_reason(h.plan)) == seeded.selection.reason);
  CHECK(seeded.selection.reason.find("seed 3") != std::string::npos);
  reset();
  // Unset (-1), the environment's target applies; a value in the options outranks it.
  setenv("SATTN_MIN_RECALL", "1", 1);
  sattn_select_options_init(&o);
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_kind(h.plan)) == "recall");
  CHECK(std::string(sattn_plan_spec(h.plan)) == "dense");
  CHECK(std::string(sattn_plan_reason(h.plan)).find("SATTN_MIN_RECALL=1") != std::string::npos);
  reset();
  o.min_recall = 0;
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) != "dense");
  unsetenv("SATTN_MIN_RECALL");
  reset();
  // Bad values: a target outside [0, 1] (NaN too) is invalid input, a missing sample an I/O error
  // naming the file; seed with data, or a NULL entry, are usage errors. Nothing is returned.
  for (double bad : {1.5, -0.5, std::nan("")}) {
    sattn_select_options_init(&o);
    o.min_recall = bad;
    CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_INVALID_INPUT);
    CHECK(std::string(sattn_last_error()).find("--min-recall must be from 0 to 1") != std::string::npos);
    CHECK(h.plan == nullptr);
  }
  sattn_select_options_init(&o);
  o.min_recall = 0.5;
  const std::string missing = (dir / "nope").string();
  const char* missing_samples[] = {missing.c_str()};
  o.data = missing_samples;
  o.data_count = 1;
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_RUNTIME);  // an unreadable file is I/O, as in sattn-select
  CHECK(std::string(sattn_last_error()).find(missing + "/q.npy") != std::string::npos);
  CHECK(h.plan == nullptr);
  o.data = samples;
  o.seed = 4;
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  CHECK(std::string(sattn_last_error()).find("--seed excludes --data") != std::string::npos);
  o.seed = -1;
  const char* null_samples[] = {nullptr};
  o.data = null_samples;
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  o.data = nullptr;
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  CHECK(h.plan == nullptr);
  // The bound's confidence: -1 is unset (0.95); 0.5 compares the plain mean; outside [0.5, 1) is
  // a usage error.
  sattn_select_options_init(&o);
  CHECK(o.recall_confidence == -1);
  o.min_recall = 0.6;
  o.recall_confidence = 0.5;
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_reason(h.plan)).find("at confidence 0.5") != std::string::npos);
  for (const auto& c : plan_json()["selection"]["candidates"])
    if (c["terms"].contains("recall_heads")) CHECK(c["terms"]["recall"] == c["terms"]["recall_mean"]);
  reset();
  o.recall_confidence = 0.3;
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  CHECK(std::string(sattn_last_error()).find("--recall-confidence must be from 0.5 to below 1") != std::string::npos);
  // The bound: "cv" over 4 samples chooses the confidence by cross-validation, as the C++ API does
  // for the same request; NULL is unset (window); another name is a usage error; a caller built
  // before recall_bound leaves it unset.
  std::vector<std::string> four;
  for (int s = 0; s < 4; ++s) {
    const auto sd = dir / ("cv" + std::to_string(s));
    std::filesystem::create_directories(sd);
    const QKV ds = synthetic_qkv(cpp_op.shape, 20 + uint64_t(s));
    write_npy((sd / "q.npy").string(), tensor_to_npy(ds.q));
    write_npy((sd / "k.npy").string(), tensor_to_npy(ds.k));
    write_npy((sd / "v.npy").string(), tensor_to_npy(ds.v));
    four.push_back(sd.string());
  }
  const char* four_c[] = {four[0].c_str(), four[1].c_str(), four[2].c_str(), four[3].c_str()};
  sattn_select_options_init(&o);
  CHECK(o.recall_bound == nullptr);
  o.min_recall = 0.6;
  o.data = four_c;
  o.data_count = 4;
  o.recall_bound = "cv";
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  {
    SelectRequest cv_req;
    cv_req.min_recall = 0.6;
    cv_req.data = four;
    cv_req.recall_bound = RecallBound::cv;
    const Plan cv_plan = select_spec(cpp_op, resolve_select_request(cv_req));
    CHECK(std::string(sattn_plan_reason(h.plan)) == cv_plan.selection.reason);
    CHECK(cv_plan.selection.reason.find("chosen by leave-one-out cross-validation over the 4 samples") != std::string::npos);
    CHECK(cv_plan.selection.reason.find("--recall-bound cv") != std::string::npos);
  }
  reset();
  o.recall_bound = "Mean";
  CHECK(sattn_select(h.op, &o, &h.plan) == SATTN_USAGE);
  CHECK(std::string(sattn_last_error()).find("--recall-bound must be window, mean or cv (got 'Mean')") != std::string::npos);
  CHECK(h.plan == nullptr);
  o.struct_size = offsetof(sattn_select_options, recall_bound);
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_reason(h.plan)).find("for the mean over text") == std::string::npos);
  reset();
  // A caller built against the header before min_recall: the fields past its struct are unset.
  sattn_select_options_init(&o);
  o.min_recall = 1.0;
  o.struct_size = offsetof(sattn_select_options, min_recall);
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_kind(h.plan)) != "recall");
  std::filesystem::remove_all(dir);
}

TEST_CASE("C API: layouts, forward and backward equal the C++ API and the reference; views are not copied") {
  Handles h;
  REQUIRE(sattn_op_parse(kOp, size_t(-1), "op.json", SATTN_FORMAT_AUTO, 0, &h.op, nullptr) == SATTN_OK);
  sattn_select_options o;
  sattn_select_options_init(&o);
  o.force_spec = "topk_per_query";  // data-dependent: the layout reads q and k
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  const Op op = parse_ops(kOp, "op.json")[0];
  QKV d = synthetic_qkv(op.shape, 5);
  Dl q(d.q.data.data(), dims(d.q)), k(d.k.data.data(), dims(d.k)), v(d.v.data.data(), dims(d.v));
  CHECK(sattn_layout_build(h.plan, nullptr, nullptr, &h.layout) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("needs Q/K data") != std::string::npos);
  REQUIRE(sattn_layout_build(h.plan, &q.t, &k.t, &h.layout) == SATTN_OK);
  const Layout cpp = build_layout(op, Spec::topk_per_query, resolve_params(op, Spec::topk_per_query), &d.q, &d.k);
  sattn_layout_info info{};
  REQUIRE(sattn_layout_get_info(h.layout, &info) == SATTN_OK);
  CHECK(info.block == 0);
  CHECK(info.lists == 40);
  CHECK(info.density == doctest::Approx(cpp.density()));
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t kvh = 0; kvh < 2; ++kvh) {
      const int64_t* ptr;
      const int32_t* idx;
      size_t np = 0, ni = 0;
      REQUIRE(sattn_layout_arrays(h.layout, b, kvh, &ptr, &np, &idx, &ni) == SATTN_OK);
      CHECK(std::vector<int64_t>(ptr, ptr + np) == cpp.head(b, kvh).ptr);
      CHECK(std::vector<int32_t>(idx, idx + ni) == cpp.head(b, kvh).idx);
    }
  const int64_t* ptr;
  const int32_t* idx;
  CHECK(sattn_layout_arrays(h.layout, 2, 0, &ptr, nullptr, &idx, nullptr) == SATTN_USAGE);

  Tensor out(2, 4, 40, 12), dout = d.q, dq(2, 4, 40, 12), dk(2, 2, 56, 12), dv(2, 2, 56, 12);
  for (float& x : dout.data) x = x * 0.5f + 0.25f;
  std::vector<float> lse(2 * 4 * 40);
  Dl to(out.data.data(), dims(out)), tl(lse.data(), {2, 4, 40}), tg(dout.data.data(), dims(dout));
  Dl tdq(dq.data.data(), dims(dq)), tdk(dk.data.data(), dims(dk)), tdv(dv.data.data(), dims(dv));
  sattn_run_options ro;
  sattn_run_options_init(&ro);
  ro.threads = 2;
  REQUIRE(sattn_forward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, &tl.t, &ro) == SATTN_OK);
  const Tensor ref = reference_attention(op, cpp, d.q, d.k, d.v);
  CHECK(compare(out, ref).max_rel <= 1e-4);
  REQUIRE(sattn_backward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, &tg.t, &tl.t, &tdq.t, &tdk.t, &tdv.t, &ro) ==
          SATTN_OK);
  const Gradients g = reference_attention_backward(op, cpp, d.q, d.k, d.v, dout);
  CHECK(compare(dq, g.dq).max_rel <= 1e-4);
  CHECK(compare(dk, g.dk).max_rel <= 1e-4);
  CHECK(compare(dv, g.dv).max_rel <= 1e-4);

  // Strides: C-order strides and any stride on an extent-1 dimension are accepted.
  q.strides = {4 * 40 * 12, 40 * 12, 12, 1};
  q.t.strides = q.strides.data();
  CHECK(sattn_forward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, nullptr, nullptr) == SATTN_OK);
  q.strides = {4 * 40 * 12, 40 * 12, 1, 40};  // transposed rows
  q.t.strides = q.strides.data();
  CHECK(sattn_forward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("sattn_forward: q is not C-contiguous") == 0);
  q.t.strides = nullptr;
  // dtype, rank, lse shape, device, aliasing, shape mismatch.
  Dl bad = q;
  bad.t.shape = bad.shape.data();
  bad.t.dtype = DLDataType{kDLFloat, 64, 1};
  CHECK(sattn_forward(h.plan, h.layout, &bad.t, &k.t, &v.t, &to.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("q must be float32") != std::string::npos);
  bad.t.dtype = DLDataType{kDLFloat, 32, 1};
  bad.t.ndim = 3;
  CHECK(sattn_forward(h.plan, h.layout, &bad.t, &k.t, &v.t, &to.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  Dl bad_lse(lse.data(), {2, 4, 41});
  CHECK(sattn_forward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, &bad_lse.t, nullptr) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()) == "sattn_forward: lse has shape [2, 4, 41], the op needs [2, 4, 40]");
  bad = q;
  bad.t.shape = bad.shape.data();
  bad.t.device = DLDevice{kDLVulkan, 0};
  CHECK(sattn_forward(h.plan, h.layout, &bad.t, &k.t, &v.t, &to.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(sattn_forward(h.plan, h.layout, &q.t, &k.t, &v.t, &q.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("out overlaps q") != std::string::npos);
  CHECK(sattn_forward(h.plan, h.layout, &q.t, &v.t, &v.t, &k.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(sattn_backward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, &tg.t, nullptr, &tdq.t, &tdk.t, &tdv.t, nullptr) ==
        SATTN_USAGE);
  CHECK(std::string(sattn_last_error()) == "sattn_backward: lse is NULL");
}

TEST_CASE("C API: i8 backward and CUDA tensors give clear statuses") {
  Handles h;
  const std::string text = R"({"heads": 2, "seq_len": 16, "head_dim": 8, "precision": "i8"})";
  REQUIRE(sattn_op_parse(text.c_str(), size_t(-1), "i8.json", SATTN_FORMAT_AUTO, 0, &h.op, nullptr) == SATTN_OK);
  sattn_select_options o;
  sattn_select_options_init(&o);
  o.force_spec = "dense";
  REQUIRE(sattn_select(h.op, &o, &h.plan) == SATTN_OK);
  REQUIRE(sattn_layout_build(h.plan, nullptr, nullptr, &h.layout) == SATTN_OK);
  Tensor q(1, 2, 16, 8), k = q, v = q, out = q, g = q, dq = q, dk = q, dv = q;
  std::vector<float> lse(32);
  Dl tq(q.data.data(), dims(q)), tk(k.data.data(), dims(k)), tv(v.data.data(), dims(v)), to(out.data.data(), dims(out));
  Dl tg(g.data.data(), dims(g)), tl(lse.data(), {1, 2, 16});
  Dl tdq(dq.data.data(), dims(dq)), tdk(dk.data.data(), dims(dk)), tdv(dv.data.data(), dims(dv));
  REQUIRE(sattn_forward(h.plan, h.layout, &tq.t, &tk.t, &tv.t, &to.t, &tl.t, nullptr) == SATTN_OK);
  CHECK(sattn_backward(h.plan, h.layout, &tq.t, &tk.t, &tv.t, &to.t, &tg.t, &tl.t, &tdq.t, &tdk.t, &tdv.t, nullptr) ==
        SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("backward supports fp32 and bf16 precision, the op has i8") !=
        std::string::npos);
  // CUDA tensors: an i8 op is refused before any device is touched, forward and backward.
  for (Dl* t : {&tq, &tk, &tv, &to, &tg, &tl, &tdq, &tdk, &tdv}) t->t.device = DLDevice{kDLCUDA, 0};
  CHECK(sattn_forward(h.plan, h.layout, &tq.t, &tk.t, &tv.t, &to.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("CUDA tensors run fp32 ops") != std::string::npos);
  CHECK(sattn_backward(h.plan, h.layout, &tq.t, &tk.t, &tv.t, &to.t, &tg.t, &tl.t, &tdq.t, &tdk.t, &tdv.t, nullptr) ==
        SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("CUDA tensors run fp32 ops") != std::string::npos);
  tq.t.device = DLDevice{kDLCPU, 0};
  CHECK(sattn_forward(h.plan, h.layout, &tq.t, &tk.t, &tv.t, &to.t, nullptr, nullptr) == SATTN_INVALID_INPUT);
  CHECK(std::string(sattn_last_error()).find("different devices") != std::string::npos);
  // Without a usable CUDA device (this machine's case when the GPU is absent), an fp32 op on CUDA
  // tensors is SATTN_EXTERNAL_TOOL with the reason. (With a device, the pointers here are host
  // memory, so the launch is not tried.)
  bool have_device = true;
  std::string why;
  try {
    require_cuda_device();
  } catch (const Error& e) {
    have_device = false;
    why = e.what();
  }
  if (!have_device) {
    Handles f;
    REQUIRE(sattn_op_parse(R"({"heads": 2, "seq_len": 16, "head_dim": 8})", size_t(-1), "f.json", SATTN_FORMAT_AUTO, 0,
                           &f.op, nullptr) == SATTN_OK);
    REQUIRE(sattn_select(f.op, &o, &f.plan) == SATTN_OK);
    REQUIRE(sattn_layout_build(f.plan, nullptr, nullptr, &f.layout) == SATTN_OK);
    tq.t.device = DLDevice{kDLCUDA, 0};
    CHECK(sattn_forward(f.plan, f.layout, &tq.t, &tk.t, &tv.t, &to.t, nullptr, nullptr) == SATTN_EXTERNAL_TOOL);
    CHECK(std::string(sattn_last_error()) == why);
  }
}

TEST_CASE("C API: artifacts written as sattn emit writes them") {
  Handles h;
  REQUIRE(sattn_op_parse(R"({"heads": 2, "seq_len": 64, "head_dim": 8, "spec": "bsr", "block_size": 16})", size_t(-1),
                         "e.json", SATTN_FORMAT_AUTO, 0, &h.op, nullptr) == SATTN_OK);
  REQUIRE(sattn_select(h.op, nullptr, &h.plan) == SATTN_OK);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "sattn-capi-test-emit";
  std::filesystem::remove_all(dir);
  REQUIRE(sattn_layout_emit(h.plan, dir.string().c_str(), nullptr, 0, 0) == SATTN_OK);
  CHECK(std::filesystem::exists(dir / "artifacts.json"));
  CHECK(std::filesystem::exists(dir / "q.npy"));  // bsr is data-dependent: the data is kept
  // A non-empty directory that is not sattn output is refused unless replace is set.
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "mine.txt") << "keep";
  CHECK(sattn_layout_emit(h.plan, dir.string().c_str(), nullptr, 0, 0) != SATTN_OK);
  CHECK(std::filesystem::exists(dir / "mine.txt"));
  CHECK(sattn_layout_emit(h.plan, dir.string().c_str(), nullptr, 7, 1) == SATTN_OK);
  CHECK(std::filesystem::exists(dir / "artifacts.json"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("C API: softcap and an explicit scale reach the forward and backward (quest decode op)") {
  // A decode chunk of 3 queries over 80 keys, pages of 8, 3 kept: a block layout read from q/k.
  const char* text = R"({"batch": 1, "heads": 4, "kv_heads": 2, "seq_len": 3, "kv_len": 80, "head_dim": 16,
    "causal": true, "scale": 0.7, "softcap": 2.5, "page_size": 8, "top_pages": 3})";
  Handles h;
  REQUIRE(sattn_op_parse(text, size_t(-1), "op.json", SATTN_FORMAT_AUTO, 0, &h.op, nullptr) == SATTN_OK);
  CHECK(sattn_op_scale(h.op) == 0.7);
  CHECK(sattn_op_softcap(h.op) == 2.5);
  REQUIRE(sattn_select(h.op, nullptr, &h.plan) == SATTN_OK);
  CHECK(std::string(sattn_plan_spec(h.plan)) == "quest");
  const Op op = parse_ops(text, "op.json")[0];
  QKV d = synthetic_qkv(op.shape, 11);
  for (float& x : d.q.data) x *= 3;  // scores well beyond the cap, so that capping matters
  Dl q(d.q.data.data(), dims(d.q)), k(d.k.data.data(), dims(d.k)), v(d.v.data.data(), dims(d.v));
  REQUIRE(sattn_layout_build(h.plan, &q.t, &k.t, &h.layout) == SATTN_OK);
  const Layout cpp = build_layout(op, Spec::quest, resolve_params(op, Spec::quest), &d.q, &d.k);
  Tensor out(1, 4, 3, 16), dout = d.q, dq(1, 4, 3, 16), dk(1, 2, 80, 16), dv(1, 2, 80, 16);
  std::vector<float> lse(4 * 3);
  Dl to(out.data.data(), dims(out)), tl(lse.data(), {1, 4, 3}), tg(dout.data.data(), dims(dout));
  Dl tdq(dq.data.data(), dims(dq)), tdk(dk.data.data(), dims(dk)), tdv(dv.data.data(), dims(dv));
  REQUIRE(sattn_forward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, &tl.t, nullptr) == SATTN_OK);
  const Tensor ref = reference_attention(op, cpp, d.q, d.k, d.v);
  CHECK(compare(out, ref).max_rel <= 1e-4);
  // Without the cap the output is measurably different: the cap really was applied.
  Op uncapped = op;
  uncapped.softcap.reset();
  CHECK(compare(out, reference_attention(uncapped, cpp, d.q, d.k, d.v)).max_rel > 1e-2);
  REQUIRE(sattn_backward(h.plan, h.layout, &q.t, &k.t, &v.t, &to.t, &tg.t, &tl.t, &tdq.t, &tdk.t, &tdv.t, nullptr) ==
          SATTN_OK);
  const Gradients g = reference_attention_backward(op, cpp, d.q, d.k, d.v, dout);
  CHECK(compare(dq, g.dq).max_rel <= 1e-4);
  CHECK(compare(dk, g.dk).max_rel <= 1e-4);
  CHECK(compare(dv, g.dv).max_rel <= 1e-4);
  sattn_op* none = nullptr;
  REQUIRE(sattn_op_parse(kOp, size_t(-1), "op.json", SATTN_FORMAT_AUTO, 0, &none, nullptr) == SATTN_OK);
  CHECK(sattn_op_softcap(none) == 0);
  sattn_op_free(none);
}
