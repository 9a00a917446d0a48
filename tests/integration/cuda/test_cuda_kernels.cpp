// GPU test of the sattn CUDA kernels against a double-precision CPU reference over randomized
// shapes (tails, causal, GQA, empty rows, every mode, fp32 and bf16), on the SIMT kernel and on the
// tensor-core kernel, and the backward (lse, dq, dk, dv). Usage: test_cuda_kernels [SIMT_CASES [SEED
// [TC_CASES [BWD_CASES]]]]. Exit 77 (CTest: skipped)
// when no CUDA device is present; 0 when every case passes; 1 otherwise.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels_internal.h"
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

// Set in main and per run: the forward path every tensor-core case must take (null: not checked).
// On a compute capability 9.0 device with the Hopper kernels built, head_dim 128 takes the
// default SATTN_HOPPER_DEFAULT_128 and head_dim 64 SATTN_HOPPER_DEFAULT_64 (kernels_internal.h),
// and SATTN_CUDA_HOPPER=0|1|2 picks mma.sync|wgmma|wgmma-pipelined; elsewhere mma.sync.
bool g_hopper = false;
const char* g_expect_path = nullptr;
// Appended to the backward lines' kernel name: "/ws" (the Hopper wgmma backward over 128 keys with a
// producer warpgroup, the default there for tensor-core cases), "/wg" (SATTN_CUDA_HOPPER_BWD=1: the
// 64-key wgmma backward), "/wgred" (that one with SATTN_CUDA_HOPPER_BWD_DQ=red) or "/mma"
// (SATTN_CUDA_HOPPER_BWD=0: the mma.sync kernels).
std::string g_bwd_label;

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

// Layout per (b, kvh): CSR random key subsets (some rows empty), BSR random block lists (some
// block rows empty). Returns the entries per layout (rows + 1).
int64_t make_layout(const Case& c, std::mt19937_64& rng, std::vector<int64_t>& ptr, std::vector<int32_t>& idx) {
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
  return (c.mode == SATTN_CUDA_CSR ? c.S : brows) + 1;
}

