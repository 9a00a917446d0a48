/* exp(x) on fp32 RVV vectors: the algorithm and constants of exp-scalar-rr2-p6.h (range
 * reduction with two ln2 constants, degree-6 polynomial in Estrin grouping, 2^n built in the
 * exponent field). n is rounded by adding 1.5*2^23 under the default round-to-nearest frm, so
 * no vector float->int conversion is used at all (QEMU 7.2 aborts on the vfcvt.rtz.* forms).
 * sattn_vexp_M(x, scale, vl) returns exp(scale * x) for scale > 0 and scale * x <= 88 (softmax
 * arguments are <= 0); arguments below -87.33654 are clamped there and give 2^-126 (the
 * smallest normal; the scalar twin's exact 0 would cost a compare and a merge, and the mask
 * register spills at LMUL 8; beside a row sum >= 1 the two are the same). The tiles never pass
 * -inf: they subtract the row's finite running max. 19 instructions. */
#ifndef SATTN_VEXP_RVV_RR2_P6_H
#define SATTN_VEXP_RVV_RR2_P6_H
#include <riscv_vector.h>

#include "exp-scalar-rr2-p6.h"

/* A constant the compiler cannot see through: otherwise clang materializes vfmv.v.f of a
 * constant as a zero-stride vlse32 from the constant pool, a strided load the runner's exact
 * element counts (and the cycle model's gather charges) would not expect. */
static inline float sattn_opaque_f32(float x) {
  __asm__("" : "+f"(x));
  return x;
}

#define SATTN_DEFINE_VEXP(M)                                                                            \
  static inline vfloat32##M##_t sattn_vexp_##M(vfloat32##M##_t x, float scale, size_t vl) {                \
    vfloat32##M##_t xc = __riscv_vfmul_vf_f32##M(x, scale, vl);                                            \
    xc = __riscv_vfmax_vf_f32##M(xc, SATTN_EXP_MIN_X, vl);                                                 \
    vfloat32##M##_t t = __riscv_vfmv_v_f_f32##M(sattn_opaque_f32(SATTN_EXP_MAGIC), vl);                                      \
    t = __riscv_vfmacc_vf_f32##M(t, SATTN_LOG2E, xc, vl);                                                  \
    const vfloat32##M##_t n = __riscv_vfsub_vf_f32##M(t, SATTN_EXP_MAGIC, vl);                             \
    vfloat32##M##_t r = __riscv_vfnmsac_vf_f32##M(xc, SATTN_LN2_HI, n, vl);                                \
    r = __riscv_vfnmsac_vf_f32##M(r, SATTN_LN2_LO, n, vl);                                                 \
    const vfloat32##M##_t r2 = __riscv_vfmul_vv_f32##M(r, r, vl);                                          \
    /* a = c2 + c3 r + r2 (c4 + c5 r + c6 r2), built in one register group so that at LMUL 8  \
     * only r, r2, a and t are live (4 groups: no spill). */                                   \
    vfloat32##M##_t a = __riscv_vfmv_v_f_f32##M(sattn_opaque_f32(SATTN_EXP_C4), vl);                       \
    a = __riscv_vfmacc_vf_f32##M(a, SATTN_EXP_C5, r, vl);                                                  \
    a = __riscv_vfmacc_vf_f32##M(a, SATTN_EXP_C6, r2, vl);                                                 \
    a = __riscv_vfmul_vv_f32##M(a, r2, vl);                                                                \
    a = __riscv_vfadd_vf_f32##M(a, SATTN_EXP_C2, vl);                                                      \
    a = __riscv_vfmacc_vf_f32##M(a, SATTN_EXP_C3, r, vl);                                                  \
    vfloat32##M##_t p = __riscv_vfadd_vf_f32##M(r, 1.0f, vl);                                              \
    p = __riscv_vfmacc_vv_f32##M(p, r2, a, vl);                                                            \
    vuint32##M##_t sb = __riscv_vsll_vx_u32##M(__riscv_vreinterpret_v_f32##M##_u32##M(t), 23, vl);         \
    sb = __riscv_vadd_vx_u32##M(sb, 0x3F800000u, vl);                                                      \
    return __riscv_vfmul_vv_f32##M(p, __riscv_vreinterpret_v_u32##M##_f32##M(sb), vl);                     \
  }

SATTN_DEFINE_VEXP(m1)
SATTN_DEFINE_VEXP(m2)
SATTN_DEFINE_VEXP(m4)
SATTN_DEFINE_VEXP(m8)

#endif
