// Hopper kernels (sm_90a). The forward: the same function as attention_tc (kernels_tc.cu) with the
// matrix products on wgmma (warpgroup MMA, operands read by the tensor cores straight from shared
// memory) instead of mma.sync fed by ldmatrix, in three variants below: 1 (cp.async) and 2 (TMA),
// 64-key tiles one step at a time (hopper variant kHopperTiles64), and 3, attention_wgmma_pipe
// (kHopperPipelined, the default): 128-key tiles with the next S under this tile's softmax. One
// CTA per (128 query rows, head, batch), 64 rows per consumer warpgroup. At the end of the file
// the backward in two variants: bwd_dkdv_wgmma (one warpgroup, dK, dV and dQ per 64 keys;
// SATTN_CUDA_HOPPER_BWD=1) and bwd_wgmma_ws (the default: two consumer warpgroups over 128 keys
// and a producer warpgroup). The notes below are variant 1's and hold for all of them:
// - Shared-memory tiles use the canonical 128-byte-swizzle layout: a [R rows][D] bf16 tile is
//   stored as D/64 column blocks of [R][64] (128 bytes a row, 8-row atoms of 1024 bytes), the 16-byte
//   chunk c of row r at chunk c ^ (r & 7). The same bytes serve as a K-major operand (Q as A, K as
//   B of S = Q K^T: 8-row groups 1024 bytes apart, 32 bytes per 16-column k-step) and as an
//   MN-major one (V as the transposed B of O += P V: 16 keys = 2048 bytes per k-step, 64-column
//   blocks R * 128 bytes apart).
// - cp.async writes go through the generic proxy and wgmma reads through the async proxy: each
//   thread fences (fence.proxy.async.shared::cta) after its copies land, before the CTA barrier.
// - S (64 x 64 per warpgroup, fp32) and O (64 x D) stay in registers; the accumulator layout of
//   wgmma m64nN is per warp the mma.sync m16n8 one, so P goes back into the A operand of P V from
//   registers exactly as in attention_tc, and the online softmax and masks are the same code.
// - A warpgroup whose 64 rows see nothing of a tile (BSR sub-block masks, causal future, outside
//   the window) skips that tile's products; the CTA still shares the loads.
// Descriptor bit layout (PTX ISA, "Matrix Descriptor Format" of wgmma): start address >> 4 in bits
// 0-13, leading-dimension byte offset >> 4 in 16-29, stride-dimension byte offset >> 4 in 32-45,
// swizzle mode in 62-63 (1 = 128-byte swizzle). Built only for sm_90a (cuda.cmake); tc_launch
// calls it on compute capability 9.0 devices unless SATTN_CUDA_HOPPER=0.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "kernels_internal.h"
#include "tc_common.cuh"

// K/V stages and CTAs per SM (the register cap: 1 -> up to 255, 2 -> 128 registers) per head_dim:
// macros so that other shapes can be timed side by side; the defaults are the measured ones.
#ifndef SATTN_HOPPER_STAGES_64
#define SATTN_HOPPER_STAGES_64 3
#endif
#ifndef SATTN_HOPPER_STAGES_128
#define SATTN_HOPPER_STAGES_128 3
#endif
#ifndef SATTN_HOPPER_MINB_64
#define SATTN_HOPPER_MINB_64 2
#endif
#ifndef SATTN_HOPPER_MINB_128
#define SATTN_HOPPER_MINB_128 1
#endif

namespace sattn_cuda {

namespace {

using tc::cp_async16;
using tc::cp_async_commit;
using tc::cp_async_wait;
using tc::ex2;
using tc::pack_bf16;
using tc::smem_addr;
using tc::bwd_allowed;

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "kernels_hopper.cu must be compiled for sm_90a only (-gencode arch=compute_90a,code=sm_90a)"
#endif

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Shared-memory matrix descriptor, 128-byte swizzle.
__device__ __forceinline__ uint64_t sw128_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t((lbo >> 4) & 0x3FFF) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFF) << 32) | (uint64_t(1) << 62);
}

// Wrappers for the three wgmma shapes used here (written out by a small generator: the operand
// lists are 32 or 64 accumulators long).
// d (64 x 64, fp32) (+)= A (64 x 16, smem, K-major) * B (16 x 64, smem, K-major); accumulate = false
// overwrites d.
__device__ __forceinline__ void wgmma_ss_n64(float (&d)[32], uint64_t da, uint64_t db, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db), "r"(accumulate));
}

// d (64 x 128, fp32) += A (64 x 16, smem, K-major) * B (16 x 128, smem, K-major). Scale-d is an
// immediate in the wgmma wrappers used inside a pipeline: a setp defining it between two wgmmas
// counts as a non-wgmma instruction defining an input, and ptxas then serializes them (C7513).
__device__ __forceinline__ void wgmma_ss_n128(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, 1, 1, 1, 0, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db));
}

// The same with the accumulators overwritten (scale-d false): d is only an output, so that the
// instructions that read the previous S in between do not count as defining this wgmma's inputs.
__device__ __forceinline__ void wgmma_ss_n128_zero(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, 0, 1, 1, 0, 0;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31]), "=f"(d[32]), "=f"(d[33]), "=f"(d[34]), "=f"(d[35]), "=f"(d[36]), "=f"(d[37]), "=f"(d[38]), "=f"(d[39]), "=f"(d[40]), "=f"(d[41]), "=f"(d[42]), "=f"(d[43]), "=f"(d[44]), "=f"(d[45]), "=f"(d[46]), "=f"(d[47]), "=f"(d[48]), "=f"(d[49]), "=f"(d[50]), "=f"(d[51]), "=f"(d[52]), "=f"(d[53]), "=f"(d[54]), "=f"(d[55]), "=f"(d[56]), "=f"(d[57]), "=f"(d[58]), "=f"(d[59]), "=f"(d[60]), "=f"(d[61]), "=f"(d[62]), "=f"(d[63])
      : "l"(da), "l"(db));
}

// m64n64k16 with both operands in shared memory and an immediate scale-d (0: d = A B, 1: d += A B):
// _kk both K-major (S^T = K Q^T, dP^T = V dO^T), _tt both MN-major (dQ = dS K from dS^T and K).
__device__ __forceinline__ void wgmma_ss_n64_kk0(float (&d)[32], uint64_t da, uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, 0, 1, 1, 0, 0;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31])
      : "l"(da), "l"(db));
}
__device__ __forceinline__ void wgmma_ss_n64_kk1(float (&d)[32], uint64_t da, uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, 1, 1, 1, 0, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db));
}
__device__ __forceinline__ void wgmma_ss_n64_tt0(float (&d)[32], uint64_t da, uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, 0, 1, 1, 1, 1;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31])
      : "l"(da), "l"(db));
}
__device__ __forceinline__ void wgmma_ss_n64_tt1(float (&d)[32], uint64_t da, uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, 1, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(da), "l"(db));
}

// d (64 x 64, fp32) += A (64 x 16, registers) * B (16 x 64, smem, MN-major: transposed).
__device__ __forceinline__ void wgmma_rs_n64_tb(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

// d (64 x 64, fp32) (=|+=) A (64 x 16, registers) * B (16 x 64, smem, K-major): S^T = K Q^T and
// dP^T = V dO^T with K, V held in registers (bwd_wgmma_ws at head_dim 64, kBwd2KvRegs).
__device__ __forceinline__ void wgmma_rs_n64_kb0(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 0, 1, 1, 0;\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]), "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15]), "=f"(d[16]), "=f"(d[17]), "=f"(d[18]), "=f"(d[19]), "=f"(d[20]), "=f"(d[21]), "=f"(d[22]), "=f"(d[23]), "=f"(d[24]), "=f"(d[25]), "=f"(d[26]), "=f"(d[27]), "=f"(d[28]), "=f"(d[29]), "=f"(d[30]), "=f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}
__device__ __forceinline__ void wgmma_rs_n64_kb1(float (&d)[32], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, 1, 1, 1, 0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

// d (64 x 128, fp32) += A (64 x 16, registers) * B (16 x 128, smem, MN-major: transposed).
__device__ __forceinline__ void wgmma_rs_n128_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}


template <int D>
__device__ __forceinline__ void wgmma_pv(float (&o)[D / 2], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (D == 128) wgmma_rs_n128_tb(o, a, db);
  else wgmma_rs_n64_tb(o, a, db);
}

// Byte offset of 16-byte chunk c of row r in a [R][D] tile of the swizzled layout above.
template <int R>
__device__ __forceinline__ uint32_t sw_off(int r, int c) {
  return uint32_t((c >> 3) * R * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

// Rows row0.. of a [len, D] matrix into a tile of R rows (swizzled layout) by NT threads; rows at
// or past len are zero-filled.
template <int D, int R, int NT>
__device__ __forceinline__ void load_sw(uint32_t base, const __nv_bfloat16* g, int64_t row0, int64_t len) {
  constexpr int C = D / 8;
#pragma unroll
  for (int x = threadIdx.x; x < R * C; x += NT) {
    const int r = x / C, c = x % C;
    const int64_t gr = row0 + r;
    const bool ok = gr < len;
    cp_async16(base + sw_off<R>(r, c), g + (ok ? gr : 0) * D + c * 8, ok ? 16 : 0);
  }
}

constexpr int kWgThreads = 256;  // 2 consumer warpgroups
__host__ __device__ constexpr int hopper_stages(int d) { return d > 64 ? SATTN_HOPPER_STAGES_128 : SATTN_HOPPER_STAGES_64; }
__host__ __device__ constexpr int hopper_minb(int d) { return d > 64 ? SATTN_HOPPER_MINB_128 : SATTN_HOPPER_MINB_64; }
template <int D>
constexpr int hopper_smem() {
  return (kTcQTile + 2 * hopper_stages(D) * kTcKTile) * D * 2 + 1024 + 256;  // + alignment slack, mbarriers
}

// ---- The part both variants share (tile ranges: tc::tile_range): one 64-key tile of a warpgroup, the epilogue ----

template <int Mode>
__device__ __forceinline__ int64_t key0_of(const TcArgs& a, int64_t t) {
  return Mode == kTcTiles ? int64_t(a.tile_col[t]) * kTcKTile : t * kTcKTile;
}

// Per-thread state of a consumer warpgroup: rows row0 and row0 + 8 of the query tile.
template <int D>
struct WgAcc {
  float o[D / 2];  // O accumulators: D/8 n-tiles x 4
  float m[2], l[2];  // running max (log2 units) and this thread's part of the row sum
};

// Whether warpgroup wg (64 rows from w0 = its first aligned query position) has nothing to do in
// the tile of keys kb.. (uniform over the warpgroup: wgmma is warpgroup-collective).
template <int Mode>
__device__ __forceinline__ bool wg_skip(const TcArgs& a, unsigned wmask, int64_t kb, int64_t w0) {
  const int64_t wlast = w0 + 63;
  bool skip = wmask == 0;
  if (a.causal) skip = skip || kb > wlast;
  if (Mode == kTcWindow) {
    const int64_t span = a.window * a.dilation;
    skip = skip || kb + kTcKTile - 1 < w0 - span || kb > wlast + (a.causal ? 0 : span);
  }
  return skip;
}

// One 64-key tile for a warpgroup: S = Q K^T by wgmma from shared memory, masks, online softmax,
// O += P V (P from registers). sQw: the warpgroup's 64 rows of Q (column blocks QT * 128 bytes
// apart); sK, sV: the tile's K and V (column blocks 64 * 128 bytes apart).
template <int D, int Mode>
__device__ __forceinline__ void wg_tile(const TcArgs& a, WgAcc<D>& acc, uint32_t sQw, uint32_t sK, uint32_t sV, int64_t kb,
                                        unsigned wmask, int64_t w0, int prow, int warp, int cq) {
  constexpr int QT = kTcQTile, KT = kTcKTile;
  float s[32];
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint64_t dq = sw128_desc(sQw + uint32_t((kk >> 2) * QT * 128 + (kk & 3) * 32), 16, 1024);
    const uint64_t dk = sw128_desc(sK + uint32_t((kk >> 2) * KT * 128 + (kk & 3) * 32), 16, 1024);
    wgmma_ss_n64(s, dq, dk, kk > 0);
  }
  wgmma_commit();
  wgmma_wait<0>();

  bool full = kb + KT <= a.kv_len && (!a.causal || kb + KT - 1 <= w0);
  if (Mode == kTcTiles) full = full && wmask == 0xFFFFu;
  if (Mode == kTcWindow) {
    const int64_t span = a.window * a.dilation;
    full = full && a.dilation == 1 && kb >= w0 + 63 - span && kb + KT - 1 <= w0 + (a.causal ? 0 : span);
  }
  const unsigned rowmask = (wmask >> (4 * warp)) & 0xFu;  // this warp's 16 rows: 4 sub-blocks of keys
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float x = s[4 * n + e] * a.scale_log2;
      if (!full) {  // 32-bit positions (sequences < 2^31), as in attention_tc
        const int p = prow + 8 * (e >> 1), j = int(kb) + n * 8 + 2 * cq + (e & 1);
        bool ok = j < int(a.kv_len) && (!a.causal || j <= p);
        if (Mode == kTcTiles) ok = ok && ((rowmask >> (n >> 1)) & 1);
        if (Mode == kTcWindow) {
          const int dlt = j - p, span = int(a.window * a.dilation);
          ok = ok && dlt >= -span && dlt <= span && dlt % int(a.dilation) == 0;
        }
        if (!ok) x = -INFINITY;
      }
      s[4 * n + e] = x;
    }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n) mx = fmaxf(mx, fmaxf(s[4 * n + 2 * r], s[4 * n + 2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float mn = fmaxf(acc.m[r], mx);
    const float base = mn == -INFINITY ? 0.f : mn;  // nothing allowed yet: keep zeros
    const float alpha = ex2(acc.m[r] - base);
    acc.m[r] = mn;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      s[4 * n + 2 * r] = ex2(s[4 * n + 2 * r] - base);
      s[4 * n + 2 * r + 1] = ex2(s[4 * n + 2 * r + 1] - base);
      sum += s[4 * n + 2 * r] + s[4 * n + 2 * r + 1];
    }
    acc.l[r] = acc.l[r] * alpha + sum;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      acc.o[4 * n + 2 * r] *= alpha;
      acc.o[4 * n + 2 * r + 1] *= alpha;
    }
  }

  // O += P V: P (bf16) from the S accumulators as the register A operand, 16 keys per step.
  uint32_t pa[4][4];
