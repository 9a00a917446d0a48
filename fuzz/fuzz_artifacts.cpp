// libFuzzer target: the artifacts reader (read_artifacts: the sattn.artifacts/v1 envelope, the
// plan and op inside it, and the layout arrays / .desc / Q,K,V it names). At start-up a real
// artifact set is emitted into a temporary directory (a small sliding-window op with Q/K/V);
// each input replaces its envelope, so the reader meets real arrays behind fuzzed JSON.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "common.hpp"
#include "formats/emit.hpp"
#include "formats/op_io.hpp"
#include "sattn/select.hpp"

namespace {
std::string g_dir;

const char* kOp = R"({"schema": "sattn.op/v1", "name": "fz", "batch": 1, "heads": 2, "kv_heads": 1,
  "seq_len": 32, "head_dim": 8, "causal": true, "spec": "topk_per_query"})";
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_dir = "/tmp/sattn-fuzz-artifacts-" + std::to_string(getpid());
  std::filesystem::remove_all(g_dir);
  try {
    const auto ops = sattn::parse_json_ops(kOp, "fuzz-init.json");
    const sattn::Plan plan = sattn::select_spec(ops.at(0), sattn::SelectOptions{});
    sattn::EmitOptions options;
    options.out_dir = g_dir;
    sattn::emit_artifacts(plan, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_artifacts: cannot emit the base artifacts: %s\n", e.what());
    std::abort();
  }
  std::atexit([] { std::filesystem::remove_all(g_dir); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (g_dir.empty()) LLVMFuzzerInitialize(nullptr, nullptr);  // the replay driver
  const std::string path = g_dir + "/fuzz.artifacts.json";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size) std::fwrite(data, 1, size, f);
  std::fclose(f);
  SATTN_FUZZ_GUARD(path, (void)sattn::read_artifacts(path));
  return 0;
}
