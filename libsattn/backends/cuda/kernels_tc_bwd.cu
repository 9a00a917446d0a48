// Tensor-core backward kernels (bf16 q/k/v/dO, fp32 accumulation and gradients), FlashAttention-2's
// recomputation from the forward's log-sum-exp, in two kernels that need no atomics:
//   dq:   one CTA of 4 warps per 64 query rows (16 per warp); over the key tiles of 64 that the
//         rows see: S = Q K^T, dP = dO V^T, P = exp(S - lse), dS = P (dP - delta), dQ += dS K.
//   dkdv: one CTA of 4 warps per 64 keys (16 per warp); over the query heads of the KV head and
//         the query tiles of 64 that see the keys: S^T = K Q^T, dP^T = V dO^T, the same P and dS
//         transposed, dV += P^T dO, dK += dS^T Q.
// Tiles are staged with cp.async in two stages; fragments come from ldmatrix (.trans for the
// operands used as [k x n]); mma.sync m16n8k16. Masks (causal, tails, window with dilation, the
// BSR layout as 16 x 16 sub-block masks of each 64 x 64 tile) apply at element granularity, as in
// the forward. P and dS are rounded to bf16 as MMA operands (as FlashAttention does).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels_internal.h"
#include "tc_common.cuh"

namespace sattn_cuda {

namespace {

using namespace tc;

constexpr int kT = 64;  // rows of every tile (queries or keys)
constexpr float kLog2e = 1.4426950408889634f;

// lse in log2 units for P = 2^(s * scale_log2 - lse2); a row past the end or with no allowed key
// gets +inf, so that its P is 0.
__device__ __forceinline__ float lse2_of(const TcBwdArgs& a, int64_t bh, int64_t i) {
  if (i >= a.seq_len) return INFINITY;
  const float l = a.lse[bh * a.seq_len + i];
  return l == -INFINITY ? INFINITY : l * kLog2e;
}

// Whether (query i, key j) is allowed, given the tile's sub-block mask bit.
template <int Mode>
__device__ __forceinline__ bool allowed(const TcBwdArgs& a, int64_t i, int64_t j, bool sub_ok) {
  bool ok = i < a.seq_len && j < a.kv_len && (!a.causal || j <= i + a.causal_offset);
  if (Mode == kTcTiles) ok = ok && sub_ok;
  if (Mode == kTcWindow) {
    const int64_t dlt = j - (i + a.causal_offset), span = a.window * a.dilation;
    ok = ok && dlt >= -span && dlt <= span && dlt % a.dilation == 0;
  }
  return ok;
}

template <int D, int Mode>
__global__ void __launch_bounds__(kThreads) bwd_dq_tc(const TcBwdArgs a) {
  constexpr int kTileBytes = kT * D * 2;
  constexpr int KD = D / 16, ND = D / 8;
  constexpr int KS = D > 64 ? 32 : kT, NS = KS / 8;  // keys per step
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem), sO = sQ + kTileBytes, sK = sO + kTileBytes, sV = sK + 2 * kTileBytes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, cq = lane & 3;
  const int64_t qt = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (a.heads / a.kv_heads), bh = b * a.heads + h;
  const int64_t q0 = qt * kT, off = a.causal_offset;
  const __nv_bfloat16* qg = static_cast<const __nv_bfloat16*>(a.q) + bh * a.seq_len * D;
  const __nv_bfloat16* og = a.dout16 + bh * a.seq_len * D;
  const __nv_bfloat16* kg = static_cast<const __nv_bfloat16*>(a.k) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const __nv_bfloat16* vg = static_cast<const __nv_bfloat16*>(a.v) + (b * a.kv_heads + kvh) * a.kv_len * D;