#pragma unroll
  for (int kc = 0; kc < 4; ++kc) {
    pa[kc][0] = pack_bf16(s[8 * kc + 0], s[8 * kc + 1]);
    pa[kc][1] = pack_bf16(s[8 * kc + 2], s[8 * kc + 3]);
    pa[kc][2] = pack_bf16(s[8 * kc + 4], s[8 * kc + 5]);
    pa[kc][3] = pack_bf16(s[8 * kc + 6], s[8 * kc + 7]);
  }
  wgmma_fence();
#pragma unroll
  for (int kc = 0; kc < 4; ++kc) wgmma_pv<D>(acc.o, pa[kc], sw128_desc(sV + uint32_t(kc * 2048), KT * 128, 1024));
  wgmma_commit();
  wgmma_wait<0>();
}

template <int D>
__device__ __forceinline__ void wg_init(WgAcc<D>& acc) {
#pragma unroll
  for (int i = 0; i < D / 2; ++i) acc.o[i] = 0.f;
  acc.m[0] = acc.m[1] = -INFINITY;
  acc.l[0] = acc.l[1] = 0.f;
}

// O (fp32, normalized; 0 for a row with no allowed key) and the natural-log lse of rows row0 and
// row0 + 8 of (b, h).
template <int D>
__device__ __forceinline__ void wg_store(const TcArgs& a, const WgAcc<D>& acc, int64_t b, int64_t h, int64_t row0, int cq) {
  float* og = a.o + (b * a.heads + h) * a.seq_len * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = acc.l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    const int64_t i = row0 + 8 * r;
    if (i >= a.seq_len) continue;
    if (a.lse && cq == 0)
      a.lse[(b * a.heads + h) * a.seq_len + i] = sum > 0.f ? (acc.m[r] + __log2f(sum)) * 0.6931471805599453f : -INFINITY;
    float* orow = og + i * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<float2*>(orow + n * 8 + 2 * cq) =
          make_float2(acc.o[4 * n + 2 * r] * inv, acc.o[4 * n + 2 * r + 1] * inv);
  }
}

// ---- Variant 1: every thread copies with cp.async, one CTA barrier per tile ----

template <int D, int Mode>
__global__ void __launch_bounds__(kWgThreads, hopper_minb(D)) attention_wgmma(const TcArgs a) {
  constexpr int kStages = hopper_stages(D);
  static_assert(kStages >= 2, "at least two K/V stages");
  constexpr int QT = kTcQTile, KT = kTcKTile;
  static_assert(QT == 128 && KT == 64, "two warpgroups of 64 rows, 64-key tiles");
  constexpr int kTileBytes = KT * D * 2;
  constexpr int NT = kWgThreads;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t sQ = (smem_addr(smem_raw) + 1023u) & ~1023u;  // swizzle atoms are 1024-aligned
  const uint32_t sKV = sQ + QT * D * 2;                         // stage s: K at +2s tiles, V after it

  const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, cq = lane & 3;
  const int64_t qt = int64_t(gridDim.x) - 1 - blockIdx.x;  // the longest (causal) rows first
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t q0 = qt * QT;
  const __nv_bfloat16* qg = static_cast<const __nv_bfloat16*>(a.q) + (b * a.heads + h) * a.seq_len * D;
  const __nv_bfloat16* kg = static_cast<const __nv_bfloat16*>(a.k) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const __nv_bfloat16* vg = static_cast<const __nv_bfloat16*>(a.v) + (b * a.kv_heads + kvh) * a.kv_len * D;
  const int64_t w0 = q0 + 64 * wg + a.causal_offset;  // this warpgroup's first aligned query

  int64_t t_begin, t_end;
  tc::tile_range<Mode, kTcQTile>(a, b, kvh, qt, t_begin, t_end);
  auto load_kv = [&](int64_t t, int stage) {
    const int64_t k0 = key0_of<Mode>(a, t);
    load_sw<D, KT, NT>(sKV + 2 * stage * kTileBytes, kg, k0, a.kv_len);
    load_sw<D, KT, NT>(sKV + (2 * stage + 1) * kTileBytes, vg, k0, a.kv_len);
  };

  load_sw<D, QT, NT>(sQ, qg, q0, a.seq_len);
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (t_begin + i < t_end) load_kv(t_begin + i, i);
    cp_async_commit();  // one group per tile, empty or not, so that the wait counts hold
  }

  WgAcc<D> acc;
  wg_init(acc);
  const int64_t row0 = q0 + 64 * wg + 16 * warp + g;  // rows row0 and row0 + 8
  const int prow = int(row0 + a.causal_offset);
  const uint32_t sQw = sQ + uint32_t(64 * wg * 128);

  for (int64_t t = t_begin; t < t_end; ++t) {
    const int stage = int((t - t_begin) % kStages);
    cp_async_wait<kStages - 2>();
    fence_proxy_async();
    __syncthreads();  // tile t landed for everyone; everyone is done with tile t - 1
    {
      const int64_t tn = t + kStages - 1;
      if (tn < t_end) load_kv(tn, int((tn - t_begin) % kStages));
      cp_async_commit();
    }
    const int64_t kb = key0_of<Mode>(a, t);
    const unsigned wmask = Mode == kTcTiles ? (a.tile_mask[t] >> (16 * wg)) & 0xFFFFu : 0xFFFFu;
    if (wg_skip<Mode>(a, wmask, kb, w0)) continue;
    const uint32_t sK = sKV + 2 * stage * kTileBytes;
    wg_tile<D, Mode>(a, acc, sQw, sK, sK + kTileBytes, kb, wmask, w0, prow, warp, cq);
  }
  cp_async_wait<0>();
  wg_store<D>(a, acc, b, h, row0, cq);
}

// ---- Variant 2: a producer warp loads Q, K and V by TMA; per-stage mbarriers, no CTA barrier ----
// Warps 0-7 are the two consumer warpgroups, warp 8 the producer (one elected lane issues the
// copies). full[s] completes when stage s's K and V have landed (expect_tx bytes), empty[s] when all
// 256 consumer threads are done with it. The i-th use of stage s = i % NST is phase i / NST of
// both barriers, so the parity to wait for is (i / NST) & 1. The warpgroups do not wait for each
// other: one may run ahead by up to NST - 1 tiles, so their softmax and wgmma interleave.

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT_%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_%=;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// A box of the 3-D tensor map (columns c0.., rows c1.., slice c2) into shared memory at dst,
// completing on the mbarrier bar.
__device__ __forceinline__ void tma_load3(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}

constexpr int kTmaThreads = kWgThreads + 32;

template <int D, int Mode>
__global__ void __launch_bounds__(kTmaThreads, 1)
    attention_wgmma_tma(const TcArgs a, const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mk,
                        const __grid_constant__ CUtensorMap mv) {
  constexpr int kStages = hopper_stages(D);
  static_assert(kStages >= 2, "at least two K/V stages");
  constexpr int QT = kTcQTile, KT = kTcKTile;
  constexpr int kTileBytes = KT * D * 2;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t sQ = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sKV = sQ + QT * D * 2;
  const uint32_t sBar = sKV + 2 * kStages * kTileBytes;  // barQ, full[NST], empty[NST]: 8 bytes each
  const uint32_t barQ = sBar;
  auto full = [&](int s) { return sBar + 8u * uint32_t(1 + s); };
  auto empty = [&](int s) { return sBar + 8u * uint32_t(1 + kStages + s); };

  const int tid = threadIdx.x, warp_all = tid >> 5, lane = tid & 31;
  const int64_t qt = int64_t(gridDim.x) - 1 - blockIdx.x;
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t q0 = qt * QT;
  int64_t t_begin, t_end;
  tc::tile_range<Mode, kTcQTile>(a, b, kvh, qt, t_begin, t_end);

  if (tid == 0) {
    mbar_init(barQ, 1);
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), kWgThreads);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp_all == 8) {  // producer
    if (lane == 0 && t_begin < t_end) {  // no tiles: no copies (none may be in flight at exit)
      mbar_expect_tx(barQ, uint32_t(QT * D * 2));
#pragma unroll
      for (int c = 0; c < D / 64; ++c) tma_load3(sQ + uint32_t(c * QT * 128), &mq, c * 64, int(q0), int(b * a.heads + h), barQ);
      const int kvs = int(b * a.kv_heads + kvh);
      for (int64_t i = 0; t_begin + i < t_end; ++i) {
        const int s = int(i % kStages);
        if (i >= kStages) mbar_wait(empty(s), uint32_t(((i / kStages) & 1) ^ 1));
        mbar_expect_tx(full(s), uint32_t(2 * kTileBytes));
        const int k0 = int(key0_of<Mode>(a, t_begin + i));
        const uint32_t sK = sKV + uint32_t(2 * s * kTileBytes);
#pragma unroll
        for (int c = 0; c < D / 64; ++c) {
          tma_load3(sK + uint32_t(c * KT * 128), &mk, c * 64, k0, kvs, full(s));
          tma_load3(sK + uint32_t(kTileBytes + c * KT * 128), &mv, c * 64, k0, kvs, full(s));
        }
      }
    }
    return;
  }

  const int wg = tid >> 7, warp = (tid >> 5) & 3, g = lane >> 2, cq = lane & 3;
  const int64_t w0 = q0 + 64 * wg + a.causal_offset;
  WgAcc<D> acc;
  wg_init(acc);
  const int64_t row0 = q0 + 64 * wg + 16 * warp + g;
  const int prow = int(row0 + a.causal_offset);
  const uint32_t sQw = sQ + uint32_t(64 * wg * 128);
  if (t_begin < t_end) mbar_wait(barQ, 0);
  for (int64_t i = 0; t_begin + i < t_end; ++i) {
    const int64_t t = t_begin + i;
    const int s = int(i % kStages);
    const int64_t kb = key0_of<Mode>(a, t);
    const unsigned wmask = Mode == kTcTiles ? (a.tile_mask[t] >> (16 * wg)) & 0xFFFFu : 0xFFFFu;
    // Wait even when skipping: the stage may be refilled only after this use's copies landed (a
    // copy still in flight could otherwise land over the next one's, and its bytes would count
    // towards the next phase).
    mbar_wait(full(s), uint32_t((i / kStages) & 1));
    if (!wg_skip<Mode>(a, wmask, kb, w0)) {
      const uint32_t sK = sKV + uint32_t(2 * s * kTileBytes);
      wg_tile<D, Mode>(a, acc, sQw, sK, sK + kTileBytes, kb, wmask, w0, prow, warp, cq);
    }
    mbar_arrive(empty(s));  // skipped or done: the producer may refill this stage
  }
  wg_store<D>(a, acc, b, h, row0, cq);
}

