// Tensor-core backward kernels (bf16 q/k/v/dO, fp32 accumulation and gradients), FlashAttention-2's
// recomputation from the forward's log-sum-exp. By default (tc_bwd_dq_fused) one kernel does it
// all: the dk/dv kernel below also forms dQ += dS K per streamed query tile from dS^T staged in
// shared memory and adds it into the zeroed dq with red.global.add.v2.f32 (dq is then summed in a
// run-dependent order: not bit-reproducible between runs, within fp32 rounding). Measured on an
// H100 at seq 16384: 6-9% less backward time than the two kernels without atomics (S and dP are
// not computed twice). With SATTN_CUDA_DETERMINISTIC=1 in the environment (or the macros at 0) it is
// two kernels, and the gradients are the same bits from run to run:
//   dq:   one CTA of W warps per 16 W query rows (16 per warp); over the key tiles of 64 that the
//         rows see: S = Q K^T, dP = dO V^T, P = exp(S - lse), dS = P (dP - delta), dQ += dS K.
//   dkdv: one CTA of W warps per 16 W keys (16 per warp); over the query heads of the KV head and
//         the query tiles of 64 that see the keys: S^T = K Q^T, dP^T = V dO^T, the same P and dS
//         transposed, dV += P^T dO, dK += dS^T Q.
// Streamed tiles (K/V for dq; Q/dO with their lse and delta for dk/dv) are staged with cp.async in
// two stages; fragments come from ldmatrix (.trans for the operands used as [k x n]); mma.sync
// m16n8k16. Masks (causal, tails, window with dilation, the BSR layout as 16 x 16 sub-block masks)
// apply at element granularity, as in the forward, except where a warp's 16 x 64 block is wholly
// allowed (a full BSR tile inside the sequence and the causal boundary): that block skips the
// per-element test. P and dS are rounded to bf16 as MMA operands (as FlashAttention does).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <cstdlib>
#include <cstring>

#include "kernels_internal.h"
#include "tc_common.cuh"

namespace sattn_cuda {

namespace {

using namespace tc;

constexpr int kT = 64;  // rows of every streamed tile (keys for dq, queries for dk/dv)

template <int D, int Mode, int W>
__global__ void __launch_bounds__(W * 32) bwd_dq_tc(const TcBwdArgs a) {
  constexpr int NT = W * 32, R = 16 * W;
  constexpr int kTileBytes = kT * D * 2, kOwnBytes = R * D * 2;
  constexpr int KD = D / 16, ND = D / 8;
  constexpr int KS = D > 64 ? 32 : kT, NS = KS / 8;  // keys per step
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem), sO = sQ + kOwnBytes, sK = sO + kOwnBytes, sV = sK + 2 * kTileBytes;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, cq = lane & 3;
  const int64_t qt = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (a.heads / a.kv_heads), bh = b * a.heads + h;
  const int64_t q0 = qt * R, off = a.causal_offset;
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
    const int64_t qlast = min(q0 + R, a.seq_len) - 1 + off;
    int64_t lo = 0, hi = a.causal ? min(a.kv_len, qlast + 1) : a.kv_len;
    if (Mode == kTcWindow) {
      const int64_t span = a.window * a.dilation;
      lo = max(int64_t(0), q0 + off - span);
      hi = min(a.kv_len, qlast + (a.causal ? 0 : span) + 1);
    }
    if (hi > lo) t_begin = lo / kT, t_end = (hi - 1) / kT + 1;
  }
  auto key0_of = [&](int64_t t) -> int64_t { return Mode == kTcTiles ? int64_t(a.tile_col[t]) * kT : t * kT; };

