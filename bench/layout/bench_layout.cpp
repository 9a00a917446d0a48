// Layout-build benchmark: builds the nm_structured (1:16) or topk_per_query (k = seq/16) layout of
// the CPU benchmark's problem (batch 1, 8 heads, head_dim 64, fp32, synthetic data) once and
// prints one line: spec, seq, heads, build seconds (wall and process CPU), layout MiB and an FNV-1a hash of every ptr
// and idx array, so that two builds (before / after a change) can be compared for identical
// output. Peak memory comes from the caller (/usr/bin/time -v); see bench/layout/run.sh.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "../lib/process_cpu_time.hpp"
#include "core/synthetic.hpp"
#include "sattn/layout.hpp"
#include "sattn/op.hpp"

using namespace sattn;

namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[1], "nm") != 0 && std::strcmp(argv[1], "topk") != 0)) {
    std::fprintf(stderr, "usage: sattn_bench_layout nm|topk SEQ [HEADS=8] [causal|plain] [TOPK_K=SEQ/16]\n");
    return 2;
  }
  const bool nm = std::strcmp(argv[1], "nm") == 0;
  const int64_t seq = std::atoll(argv[2]);
  const int64_t heads = argc > 3 ? std::atoll(argv[3]) : 8;
  const bool causal = argc > 4 && std::strcmp(argv[4], "causal") == 0;
  const int64_t topk_k = argc > 5 ? std::atoll(argv[5]) : std::max<int64_t>(1, seq / 16);
  if (seq < 1 || heads < 1 || topk_k < 1) {
    std::fprintf(stderr, "sattn_bench_layout: error: SEQ, HEADS and TOPK_K must be positive\n");
    return 2;
  }
  Op op;
  op.name = argv[1];
  op.shape = Shape{1, heads, heads, seq, seq, 64};
  op.causal = causal;
  op.precision = Precision::fp32;
  Spec spec = Spec::topk_per_query;
  if (nm) {
    spec = Spec::nm_structured;
    op.attrs.nm_n = 1;
    op.attrs.nm_m = 16;
  } else {
    op.attrs.topk_k = topk_k;
  }
  const QKV data = synthetic_qkv(op.shape);
  const SpecParams params = resolve_params(op, spec);
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = process_cpu_seconds();
  const Layout layout = build_layout(op, spec, params, &data.q, &data.k);
  const double cpu_seconds = process_cpu_seconds() - cpu0;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t h = 0xcbf29ce484222325ull;
  for (const HeadLayout& hl : layout.heads) {
    h = fnv1a(h, hl.ptr.data(), hl.ptr.size() * sizeof(hl.ptr[0]));
    h = fnv1a(h, hl.idx.data(), hl.idx.size() * sizeof(hl.idx[0]));
  }
  std::printf("%s seq=%lld heads=%lld causal=%d build_s=%.3f build_cpu_s=%.3f layout_mib=%.1f hash=%016llx\n", argv[1],
              static_cast<long long>(seq), static_cast<long long>(heads), causal ? 1 : 0, seconds, cpu_seconds,
              double(layout.index_bytes()) / (1024.0 * 1024.0), static_cast<unsigned long long>(h));
  return 0;
}