// ---- Variant 3 ("wgmma-pipelined"): 128-key tiles, the next S issued before this tile's softmax ----
// The same warps as variant 2 (two consumer warpgroups of 64 rows, one producer warp), but:
// - a tile is 128 keys: two consecutive 64-key tiles of the tile list (or of the dense/window
//   range), loaded by TMA into rows 0-63 and 64-127 of one swizzled [128][D] tile, so S = Q K^T is
//   one m64n128 product per 16 columns of D and the softmax's shuffles and barriers are paid once
//   per 128 keys. An odd last tile loads its 64 keys twice and masks the second copy.
// - in iteration i a warpgroup issues S_i = Q K_i^T, then O += P_{i-1} V_{i-1} (P of the previous
//   tile, still in registers), waits for S_i only (wgmma.wait_group 1), runs the masks and softmax
//   of tile i while the tensor cores do P_{i-1} V_{i-1}, then waits for that and rescales O. The
//   tensor cores thus run under the exponentials (FlashAttention-3's intra-warpgroup overlap).
// - K and V have their own full/empty mbarriers per stage: K_i is released as soon as S_i is
//   done, V_{i-1} after its product, so two stages keep the producer one tile ahead. Empty
//   barriers count one arrival per consumer warp (lane 0, after the warp's wgmma wait).
// Register operands of an in-flight wgmma (O, P) are not touched until its wait_group; after each
// wait the accumulators pass through an empty asm so that no use is scheduled above it.
#ifndef SATTN_HOPPER_PIPE_STAGES_64
#define SATTN_HOPPER_PIPE_STAGES_64 2
#endif
#ifndef SATTN_HOPPER_PIPE_STAGES_128
#define SATTN_HOPPER_PIPE_STAGES_128 2
#endif
__host__ __device__ constexpr int pipe_stages(int d) { return d > 64 ? SATTN_HOPPER_PIPE_STAGES_128 : SATTN_HOPPER_PIPE_STAGES_64; }
template <int D>
constexpr int pipe_smem() {
  return (kTcQTile + 2 * pipe_stages(D) * 2 * kTcKTile) * D * 2 + 1024 + 256;
}

template <int N>
__device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N, int M>
__device__ __forceinline__ void fence_regs(uint32_t (&r)[N][M]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < M; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// One half (64 keys) of a 128-key tile as a warpgroup sees it.
struct Half {
  int64_t kb;      // first key
  unsigned wmask;  // the warpgroup's 16 sub-block bits (kTcTiles), else all
  bool skip;       // nothing of it for this warpgroup (or a duplicate): masked out whole
  bool full;       // every key allowed for every row: no masks
};

template <int Mode>
__device__ __forceinline__ Half half_of(const TcArgs& a, int64_t t, bool valid, int wg, int64_t w0) {
  Half h;
  h.kb = valid ? key0_of<Mode>(a, t) : 0;
  h.wmask = Mode == kTcTiles ? (valid ? (a.tile_mask[t] >> (16 * wg)) & 0xFFFFu : 0u) : 0xFFFFu;
  h.skip = !valid || wg_skip<Mode>(a, h.wmask, h.kb, w0);
  constexpr int KT = kTcKTile;
  bool full = !h.skip && h.kb + KT <= a.kv_len && (!a.causal || h.kb + KT - 1 <= w0);
  if (Mode == kTcTiles) full = full && h.wmask == 0xFFFFu;
  if (Mode == kTcWindow) {
    const int64_t span = a.window * a.dilation;
    full = full && a.dilation == 1 && h.kb >= w0 + 63 - span && h.kb + KT - 1 <= w0 + (a.causal ? 0 : span);
  }
  h.full = full;
  return h;
}

// Masks and online softmax of a 128-key S (raw Q K^T, fp32, m64n128 accumulator layout: n-tile n
// covers keys 8n.. of the tile, half n / 8). Updates m and l, returns alpha (the factor for O,
// applied by the caller once the previous P V is done) and P packed as the A operand of P V.
template <int D, int Mode>
__device__ __forceinline__ void softmax128(const TcArgs& a, WgAcc<D>& acc, const float (&sacc)[64], const Half& h0,
                                           const Half& h1, int prow, int warp, int cq, float (&alpha)[2],
                                           uint32_t (&pn)[8][4]) {
  float s[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) s[i] = sacc[i];
  const Half* hs[2] = {&h0, &h1};
#pragma unroll
  for (int hf = 0; hf < 2; ++hf) {
    const Half& h = *hs[hf];
    if (h.full) continue;
    const unsigned rowmask = (h.wmask >> (4 * warp)) & 0xFu;
#pragma unroll
    for (int n = 8 * hf; n < 8 * hf + 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int p = prow + 8 * (e >> 1), j = int(h.kb) + (n & 7) * 8 + 2 * cq + (e & 1);
        bool ok = !h.skip && j < int(a.kv_len) && (!a.causal || j <= p);
        if (Mode == kTcTiles) ok = ok && ((rowmask >> ((n & 7) >> 1)) & 1);
        if (Mode == kTcWindow) {
          const int dlt = j - p, span = int(a.window * a.dilation);
          ok = ok && dlt >= -span && dlt <= span && dlt % int(a.dilation) == 0;
        }
        if (!ok) s[4 * n + e] = -INFINITY;
      }
  }
  const float sc = a.scale_log2;  // > 0: the max of the raw scores is the max of the scaled ones
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 16; ++n) mx = fmaxf(mx, fmaxf(s[4 * n + 2 * r], s[4 * n + 2 * r + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float mn = fmaxf(acc.m[r], mx * sc);
    const float base = mn == -INFINITY ? 0.f : mn;  // nothing allowed yet: keep zeros
    alpha[r] = ex2(acc.m[r] - base);
    acc.m[r] = mn;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      s[4 * n + 2 * r] = ex2(fmaf(s[4 * n + 2 * r], sc, -base));
      s[4 * n + 2 * r + 1] = ex2(fmaf(s[4 * n + 2 * r + 1], sc, -base));
      sum += s[4 * n + 2 * r] + s[4 * n + 2 * r + 1];
    }
    acc.l[r] = acc.l[r] * alpha[r] + sum;
  }
#pragma unroll
  for (int kc = 0; kc < 8; ++kc) {
    pn[kc][0] = pack_bf16(s[8 * kc + 0], s[8 * kc + 1]);
    pn[kc][1] = pack_bf16(s[8 * kc + 2], s[8 * kc + 3]);
    pn[kc][2] = pack_bf16(s[8 * kc + 4], s[8 * kc + 5]);
    pn[kc][3] = pack_bf16(s[8 * kc + 6], s[8 * kc + 7]);
  }
}

// A consumer warpgroup of attention_wgmma_pipe (tid 0-255).
template <int D, int Mode>
__device__ __forceinline__ void pipe_consumer(const TcArgs& a, uint32_t sQ, uint32_t sKV, uint32_t sBar, int64_t t_begin,
                                              int64_t t_end, int64_t npairs, int64_t q0, int64_t b, int64_t h, int tid,
                                              int lane) {
  constexpr int NST = pipe_stages(D);
  constexpr int QT = kTcQTile, KT = 2 * kTcKTile;
  constexpr int kTileBytes = KT * D * 2;
  auto sK = [&](int s) { return sKV + uint32_t(2 * s * kTileBytes); };
  auto sV = [&](int s) { return sKV + uint32_t((2 * s + 1) * kTileBytes); };
  const uint32_t barQ = sBar;
  auto fullK = [&](int s) { return sBar + 8u * uint32_t(1 + s); };
  auto fullV = [&](int s) { return sBar + 8u * uint32_t(1 + NST + s); };
  auto emptyK = [&](int s) { return sBar + 8u * uint32_t(1 + 2 * NST + s); };
  auto emptyV = [&](int s) { return sBar + 8u * uint32_t(1 + 3 * NST + s); };
  const int wg = tid >> 7, warp = (tid >> 5) & 3, g = lane >> 2, cq = lane & 3;
  const int64_t w0 = q0 + 64 * wg + a.causal_offset;
  WgAcc<D> acc;
  wg_init(acc);
  const int64_t row0 = q0 + 64 * wg + 16 * warp + g;
  const int prow = int(row0 + a.causal_offset);
  const uint32_t sQw = sQ + uint32_t(64 * wg * 128);
  // No wgmma below sits under a branch of its own (ptxas would serialize them all): a tile that is
  // wholly masked for this warpgroup still runs its products, with P = 0.
  float s[64];
  uint32_t pa[8][4], pb[8][4];  // P of alternate tiles
  // Descriptors are computed before the wgmma fence and pinned there (an instruction that defines
  // a wgmma input between the first wgmma and the wait also makes ptxas serialize them).
  uint64_t dq[D / 16];
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) dq[kk] = sw128_desc(sQw + uint32_t((kk >> 2) * QT * 128 + (kk & 3) * 32), 16, 1024);
  auto issue_s = [&](const uint64_t (&dk)[D / 16]) {
    wgmma_ss_n128_zero(s, dq[0], dk[0]);
#pragma unroll
    for (int kk = 1; kk < D / 16; ++kk) wgmma_ss_n128(s, dq[kk], dk[kk]);
  };
  auto issue_pv = [&](const uint32_t (&p)[8][4], const uint64_t (&dv)[8]) {
#pragma unroll
    for (int kc = 0; kc < 8; ++kc) wgmma_pv<D>(acc.o, p[kc], dv[kc]);
  };
  auto descs = [&](int st, int sp, uint64_t (&dk)[D / 16], uint64_t (&dv)[8]) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) dk[kk] = sw128_desc(sK(st) + uint32_t((kk >> 2) * KT * 128 + (kk & 3) * 32), 16, 1024);
#pragma unroll
    for (int kc = 0; kc < 8; ++kc) dv[kc] = sw128_desc(sV(sp) + uint32_t(kc * 2048), KT * 128, 1024);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) asm volatile("" : "+l"(dk[kk])::"memory");