  int64_t t_begin = 0, t_end = 0;
  if (Mode == kTcTiles) {
    const int64_t* p = a.tile_ptr + (a.shared ? 0 : (b * a.kv_heads + kvh) * (a.n_qtiles + 1));
    t_begin = p[qt];
    t_end = p[qt + 1];
  } else {
    const int64_t qlast = min(q0 + kT, a.seq_len) - 1 + off;
    int64_t lo = 0, hi = a.causal ? min(a.kv_len, qlast + 1) : a.kv_len;
    if (Mode == kTcWindow) {
      const int64_t span = a.window * a.dilation;
      lo = max(int64_t(0), q0 + off - span);
      hi = min(a.kv_len, qlast + (a.causal ? 0 : span) + 1);
    }
    if (hi > lo) t_begin = lo / kT, t_end = (hi - 1) / kT + 1;
  }
  auto key0_of = [&](int64_t t) -> int64_t { return Mode == kTcTiles ? int64_t(a.tile_col[t]) * kT : t * kT; };

  load_tile<D, kT>(sQ, qg, q0, a.seq_len);
  load_tile<D, kT>(sO, og, q0, a.seq_len);
  cp_async_commit();
  if (t_begin < t_end) {
    load_tile<D, kT>(sK, kg, key0_of(t_begin), a.kv_len);
    load_tile<D, kT>(sV, vg, key0_of(t_begin), a.kv_len);
    cp_async_commit();
  }
  const int64_t row0 = q0 + warp * 16 + g;  // rows row0 and row0 + 8
  const float lse2[2] = {lse2_of(a, bh, row0), lse2_of(a, bh, row0 + 8)};
  const float delta[2] = {row0 < a.seq_len ? a.delta[bh * a.seq_len + row0] : 0.f,
                          row0 + 8 < a.seq_len ? a.delta[bh * a.seq_len + row0 + 8] : 0.f};
  float dq[ND][4];
#pragma unroll
  for (int n = 0; n < ND; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
  const Frag<D> fq(sQ, warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);  // A: Q rows
  const Frag<D> fo(sO, warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);  // A: dO rows
  const Frag<D> fk(sK, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);              // B: K rows (K^T)
  const Frag<D> fv(sV, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);              // B: V rows (V^T)
  const Frag<D> fkt(sK, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);             // B: K as [keys x D]

  for (int64_t t = t_begin; t < t_end; ++t) {
    const int stage = int((t - t_begin) & 1);
    if (t + 1 < t_end) {
      const int64_t nk = key0_of(t + 1);
      load_tile<D, kT>(sK + (stage ^ 1) * kTileBytes, kg, nk, a.kv_len);
      load_tile<D, kT>(sV + (stage ^ 1) * kTileBytes, vg, nk, a.kv_len);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t k0 = key0_of(t);
    const unsigned rowmask = Mode == kTcTiles ? (a.tile_mask[t] >> (warp * 4)) & 0xFu : 0xFu;
#pragma unroll 1
    for (int ks = 0; ks < kT / KS && rowmask; ++ks) {
      const int64_t kb = k0 + ks * KS;
      float s[NS][4], dp[NS][4];
#pragma unroll
      for (int n = 0; n < NS; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        uint32_t qf[4], of[4];
        ldsm_x4(qf, fq.at(0, kk));
        ldsm_x4(of, fo.at(0, kk));
#pragma unroll
        for (int np = 0; np < NS / 2; ++np) {
          uint32_t kf[4], vf[4];
          ldsm_x4(kf, fk.at(ks * KS + np * 16, kk, stage * kTileBytes));
          ldsm_x4(vf, fv.at(ks * KS + np * 16, kk, stage * kTileBytes));
          mma_bf16(s[2 * np], qf, kf[0], kf[1]);
          mma_bf16(s[2 * np + 1], qf, kf[2], kf[3]);
          mma_bf16(dp[2 * np], of, vf[0], vf[1]);
          mma_bf16(dp[2 * np + 1], of, vf[2], vf[3]);
        }
      }
      // dS = P (dP - delta), P = 2^(s scale_log2 - lse2); masked elements give 0.
#pragma unroll
      for (int n = 0; n < NS; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e >> 1;
          const int64_t i = row0 + 8 * r, j = kb + n * 8 + 2 * cq + (e & 1);
          const bool sub_ok = (rowmask >> ((ks * KS) / 16 + (n >> 1))) & 1;
          const float p = allowed<Mode>(a, i, j, sub_ok) ? ex2(s[n][e] * a.scale_log2 - lse2[r]) : 0.f;
          s[n][e] = p * (dp[n][e] - delta[r]);
        }
      // dQ += dS K.
#pragma unroll
      for (int kc = 0; kc < NS / 2; ++kc) {
        uint32_t pa[4];
        pa[0] = pack_bf16(s[2 * kc][0], s[2 * kc][1]);
        pa[1] = pack_bf16(s[2 * kc][2], s[2 * kc][3]);
        pa[2] = pack_bf16(s[2 * kc + 1][0], s[2 * kc + 1][1]);
        pa[3] = pack_bf16(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
        for (int d2 = 0; d2 < ND / 2; ++d2) {
          uint32_t kf[4];
          ldsm_x4_trans(kf, fkt.at(ks * KS + kc * 16, d2, stage * kTileBytes));
          mma_bf16(dq[2 * d2], pa, kf[0], kf[1]);
          mma_bf16(dq[2 * d2 + 1], pa, kf[2], kf[3]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  float* dqg = a.dq + bh * a.seq_len * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t i = row0 + 8 * r;
    if (i >= a.seq_len) continue;
#pragma unroll
    for (int n = 0; n < ND; ++n)
      *reinterpret_cast<float2*>(dqg + i * D + n * 8 + 2 * cq) =
          make_float2(dq[n][2 * r] * a.scale, dq[n][2 * r + 1] * a.scale);
  }
}

template <int D, int Mode>
__global__ void __launch_bounds__(kThreads) bwd_dkdv_tc(const TcBwdArgs a) {
  constexpr int kTileBytes = kT * D * 2;
  constexpr int KD = D / 16, ND = D / 8;
  constexpr int KS = D > 64 ? 32 : kT, NS = KS / 8;  // queries per step
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sK = smem_addr(smem), sV = sK + kTileBytes, sQ = sV + kTileBytes, sO = sQ + 2 * kTileBytes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, cq = lane & 3;
  const int64_t kt = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t group = a.heads / a.kv_heads, k0 = kt * kT, off = a.causal_offset;
  const int64_t bk = b * a.kv_heads + kvh;
  const __nv_bfloat16* kg = static_cast<const __nv_bfloat16*>(a.k) + bk * a.kv_len * D;
  const __nv_bfloat16* vg = static_cast<const __nv_bfloat16*>(a.v) + bk * a.kv_len * D;

  // The query tiles that see these keys: [t_begin, t_end) of the transposed tile list or of all.
  int64_t t_begin = 0, t_end = 0;
  if (Mode == kTcTiles) {
    const int64_t* p = a.ttile_ptr + (a.shared ? 0 : bk * (a.n_ktiles + 1));
    t_begin = p[kt];
    t_end = p[kt + 1];
  } else {
    const int64_t klast = min(k0 + kT, a.kv_len) - 1;
    int64_t lo = a.causal ? max(int64_t(0), k0 - off) : 0, hi = a.seq_len;  // rows i with k0 <= i + off
    if (Mode == kTcWindow) {  // |j - (i + off)| <= span (j <= i + off when causal)
      const int64_t span = a.window * a.dilation;
      lo = max(lo, k0 - off - (a.causal ? 0 : span));
      hi = min(hi, klast - off + span + 1);
    }
    if (hi > lo) t_begin = lo / kT, t_end = (hi - 1) / kT + 1;
  }
  auto q0_of = [&](int64_t t) -> int64_t { return Mode == kTcTiles ? int64_t(a.ttile_col[t]) * kT : t * kT; };
  const int64_t n_tiles = t_end - t_begin, steps = n_tiles * group;  // (head, tile) pairs, head-major

  load_tile<D, kT>(sK, kg, k0, a.kv_len);
  load_tile<D, kT>(sV, vg, k0, a.kv_len);
  cp_async_commit();
  auto stage_load = [&](int64_t x, int st) {
    const int64_t bh = b * a.heads + kvh * group + x / n_tiles, q0 = q0_of(t_begin + x % n_tiles);
    load_tile<D, kT>(sQ + st * kTileBytes, static_cast<const __nv_bfloat16*>(a.q) + bh * a.seq_len * D, q0, a.seq_len);
    load_tile<D, kT>(sO + st * kTileBytes, a.dout16 + bh * a.seq_len * D, q0, a.seq_len);
    cp_async_commit();
  };
  if (steps > 0) stage_load(0, 0);

  float dk[ND][4], dv[ND][4];
#pragma unroll
  for (int n = 0; n < ND; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.f;
  const int64_t key0 = k0 + warp * 16 + g;  // keys key0 and key0 + 8
  const Frag<D> fk(sK, warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);  // A: K rows
  const Frag<D> fv(sV, warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);  // A: V rows
  const Frag<D> fq(sQ, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);              // B: Q rows (Q^T)
  const Frag<D> fo(sO, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);              // B: dO rows (dO^T)
  const Frag<D> fqt(sQ, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);             // B: Q as [queries x D]
  const Frag<D> fot(sO, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);             // B: dO as [queries x D]

  for (int64_t x = 0; x < steps; ++x) {
    const int stage = int(x & 1);
    if (x + 1 < steps) {
      stage_load(x + 1, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t bh = b * a.heads + kvh * group + x / n_tiles, t = t_begin + x % n_tiles, q0 = q0_of(t);
    const unsigned keymask = Mode == kTcTiles ? (a.ttile_mask[t] >> (warp * 4)) & 0xFu : 0xFu;
#pragma unroll 1
    for (int ks = 0; ks < kT / KS && keymask; ++ks) {
      const int64_t qb = q0 + ks * KS;
      float s[NS][4], dp[NS][4];
#pragma unroll
      for (int n = 0; n < NS; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        uint32_t kf[4], vf[4];
        ldsm_x4(kf, fk.at(0, kk));
        ldsm_x4(vf, fv.at(0, kk));
#pragma unroll
        for (int np = 0; np < NS / 2; ++np) {
          uint32_t qf[4], of[4];
          ldsm_x4(qf, fq.at(ks * KS + np * 16, kk, stage * kTileBytes));
          ldsm_x4(of, fo.at(ks * KS + np * 16, kk, stage * kTileBytes));
          mma_bf16(s[2 * np], kf, qf[0], qf[1]);
          mma_bf16(s[2 * np + 1], kf, qf[2], qf[3]);
          mma_bf16(dp[2 * np], vf, of[0], of[1]);
          mma_bf16(dp[2 * np + 1], vf, of[2], of[3]);
        }
      }
      // P^T and dS^T: rows are keys (key0 + 8 r), columns queries.
#pragma unroll
      for (int n = 0; n < NS; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int64_t i = qb + n * 8 + 2 * cq + c;
          const float l2 = lse2_of(a, bh, i);
          const float dl = i < a.seq_len ? a.delta[bh * a.seq_len + i] : 0.f;
          const bool sub_ok = (keymask >> ((ks * KS) / 16 + (n >> 1))) & 1;
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int e = 2 * r + c;
            const float p = allowed<Mode>(a, i, key0 + 8 * r, sub_ok) ? ex2(s[n][e] * a.scale_log2 - l2) : 0.f;
            s[n][e] = p;
            dp[n][e] = p * (dp[n][e] - dl);
          }
        }
      // dV += P^T dO, dK += dS^T Q.
#pragma unroll
      for (int kc = 0; kc < NS / 2; ++kc) {
        uint32_t pa[4], da[4];
        pa[0] = pack_bf16(s[2 * kc][0], s[2 * kc][1]);
        pa[1] = pack_bf16(s[2 * kc][2], s[2 * kc][3]);
        pa[2] = pack_bf16(s[2 * kc + 1][0], s[2 * kc + 1][1]);
        pa[3] = pack_bf16(s[2 * kc + 1][2], s[2 * kc + 1][3]);
        da[0] = pack_bf16(dp[2 * kc][0], dp[2 * kc][1]);
        da[1] = pack_bf16(dp[2 * kc][2], dp[2 * kc][3]);
        da[2] = pack_bf16(dp[2 * kc + 1][0], dp[2 * kc + 1][1]);
        da[3] = pack_bf16(dp[2 * kc + 1][2], dp[2 * kc + 1][3]);
#pragma unroll
        for (int d2 = 0; d2 < ND / 2; ++d2) {
          uint32_t of[4], qf[4];
          ldsm_x4_trans(of, fot.at(ks * KS + kc * 16, d2, stage * kTileBytes));
          ldsm_x4_trans(qf, fqt.at(ks * KS + kc * 16, d2, stage * kTileBytes));
          mma_bf16(dv[2 * d2], pa, of[0], of[1]);
          mma_bf16(dv[2 * d2 + 1], pa, of[2], of[3]);
          mma_bf16(dk[2 * d2], da, qf[0], qf[1]);
          mma_bf16(dk[2 * d2 + 1], da, qf[2], qf[3]);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  float* dkg = a.dk + bk * a.kv_len * D;
  float* dvg = a.dv + bk * a.kv_len * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t j = key0 + 8 * r;
    if (j >= a.kv_len) continue;
#pragma unroll
    for (int n = 0; n < ND; ++n) {
      *reinterpret_cast<float2*>(dkg + j * D + n * 8 + 2 * cq) =
          make_float2(dk[n][2 * r] * a.scale, dk[n][2 * r + 1] * a.scale);
      *reinterpret_cast<float2*>(dvg + j * D + n * 8 + 2 * cq) = make_float2(dv[n][2 * r], dv[n][2 * r + 1]);
    }
  }
}

// delta_i = dO_i . O_i and dO in bf16 (the MMA operand), one warp per row.
__global__ void __launch_bounds__(kThreads) bwd_prep_tc(int64_t rows, int D, const float* o, const float* dout,
                                                        float* delta, __nv_bfloat16* dout16) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5);
  if (row >= rows) return;
  float acc = 0.f;
  for (int c = lane; c < D; c += 32) {
    const float d = dout[row * D + c];
    acc += o[row * D + c] * d;
    dout16[row * D + c] = __float2bfloat16_rn(d);
  }
#pragma unroll
  for (int x = 16; x; x >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, x);
  if (lane == 0) delta[row] = acc;
}

template <class K>
cudaError_t raise_smem(K kernel, int bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

template <int D, int Mode>
cudaError_t launch_bwd_tc(const TcBwdArgs& a) {
  constexpr int smem = 6 * kT * D * 2;  // two single tiles + two double-buffered ones
  static bool configured = false;
  if (!configured) {
    cudaError_t e = raise_smem(bwd_dq_tc<D, Mode>, smem);
    if (e == cudaSuccess) e = raise_smem(bwd_dkdv_tc<D, Mode>, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int64_t n_qt = (a.seq_len + kT - 1) / kT, n_kt = (a.kv_len + kT - 1) / kT;
  if (n_qt > 0) bwd_dq_tc<D, Mode><<<dim3(unsigned(n_qt), unsigned(a.heads), unsigned(a.batch)), kThreads, smem>>>(a);
  if (n_kt > 0)
    bwd_dkdv_tc<D, Mode><<<dim3(unsigned(n_kt), unsigned(a.kv_heads), unsigned(a.batch)), kThreads, smem>>>(a);
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_bwd_tc_dim(const TcBwdArgs& a) {
  switch (a.mode) {
    case kTcDense: return launch_bwd_tc<D, kTcDense>(a);
    case kTcTiles: return launch_bwd_tc<D, kTcTiles>(a);
    case kTcWindow: return launch_bwd_tc<D, kTcWindow>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t tc_bwd_launch(const TcBwdArgs& a) {
  const int64_t rows = a.batch * a.heads * a.seq_len;
  if (rows > 0)
    bwd_prep_tc<<<unsigned((rows + kThreads / 32 - 1) / (kThreads / 32)), kThreads>>>(rows, a.head_dim, a.o, a.dout,
                                                                                       a.delta, a.dout16);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || a.batch == 0 || a.heads == 0) return e;
  switch (a.head_dim) {
    case 64: return launch_bwd_tc_dim<64>(a);
    case 128: return launch_bwd_tc_dim<128>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sattn_cuda