  load_tile<D, R, NT>(sQ, qg, q0, a.seq_len);
  load_tile<D, R, NT>(sO, og, q0, a.seq_len);
  cp_async_commit();
  if (t_begin < t_end) {
    load_tile<D, kT, NT>(sK, kg, key0_of(t_begin), a.kv_len);
    load_tile<D, kT, NT>(sV, vg, key0_of(t_begin), a.kv_len);
    cp_async_commit();
  }
  const int64_t qw = q0 + warp * 16, row0 = qw + g;  // rows row0 and row0 + 8 (< seq_pad)
  const float lse2[2] = {a.lse2[bh * a.seq_pad + row0], a.lse2[bh * a.seq_pad + row0 + 8]};
  const float delta[2] = {a.delta[bh * a.seq_pad + row0], a.delta[bh * a.seq_pad + row0 + 8]};
  const bool rows_in = qw + 16 <= a.seq_len;
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
      load_tile<D, kT, NT>(sK + (stage ^ 1) * kTileBytes, kg, nk, a.kv_len);
      load_tile<D, kT, NT>(sV + (stage ^ 1) * kTileBytes, vg, nk, a.kv_len);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t k0 = key0_of(t);
    const unsigned rowmask = Mode == kTcTiles ? (a.tile_mask[t] >> (warp * 4)) & 0xFu : 0xFu;
    // The warp's 16 x 64 block needs no per-element test: whole sub-blocks, inside both lengths,
    // wholly in the past.
    const bool full = Mode != kTcWindow && rowmask == 0xFu && rows_in && k0 + kT <= a.kv_len &&
                      (!a.causal || k0 + kT - 1 <= qw + off);
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
      if (full) {
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1;
            s[n][e] = ex2(s[n][e] * a.scale_log2 - lse2[r]) * (dp[n][e] - delta[r]);
          }
      } else {
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1;
            const int64_t i = row0 + 8 * r, j = kb + n * 8 + 2 * cq + (e & 1);
            const bool sub_ok = (rowmask >> ((ks * KS) / 16 + (n >> 1))) & 1;
            const float p = bwd_allowed<Mode>(a, i, j, sub_ok) ? ex2(s[n][e] * a.scale_log2 - lse2[r]) : 0.f;
            s[n][e] = p * (dp[n][e] - delta[r]);
          }
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

#ifndef SATTN_BWD_KV_KS64
#define SATTN_BWD_KV_KS64 64
#endif

// dst[0..1] += (x, y) in device memory (one vector reduction on sm_90, two atomics before).
__device__ __forceinline__ void red_add2(float* dst, float x, float y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(dst), "f"(x), "f"(y) : "memory");
#else
  atomicAdd(dst, x);
  atomicAdd(dst + 1, y);