#pragma unroll
    for (int kc = 0; kc < 8; ++kc) asm volatile("" : "+l"(dv[kc])::"memory");
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) asm volatile("" : "+l"(dq[kk])::"memory");
  };
  auto halves = [&](int64_t i, Half& h0, Half& h1) {
    const int64_t t0 = t_begin + 2 * i;
    h0 = half_of<Mode>(a, t0, true, wg, w0);
    h1 = half_of<Mode>(a, t0 + 1, t0 + 1 < t_end, wg, w0);
  };
  if (npairs > 0) {
    mbar_wait(barQ, 0);
    {  // tile 0: S, softmax (O is still 0: alpha is not needed)
      Half h0, h1;
      halves(0, h0, h1);
      mbar_wait(fullK(0), 0);
      uint64_t dk[D / 16], dv[8];
      descs(0, 0, dk, dv);
      wgmma_fence();
      issue_s(dk);
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(s);
      __syncwarp();
      if (lane == 0) mbar_arrive(emptyK(0));
      float alpha[2];
      softmax128<D, Mode>(a, acc, s, h0, h1, prow, warp, cq, alpha, pa);
    }
    // Tile i (>= 1) with P of tile i - 1 in pp; P of tile i goes to pn. Two buffers used in turn
    // (no copy: ptxas would give pn the registers of pp, which the in-flight P V still reads, and
    // serialize the wgmmas).
    auto step = [&](int64_t i, uint32_t (&pp)[8][4], uint32_t (&pn)[8][4]) {
      const int st = int(i % NST), sp = int((i - 1) % NST);
      Half h0, h1;
      halves(i, h0, h1);
      mbar_wait(fullK(st), uint32_t((i / NST) & 1));
      mbar_wait(fullV(sp), uint32_t(((i - 1) / NST) & 1));  // before the first wgmma: no branch inside
      // Every register the products below read is final before the fence (else the compiler may
      // sink the O rescale between the wgmmas, and ptxas serializes them).
      uint64_t dk[D / 16], dv[8];
      descs(st, sp, dk, dv);
      fence_regs(s);
      fence_regs(acc.o);
      fence_regs(pp);
      wgmma_fence();
      issue_s(dk);
      wgmma_commit();
      issue_pv(pp, dv);
      wgmma_commit();
      wgmma_wait<1>();  // S_i done; P_{i-1} V_{i-1} may still run
      fence_regs(s);
      __syncwarp();
      if (lane == 0) mbar_arrive(emptyK(st));
      float alpha[2];
      softmax128<D, Mode>(a, acc, s, h0, h1, prow, warp, cq, alpha, pn);
      wgmma_wait<0>();
      fence_regs(acc.o);
      fence_regs(pp);  // P_{i-1} is read until here
      __syncwarp();
      if (lane == 0) mbar_arrive(emptyV(sp));
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        acc.o[4 * n + 0] *= alpha[0];
        acc.o[4 * n + 1] *= alpha[0];
        acc.o[4 * n + 2] *= alpha[1];
        acc.o[4 * n + 3] *= alpha[1];
      }
    };
    int64_t i = 1;
    for (; i + 1 < npairs; i += 2) {
      step(i, pa, pb);
      step(i + 1, pb, pa);
    }
    // The last tile's P V.
    auto last_pv = [&](uint32_t (&p)[8][4]) {
      const int sp = int((npairs - 1) % NST);
      mbar_wait(fullV(sp), uint32_t(((npairs - 1) / NST) & 1));
      uint64_t dk[D / 16], dv[8];
      descs(sp, sp, dk, dv);
      fence_regs(acc.o);
      fence_regs(p);
      wgmma_fence();
      issue_pv(p, dv);
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(acc.o);
    };
    if (i < npairs) {
      step(i, pa, pb);
      last_pv(pb);
    } else {
      last_pv(pa);
    }
  }
  wg_store<D>(a, acc, b, h, row0, cq);
}

// Three warpgroups: the two consumers, then the producer, which gives its registers to them
// (setmaxnreg: 24 for the producer, 240 for each consumer thread; the launch cap of 384 threads
// would be 168).
constexpr int kPipeThreads = 3 * 128;