// tc = false: sattn_cuda_forward (SIMT, device layout); true: a plan that must pick the
// tensor-core kernel (host layout).
bool run_case(const Case& c, std::mt19937_64& rng, int n, bool tc) {
  std::normal_distribution<float> nd;
  const int64_t nq = c.B * c.H * c.S * c.D, nkv = c.B * c.KVH * c.KV * c.D;
  std::vector<float> q(nq), k(nkv), v(nkv);
  for (auto* t : {&q, &k, &v}) for (float& x : *t) { x = nd(rng); if (c.bf16) x = from_bf16(to_bf16(x)); }
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  const int64_t rows_per_layout = make_layout(c, rng, ptr, idx);
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
  const char* path = "simt";
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
    path = sattn_cuda_plan_forward_path(plan);
    if (g_expect_path && std::strcmp(path, g_expect_path) != 0) {
      std::printf("%-3d expected the %s forward on this device, got %s\n", n, g_expect_path, path);
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
  std::printf("%-3d %-8s %-6s %-4s causal=%d B=%lld H=%lld KVH=%lld S=%lld KV=%lld D=%lld bs=%lld w=%lld dil=%lld  rel=%.2e %s\n", n,
              path, names[c.mode], c.bf16 ? "bf16" : "fp32", c.causal, (long long)c.B, (long long)c.H, (long long)c.KVH,
              (long long)c.S, (long long)c.KV, (long long)c.D, (long long)c.bs, (long long)c.w, (long long)c.dil, rel,
              ok ? "ok" : (finite ? "FAIL" : "FAIL (non-finite)"));
  return ok;
}

// Backward: a plan (tensor-core forward where it applies, else SIMT) runs the forward with lse,
// then sattn_cuda_plan_backward; lse, dq, dk and dv are compared with a double reference
// (explicit softmax per row over the same keys; GQA sums the query heads into dk/dv).
bool run_bwd_case(const Case& c, std::mt19937_64& rng, int n, bool tc, bool det) {
  std::normal_distribution<float> nd;
  const int64_t nq = c.B * c.H * c.S * c.D, nkv = c.B * c.KVH * c.KV * c.D;
  std::vector<float> q(nq), k(nkv), v(nkv), dout(nq);
  for (auto* t : {&q, &k, &v}) for (float& x : *t) { x = nd(rng); if (c.bf16) x = from_bf16(to_bf16(x)); }
  for (float& x : dout) x = nd(rng);
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  const int64_t rows_per_layout = make_layout(c, rng, ptr, idx);
  std::vector<double> rlse(c.B * c.H * c.S, -INFINITY), rdq(nq, 0.0), rdk(nkv, 0.0), rdv(nkv, 0.0);
  // The magnitudes of dq's and dk's summands (bf16 check below): scale P (|dO|.|V| + |delta|) |k|, |q|.
  std::vector<double> mdq(nq, 0.0), mdk(nkv, 0.0);
  const double scale = 1.0 / std::sqrt(double(c.D));
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t kvh = h / (c.H / c.KVH);
      for (int64_t i = 0; i < c.S; ++i) {
        const auto ks = keys_of(c, ptr, idx, (b * c.KVH + kvh) * rows_per_layout, i);
        if (ks.empty()) continue;
        const int64_t row = (b * c.H + h) * c.S + i;
        const float* qr = &q[row * c.D];
        const float* dor = &dout[row * c.D];
        std::vector<double> s(ks.size()), dp(ks.size()), dpa(ks.size());
        double m = -INFINITY;
        for (size_t t = 0; t < ks.size(); ++t) {
          const int64_t kr = ((b * c.KVH + kvh) * c.KV + ks[t]) * c.D;
          double d = 0, e = 0, ea = 0;
          for (int64_t x = 0; x < c.D; ++x) {
            d += double(qr[x]) * k[kr + x];
            e += double(dor[x]) * v[kr + x];
            ea += std::abs(double(dor[x]) * v[kr + x]);
          }
          s[t] = d * scale;
          dp[t] = e;
          dpa[t] = ea;
          m = std::max(m, s[t]);
        }
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - m));
        rlse[row] = m + std::log(sum);
        double delta = 0;
        for (size_t t = 0; t < ks.size(); ++t) delta += (s[t] /= sum) * dp[t];
        for (size_t t = 0; t < ks.size(); ++t) {
          const int64_t kr = ((b * c.KVH + kvh) * c.KV + ks[t]) * c.D;
          const double ds = s[t] * (dp[t] - delta), dsa = s[t] * (dpa[t] + std::abs(delta));
          for (int64_t x = 0; x < c.D; ++x) {
            rdq[row * c.D + x] += scale * ds * k[kr + x];
            rdk[kr + x] += scale * ds * qr[x];
            rdv[kr + x] += s[t] * dor[x];
            mdq[row * c.D + x] += scale * dsa * std::abs(k[kr + x]);
            mdk[kr + x] += scale * dsa * std::abs(qr[x]);
          }
        }
      }
    }
  const size_t es = c.bf16 ? 2 : 4;
  auto upload = [&](const std::vector<float>& t, bool as_input) {
    void* d;
    CK(cudaMalloc(&d, t.size() * (as_input ? es : 4)));
    if (as_input && c.bf16) {
      std::vector<uint16_t> h(t.size());
      for (size_t x = 0; x < t.size(); ++x) h[x] = to_bf16(t[x]);
      CK(cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice));
    } else {
      CK(cudaMemcpy(d, t.data(), t.size() * 4, cudaMemcpyHostToDevice));
    }
    return d;
  };
  auto poisoned = [&](int64_t count) {
    float* d;
    CK(cudaMalloc(&d, std::max<int64_t>(1, count) * 4));
    CK(cudaMemset(d, 0xff, std::max<int64_t>(1, count) * 4));  // NaN: every element must be written
    return d;
  };
  void *gq = upload(q, true), *gk = upload(k, true), *gv = upload(v, true), *gdo = upload(dout, false);
  float *go = poisoned(nq), *glse = poisoned(c.B * c.H * c.S), *gdq = poisoned(nq), *gdk = poisoned(nkv), *gdv = poisoned(nkv);
  SattnCudaArgs a{};
  a.mode = c.mode; a.bf16 = c.bf16; a.batch = c.B; a.heads = c.H; a.kv_heads = c.KVH; a.seq_len = c.S;
  a.kv_len = c.KV; a.head_dim = c.D; a.causal = c.causal; a.causal_offset = c.KV - c.S; a.scale = float(scale);
  a.ptr = ptr.empty() ? nullptr : ptr.data(); a.idx = idx.empty() ? nullptr : idx.data();
  a.shared = 0; a.block_size = c.bs; a.window = c.w; a.dilation = c.dil;
  char msg[256] = "";
  SattnCudaPlan* plan = nullptr;
  if (sattn_cuda_plan_create(&a, tc ? 1 : 0, &plan, msg) != 0) { std::printf("plan failed: %s\n", msg); return false; }
  const std::string kernel = sattn_cuda_plan_kernel(plan);
  int rc = sattn_cuda_plan_run_lse(plan, gq, gk, gv, go, glse, msg);
  if (rc == 0) rc = sattn_cuda_plan_backward(plan, gq, gk, gv, go, static_cast<float*>(gdo), glse, gdq, gdk, gdv, msg);
  sattn_cuda_plan_destroy(plan);
  if (rc != 0) { std::printf("launch failed: %s\n", msg); return false; }
  CK(cudaDeviceSynchronize());
  auto fetch = [&](const float* d, size_t count) {
    std::vector<float> h(count);
    CK(cudaMemcpy(h.data(), d, count * 4, cudaMemcpyDeviceToHost));
    return h;
  };
  const auto lse = fetch(glse, c.B * c.H * c.S), dq = fetch(gdq, nq), dk = fetch(gdk, nkv), dv = fetch(gdv, nkv);
  for (void* p : {gq, gk, gv, gdo, (void*)go, (void*)glse, (void*)gdq, (void*)gdk, (void*)gdv}) cudaFree(p);
  auto rel_err = [](const std::vector<float>& out, const std::vector<double>& ref, bool& finite) {
    double maxabs = 0, refmax = 0;
    for (size_t x = 0; x < out.size(); ++x) {
      if (std::isinf(ref[x])) {  // an empty row's lse: -inf
        if (!(std::isinf(out[x]) && out[x] < 0)) finite = false;
        continue;
      }
      if (!std::isfinite(out[x])) finite = false;
      maxabs = std::max(maxabs, std::abs(out[x] - ref[x]));
      refmax = std::max(refmax, std::abs(ref[x]));
    }
    return refmax > 0 ? maxabs / refmax : maxabs;
  };
  bool finite = true;
  const double e_lse = rel_err(lse, rlse, finite), e_dq = rel_err(dq, rdq, finite), e_dk = rel_err(dk, rdk, finite),
               e_dv = rel_err(dv, rdv, finite);
  // bf16: the tensor-core forward rounds P to bf16 before P V, so o (and with it delta = dO . o)
  // carries the forward's bf16 error; fp32 runs the SIMT kernels end to end.
  const double tol = c.bf16 ? 1e-2 : 1e-4;
  // bf16: dS = P (dP - delta) cancels where dP ~ delta (a row with one key: dS = 0 exactly), while
  // the kernels take dP from dO rounded to bf16 (the MMA operand) and delta from fp32 dO, so the
  // error of dq and dk stays at the rounding of their summands, not of their (small) sum. Such a
  // gradient also passes when its error is within tol / 5 of the largest summand magnitude
  // (mdq, mdk): a bound that still fails on any wrong key, scale or mask.
  auto max_of = [](const std::vector<double>& t) { double m = 0; for (double x : t) m = std::max(m, x); return m; };
  auto abs_err = [](const std::vector<float>& out, const std::vector<double>& ref) {
    double m = 0;
    for (size_t x = 0; x < ref.size(); ++x) m = std::max(m, std::abs(out[x] - ref[x]));
    return m;
  };
  const double e_dq_m = c.bf16 && !mdq.empty() ? abs_err(dq, rdq) / std::max(max_of(mdq), 1e-30) : 1.0;
  const double e_dk_m = c.bf16 && !mdk.empty() ? abs_err(dk, rdk) / std::max(max_of(mdk), 1e-30) : 1.0;
  const bool dq_ok = e_dq <= tol || e_dq_m <= tol / 5, dk_ok = e_dk <= tol || e_dk_m <= tol / 5;
  const double worst = std::max(e_lse, e_dv);
  const bool ok = finite && worst <= tol && dq_ok && dk_ok;
  static const char* names[] = {"dense", "csr", "bsr", "window"};
  char extra[64] = "";
  if (e_dq > tol || e_dk > tol) std::snprintf(extra, sizeof extra, " (of summands: dq=%.1e dk=%.1e)", e_dq_m, e_dk_m);
  std::printf("%-3d bwd %-11s %-6s %-4s causal=%d B=%lld H=%lld KVH=%lld S=%lld KV=%lld D=%lld bs=%lld w=%lld dil=%lld  "
              "lse=%.1e dq=%.1e dk=%.1e dv=%.1e%s %s\n",
              n, (kernel + (det ? "/det" : "") + g_bwd_label).c_str(), names[c.mode], c.bf16 ? "bf16" : "fp32", c.causal, (long long)c.B, (long long)c.H,
              (long long)c.KVH, (long long)c.S, (long long)c.KV, (long long)c.D, (long long)c.bs, (long long)c.w,
              (long long)c.dil, e_lse, e_dq, e_dk, e_dv, extra, ok ? "ok" : (finite ? "FAIL" : "FAIL (non-finite)"));
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
  int n_extra = 0;  // tensor-core cases run again on the other forward kernels (Hopper)
  {
    cudaDeviceProp prop{};
    CK(cudaGetDeviceProperties(&prop, 0));
    g_hopper = prop.major == 9 && prop.minor == 0 && sattn_cuda_hopper_built();
    unsetenv("SATTN_CUDA_HOPPER");
    std::printf("device %s, compute capability %d.%d; Hopper kernels %s; tensor-core forward: %s\n", prop.name, prop.major,
                prop.minor, sattn_cuda_hopper_built() ? "built" : "not built",
                g_hopper ? "head_dim 64 and 128 by default, then each case on the other two of mma.sync, wgmma, wgmma-pipelined"
                         : "mma.sync");
  }
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
    // On a Hopper GPU every case runs three times, fresh data each time: on the default kernel for
    // its head_dim, then with SATTN_CUDA_HOPPER set to each of the other two variants.
    const int def = !g_hopper ? 0 : c.D == 128 ? SATTN_HOPPER_DEFAULT_128 : SATTN_HOPPER_DEFAULT_64;
    g_expect_path = sattn_cuda::forward_path_name(def);
    if (!run_case(c, rng, n_cases + n, true)) ++failed;
    for (int v = 0; g_hopper && v < 3; ++v) {
      if (v == def) continue;
      const char val[2] = {char('0' + v), 0};
      setenv("SATTN_CUDA_HOPPER", val, 1);
      g_expect_path = sattn_cuda::forward_path_name(v);
      if (!run_case(c, rng, n_cases + n, true)) ++failed;
      ++n_extra;
      unsetenv("SATTN_CUDA_HOPPER");
    }
    g_expect_path = nullptr;
  }
  // The backward over every mode, fp32 and bf16, after a SIMT or a tensor-core forward: GQA,
  // causal with kv_len > seq_len, tails, empty rows, head_dim up to 256.
  const int n_bwd = argc > 4 ? std::atoi(argv[4]) : n_cases;
  int n_run = 0;
  for (int n = 0; n < n_bwd; ++n) {
    std::uniform_int_distribution<int64_t> r(1, 160);
    Case c{};
    c.mode = n % 4;
    c.bf16 = (n / 4) % 2;
    c.causal = (n / 8) % 2;
    c.KVH = 1 + rng() % 2;
    c.H = c.KVH * (1 + rng() % 3);
    c.B = 1 + rng() % 2;
    c.S = r(rng);
    c.KV = c.causal ? c.S + rng() % 40 : r(rng);
    c.D = c.bf16 && n % 3 != 2 ? (n % 2 ? 128 : 64) : dims[rng() % 7];  // bf16 64/128: the tensor-core backward
    c.bs = c.bf16 ? int64_t(16) << (rng() % 3) : int64_t(1) << (2 + rng() % 4);
    c.w = 1 + rng() % 20;
    c.dil = 1 + rng() % 3;
    // The tensor-core backward (fresh data each time): by default (dq added into by the dk/dv
    // kernel where tc_bwd_dq_fused; on Hopper the wgmma kernel), with SATTN_CUDA_DETERMINISTIC=1
    // (two mma.sync kernels) and, on Hopper, with SATTN_CUDA_HOPPER_BWD=0 (the fused mma.sync one).
    const bool tc_bwd = c.bf16 && (c.D == 64 || c.D == 128) && c.mode != SATTN_CUDA_CSR;
    // On Hopper also with SATTN_CUDA_HOPPER_BWD=1 (the 64-key wgmma kernel), bulk and vector
    // (SATTN_CUDA_HOPPER_BWD_DQ=red) dQ reductions.
    for (int det = 0; det < (c.bf16 ? (g_hopper ? 5 : 2) : 1); ++det) {
      setenv("SATTN_CUDA_DETERMINISTIC", det == 1 ? "1" : "0", 1);
      if (det == 2) setenv("SATTN_CUDA_HOPPER_BWD", "0", 1);
      if (det >= 3) setenv("SATTN_CUDA_HOPPER_BWD", "1", 1);
      if (det == 4) setenv("SATTN_CUDA_HOPPER_BWD_DQ", "red", 1);
      g_bwd_label = !tc_bwd || !g_hopper || det == 1 ? "" : det == 2 ? "/mma" : det == 3 ? "/wg" : det == 4 ? "/wgred" : "/ws";
      if (!run_bwd_case(c, rng, n_cases + n_tc + n, c.bf16 != 0, det == 1)) ++failed;
      unsetenv("SATTN_CUDA_HOPPER_BWD");
      unsetenv("SATTN_CUDA_HOPPER_BWD_DQ");
      ++n_run;
    }
    g_bwd_label.clear();
  }
  unsetenv("SATTN_CUDA_DETERMINISTIC");
  std::printf("%d of %d cases failed\n", failed, n_cases + n_tc + n_extra + n_run);
  return failed ? 1 : 0;
}