#endif
}
#ifndef SATTN_BWD_KV_MINB
#define SATTN_BWD_KV_MINB 1
#endif
// Fused (tc_bwd_dq_fused(D)): the dk/dv kernel also adds each step's dQ = dS K into a.dq (zeroed
// first) with vector reductions, through dS^T staged in shared memory; the dq kernel is not run.
template <int D, int Mode, int W, bool kFused>
__global__ void __launch_bounds__(W * 32, D > 64 ? 1 : SATTN_BWD_KV_MINB) bwd_dkdv_tc(const TcBwdArgs a) {
  constexpr int NT = W * 32, R = 16 * W;
  constexpr int kTileBytes = kT * D * 2, kOwnBytes = R * D * 2;
  constexpr int KD = D / 16, ND = D / 8;
  constexpr int KS = D > 64 ? 32 : SATTN_BWD_KV_KS64, NS = KS / 8;  // queries per step
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sK = smem_addr(smem), sV = sK + kOwnBytes, sQ = sV + kOwnBytes, sO = sQ + 2 * kTileBytes;
  // Per stage: the 64 queries' lse2, then their delta.
  float* const sL = reinterpret_cast<float*>(smem + 2 * kOwnBytes + 4 * kTileBytes);
  // kFused: dS^T of the step, R keys x 64 queries bf16 (swizzled like the other tiles).
  const uint32_t sDS = smem_addr(smem + 2 * kOwnBytes + 4 * kTileBytes + 4 * kT * 4);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, cq = lane & 3;
  const int64_t kt = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t group = a.heads / a.kv_heads, k0 = kt * R, off = a.causal_offset;
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
    const int64_t klast = min(k0 + R, a.kv_len) - 1;
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

  load_tile<D, R, NT>(sK, kg, k0, a.kv_len);
  load_tile<D, R, NT>(sV, vg, k0, a.kv_len);
  cp_async_commit();
  auto stage_load = [&](int64_t x, int st) {
    const int64_t bh = b * a.heads + kvh * group + x / n_tiles, q0 = q0_of(t_begin + x % n_tiles);
    load_tile<D, kT, NT>(sQ + st * kTileBytes, static_cast<const __nv_bfloat16*>(a.q) + bh * a.seq_len * D, q0,
                         a.seq_len);
    load_tile<D, kT, NT>(sO + st * kTileBytes, a.dout16 + bh * a.seq_len * D, q0, a.seq_len);
    if (threadIdx.x < 2 * kT / 4) {  // 16 chunks of lse2, 16 of delta (seq_pad rows: no bounds)
      const int c = threadIdx.x % (kT / 4), which = threadIdx.x / (kT / 4);
      const float* src = (which ? a.delta : a.lse2) + bh * a.seq_pad + q0 + 4 * c;
      cp_async16(smem_addr(sL + (st * 2 + which) * kT + 4 * c), src, 16);
    }
    cp_async_commit();
  };
  if (steps > 0) stage_load(0, 0);

  float dk[ND][4], dv[ND][4];
#pragma unroll
  for (int n = 0; n < ND; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.f;
  const int64_t kw = k0 + warp * 16, key0 = kw + g;  // keys key0 and key0 + 8
  const bool keys_in = kw + 16 <= a.kv_len;
  const Frag<D> fk(sK, warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);  // A: K rows
  const Frag<D> fv(sV, warp * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);  // A: V rows
  const Frag<D> fq(sQ, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);              // B: Q rows (Q^T)
  const Frag<D> fo(sO, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);              // B: dO rows (dO^T)
  const Frag<D> fqt(sQ, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);             // B: Q as [queries x D]
  const Frag<D> fot(sO, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);             // B: dO as [queries x D]
  const Frag<D> fkt(sK, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);             // kFused, B: K as [keys x D]
  // kFused, A: dS (16 queries x 16 keys) read transposed from dS^T; warp w always takes the queries
  // 16 (w % 4).. of the 64, so its lane address is fixed: + 16 kk rows per 16-key step.
  static_assert(!kFused || W % (kT / 16) == 0, "the fused dQ gives each warp one 16-query slice");
  const int dq_mt = warp % (kT / 16);
  const uint32_t ds_lane = [&] {
    const int row = (lane & 7) + 8 * (lane >> 4), x = (row & 7) ^ ((lane >> 3) & 1);
    return sDS + uint32_t(row * kT * 2) + uint32_t(((2 * dq_mt) ^ x) << 4);
  }();

  for (int64_t x = 0; x < steps; ++x) {
    const int stage = int(x & 1);
    if (x + 1 < steps) {
      stage_load(x + 1, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t t = t_begin + x % n_tiles, q0 = q0_of(t);
    const unsigned keymask = Mode == kTcTiles ? (a.ttile_mask[t] >> (warp * 4)) & 0xFu : 0xFu;
    const bool full = Mode != kTcWindow && keymask == 0xFu && keys_in && q0 + kT <= a.seq_len &&
                      (!a.causal || kw + 15 <= q0 + off);
    const float* lsm = sL + stage * 2 * kT;  // lse2[64], delta[64] of this tile's queries
#pragma unroll 1
    for (int ks = 0; ks < kT / KS && keymask; ++ks) {
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
      if (full) {
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int iq = ks * KS + n * 8 + 2 * cq + c;  // query within the tile
            const float l2 = lsm[iq], dl = lsm[kT + iq];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
              const int e = 2 * r + c;
              const float p = ex2(s[n][e] * a.scale_log2 - l2);
              s[n][e] = p;
              dp[n][e] = p * (dp[n][e] - dl);
            }
          }
      } else {
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int c = 0; c < 2; ++c) {
            const int iq = ks * KS + n * 8 + 2 * cq + c;
            const float l2 = lsm[iq], dl = lsm[kT + iq];
            const int64_t i = q0 + iq;
            const bool sub_ok = (keymask >> ((ks * KS) / 16 + (n >> 1))) & 1;
#pragma unroll
            for (int r = 0; r < 2; ++r) {
              const int e = 2 * r + c;
              const float p = bwd_allowed<Mode>(a, i, key0 + 8 * r, sub_ok) ? ex2(s[n][e] * a.scale_log2 - l2) : 0.f;
              s[n][e] = p;
              dp[n][e] = p * (dp[n][e] - dl);
            }
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
        if (kFused) {  // dS^T rows warp*16 + g (+8), query columns ks*KS + kc*16 + 2cq (+8)
          const int rr = warp * 16 + g, qc = ks * KS + kc * 16 + 2 * cq;
          const uint32_t b0 = (qc & 7) * 2, c0 = qc >> 3;
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(chunk_addr<kT>(sDS, rr, c0) + b0), "r"(da[0]));
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(chunk_addr<kT>(sDS, rr + 8, c0) + b0), "r"(da[1]));
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(chunk_addr<kT>(sDS, rr, c0 + 1) + b0), "r"(da[2]));
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(chunk_addr<kT>(sDS, rr + 8, c0 + 1) + b0), "r"(da[3]));
        }
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
    if (kFused) {
      if (!keymask) {  // this warp's 16 keys see none of these queries: their dS^T rows are 0
#pragma unroll
        for (int z = lane; z < 16 * (kT / 8); z += 32)
          asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(chunk_addr<kT>(sDS, warp * 16 + z / (kT / 8), z % (kT / 8))),
                       "r"(0));
      }
      __syncthreads();  // dS^T of every warp is in sDS
      // dQ[q0.., :] += dS K: 16 queries x 64 columns over all R keys per warp and pass.
      const int64_t bh = b * a.heads + kvh * group + x / n_tiles;
      float* dqg = a.dq + bh * a.seq_len * D;
      const int mt = dq_mt;
#pragma unroll 1
      for (int half = warp / (kT / 16); half < D / 64; half += W / (kT / 16)) {
        float acc[8][4];
#pragma unroll
        for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < R / 16; ++kk) {
          uint32_t af[4];
          ldsm_x4_trans(af, ds_lane + uint32_t(16 * kk * kT * 2));
#pragma unroll
          for (int d2 = 0; d2 < 4; ++d2) {
            uint32_t kf[4];
            ldsm_x4_trans(kf, fkt.at(16 * kk, half * 4 + d2));
            mma_bf16(acc[2 * d2], af, kf[0], kf[1]);
            mma_bf16(acc[2 * d2 + 1], af, kf[2], kf[3]);
          }
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t i = q0 + mt * 16 + g + 8 * r;
          if (i >= a.seq_len) continue;
#pragma unroll
          for (int n = 0; n < 8; ++n)
            red_add2(dqg + i * D + half * 64 + n * 8 + 2 * cq, acc[n][2 * r] * a.scale, acc[n][2 * r + 1] * a.scale);
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

// Per padded row (one warp each): delta = dO . O, lse2 = lse log2(e) (+inf for a row with no
// allowed key, and past seq_len with delta 0), dO in bf16 (the MMA operand).
__global__ void __launch_bounds__(kThreads) bwd_prep_tc(int64_t rows, int64_t seq_len, int64_t seq_pad, int D,
                                                        const float* o, const float* dout, const float* lse,
                                                        float* delta, float* lse2, __nv_bfloat16* dout16) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5);  // padded
  if (row >= rows) return;
  const int64_t bh = row / seq_pad, i = row % seq_pad;
  if (i >= seq_len) {
    if (lane == 0) delta[row] = 0.f, lse2[row] = INFINITY;
    return;
  }
  const int64_t src = bh * seq_len + i;
  float acc = 0.f;
  for (int c = lane; c < D; c += 32) {
    const float d = dout[src * D + c];
    acc += o[src * D + c] * d;
    dout16[src * D + c] = __float2bfloat16_rn(d);
  }
#pragma unroll
  for (int x = 16; x; x >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, x);
  if (lane == 0) {
    const float l = lse[src];
    delta[row] = acc;
    lse2[row] = l == -INFINITY ? INFINITY : l * 1.4426950408889634f;
  }
}