template <int D, int Mode>
__global__ void __launch_bounds__(kPipeThreads, 1)
    attention_wgmma_pipe(const TcArgs a, const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mk,
                         const __grid_constant__ CUtensorMap mv) {
  constexpr int NST = pipe_stages(D);
  static_assert(NST >= 2, "at least two K/V stages");
  constexpr int QT = kTcQTile, HT = kTcKTile, KT = 2 * kTcKTile;  // 128 keys: two 64-key halves
  constexpr int kTileBytes = KT * D * 2;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t sQ = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sKV = sQ + QT * D * 2;
  auto sK = [&](int s) { return sKV + uint32_t(2 * s * kTileBytes); };
  auto sV = [&](int s) { return sKV + uint32_t((2 * s + 1) * kTileBytes); };
  const uint32_t sBar = sKV + 2 * NST * kTileBytes;  // barQ, fullK, fullV, emptyK, emptyV
  const uint32_t barQ = sBar;
  auto fullK = [&](int s) { return sBar + 8u * uint32_t(1 + s); };
  auto fullV = [&](int s) { return sBar + 8u * uint32_t(1 + NST + s); };
  auto emptyK = [&](int s) { return sBar + 8u * uint32_t(1 + 2 * NST + s); };
  auto emptyV = [&](int s) { return sBar + 8u * uint32_t(1 + 3 * NST + s); };

  const int tid = threadIdx.x, warp_all = tid >> 5, lane = tid & 31;
  const int64_t qt = int64_t(gridDim.x) - 1 - blockIdx.x;
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int64_t kvh = h / (a.heads / a.kv_heads);
  const int64_t q0 = qt * QT;
  int64_t t_begin, t_end;
  tc::tile_range<Mode, kTcQTile>(a, b, kvh, qt, t_begin, t_end);
  const int64_t npairs = (t_end - t_begin + 1) / 2;

  if (tid == 0) {
    mbar_init(barQ, 1);
    for (int s = 0; s < NST; ++s) {
      mbar_init(fullK(s), 1);
      mbar_init(fullV(s), 1);
      mbar_init(emptyK(s), kWgThreads / 32);
      mbar_init(emptyV(s), kWgThreads / 32);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp_all >= 8) {  // producer warpgroup: one lane issues the copies
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (warp_all == 8 && lane == 0 && npairs > 0) {
      mbar_expect_tx(barQ, uint32_t(QT * D * 2));
#pragma unroll
      for (int c = 0; c < D / 64; ++c) tma_load3(sQ + uint32_t(c * QT * 128), &mq, c * 64, int(q0), int(b * a.heads + h), barQ);
      const int kvs = int(b * a.kv_heads + kvh);
      for (int64_t i = 0; i < npairs; ++i) {
        const int s = int(i % NST);
        const uint32_t par = uint32_t(((i / NST) & 1) ^ 1);
        const int64_t t0 = t_begin + 2 * i, t1 = t0 + 1 < t_end ? t0 + 1 : t0;
        const int k0 = int(key0_of<Mode>(a, t0)), k1 = int(key0_of<Mode>(a, t1));
        if (i >= NST) mbar_wait(emptyK(s), par);
        mbar_expect_tx(fullK(s), uint32_t(kTileBytes));
#pragma unroll
        for (int c = 0; c < D / 64; ++c) {
          tma_load3(sK(s) + uint32_t(c * KT * 128), &mk, c * 64, k0, kvs, fullK(s));
          tma_load3(sK(s) + uint32_t(c * KT * 128 + HT * 128), &mk, c * 64, k1, kvs, fullK(s));
        }
        if (i >= NST) mbar_wait(emptyV(s), par);
        mbar_expect_tx(fullV(s), uint32_t(kTileBytes));
#pragma unroll
        for (int c = 0; c < D / 64; ++c) {
          tma_load3(sV(s) + uint32_t(c * KT * 128), &mv, c * 64, k0, kvs, fullV(s));
          tma_load3(sV(s) + uint32_t(c * KT * 128 + HT * 128), &mv, c * 64, k1, kvs, fullV(s));
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
    pipe_consumer<D, Mode>(a, sQ, sKV, sBar, t_begin, t_end, npairs, q0, b, h, tid, lane);
  }
}

// ---- Host side ----

#ifndef SATTN_HOPPER_TMA
#define SATTN_HOPPER_TMA 1  // 1: variant 2 (TMA, producer warp); 0: variant 1 (cp.async)
#endif

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static bool tried = false;
  if (!tried) {
    tried = true;
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) == cudaSuccess &&
        q == cudaDriverEntryPointSuccess)
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }
  return fn;
}

// [slices, rows, D] bf16 (or fp32) as a 3-D tensor map with boxes of 64 (32) columns x box_rows
// rows, 128-byte swizzle; rows past `rows` read as zeros (and are not written by reductions).
// fp32: boxes of 32 columns (128 bytes a row, the swizzle's width).
bool make_map(CUtensorMap* m, const void* base, int64_t slices, int64_t rows, int D, int box_rows, bool fp32 = false) {
  const auto fn = encode_fn();
  if (!fn) return false;
  const int es = fp32 ? 4 : 2;
  const cuuint64_t dims[3] = {cuuint64_t(D), cuuint64_t(rows), cuuint64_t(slices)};
  const cuuint64_t strides[2] = {cuuint64_t(D) * es, cuuint64_t(rows) * D * es};
  const cuuint32_t box[3] = {cuuint32_t(128 / es), cuuint32_t(box_rows), 1};
  const cuuint32_t estr[3] = {1, 1, 1};
  return fn(m, fp32 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims,
            strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <int D, int Mode>
cudaError_t launch_wgmma(const TcArgs& a, int variant) {
  const dim3 grid(unsigned((a.seq_len + kTcQTile - 1) / kTcQTile), unsigned(a.heads), unsigned(a.batch));
  if (variant == kHopperPipelined || SATTN_HOPPER_TMA) {
    CUtensorMap mq, mk, mv;
    if (!make_map(&mq, a.q, a.batch * a.heads, a.seq_len, D, kTcQTile) ||
        !make_map(&mk, a.k, a.batch * a.kv_heads, a.kv_len, D, kTcKTile) ||
        !make_map(&mv, a.v, a.batch * a.kv_heads, a.kv_len, D, kTcKTile))
      return cudaErrorInvalidValue;
    if (variant == kHopperPipelined) {
      constexpr int smem = pipe_smem<D>();
      static bool configured = false;
      if (!configured) {
        const cudaError_t e = cudaFuncSetAttribute(attention_wgmma_pipe<D, Mode>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return e;
        configured = true;
      }
      attention_wgmma_pipe<D, Mode><<<grid, kPipeThreads, smem>>>(a, mq, mk, mv);
      return cudaGetLastError();
    }
    constexpr int smem = hopper_smem<D>();
    static bool configured = false;
    if (!configured) {
      const cudaError_t e = cudaFuncSetAttribute(attention_wgmma_tma<D, Mode>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (e != cudaSuccess) return e;
      configured = true;
    }
    attention_wgmma_tma<D, Mode><<<grid, kTmaThreads, smem>>>(a, mq, mk, mv);
  } else {
    constexpr int smem = hopper_smem<D>();
    static bool configured = false;
    if (!configured) {
      const cudaError_t e = cudaFuncSetAttribute(attention_wgmma<D, Mode>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
      if (e != cudaSuccess) return e;
      configured = true;
    }
    attention_wgmma<D, Mode><<<grid, kWgThreads, smem>>>(a);
  }
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_wgmma_dim(const TcArgs& a, int variant) {
  switch (a.mode) {
    case kTcDense: return launch_wgmma<D, kTcDense>(a, variant);
    case kTcTiles: return launch_wgmma<D, kTcTiles>(a, variant);
    case kTcWindow: return launch_wgmma<D, kTcWindow>(a, variant);
    default: return cudaErrorInvalidValue;
  }
}

// ---- Backward on wgmma: dK, dV (and dQ by vector reductions) per 64 keys ----
// One warpgroup per CTA owns 64 keys of one KV head (K and V in shared memory, by TMA) and streams
// the (query head, 64-query tile) steps that see them, Q and dO (bf16) by TMA into two stages
// (thread 0 issues step x + 1's copies once step x's first products are issued; mbarriers). Per step, on wgmma:
// S^T = K Q^T and dP^T = V dO^T (both operands from shared memory), then in registers (the
// accumulator layout of m64n64 is per warp the mma.sync one, so the masks are those of
// bwd_dkdv_tc) P^T = 2^(S^T scale_log2 - lse2) and dS^T = P^T (dP^T - delta); dV += P^T dO and
// dK += dS^T Q with P^T, dS^T as register A operands; dS^T also goes to shared memory (bf16,
// swizzled) and dQ = dS K (A = dS^T transposed, B = K transposed, 64 columns at a time) is added
// into dq with red.global.add.v2.f32. Same arguments, masks and results as the mma.sync kernels.
constexpr int kBwdRows = 64;  // keys per CTA and queries per step
static_assert(kBwdRows == 64, "the key tile lists (ttile_*) are built for 64-key tiles");

__device__ __forceinline__ void red_add_v2(float* dst, float x, float y) {
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(dst), "f"(x), "f"(y) : "memory");
}
__device__ __forceinline__ void wg_bar() { asm volatile("bar.sync 1, 128;\n" ::: "memory"); }

template <int D>
constexpr int bwd_wgmma_smem() {
  return (2 + 4) * kBwdRows * D * 2 + kBwdRows * kBwdRows * 2 + 1024 + 64;  // K, V, 2 x (Q, dO), dS^T
}

// dQ into the zeroed dq: kTmaDq, through shared memory (the step's Q and dO stage, free once its
// products are done: 64 x D fp32 in 32-column boxes, 128-byte swizzle) and one bulk tensor
// reduction per box (cp.reduce.async.bulk.tensor .add, issued by thread 0, which waits for its
// reads before the stage is loaded again); else red.global.add.v2.f32 from every thread (L2-bound:
// ncu at seq 16384, head_dim 128, L2 throughput 74%).
__device__ __forceinline__ void tma_reduce_add3(const CUtensorMap* map, uint32_t src, int c0, int c1, int c2) {
  asm volatile("cp.reduce.async.bulk.tensor.3d.global.shared::cta.add.tile.bulk_group [%0, {%2, %3, %4}], [%1];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(src), "r"(c0), "r"(c1), "r"(c2)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }

// P^T and dS^T of a warpgroup's 64-key step (m64n64 accumulator layout, computed in place of S^T and
// dP^T) packed as the bf16 register A operands of dV += P^T dO and dK += dS^T Q, and dS^T into
// shared memory at sDS ([64 keys][64 queries], swizzled: row = key warp * 16 + g + 8 r, column =
// query 8 n + 2 cq + c) for dQ; the caller fences the async proxy. Both backward kernels.
__device__ __forceinline__ void bwd_pack_ds(const float (&s)[32], const float (&dp)[32], uint32_t (&pa)[4][4],
                                            uint32_t (&da)[4][4], uint32_t sDS, int warp, int g, int cq) {
#pragma unroll
  for (int kc = 0; kc < 4; ++kc)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      pa[kc][j] = pack_bf16(s[8 * kc + 2 * j], s[8 * kc + 2 * j + 1]);
      da[kc][j] = pack_bf16(dp[8 * kc + 2 * j], dp[8 * kc + 2 * j + 1]);
    }
#pragma unroll
  for (int kc = 0; kc < 4; ++kc)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = warp * 16 + g + 8 * (j & 1), chunk = 2 * kc + (j >> 1);
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sDS + sw_off<64>(row, chunk) + uint32_t(4 * cq)), "r"(da[kc][j]));
    }
}

// CTAs per SM the backward is compiled for (registers: 65536 / (128 x this)); shared memory allows
// 3 at head_dim 64, 2 at 128.
#ifndef SATTN_HOPPER_BWD_MINB_64
#define SATTN_HOPPER_BWD_MINB_64 2
#endif
template <int D, int Mode, bool kTmaDq>
__global__ void __launch_bounds__(128, D > 64 ? 2 : SATTN_HOPPER_BWD_MINB_64)
    bwd_dkdv_wgmma(const TcBwdArgs a, const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mdo,
                   const __grid_constant__ CUtensorMap mk, const __grid_constant__ CUtensorMap mv,
                   const __grid_constant__ CUtensorMap mdq) {
  constexpr int R = kBwdRows, kTile = R * D * 2;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t sK = (smem_addr(smem_raw) + 1023u) & ~1023u, sV = sK + kTile;
  auto sQ = [&](int st) { return sK + uint32_t((2 + 2 * st) * kTile); };
  auto sO = [&](int st) { return sK + uint32_t((3 + 2 * st) * kTile); };
  const uint32_t sDS = sK + 6 * kTile;  // [64 keys][64 queries] bf16, 128-byte swizzle
  const uint32_t barKV = sDS + R * R * 2;
  auto full = [&](int st) { return barKV + 8u * uint32_t(1 + st); };

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, cq = lane & 3;
  const int64_t kt = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t group = a.heads / a.kv_heads, k0 = kt * R, off = a.causal_offset;
  const int64_t bk = b * a.kv_heads + kvh;
  int64_t t_begin = 0, t_end = 0;
  if (Mode == kTcTiles) {
    const int64_t* p = a.ttile_ptr + (a.shared ? 0 : bk * (a.n_ktiles + 1));
    t_begin = p[kt];
    t_end = p[kt + 1];
  } else {
    const int64_t klast = min(k0 + R, a.kv_len) - 1;
    int64_t lo = a.causal ? max(int64_t(0), k0 - off) : 0, hi = a.seq_len;
    if (Mode == kTcWindow) {
      const int64_t span = a.window * a.dilation;
      lo = max(lo, k0 - off - (a.causal ? 0 : span));
      hi = min(hi, klast - off + span + 1);
    }
    if (hi > lo) t_begin = lo / R, t_end = (hi - 1) / R + 1;
  }
  auto q0_of = [&](int64_t t) -> int64_t { return Mode == kTcTiles ? int64_t(a.ttile_col[t]) * R : t * R; };
  const int64_t n_tiles = t_end - t_begin, steps = n_tiles * group;  // (head, tile), head-major
  auto issue_step = [&](int64_t x) {  // thread 0: Q and dO of step x into stage x & 1
    const int st = int(x & 1);
    const int bh = int(b * a.heads + kvh * group + x / n_tiles), q0 = int(q0_of(t_begin + x % n_tiles));
    mbar_expect_tx(full(st), uint32_t(2 * kTile));
#pragma unroll
    for (int c = 0; c < D / 64; ++c) {
      tma_load3(sQ(st) + uint32_t(c * R * 128), &mq, c * 64, q0, bh, full(st));
      tma_load3(sO(st) + uint32_t(c * R * 128), &mdo, c * 64, q0, bh, full(st));
    }
  };
  if (tid == 0) {
    mbar_init(barKV, 1);
    mbar_init(full(0), 1);
    mbar_init(full(1), 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (tid == 0 && steps > 0) {
    mbar_expect_tx(barKV, uint32_t(2 * kTile));
#pragma unroll
    for (int c = 0; c < D / 64; ++c) {
      tma_load3(sK + uint32_t(c * R * 128), &mk, c * 64, int(k0), int(bk), barKV);
      tma_load3(sV + uint32_t(c * R * 128), &mv, c * 64, int(k0), int(bk), barKV);
    }
    issue_step(0);
  }

  float dk[D / 2], dv[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dk[i] = dv[i] = 0.f;
  const int64_t kw = k0 + warp * 16, key0 = kw + g;  // this thread's keys key0, key0 + 8
  const bool keys_in = kw + 16 <= a.kv_len;
  uint64_t dkA[D / 16], dvA[D / 16];  // K and V as the A operand (K-major)
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    dkA[kk] = sw128_desc(sK + uint32_t((kk >> 2) * R * 128 + (kk & 3) * 32), 16, 1024);
    dvA[kk] = sw128_desc(sV + uint32_t((kk >> 2) * R * 128 + (kk & 3) * 32), 16, 1024);
  }
  if (steps > 0) mbar_wait(barKV, 0);
  for (int64_t x = 0; x < steps; ++x) {
    const int st = int(x & 1);
    const int64_t t = t_begin + x % n_tiles, q0 = q0_of(t);
    const int64_t bh = b * a.heads + kvh * group + x / n_tiles;
    // lse2 and delta of this thread's 16 query columns (n * 8 + 2 cq + c), padded rows: no bounds.
    float2 l2[8], dl[8];
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      l2[n] = *reinterpret_cast<const float2*>(a.lse2 + bh * a.seq_pad + q0 + n * 8 + 2 * cq);
      dl[n] = *reinterpret_cast<const float2*>(a.delta + bh * a.seq_pad + q0 + n * 8 + 2 * cq);
    }
    uint64_t dqB[D / 16], doB[D / 16];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      dqB[kk] = sw128_desc(sQ(st) + uint32_t((kk >> 2) * R * 128 + (kk & 3) * 32), 16, 1024);
      doB[kk] = sw128_desc(sO(st) + uint32_t((kk >> 2) * R * 128 + (kk & 3) * 32), 16, 1024);
    }
    mbar_wait(full(st), uint32_t((x >> 1) & 1));
    float s[32], dp[32];
    wgmma_fence();
    wgmma_ss_n64_kk0(s, dkA[0], dqB[0]);
#pragma unroll
    for (int kk = 1; kk < D / 16; ++kk) wgmma_ss_n64_kk1(s, dkA[kk], dqB[kk]);
    wgmma_ss_n64_kk0(dp, dvA[0], doB[0]);
#pragma unroll
    for (int kk = 1; kk < D / 16; ++kk) wgmma_ss_n64_kk1(dp, dvA[kk], doB[kk]);
    wgmma_commit();
    // Step x + 1's Q and dO into stage st ^ 1 (free: step x - 1 is done), issued while S^T and dP^T
    // are on the tensor cores: thread 0's wait for step x - 1's dQ reductions to have read that
    // stage (issued just before) then overlaps the products instead of holding the warpgroup.
    if (tid == 0 && x + 1 < steps) {
      if (kTmaDq) bulk_wait_read();
      issue_step(x + 1);
    }
    wgmma_wait<0>();
    fence_regs(s);
    fence_regs(dp);
    const unsigned keymask = Mode == kTcTiles ? (a.ttile_mask[t] >> (warp * 4)) & 0xFu : 0xFu;
    const bool full_blk = Mode != kTcWindow && keymask == 0xFu && keys_in && q0 + R <= a.seq_len &&
                          (!a.causal || kw + 15 <= q0 + off);
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float lq = c ? l2[n].y : l2[n].x, dq_ = c ? dl[n].y : dl[n].x;
        const int64_t i = q0 + n * 8 + 2 * cq + c;
        const bool sub_ok = (keymask >> (n >> 1)) & 1;
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int e = 4 * n + 2 * r + c;
          const bool ok = full_blk || bwd_allowed<Mode>(a, i, key0 + 8 * r, sub_ok);
          const float p = ok ? ex2(s[e] * a.scale_log2 - lq) : 0.f;
          s[e] = p;
          dp[e] = p * (dp[e] - dq_);
        }
      }
    uint32_t pa[4][4], da[4][4];
    bwd_pack_ds(s, dp, pa, da, sDS, warp, g, cq);
    fence_proxy_async();  // the generic-proxy stores above are read by wgmma (async proxy)
    uint64_t doT[4], dqT[4];  // dO and Q as the transposed B of dV += P^T dO, dK += dS^T Q
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
      doT[kc] = sw128_desc(sO(st) + uint32_t(kc * 2048), R * 128, 1024);
      dqT[kc] = sw128_desc(sQ(st) + uint32_t(kc * 2048), R * 128, 1024);
    }
    fence_regs(dv);
    fence_regs(dk);
    fence_regs(pa);
    fence_regs(da);
    wgmma_fence();
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) wgmma_pv<D>(dv, pa[kc], doT[kc]);
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) wgmma_pv<D>(dk, da[kc], dqT[kc]);
    wgmma_commit();
    wg_bar();  // dS^T of every warp is in shared memory
    // dQ[q0.., :] += dS K, 64 columns at a time: A = dS^T (MN-major), B = K (MN-major).
    float* dqg = a.dq + bh * a.seq_len * D;
#pragma unroll
    for (int h = 0; h < D / 64; ++h) {
      float acc[32];
      uint64_t dsA[4], kB[4];
#pragma unroll
      for (int kc = 0; kc < 4; ++kc) {
        dsA[kc] = sw128_desc(sDS + uint32_t(kc * 2048), R * 128, 1024);
        kB[kc] = sw128_desc(sK + uint32_t(h * R * 128 + kc * 2048), R * 128, 1024);
      }
      wgmma_fence();
      wgmma_ss_n64_tt0(acc, dsA[0], kB[0]);
#pragma unroll
      for (int kc = 1; kc < 4; ++kc) wgmma_ss_n64_tt1(acc, dsA[kc], kB[kc]);
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(acc);
      if (kTmaDq) {
        if (h == 0) wg_bar();  // every warp's products of this step are done: the stage is free
        // Columns h * 64 + 8 n + 2 cq (+1) of rows warp * 16 + g (+8): box (h * 64 + 8 n) / 32, its
        // 16-byte chunk (8 n % 32 + 2 cq) / 4, swizzled with the row.
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int row = warp * 16 + g + 8 * r;
#pragma unroll
          for (int n = 0; n < 8; ++n) {
            const int box = (h * 64 + 8 * n) / 32, chunk = ((8 * n) % 32 + 2 * cq) / 4;
            const uint32_t addr = sQ(st) + uint32_t(box * R * 128 + row * 128 + ((chunk ^ (row & 7)) << 4) + (2 * cq % 4) * 4);
            asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(acc[4 * n + 2 * r] * a.scale),
                         "f"(acc[4 * n + 2 * r + 1] * a.scale)
                         : "memory");
          }
        }
      } else {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int64_t i = q0 + warp * 16 + g + 8 * r;
          if (i >= a.seq_len) continue;
#pragma unroll
          for (int n = 0; n < 8; ++n)
            red_add_v2(dqg + i * D + h * 64 + n * 8 + 2 * cq, acc[4 * n + 2 * r] * a.scale, acc[4 * n + 2 * r + 1] * a.scale);
        }
      }
    }
    if (kTmaDq) {
      fence_proxy_async();  // the stores above are read by the bulk copy engine
      wg_bar();
      if (tid == 0) {
#pragma unroll
        for (int box = 0; box < D / 32; ++box) tma_reduce_add3(&mdq, sQ(st) + uint32_t(box * R * 128), box * 32, int(q0), int(bh));
        bulk_commit();
      }
    }
    fence_regs(dv);
    fence_regs(dk);
    fence_regs(pa);
    fence_regs(da);
    wg_bar();  // every warp is done with stage st and with sDS before they are written again
  }
  if (kTmaDq && tid == 0) bulk_wait_all();  // the last reductions have read shared memory
  float* dkg = a.dk + bk * a.kv_len * D;
  float* dvg = a.dv + bk * a.kv_len * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t j = key0 + 8 * r;
    if (j >= a.kv_len) continue;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<float2*>(dkg + j * D + n * 8 + 2 * cq) = make_float2(dk[4 * n + 2 * r] * a.scale, dk[4 * n + 2 * r + 1] * a.scale);
      *reinterpret_cast<float2*>(dvg + j * D + n * 8 + 2 * cq) = make_float2(dv[4 * n + 2 * r], dv[4 * n + 2 * r + 1]);
    }
  }
}

