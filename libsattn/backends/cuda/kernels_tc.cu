// Tensor-core forward kernel (bf16 inputs, fp32 accumulation and output), FlashAttention-2
// style: one CTA of 4 warps per (128 query rows, head, batch); each warp owns 32 query rows (two
// m16 tiles, so that every K/V fragment read from shared memory feeds two MMAs).
// Key/value tiles of 64 keys are staged in shared memory with cp.async (two stages: the next
// tile loads while the current one is computed), fragments come from ldmatrix, S = Q K^T and
// O += P V run on mma.sync m16n8k16 bf16, and the online softmax (running max and sum, rescaled
// accumulator) stays in registers. The key tiles of a query tile come from the layout (block
// sparse: a tile list with 16 x 16 sub-block masks built on the host), from the sliding window
// (computed here, any dilation) or from the whole causal/non-causal range (dense). Causal,
// sequence tails and the sub-block masks are applied at element granularity; a row with no
// allowed key gives 0.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "kernels_internal.h"
#include "tc_common.cuh"

namespace sattn_cuda {

namespace {

using namespace tc;

// Warps per CTA (W) and keys per softmax step for each head_dim: macros so that
// bench/gpu/bwd_variants.sh can time other shapes side by side; the defaults are the measured best.
#ifndef SATTN_FWD_WARPS_64
#define SATTN_FWD_WARPS_64 4
#endif
#ifndef SATTN_FWD_WARPS_128
#define SATTN_FWD_WARPS_128 4
#endif
#ifndef SATTN_FWD_KS_128
#define SATTN_FWD_KS_128 32
#endif
#ifndef SATTN_FWD_MINB_128
#define SATTN_FWD_MINB_128 1
#endif
#ifndef SATTN_FWD_KS_64
#define SATTN_FWD_KS_64 64
#endif
#ifndef SATTN_FWD_MINB_64
#define SATTN_FWD_MINB_64 1
#endif
constexpr int fwd_warps(int d) { return d > 64 ? SATTN_FWD_WARPS_128 : SATTN_FWD_WARPS_64; }

template <int D, int Mode, int W = fwd_warps(D)>
__global__ void __launch_bounds__(W * 32, D > 64 ? SATTN_FWD_MINB_128 : SATTN_FWD_MINB_64) attention_tc(const TcArgs a) {
  constexpr int NT = W * 32;
  constexpr int QT = tc_qtile(D);
  constexpr int kQBytes = QT * D * 2, kTileBytes = kTcKTile * D * 2;
  constexpr int KD = D / 16;  // k-steps over head_dim
  constexpr int ND = D / 8;   // n-tiles of the output
  constexpr int MT = QT / 16 / W;  // m-tiles (16 rows) per warp
  static_assert(MT >= 1 && MT * 16 * W == QT, "W warps must split the query tile into m16 tiles");
  constexpr int KS = D > 64 ? SATTN_FWD_KS_128 : SATTN_FWD_KS_64;  // keys per softmax step
  constexpr int NS = KS / 8;                            // n-tiles of S per step
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sQ = smem_addr(smem), sK = sQ + kQBytes, sV = sK + 2 * kTileBytes;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, cq = lane & 3;
  const int64_t qt = int64_t(gridDim.x) - 1 - blockIdx.x;  // the longest (causal) rows first
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t q0 = qt * QT;
  const __nv_bfloat16* qg = static_cast<const __nv_bfloat16*>(a.q) + (b * a.heads + h) * a.seq_len * D;
  const __nv_bfloat16* kg = static_cast<const __nv_bfloat16*>(a.k) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const __nv_bfloat16* vg = static_cast<const __nv_bfloat16*>(a.v) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const int64_t off = a.causal_offset;
  const int64_t qlast = q0 + QT - 1 + off;  // the last query's aligned key position

  // The key tiles of this query tile: [t_begin, t_end) of the tile list, or of all key tiles.
  int64_t t_begin = 0, t_end = 0;
  tile_range<Mode, QT>(a, b, kvh, qt, t_begin, t_end);
  auto key0_of = [&](int64_t t) -> int64_t {
    return Mode == kTcTiles ? int64_t(a.tile_col[t]) * kTcKTile : t * kTcKTile;
  };

  load_tile<D, QT, NT>(sQ, qg, q0, a.seq_len);
  cp_async_commit();
  if (t_begin < t_end) {
    load_tile<D, kTcKTile, NT>(sK, kg, key0_of(t_begin), a.kv_len);
    load_tile<D, kTcKTile, NT>(sV, vg, key0_of(t_begin), a.kv_len);
    cp_async_commit();
  }

  float o[MT][ND][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int n = 0; n < ND; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.f;
  float m[MT][2], l[MT][2];  // log2 units; l: this thread's part of the row sum
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.f;
  const int64_t row0 = q0 + warp * 16 * MT + g;  // row of (mt, r): row0 + 16 mt + 8 r
  // ldmatrix addresses of the three operands (lane rows and swizzles computed once).
  const Frag<D> fq(sQ, warp * 16 * MT + (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);
  const Frag<D> fk(sK, (lane & 7) + 8 * (lane >> 4), (lane >> 3) & 1);
  const Frag<D> fv(sV, (lane & 7) + 8 * ((lane >> 3) & 1), lane >> 4);

  for (int64_t t = t_begin; t < t_end; ++t) {
    const int stage = int((t - t_begin) & 1);
    if (t + 1 < t_end) {  // prefetch the next tile into the other stage
      const int64_t nk = key0_of(t + 1);
      load_tile<D, kTcKTile, NT>(sK + (stage ^ 1) * kTileBytes, kg, nk, a.kv_len);
      load_tile<D, kTcKTile, NT>(sV + (stage ^ 1) * kTileBytes, vg, nk, a.kv_len);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int64_t k0 = key0_of(t);
    // Per m-tile: which 16-key sub-blocks the layout allows its 16 rows.
    unsigned rowmask[MT];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      rowmask[mt] = Mode == kTcTiles ? (a.tile_mask[t] >> ((warp * MT + mt) * 4)) & 0xFu : 0xFu;
    unsigned any = 0;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) any |= rowmask[mt];

    // The tile in steps of KS keys (KS = 32 for head_dim 128: S then needs half the registers).
#pragma unroll 1
    for (int ks = 0; ks < kTcKTile / KS && any; ++ks) {
      const int64_t kb = k0 + ks * KS;  // first key of this step
      // S = Q K^T: 16 MT rows x KS keys per warp; Q fragments re-read from shared memory.
      float s[MT][NS][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NS; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        uint32_t qf[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          ldsm_x4(qf[mt], fq.at(mt * 16, kk));
#pragma unroll
        for (int np = 0; np < NS / 2; ++np) {
          uint32_t kf[4];
          ldsm_x4(kf, fk.at(ks * KS + np * 16, kk, stage * kTileBytes));
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma_bf16(s[mt][2 * np], qf[mt], kf[0], kf[1]);
            mma_bf16(s[mt][2 * np + 1], qf[mt], kf[2], kf[3]);
          }
        }
      }

      // Scale to log2 units, then mask at element granularity where anything may be masked.
      bool full = kb + KS <= a.kv_len && (!a.causal || kb + KS - 1 <= q0 + off);
      if (Mode == kTcTiles) full = full && a.tile_mask[t] == (QT == 128 ? 0xFFFFFFFFu : 0xFFFFu);
      if (Mode == kTcWindow) {
        const int64_t span = a.window * a.dilation;
        full = full && a.dilation == 1 && kb >= qlast - span && kb + KS - 1 <= q0 + off + (a.causal ? 0 : span);
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            float x = s[mt][n][e] * a.scale_log2;
            if (!full) {  // 32-bit positions (sequences < 2^31) keep register pressure down
              const int p = int(row0 + off) + 16 * mt + 8 * (e >> 1), j = int(kb) + n * 8 + 2 * cq + (e & 1);
              bool ok = j < int(a.kv_len) && (!a.causal || j <= p);
              if (Mode == kTcTiles) ok = ok && ((rowmask[mt] >> ((ks * KS) / 16 + (n >> 1))) & 1);
              if (Mode == kTcWindow) {
                const int dlt = j - p, span = int(a.window * a.dilation);
                ok = ok && dlt >= -span && dlt <= span && dlt % int(a.dilation) == 0;
              }
              if (!ok) x = -INFINITY;
            }
            s[mt][n][e] = x;
          }

      // Online softmax for the thread's 2 MT rows (each row is spread over 4 lanes).
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = -INFINITY;
#pragma unroll
          for (int n = 0; n < NS; ++n) mx = fmaxf(mx, fmaxf(s[mt][n][2 * r], s[mt][n][2 * r + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float mn = fmaxf(m[mt][r], mx);
          const float base = mn == -INFINITY ? 0.f : mn;  // nothing allowed yet: keep zeros
          const float alpha = ex2(m[mt][r] - base);
          m[mt][r] = mn;
          float sum = 0.f;
#pragma unroll
          for (int n = 0; n < NS; ++n) {
            s[mt][n][2 * r] = ex2(s[mt][n][2 * r] - base);
            s[mt][n][2 * r + 1] = ex2(s[mt][n][2 * r + 1] - base);
            sum += s[mt][n][2 * r] + s[mt][n][2 * r + 1];
          }
          l[mt][r] = l[mt][r] * alpha + sum;
#pragma unroll
          for (int n = 0; n < ND; ++n) {
            o[mt][n][2 * r] *= alpha;
            o[mt][n][2 * r + 1] *= alpha;
          }
        }

      // O += P V: P (bf16) is the A operand straight from the S accumulators.
#pragma unroll
      for (int kc = 0; kc < NS / 2; ++kc) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          pa[mt][0] = pack_bf16(s[mt][2 * kc][0], s[mt][2 * kc][1]);
          pa[mt][1] = pack_bf16(s[mt][2 * kc][2], s[mt][2 * kc][3]);
          pa[mt][2] = pack_bf16(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
          pa[mt][3] = pack_bf16(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < ND / 2; ++dp) {
          uint32_t vf[4];
          ldsm_x4_trans(vf, fv.at(ks * KS + kc * 16, dp, stage * kTileBytes));
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma_bf16(o[mt][2 * dp], pa[mt], vf[0], vf[1]);
            mma_bf16(o[mt][2 * dp + 1], pa[mt], vf[2], vf[3]);
          }
        }
      }
    }
    __syncthreads();  // this stage is reloaded two tiles from now
  }
  cp_async_wait<0>();  // no tiles at all: the Q load is still outstanding

  float* og = a.o + (b * a.heads + h) * a.seq_len * D;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float sum = l[mt][r];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;  // empty row: 0
      const int64_t i = row0 + 16 * mt + 8 * r;
      if (i >= a.seq_len) continue;
      if (a.lse && cq == 0)  // natural-log log-sum-exp of the scaled scores (m, sum in log2 units)
        a.lse[(b * a.heads + h) * a.seq_len + i] = sum > 0.f ? (m[mt][r] + __log2f(sum)) * 0.6931471805599453f : -INFINITY;
      float* orow = og + i * D;
#pragma unroll
      for (int n = 0; n < ND; ++n)
        *reinterpret_cast<float2*>(orow + n * 8 + 2 * cq) = make_float2(o[mt][n][2 * r] * inv, o[mt][n][2 * r + 1] * inv);
    }
}

template <int D, int Mode>
cudaError_t launch_tc(const TcArgs& a) {
  constexpr int smem = (tc_qtile(D) + 4 * kTcKTile) * D * 2;  // Q + 2 stages of K and V
  static bool configured = false;  // per instantiation; the attribute is per device function
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(attention_tc<D, Mode>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const dim3 grid(unsigned((a.seq_len + tc_qtile(D) - 1) / tc_qtile(D)), unsigned(a.heads), unsigned(a.batch));
  attention_tc<D, Mode><<<grid, fwd_warps(D) * 32, smem>>>(a);
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_tc_dim(const TcArgs& a) {
  switch (a.mode) {
    case kTcDense: return launch_tc<D, kTcDense>(a);
    case kTcTiles: return launch_tc<D, kTcTiles>(a);
    case kTcWindow: return launch_tc<D, kTcWindow>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

bool hopper_device() {
#if SATTN_HOPPER
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return false;
  static int cc[64] = {};  // per device: 0 unknown, else major * 10 + minor
  if (cc[dev] == 0) {
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
      return false;
    cc[dev] = major * 10 + minor;
  }
  return cc[dev] == 90;  // sm_90a code runs on compute capability 9.0 only
#else
  return false;
#endif
}

int hopper_variant(const TcArgs& a) {
  if ((a.head_dim != 64 && a.head_dim != 128) || !hopper_device()) return kHopperOff;
  const char* env = getenv("SATTN_CUDA_HOPPER");
  if (env && env[0] != 0 && env[1] == 0 && env[0] >= '0' && env[0] <= '2') return env[0] - '0';
  return a.head_dim == 64 ? SATTN_HOPPER_DEFAULT_64 : SATTN_HOPPER_DEFAULT_128;
}

const char* forward_path_name(int variant) {
  return variant == kHopperPipelined ? "wgmma-pipelined" : variant == kHopperTiles64 ? "wgmma" : "mma.sync";
}

cudaError_t tc_launch(const TcArgs& a) {
  if (a.seq_len == 0 || a.heads == 0 || a.batch == 0) return cudaSuccess;
#if SATTN_HOPPER
  if (const int v = hopper_variant(a)) return hopper_launch(a, v);
#endif
  switch (a.head_dim) {
    case 64: return launch_tc_dim<64>(a);
    case 128: return launch_tc_dim<128>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sattn_cuda
