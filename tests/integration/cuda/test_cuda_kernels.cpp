// GPU test of the sattn CUDA kernels against a double-precision CPU reference over randomized
// shapes (tails, causal, GQA, empty rows, every mode, fp32 and bf16), on the SIMT kernel and on the
// tensor-core kernel. Usage: test_cuda_kernels [SIMT_CASES [SEED [TC_CASES]]]. Exit 77 (CTest: skipped)
// when no CUDA device is present; 0 when every case passes; 1 otherwise.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "sattn_cuda.h"

namespace {

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); std::exit(1); } } while (0)

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}
float from_bf16(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct Case {
  int mode, bf16, causal;
  int64_t B, H, KVH, S, KV, D, bs, w, dil;
};

// Allowed keys of row i for (b, kvh) under the case's layout (host mirror of layout.hpp rules).
std::vector<int64_t> keys_of(const Case& c, const std::vector<int64_t>& ptr, const std::vector<int32_t>& idx,
                             int64_t layout_base, int64_t i) {
  std::vector<int64_t> ks;
  const int64_t off = c.KV - c.S;
  auto ok = [&](int64_t j) { return j >= 0 && j < c.KV && (!c.causal || j <= i + off); };
  if (c.mode == SATTN_CUDA_DENSE) {
    for (int64_t j = 0; j < c.KV; ++j) if (ok(j)) ks.push_back(j);
  } else if (c.mode == SATTN_CUDA_CSR) {
    for (int64_t t = ptr[layout_base + i]; t < ptr[layout_base + i + 1]; ++t) ks.push_back(idx[t]);
  } else if (c.mode == SATTN_CUDA_BSR) {
    const int64_t br = i / c.bs;
    for (int64_t t = ptr[layout_base + br]; t < ptr[layout_base + br + 1]; ++t)
      for (int64_t j = idx[t] * c.bs; j < idx[t] * c.bs + c.bs; ++j) if (ok(j)) ks.push_back(j);
  } else {
    const int64_t p = i + off;
    for (int64_t t = -c.w; t <= (c.causal ? 0 : c.w); ++t) if (ok(p + t * c.dil)) ks.push_back(p + t * c.dil);
  }
  return ks;
}

// tc = false: sattn_cuda_forward (SIMT, device layout); true: a plan that must pick the
// tensor-core kernel (host layout).
bool run_case(const Case& c, std::mt19937_64& rng, int n, bool tc) {
  std::normal_distribution<float> nd;
  const int64_t nq = c.B * c.H * c.S * c.D, nkv = c.B * c.KVH * c.KV * c.D;
  std::vector<float> q(nq), k(nkv), v(nkv);
  for (auto* t : {&q, &k, &v}) for (float& x : *t) { x = nd(rng); if (c.bf16) x = from_bf16(to_bf16(x)); }
  // Layout per (b, kvh): CSR random key subsets (some rows empty), BSR random block lists
  // (some block rows empty).
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  const int64_t nl = c.B * c.KVH;
  const int64_t brows = (c.S + c.bs - 1) / c.bs, bcols = (c.KV + c.bs - 1) / c.bs;
  std::uniform_real_distribution<double> u;
  if (c.mode == SATTN_CUDA_CSR || c.mode == SATTN_CUDA_BSR) {
    const int64_t rows = c.mode == SATTN_CUDA_CSR ? c.S : brows, cols = c.mode == SATTN_CUDA_CSR ? c.KV : bcols;
    for (int64_t l = 0; l < nl; ++l) {
      ptr.push_back(int64_t(idx.size()));
      for (int64_t r = 0; r < rows; ++r) {
        const double keep = u(rng) < 0.15 ? 0.0 : u(rng) * 0.5;
        for (int64_t j = 0; j < cols; ++j)
          if (u(rng) < keep && (c.mode == SATTN_CUDA_BSR || !c.causal || j <= r + c.KV - c.S)) idx.push_back(int32_t(j));
        ptr.push_back(int64_t(idx.size()));
      }
    }
  }
  const int64_t rows_per_layout = (c.mode == SATTN_CUDA_CSR ? c.S : brows) + 1;
  // Reference.
  std::vector<double> ref(nq, 0.0);
  const double scale = 1.0 / std::sqrt(double(c.D));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t kvh = h / (c.H / c.KVH);
      for (int64_t i = 0; i < c.S; ++i) {
        const auto ks = keys_of(c, ptr, idx, (b * c.KVH + kvh) * rows_per_layout, i);
        if (ks.empty()) continue;
        const float* qr = &q[((b * c.H + h) * c.S + i) * c.D];
        std::vector<double> s(ks.size());
        double m = -INFINITY;
        for (size_t t = 0; t < ks.size(); ++t) {
          const float* kr = &k[((b * c.KVH + kvh) * c.KV + ks[t]) * c.D];
          double d = 0;
          for (int64_t x = 0; x < c.D; ++x) d += double(qr[x]) * kr[x];
          s[t] = d * scale;
          m = std::max(m, s[t]);
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - m));
        double* o = &ref[((b * c.H + h) * c.S + i) * c.D];
        for (size_t t = 0; t < ks.size(); ++t) {
          const float* vr = &v[((b * c.KVH + kvh) * c.KV + ks[t]) * c.D];
          for (int64_t x = 0; x < c.D; ++x) o[x] += s[t] * vr[x] / sum;
        }
      }
    }
  // Device.
  const size_t es = c.bf16 ? 2 : 4;
  auto upload = [&](const std::vector<float>& t) {
    void* d;
    CK(cudaMalloc(&d, t.size() * es));
    if (c.bf16) {
      std::vector<uint16_t> h(t.size());
      for (size_t x = 0; x < t.size(); ++x) h[x] = to_bf16(t[x]);
      CK(cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    } else {
      CK(cudaMemcpy(d, t.data(), t.size() * 4, cudaMemcpyHostToDevice));
    }
    return d;
  };
  void *dq = upload(q), *dk = upload(k), *dv = upload(v);
  float* dout;
  CK(cudaMalloc(&dout, nq * 4));
  CK(cudaMemset(dout, 0xff, nq * 4));  // poison: NaN
  int64_t* dptr = nullptr;
  int32_t* didx = nullptr;
  if (!ptr.empty()) {
    CK(cudaMalloc(&dptr, ptr.size() * 8));
    CK(cudaMemcpy(dptr, ptr.data(), ptr.size() * 8, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&didx, std::max<size_t>(1, idx.size()) * 4));
    if (!idx.empty()) CK(cudaMemcpy(didx, idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
  }
  SattnCudaArgs a{};
  a.mode = c.mode; a.bf16 = c.bf16; a.batch = c.B; a.heads = c.H; a.kv_heads = c.KVH; a.seq_len = c.S;
  a.kv_len = c.KV; a.head_dim = c.D; a.causal = c.causal; a.causal_offset = c.KV - c.S; a.scale = float(scale);
  a.ptr = dptr; a.idx = didx; a.shared = 0; a.block_size = c.bs; a.window = c.w; a.dilation = c.dil;
  a.q = dq; a.k = dk; a.v = dv; a.o = dout;
  char msg[256] = "";
  if (!tc) {
    if (sattn_cuda_forward(&a, msg) != 0) { std::printf("launch failed: %s\n", msg); return false; }
  } else {
    a.ptr = ptr.empty() ? nullptr : ptr.data();
    a.idx = idx.empty() ? nullptr : idx.data();
    SattnCudaPlan* plan = nullptr;
    if (sattn_cuda_plan_create(&a, 1, &plan, msg) != 0) { std::printf("plan failed: %s\n", msg); return false; }
    if (std::strcmp(sattn_cuda_plan_kernel(plan), "tensor-core") != 0) {
      std::printf("%-3d expected the tensor-core kernel, got %s\n", n, sattn_cuda_plan_kernel(plan));
      sattn_cuda_plan_destroy(plan);
      return false;
    }
    const int rc = sattn_cuda_plan_run(plan, dq, dk, dv, dout, msg);
    sattn_cuda_plan_destroy(plan);
    if (rc != 0) { std::printf("launch failed: %s\n", msg); return false; }
  }
  CK(cudaDeviceSynchronize());
  std::vector<float> out(nq);
  CK(cudaMemcpy(out.data(), dout, nq * 4, cudaMemcpyDeviceToHost));
  for (void* p : {dq, dk, dv, (void*)dout, (void*)dptr, (void*)didx}) if (p) cudaFree(p);
  double maxabs = 0, refmax = 0;
  bool finite = true;
  for (int64_t x = 0; x < nq; ++x) {
    if (!std::isfinite(out[x])) finite = false;
    maxabs = std::max(maxabs, std::abs(out[x] - ref[x]));
    refmax = std::max(refmax, std::abs(ref[x]));
  }
  const double rel = refmax > 0 ? maxabs / refmax : maxabs;
  const double tol = c.bf16 ? 1e-2 : 1e-4;
  const bool ok = finite && rel <= tol;
  static const char* names[] = {"dense", "csr", "bsr", "window"};
  std::printf("%-3d %-4s %-6s %-4s causal=%d B=%lld H=%lld KVH=%lld S=%lld KV=%lld D=%lld bs=%lld w=%lld dil=%lld  rel=%.2e %s\n", n,
              tc ? "tc" : "simt", names[c.mode], c.bf16 ? "bf16" : "fp32", c.causal, (long long)c.B, (long long)c.H, (long long)c.KVH,
              (long long)c.S, (long long)c.KV, (long long)c.D, (long long)c.bs, (long long)c.w, (long long)c.dil, rel,
              ok ? "ok" : (finite ? "FAIL" : "FAIL (non-finite)"));
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  char msg[256] = "";
  if (sattn_cuda_device_count(msg) == 0) {
    std::printf("skipped: no CUDA device (%s)\n", msg);
    return 77;
  }
  const int n_cases = argc > 1 ? std::atoi(argv[1]) : 48;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20261202);
  const int64_t dims[] = {16, 32, 48, 64, 80, 128, 256};
  int failed = 0;
  for (int n = 0; n < n_cases; ++n) {
    std::uniform_int_distribution<int64_t> r(1, 200);
    Case c{};
    c.mode = n % 4;
    c.bf16 = (n / 4) % 2;
    c.causal = (n / 8) % 2;
    c.KVH = 1 + rng() % 2;
    c.H = c.KVH * (1 + rng() % 3);
    c.B = 1 + rng() % 2;
    c.S = r(rng);
    c.KV = c.causal ? c.S + rng() % 20 : r(rng);
    c.D = dims[rng() % 7];
    c.bs = int64_t(1) << (2 + rng() % 4);
    c.w = 1 + rng() % 20;
    c.dil = 1 + rng() % 3;
    if (!run_case(c, rng, n, false)) ++failed;
  }
  // The tensor-core kernel: bf16, head_dim 64/128, dense, window (any dilation) and BSR with
  // block sizes that are multiples of 16; sequence tails, causal with kv_len > seq_len, GQA,
  // empty block rows, multi-tile rows.
  const int n_tc = argc > 3 ? std::atoi(argv[3]) : n_cases;
  const int64_t tc_bs[] = {16, 32, 48, 64, 128};
  for (int n = 0; n < n_tc; ++n) {
    std::uniform_int_distribution<int64_t> r(1, 400);
    Case c{};
    const int modes[] = {SATTN_CUDA_DENSE, SATTN_CUDA_BSR, SATTN_CUDA_WINDOW};
    c.mode = modes[n % 3];
    c.bf16 = 1;
    c.causal = (n / 3) % 2;
    c.KVH = 1 + rng() % 2;
    c.H = c.KVH * (1 + rng() % 3);
    c.B = 1 + rng() % 2;
    c.S = r(rng);
    c.KV = c.causal ? c.S + rng() % 70 : r(rng);
    c.D = (n / 6) % 2 ? 128 : 64;
    c.bs = tc_bs[rng() % 5];
    c.w = 1 + rng() % 90;
    c.dil = 1 + rng() % 3;
    if (!run_case(c, rng, n_cases + n, true)) ++failed;
  }
  std::printf("%d of %d cases failed\n", failed, n_cases + n_tc);
  return failed ? 1 : 0;
}