// SATTN_CUDA_HOPPER_BWD_DQ=red: dQ by vector reductions from every thread instead of bulk tensor
// reductions (read at each launch, for tests and measurements).
bool bwd_dq_red() {
  const char* e = getenv("SATTN_CUDA_HOPPER_BWD_DQ");
  return e && e[0] == 'r' && e[1] == 'e' && e[2] == 'd' && e[3] == 0;
}

template <int D, int Mode, bool kTmaDq>
cudaError_t launch_bwd_wgmma_k(const TcBwdArgs& a) {
  constexpr int smem = bwd_wgmma_smem<D>();
  CUtensorMap mq, mdo, mk, mv, mdq;
  if (!make_map(&mq, a.q, a.batch * a.heads, a.seq_len, D, kBwdRows) ||
      !make_map(&mdo, a.dout16, a.batch * a.heads, a.seq_len, D, kBwdRows) ||
      !make_map(&mk, a.k, a.batch * a.kv_heads, a.kv_len, D, kBwdRows) ||
      !make_map(&mv, a.v, a.batch * a.kv_heads, a.kv_len, D, kBwdRows) ||
      !make_map(&mdq, a.dq, a.batch * a.heads, a.seq_len, D, kBwdRows, true))
    return cudaErrorInvalidValue;
  static bool configured = false;
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(bwd_dkdv_wgmma<D, Mode, kTmaDq>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int64_t n_kt = (a.kv_len + kBwdRows - 1) / kBwdRows;
  const cudaError_t e = cudaMemsetAsync(a.dq, 0, size_t(a.batch * a.heads * a.seq_len) * D * sizeof(float));
  if (e != cudaSuccess) return e;
  if (n_kt > 0)
    bwd_dkdv_wgmma<D, Mode, kTmaDq><<<dim3(unsigned(n_kt), unsigned(a.kv_heads), unsigned(a.batch)), 128, smem>>>(
        a, mq, mdo, mk, mv, mdq);
  return cudaGetLastError();
}

template <int D, int Mode>
cudaError_t launch_bwd_wgmma(const TcBwdArgs& a) {
  return bwd_dq_red() ? launch_bwd_wgmma_k<D, Mode, false>(a) : launch_bwd_wgmma_k<D, Mode, true>(a);
}

template <int D>
cudaError_t launch_bwd_wgmma_dim(const TcBwdArgs& a) {
  switch (a.mode) {
    case kTcDense: return launch_bwd_wgmma<D, kTcDense>(a);
    case kTcTiles: return launch_bwd_wgmma<D, kTcTiles>(a);
    case kTcWindow: return launch_bwd_wgmma<D, kTcWindow>(a);
    default: return cudaErrorInvalidValue;
  }
}

// ---- Backward, variant 2 (the default): two consumer warpgroups over 128 keys, a producer ----
// FlashAttention-3's backward structure on the same per-warpgroup step as bwd_dkdv_wgmma: a CTA owns
// 128 keys of one KV head (two 64-key halves, one per consumer warpgroup: the key tiles 2c and
// 2c + 1 of the 64-key lists, so plans and masks are unchanged) and streams the (query head,
// 64-query tile) steps that see either half. A producer warpgroup (registers handed to the
// consumers with setmaxnreg: 24 / 240) loads each step's Q, dO, lse2 and delta once for both halves
// by TMA into bwd2_stages(D) stages (full/empty mbarriers), so Q/dO traffic is half that of
// bwd_dkdv_wgmma. Each consumer warpgroup runs the 64-key step of bwd_dkdv_wgmma on its half
// (skipping a step its half does not see, after waiting for the stage so that the arrivals of the
// empty barrier stay in phase), releases the stage once its dV/dK products have read it, and adds
// its dQ (64 x D, from its own dS^T and K half) into dq from its own shared-memory buffer by bulk
// tensor reductions; at head_dim 128 dQ is split by columns instead (kBwd2DqSplit: each warpgroup
// 64 columns over both halves' dS^T, so every step is taken by both). The next step's S^T (at
// head_dim 64 also dP^T) is issued under this step's dQ (kBwd2Prefetch); at head_dim 64 K and V
// are register A operands (kBwd2KvRegs); unmasked tiles skip the per-element masks
// (kBwd2FullBranch). The steps: per query head, the merged ascending lists of the two halves
// (BSR), or the union of their query-tile ranges (dense, window).
#ifndef SATTN_HOPPER_BWD2_STAGES_64
#define SATTN_HOPPER_BWD2_STAGES_64 2
#endif
#ifndef SATTN_HOPPER_BWD2_STAGES_128
#define SATTN_HOPPER_BWD2_STAGES_128 2
#endif
// kBwd2Prefetch: 0 none, 1 the next step's S^T, 2 its S^T and dP^T issued under this step's dQ
// (registers: at head_dim 128 the dK and dV accumulators take 128 per thread).
#ifndef SATTN_HOPPER_BWD2_PREFETCH_64
#define SATTN_HOPPER_BWD2_PREFETCH_64 2
#endif
#ifndef SATTN_HOPPER_BWD2_PREFETCH_128
#define SATTN_HOPPER_BWD2_PREFETCH_128 1
#endif
// kBwd2KvRegs: K and V as register A operands of S^T and dP^T (loaded once by ldmatrix), halving
// the shared-memory reads of those products; head_dim 64 only (at 128, K alone spills 112-188
// bytes and serializes the wgmmas: C7512).
#ifndef SATTN_HOPPER_BWD2_KV_REGS_64
#define SATTN_HOPPER_BWD2_KV_REGS_64 1
#endif
template <int D>
__host__ __device__ constexpr bool kBwd2KvRegs() { return D == 64 && SATTN_HOPPER_BWD2_KV_REGS_64 != 0; }
// kBwd2DqSplit: dQ split by columns (FlashAttention-3's order) instead of by keys: warpgroup w
// computes columns 64 w.. of the step's dQ over all 128 keys, from both halves' dS^T (two buffers
// in shared memory, alternating by step; one 256-thread barrier per step once both are stored), so
// a step adds 64 x D of dQ into dq instead of 2 x 64 x D (half the bulk reductions and the fp32
// staging stores). The warpgroups then take every step (a half that sees nothing of it contributes
// zeros). Head_dim 128 only (at 64 a warpgroup's columns would be 32: m64n32).
#ifndef SATTN_HOPPER_BWD2_DQ_SPLIT_128
#define SATTN_HOPPER_BWD2_DQ_SPLIT_128 1
#endif
// kBwd2FullBranch: a step's 16 keys x 64 queries that no mask cuts (full_blk: BSR sub-blocks all
// on, inside kv_len and seq_len, wholly in the causal past) run a copy of P^T / dS^T without the
// per-element mask (the 64-bit index compares of bwd_allowed); alone it took 5-21% off the
// backward at seq 16384 (decisions.md). 0: one loop for both.
#ifndef SATTN_HOPPER_BWD2_FULL_BRANCH
#define SATTN_HOPPER_BWD2_FULL_BRANCH 1
#endif
constexpr bool kBwd2FullBranch = SATTN_HOPPER_BWD2_FULL_BRANCH != 0;
template <int D>
__host__ __device__ constexpr bool kBwd2DqSplit() { return D == 128 && SATTN_HOPPER_BWD2_DQ_SPLIT_128 != 0; }

template <int D>
__host__ __device__ constexpr int kBwd2Prefetch() { return D > 64 ? SATTN_HOPPER_BWD2_PREFETCH_128 : SATTN_HOPPER_BWD2_PREFETCH_64; }
__host__ __device__ constexpr int bwd2_stages(int d) { return d > 64 ? SATTN_HOPPER_BWD2_STAGES_128 : SATTN_HOPPER_BWD2_STAGES_64; }
constexpr int kBwd2Keys = 2 * kBwdRows;
constexpr int kBwd2Threads = 3 * 128;

template <int D>
constexpr int bwd2_smem() {
  constexpr int R = kBwdRows, NST = bwd2_stages(D), DQC = kBwd2DqSplit<D>() ? 64 : D, NDS = kBwd2DqSplit<D>() ? 2 : 1;
  return 2 * kBwd2Keys * D * 2 + NST * 2 * R * D * 2 + 2 * R * DQC * 4 + NDS * 2 * R * R * 2 + NST * 2 * R * 4 +
         8 * (1 + 2 * NST) + 1024;  // K, V, stages (Q, dO), dQ x 2, dS^T x 2 (x NDS), (lse2, delta), mbarriers, alignment
}

__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}
__device__ __forceinline__ void named_bar(int id) { asm volatile("bar.sync %0, 128;\n" ::"r"(id) : "memory"); }
__device__ __forceinline__ float2 lds_f2(uint32_t addr) {
  float2 v;
  asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(addr) : "memory");
  return v;
}

