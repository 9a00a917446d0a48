/* Packed i4 rows (two values per byte, low nibble first) unpacked on load with RVV: the low and
 * high nibbles are sign-extended in e8 (shift left 4, arithmetic shift right 4; arithmetic
 * shift right 4), then interleaved by one widening add and one widening multiply-accumulate
 * (lo + hi + 255 * hi = lo + 256 * hi), whose e16 result read as e8 is lo0 hi0 lo1 hi1 ...
 * sattn_i4_row_i8_M(src, n) gives n int8 values from ceil(n/2) bytes; sattn_i4_row_f32_M
 * widens them to fp32 (e32 at M). */
#ifndef SATTN_I4_UNPACK_RVV_H
#define SATTN_I4_UNPACK_RVV_H
#include <riscv_vector.h>
#include <stdint.h>

/* H: e8 LMUL of the packed bytes; W: e8/e16 LMUL of the unpacked values; F: e32 LMUL. */
#define SATTN_DEFINE_I4_ROW(H, W, F)                                                                   \
  static inline vint8##W##_t sattn_i4_row_i8_##W(const uint8_t *src, size_t n) {                     \
    const size_t nb = (n + 1) / 2;                                                                    \
    const vint8##H##_t b = __riscv_vle8_v_i8##H((const int8_t *)src, nb);                             \
    const vuint8##H##_t lo = __riscv_vreinterpret_v_i8##H##_u8##H(                                    \
        __riscv_vsra_vx_i8##H(__riscv_vsll_vx_i8##H(b, 4, nb), 4, nb));                               \
    const vuint8##H##_t hi = __riscv_vreinterpret_v_i8##H##_u8##H(__riscv_vsra_vx_i8##H(b, 4, nb));   \
    vuint16##W##_t w = __riscv_vwaddu_vv_u16##W(lo, hi, nb);                                          \
    w = __riscv_vwmaccu_vx_u16##W(w, 255, hi, nb);                                                    \
    return __riscv_vreinterpret_v_u8##W##_i8##W(__riscv_vreinterpret_v_u16##W##_u8##W(w));           \
  }                                                                                                   \
  static inline vfloat32##F##_t sattn_i4_row_f32_##F(const uint8_t *src, size_t n) {                  \
    return __riscv_vfcvt_f_x_v_f32##F(__riscv_vsext_vf4_i32##F(sattn_i4_row_i8_##W(src, n), n), n);   \
  }

SATTN_DEFINE_I4_ROW(mf4, mf2, m2)
SATTN_DEFINE_I4_ROW(mf2, m1, m4)
SATTN_DEFINE_I4_ROW(m1, m2, m8)

#endif