template <class K>
cudaError_t raise_smem(K kernel, int bytes) {
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

// SATTN_CUDA_DETERMINISTIC (set, and not "0") asks for gradients that do not depend on the order
// of floating-point additions between runs: the two-kernel backward, whatever tc_bwd_dq_fused says.
bool deterministic_requested() {
  const char* e = std::getenv("SATTN_CUDA_DETERMINISTIC");
  return e && *e && std::strcmp(e, "0") != 0;
}

template <int D, int Mode>
cudaError_t launch_bwd_tc(const TcBwdArgs& a) {
  constexpr int RQ = tc_bwd_dq_rows(D), RK = tc_bwd_kv_rows(D), WQ = RQ / 16, WK = RK / 16;
  constexpr int smem_dq = 2 * RQ * D * 2 + 4 * kT * D * 2;               // Q, dO + two stages of K, V
  constexpr int smem_kv = 2 * RK * D * 2 + 4 * kT * D * 2 + 4 * kT * 4;  // K, V + two of Q, dO, lse2, delta
  constexpr int smem_kv_fused = smem_kv + RK * kT * 2;                    // + dS^T
  static bool configured = false;
  if (!configured) {
    cudaError_t e = raise_smem(bwd_dq_tc<D, Mode, WQ>, smem_dq);
    if (e == cudaSuccess) e = raise_smem(bwd_dkdv_tc<D, Mode, WK, false>, smem_kv);
    if (e == cudaSuccess && tc_bwd_dq_fused(D)) e = raise_smem(bwd_dkdv_tc<D, Mode, WK, true>, smem_kv_fused);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int64_t n_qt = (a.seq_len + RQ - 1) / RQ, n_kt = (a.kv_len + RK - 1) / RK;
  const dim3 kv_grid(unsigned(n_kt), unsigned(a.kv_heads), unsigned(a.batch));
  if (tc_bwd_dq_fused(D) && !deterministic_requested()) {  // the dk/dv kernel adds into the zeroed dq
    const cudaError_t e = cudaMemsetAsync(a.dq, 0, size_t(a.batch * a.heads * a.seq_len) * D * sizeof(float));
    if (e != cudaSuccess) return e;
    if (n_kt > 0) bwd_dkdv_tc<D, Mode, WK, true><<<kv_grid, WK * 32, smem_kv_fused>>>(a);
    return cudaGetLastError();
  }
  if (n_qt > 0)
    bwd_dq_tc<D, Mode, WQ><<<dim3(unsigned(n_qt), unsigned(a.heads), unsigned(a.batch)), WQ * 32, smem_dq>>>(a);
  if (n_kt > 0) bwd_dkdv_tc<D, Mode, WK, false><<<kv_grid, WK * 32, smem_kv>>>(a);
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
  const int64_t rows = a.batch * a.heads * a.seq_pad;
  if (rows > 0)
    bwd_prep_tc<<<unsigned((rows + kThreads / 32 - 1) / (kThreads / 32)), kThreads>>>(
        rows, a.seq_len, a.seq_pad, a.head_dim, a.o, a.dout, a.lse, a.delta, a.lse2, a.dout16);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || a.batch == 0 || a.heads == 0) return e;
#if SATTN_HOPPER
  if ((a.head_dim == 64 || a.head_dim == 128) && !deterministic_requested() && hopper_device()) {
    const char* all = std::getenv("SATTN_CUDA_HOPPER");
    const char* bwd = std::getenv("SATTN_CUDA_HOPPER_BWD");
    const int variant = bwd && (std::strcmp(bwd, "1") == 0 || std::strcmp(bwd, "2") == 0) ? bwd[0] - '0' : SATTN_HOPPER_BWD_DEFAULT;
    if (!(all && std::strcmp(all, "0") == 0) && !(bwd && std::strcmp(bwd, "0") == 0)) return hopper_bwd_launch(a, variant);
  }
#endif
  switch (a.head_dim) {
    case 64: return launch_bwd_tc_dim<64>(a);
    case 128: return launch_bwd_tc_dim<128>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sattn_cuda