// The query tiles of one query head that see either 64-key half of a CTA, ascending, with each
// half's 16 sub-block bits (bit k_sub * 4 + q_sub; 0: that half sees nothing of the tile).
template <int Mode>
struct Bwd2Steps {
  const int32_t* col;
  const uint32_t* mask;
  int64_t a0, a1, b0, b1;  // BSR: the halves' list entries [a0, a1), [b0, b1); else their tile ranges
  int64_t ia, ib;
  __device__ void init(const TcBwdArgs& a, int64_t bk, int64_t kt0) {
    if (Mode == kTcTiles) {
      const int64_t* p = a.ttile_ptr + (a.shared ? 0 : bk * (a.n_ktiles + 1));
      col = a.ttile_col;
      mask = a.ttile_mask;
      a0 = p[kt0];
      a1 = p[kt0 + 1];
      b0 = a1;
      b1 = kt0 + 1 < a.n_ktiles ? p[kt0 + 2] : a1;
    } else {
      range(a, kt0, a0, a1);
      range(a, kt0 + 1, b0, b1);
    }
  }
  __device__ static void range(const TcBwdArgs& a, int64_t kt, int64_t& t0, int64_t& t1) {
    constexpr int R = kBwdRows;
    const int64_t k0 = kt * R, off = a.causal_offset;
    t0 = t1 = 0;
    if (k0 >= a.kv_len) return;
    const int64_t klast = min(k0 + R, a.kv_len) - 1;
    int64_t lo = a.causal ? max(int64_t(0), k0 - off) : 0, hi = a.seq_len;
    if (Mode == kTcWindow) {
      const int64_t span = a.window * a.dilation;
      lo = max(lo, k0 - off - (a.causal ? 0 : span));
      hi = min(hi, klast - off + span + 1);
    }
    if (hi > lo) t0 = lo / R, t1 = (hi - 1) / R + 1;
  }
  __device__ bool any() const { return a1 > a0 || b1 > b0; }
  __device__ void reset() {
    if (Mode == kTcTiles) {
      ia = a0;
      ib = b0;
    } else {
      ia = a1 > a0 ? (b1 > b0 ? min(a0, b0) : a0) : b0;
    }
  }
  __device__ bool next(int64_t& qt, uint32_t& m0, uint32_t& m1) {
    if (Mode == kTcTiles) {
      const bool ha = ia < a1, hb = ib < b1;
      if (!ha && !hb) return false;
      const int32_t ca = ha ? col[ia] : INT32_MAX, cb = hb ? col[ib] : INT32_MAX, c = min(ca, cb);
      m0 = ca == c ? mask[ia++] : 0u;
      m1 = cb == c ? mask[ib++] : 0u;
      qt = c;
      return true;
    } else {
      const int64_t hi = max(a1, b1);
      if (ia >= hi || !any()) return false;
      qt = ia++;
      m0 = qt >= a0 && qt < a1 ? 0xFFFFu : 0u;
      m1 = qt >= b0 && qt < b1 ? 0xFFFFu : 0u;
      return true;
    }
  }
};

// The CTA's steps in order: per query head of the KV head's group, the query tiles of Bwd2Steps.
template <int Mode>
struct Bwd2Cursor {
  Bwd2Steps<Mode> w;
  int64_t hd;
  __device__ void start(const Bwd2Steps<Mode>& s) {
    w = s;
    w.reset();
    hd = 0;
  }
  __device__ bool next(const TcBwdArgs& a, int64_t group, int64_t b, int64_t kvh, int64_t& bh, int64_t& qt, uint32_t& m0,
                       uint32_t& m1) {
    while (hd < group) {
      if (w.next(qt, m0, m1)) {
        bh = b * a.heads + kvh * group + hd;
        return true;
      }
      ++hd;
      w.reset();
    }
    return false;
  }
};

template <int D, int Mode>
__global__ void __launch_bounds__(kBwd2Threads, 1)
    bwd_wgmma_ws(const TcBwdArgs a, const __grid_constant__ CUtensorMap mq, const __grid_constant__ CUtensorMap mdo,
                 const __grid_constant__ CUtensorMap mk, const __grid_constant__ CUtensorMap mv,
                 const __grid_constant__ CUtensorMap mdq) {
  constexpr int R = kBwdRows, KR = kBwd2Keys, NST = bwd2_stages(D), kTile = R * D * 2;
  constexpr bool kSplit = kBwd2DqSplit<D>();
  constexpr int DQC = kSplit ? 64 : D, NH = kSplit ? 1 : D / 64;  // dQ columns, 64-column products per warpgroup
  extern __shared__ unsigned char smem_raw[];
  const uint32_t sK = (smem_addr(smem_raw) + 1023u) & ~1023u, sV = sK + KR * D * 2;
  const uint32_t sSt = sV + KR * D * 2;  // stages: Q, dO
  auto sQ = [&](int st) { return sSt + uint32_t(2 * st * kTile); };
  auto sO = [&](int st) { return sSt + uint32_t((2 * st + 1) * kTile); };
  const uint32_t sDQ0 = sSt + 2 * NST * kTile;        // 2 x [64][DQC] fp32, 32-column boxes
  const uint32_t sDS0 = sDQ0 + 2 * R * DQC * 4;       // (kSplit: 2 x) 2 x [64 keys][64 queries] bf16
  const uint32_t sL0 = sDS0 + (kSplit ? 2 : 1) * 2 * R * R * 2;  // NST x (lse2[64], delta[64])
  const uint32_t barKV = sL0 + NST * 2 * R * 4;
  auto full = [&](int st) { return barKV + 8u * uint32_t(1 + st); };
  auto empty = [&](int st) { return barKV + 8u * uint32_t(1 + NST + st); };
  auto sL = [&](int st) { return sL0 + uint32_t(st * 2 * R * 4); };

  const int tid = threadIdx.x, warp_all = tid >> 5, lane = tid & 31;
  const int64_t c = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int64_t group = a.heads / a.kv_heads, k0 = c * KR;
  const int64_t bk = b * a.kv_heads + kvh;
  Bwd2Steps<Mode> steps;
  steps.init(a, bk, 2 * c);
  const bool any = steps.any();

  if (tid == 0) {
    mbar_init(barKV, 1);
    for (int s = 0; s < NST; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), 8);  // one arrival per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (warp_all >= 8) {  // producer warpgroup: one lane issues the copies
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n" ::: "memory");
    if (warp_all == 8 && lane == 0 && any) {
      // kSplit: the second half is always loaded (its dS^T, zero past kv_len, multiplies K in every
      // step's dQ): a last CTA of one half loads that half twice (finite values, masked).
      const bool two = k0 + R < a.kv_len, load2 = two || kSplit;
      const int k1 = int(two ? k0 + R : k0);
      mbar_expect_tx(barKV, uint32_t((load2 ? 4 : 2) * kTile));
#pragma unroll
      for (int cb = 0; cb < D / 64; ++cb) {
        tma_load3(sK + uint32_t(cb * KR * 128), &mk, cb * 64, int(k0), int(bk), barKV);
        tma_load3(sV + uint32_t(cb * KR * 128), &mv, cb * 64, int(k0), int(bk), barKV);
        if (load2) {
          tma_load3(sK + uint32_t(cb * KR * 128 + R * 128), &mk, cb * 64, k1, int(bk), barKV);
          tma_load3(sV + uint32_t(cb * KR * 128 + R * 128), &mv, cb * 64, k1, int(bk), barKV);
        }
      }
      Bwd2Cursor<Mode> cur;
      cur.start(steps);
      int64_t x = 0, bh, qt;
      uint32_t m0, m1;
      while (cur.next(a, group, b, kvh, bh, qt, m0, m1)) {
        const int st = int(x % NST);
        if (x >= NST) mbar_wait(empty(st), uint32_t(((x / NST) & 1) ^ 1));
        mbar_expect_tx(full(st), uint32_t(2 * kTile + 2 * R * 4));
#pragma unroll
        for (int cb = 0; cb < D / 64; ++cb) {
          tma_load3(sQ(st) + uint32_t(cb * R * 128), &mq, cb * 64, int(qt * R), int(bh), full(st));
          tma_load3(sO(st) + uint32_t(cb * R * 128), &mdo, cb * 64, int(qt * R), int(bh), full(st));
        }
        bulk_load(sL(st), a.lse2 + bh * a.seq_pad + qt * R, R * 4, full(st));
        bulk_load(sL(st) + R * 4, a.delta + bh * a.seq_pad + qt * R, R * 4, full(st));
        ++x;
      }
    }
    return;
  }
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
  const int w = tid >> 7, wtid = tid & 127, warp = wtid >> 5, g = lane >> 2, cq = lane & 3;
  const int bar_id = 1 + w;
  const int64_t off = a.causal_offset;
  const uint32_t sKw = sK + uint32_t(w * R * 128), sVw = sV + uint32_t(w * R * 128);  // this half's rows
  const uint32_t sDQ = sDQ0 + uint32_t(w * R * DQC * 4);
  uint32_t ds_buf = 0, sDSb = sDS0, sDS = sDS0 + uint32_t(w * R * R * 2);  // this step's dS^T buffer (both halves), this half's
  float dk[D / 2], dv[D / 2];
#pragma unroll
  for (int i = 0; i < D / 2; ++i) dk[i] = dv[i] = 0.f;
  const int64_t kw = k0 + w * R + warp * 16, key0 = kw + g;  // this thread's keys key0, key0 + 8
  const bool keys_in = kw + 16 <= a.kv_len;
  const uint64_t dkA0 = sw128_desc(sKw, 16, 1024), dvA0 = sw128_desc(sVw, 16, 1024);
  // S^T = K Q^T and dP^T = V dO^T of the step in stage st (both operands from shared memory).
  constexpr bool kKvRegs = kBwd2KvRegs<D>();
  uint32_t kA[kKvRegs ? D / 16 : 1][4], vA[kKvRegs ? D / 16 : 1][4];  // K, V as register A operands
  auto issue_s = [&](float (&s)[32], int st) {
    const uint64_t dqB0 = sw128_desc(sQ(st), 16, 1024);
    if constexpr (kKvRegs) {
      wgmma_rs_n64_kb0(s, kA[0], dqB0);
#pragma unroll
      for (int kk = 1; kk < D / 16; ++kk) wgmma_rs_n64_kb1(s, kA[kk], dqB0 + uint64_t(((kk >> 2) * R * 128 + (kk & 3) * 32) >> 4));
    } else {
      wgmma_ss_n64_kk0(s, dkA0, dqB0);
#pragma unroll
      for (int kk = 1; kk < D / 16; ++kk)
        wgmma_ss_n64_kk1(s, dkA0 + uint64_t(((kk >> 2) * KR * 128 + (kk & 3) * 32) >> 4),
                         dqB0 + uint64_t(((kk >> 2) * R * 128 + (kk & 3) * 32) >> 4));
    }
  };
  auto issue_dp = [&](float (&dp)[32], int st) {
    const uint64_t doB0 = sw128_desc(sO(st), 16, 1024);
    if constexpr (kKvRegs) {
      wgmma_rs_n64_kb0(dp, vA[0], doB0);
#pragma unroll
      for (int kk = 1; kk < D / 16; ++kk) wgmma_rs_n64_kb1(dp, vA[kk], doB0 + uint64_t(((kk >> 2) * R * 128 + (kk & 3) * 32) >> 4));
    } else {
      wgmma_ss_n64_kk0(dp, dvA0, doB0);
#pragma unroll
      for (int kk = 1; kk < D / 16; ++kk)
        wgmma_ss_n64_kk1(dp, dvA0 + uint64_t(((kk >> 2) * KR * 128 + (kk & 3) * 32) >> 4),
                         doB0 + uint64_t(((kk >> 2) * R * 128 + (kk & 3) * 32) >> 4));
    }
  };
  if (any) mbar_wait(barKV, 0);
  if constexpr (kKvRegs) {  // ldmatrix: lanes 0-15 rows 0-15 of the warp at chunk 2 kk, lanes 16-31 at 2 kk + 1
    const int row = w * R + warp * 16 + (lane & 15);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const int c = 2 * kk + (lane >> 4);
      tc::ldsm_x4(kA[kk], sK + sw_off<KR>(row, c));
      tc::ldsm_x4(vA[kk], sV + sw_off<KR>(row, c));
    }
  }
  Bwd2Cursor<Mode> cur;
  cur.start(steps);
  int64_t x = 0;  // steps taken from the CTA's sequence (step x: stage x % NST, phase x / NST)
  // The next step of this half: skipped steps (this half sees nothing of the tile) release their
  // stage once it has landed, so that the empty barriers' arrivals stay in phase; false at the end.
  auto advance = [&](int64_t& bh, int64_t& qt, uint32_t& mw, int& st) -> bool {
    uint32_t m0, m1;
    while (cur.next(a, group, b, kvh, bh, qt, m0, m1)) {
      st = int(x % NST);
      const uint32_t par = uint32_t((x / NST) & 1);
      ++x;
      mw = w ? m1 : m0;
      mbar_wait(full(st), par);
      if (mw != 0 || kSplit) return true;
      __syncwarp();
      if (lane == 0) mbar_arrive(empty(st));
    }
    return false;
  };
  // Products are never issued under a branch (ptxas would serialize every wgmma): past the last
  // step the prefetch reads stage 0 and its result is dropped.
  float s[32], dp[32];
  int64_t bh, qt;
  uint32_t mw;
  int st;
  bool has = advance(bh, qt, mw, st);
  if (kBwd2Prefetch<D>() > 0) {
    wgmma_fence();
    issue_s(s, has ? st : 0);
    if (kBwd2Prefetch<D>() == 2) issue_dp(dp, has ? st : 0);
    wgmma_commit();
  }
  while (has) {
    if (kBwd2Prefetch<D>() < 2) {
      wgmma_fence();
      if (kBwd2Prefetch<D>() == 0) issue_s(s, st);
      issue_dp(dp, st);
      wgmma_commit();
    }
    const int64_t q0 = qt * R;
    wgmma_wait<0>();
    fence_regs(s);
    fence_regs(dp);
    if constexpr (kSplit) {  // alternate the dS^T buffers (the other half may still read the last one)
      ds_buf ^= 1u;
      sDSb = sDS0 + ds_buf * uint32_t(2 * R * R * 2);
      sDS = sDSb + uint32_t(w * R * R * 2);
    }
    const unsigned keymask = Mode == kTcTiles ? (mw >> (warp * 4)) & 0xFu : 0xFu;
    const bool full_blk = Mode != kTcWindow && keymask == 0xFu && keys_in && q0 + R <= a.seq_len &&
                          (!a.causal || kw + 15 <= q0 + off);
    // P^T and dS^T in place of S^T and dP^T. masks: 0 none (full_blk), 1 bwd_allowed, 2 one loop for
    // both (full_blk || bwd_allowed: the masks are computed either way; kBwd2FullBranch off). The same
    // loop as bwd_dkdv_wgmma's (form 2, lse2/delta from registers there): a helper shared by both
    // compiled this kernel to different machine code (scheduling) than the build measured in
    // bench/results/gpu.md, so each keeps its own.
    auto grad_tile = [&](auto masks) {
      constexpr int kMasks = decltype(masks)::value;
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        const float2 l2 = lds_f2(sL(st) + uint32_t((n * 8 + 2 * cq) * 4));
        const float2 dl = lds_f2(sL(st) + uint32_t(R * 4 + (n * 8 + 2 * cq) * 4));
#pragma unroll
        for (int cc = 0; cc < 2; ++cc) {
          const float lq = cc ? l2.y : l2.x, dq_ = cc ? dl.y : dl.x;
          const int64_t i = q0 + n * 8 + 2 * cq + cc;
          const bool sub_ok = (keymask >> (n >> 1)) & 1;
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int e = 4 * n + 2 * r + cc;
            const bool ok = kMasks == 0 || (kMasks == 2 && full_blk) || bwd_allowed<Mode>(a, i, key0 + 8 * r, sub_ok);
            const float p = ok ? ex2(s[e] * a.scale_log2 - lq) : 0.f;
            s[e] = p;
            dp[e] = p * (dp[e] - dq_);
          }
        }
      }
    };
    if constexpr (kBwd2FullBranch) {
      if (full_blk)
        grad_tile(std::integral_constant<int, 0>{});
      else
        grad_tile(std::integral_constant<int, 1>{});
    } else {
      grad_tile(std::integral_constant<int, 2>{});
    }
    uint32_t pa[4][4], da[4][4];
    bwd_pack_ds(s, dp, pa, da, sDS, warp, g, cq);
    fence_proxy_async();  // the generic-proxy stores above are read by wgmma (async proxy)
    const uint64_t doT0 = sw128_desc(sO(st), R * 128, 1024), dqT0 = sw128_desc(sQ(st), R * 128, 1024);
    fence_regs(dv);
    fence_regs(dk);
    fence_regs(pa);
    fence_regs(da);
    wgmma_fence();
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) wgmma_pv<D>(dv, pa[kc], doT0 + uint64_t(kc * 2048 >> 4));
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) wgmma_pv<D>(dk, da[kc], dqT0 + uint64_t(kc * 2048 >> 4));
    wgmma_commit();
    if constexpr (kSplit)
      asm volatile("bar.sync 3, 256;\n" ::: "memory");  // dS^T of both halves is in shared memory
    else
      named_bar(bar_id);  // dS^T of every warp of this half is in shared memory
    // dQ[q0.., :] += dS K (this half's keys), 64 columns at a time: A = dS^T, B = K (MN-major),
    // into this half's buffer and from there by bulk tensor reductions.
    int64_t bh2 = 0, qt2 = 0;
    uint32_t mw2 = 0;
    int st2 = 0;
    bool has2 = false;
#pragma unroll
    for (int h = 0; h < NH; ++h) {
      float acc[32];
      // kSplit: A = both halves' dS^T (128 keys: 8 k-steps), B = K's column block w (all 128 keys).
      const uint64_t dsA0 = sw128_desc(kSplit ? sDSb : sDS, R * 128, 1024),
                     kB0 = sw128_desc(kSplit ? sK + uint32_t(w * KR * 128) : sKw + uint32_t(h * KR * 128), KR * 128, 1024);
      wgmma_fence();
      wgmma_ss_n64_tt0(acc, dsA0, kB0);
#pragma unroll
      for (int kc = 1; kc < (kSplit ? 8 : 4); ++kc)
        wgmma_ss_n64_tt1(acc, dsA0 + uint64_t(kc * 2048 >> 4), kB0 + uint64_t(kc * 2048 >> 4));
      wgmma_commit();
      if (h == 0) {
        wgmma_wait<1>();  // dV, dK: done with this stage's Q and dO
        fence_regs(dv);
        fence_regs(dk);
        __syncwarp();
        if (lane == 0) mbar_arrive(empty(st));
      }
      if (h == NH - 1 && kBwd2Prefetch<D>() > 0) {
        // The next step's S^T (and dP^T) on the tensor cores while this dQ is stored and reduced.
        has2 = advance(bh2, qt2, mw2, st2);
        wgmma_fence();
        issue_s(s, has2 ? st2 : 0);
        if (kBwd2Prefetch<D>() == 2) issue_dp(dp, has2 ? st2 : 0);
        wgmma_commit();
        wgmma_wait<1>();
      } else {
        wgmma_wait<0>();
      }
      fence_regs(acc);
      if (h == 0) {
        if (wtid == 0) bulk_wait_read();  // the previous step's reductions have read sDQ
        named_bar(bar_id);
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int row = warp * 16 + g + 8 * r;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          const int box = (h * 64 + 8 * n) / 32, chunk = ((8 * n) % 32 + 2 * cq) / 4;
          const uint32_t addr = sDQ + uint32_t(box * R * 128 + row * 128 + ((chunk ^ (row & 7)) << 4) + (2 * cq % 4) * 4);
          asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(addr), "f"(acc[4 * n + 2 * r] * a.scale),
                       "f"(acc[4 * n + 2 * r + 1] * a.scale)
                       : "memory");
        }
      }
    }
    fence_proxy_async();  // the stores above are read by the bulk copy engine
    named_bar(bar_id);    // also: every warp is done with sDS before it is written again
    if (wtid == 0) {
#pragma unroll
      for (int box = 0; box < DQC / 32; ++box)
        tma_reduce_add3(&mdq, sDQ + uint32_t(box * R * 128), (kSplit ? 64 * w : 0) + box * 32, int(q0), int(bh));
      bulk_commit();
    }
    fence_regs(dv);
    fence_regs(dk);
    if (kBwd2Prefetch<D>() == 0) has2 = advance(bh2, qt2, mw2, st2);
    has = has2;
    bh = bh2;
    qt = qt2;
    mw = mw2;
    st = st2;
  }
  wgmma_wait<0>();
  if (wtid == 0) bulk_wait_all();  // the last reductions have read shared memory
  float* dkg = a.dk + bk * a.kv_len * D;
  float* dvg = a.dv + bk * a.kv_len * D;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t j = key0 + 8 * r;
    if (j >= a.kv_len) continue;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<float2*>(dkg + j * D + n * 8 + 2 * cq) = make_float2(dk[4 * n + 2 * r] * a.scale, dk[4 * n + 2 * r + 1] * a.scale);
      *reinterpret_cast<float2*>(dvg + j * D + n * 8 + 2 * cq) = make_float2(dv[4 * n + 2 * r], dv[4 * n + 2 * r + 1]);
    }
  }
}

template <int D, int Mode>
cudaError_t launch_bwd_ws(const TcBwdArgs& a) {
  constexpr int smem = bwd2_smem<D>();
  static_assert(smem <= 227 * 1024, "shared memory of bwd_wgmma_ws");
  CUtensorMap mq, mdo, mk, mv, mdq;
  if (!make_map(&mq, a.q, a.batch * a.heads, a.seq_len, D, kBwdRows) ||
      !make_map(&mdo, a.dout16, a.batch * a.heads, a.seq_len, D, kBwdRows) ||
      !make_map(&mk, a.k, a.batch * a.kv_heads, a.kv_len, D, kBwdRows) ||
      !make_map(&mv, a.v, a.batch * a.kv_heads, a.kv_len, D, kBwdRows) ||
      !make_map(&mdq, a.dq, a.batch * a.heads, a.seq_len, D, kBwdRows, true))
    return cudaErrorInvalidValue;
  static bool configured = false;
  if (!configured) {
    const cudaError_t e = cudaFuncSetAttribute(bwd_wgmma_ws<D, Mode>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (e != cudaSuccess) return e;
    configured = true;
  }
  const int64_t n_c = (a.kv_len + kBwd2Keys - 1) / kBwd2Keys;
  const cudaError_t e = cudaMemsetAsync(a.dq, 0, size_t(a.batch * a.heads * a.seq_len) * D * sizeof(float));
  if (e != cudaSuccess) return e;
  if (n_c > 0)
    bwd_wgmma_ws<D, Mode><<<dim3(unsigned(n_c), unsigned(a.kv_heads), unsigned(a.batch)), kBwd2Threads, smem>>>(a, mq, mdo, mk, mv, mdq);
  return cudaGetLastError();
}

template <int D>
cudaError_t launch_bwd_ws_dim(const TcBwdArgs& a) {
  switch (a.mode) {
    case kTcDense: return launch_bwd_ws<D, kTcDense>(a);
    case kTcTiles: return launch_bwd_ws<D, kTcTiles>(a);
    case kTcWindow: return launch_bwd_ws<D, kTcWindow>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t hopper_launch(const TcArgs& a, int variant) {
  if (a.seq_len == 0 || a.heads == 0 || a.batch == 0) return cudaSuccess;
  if (variant != kHopperTiles64 && variant != kHopperPipelined) return cudaErrorInvalidValue;
  switch (a.head_dim) {
    case 64: return launch_wgmma_dim<64>(a, variant);
    case 128: return launch_wgmma_dim<128>(a, variant);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t hopper_bwd_launch(const TcBwdArgs& a, int variant) {
  if (a.batch == 0 || a.heads == 0) return cudaSuccess;
  if (variant == kHopperBwdWs) {
    switch (a.head_dim) {
      case 64: return launch_bwd_ws_dim<64>(a);
      case 128: return launch_bwd_ws_dim<128>(a);
      default: return cudaErrorInvalidValue;
    }
  }
  switch (a.head_dim) {
    case 64: return launch_bwd_wgmma_dim<64>(a);
    case 128: return launch_bwd_wgmma_dim<128>(a);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace sattn_cuda
