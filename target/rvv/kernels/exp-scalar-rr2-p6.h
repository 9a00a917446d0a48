/* exp(x) for fp32, scalar: range reduction x = n*ln2 + r (two-constant Cody-Waite, "rr2"),
 * a degree-6 polynomial for e^r on |r| <= ln2/2 ("p6"), and 2^n built directly in the exponent
 * field. n is rounded with the magic-number addition (x*log2e + 1.5*2^23) under the default
 * round-to-nearest mode: no float->int conversion at all, so clang's auto-vectorizer cannot turn
 * this into the vfcvt.rtz.* forms QEMU 7.2 aborts on. Inputs below -87.33654 (where 2^n would
 * leave the normal range) give exactly 0; -inf gives 0. Max relative error 2.6e-7 (about 2 ulp) on [-87.3, 0] (README.md). */
#ifndef SATTN_EXP_SCALAR_RR2_P6_H
#define SATTN_EXP_SCALAR_RR2_P6_H
#include <stdint.h>
#include <string.h>

#define SATTN_EXP_MIN_X (-87.33654f)   /* n = -126: 2^n still normal */
#define SATTN_EXP_MAX_X 88.0f          /* n = 127 */
#define SATTN_EXP_MAGIC 0x1.8p23f      /* adding it rounds to an integer in the low mantissa bits */
#define SATTN_LOG2E 0x1.715476p0f
#define SATTN_LN2_HI 0x1.62E400p-1f    /* 16 significant bits: n * LN2_HI is exact for |n| <= 256 */
#define SATTN_LN2_LO 0x1.7F7D1Cp-20f
/* Taylor coefficients 1/k!, k = 2..6 (k = 0, 1 are exactly 1). */
#define SATTN_EXP_C2 0x1.000000p-1f
#define SATTN_EXP_C3 0x1.555556p-3f
#define SATTN_EXP_C4 0x1.555556p-5f
#define SATTN_EXP_C5 0x1.111112p-7f
#define SATTN_EXP_C6 0x1.6C16C2p-10f

static inline float sattn_exp_rr2_p6(float x) {
  float xc = x < SATTN_EXP_MIN_X ? SATTN_EXP_MIN_X : x;
  xc = xc > SATTN_EXP_MAX_X ? SATTN_EXP_MAX_X : xc;
  const float t = xc * SATTN_LOG2E + SATTN_EXP_MAGIC; /* low mantissa bits hold n */
  const float n = t - SATTN_EXP_MAGIC;
  float r = xc - n * SATTN_LN2_HI;
  r = r - n * SATTN_LN2_LO;
  /* p(r) = 1 + r + r^2 (c2 + c3 r) + r^4 (c4 + c5 r + c6 r^2), grouped (Estrin) exactly as the
   * vector version evaluates it, so the scalar twin and the RVV kernel round alike. */
  const float r2 = r * r;
  const float a = SATTN_EXP_C2 + SATTN_EXP_C3 * r;
  const float b = SATTN_EXP_C4 + SATTN_EXP_C5 * r + SATTN_EXP_C6 * r2;
  const float p = (1.0f + r) + r2 * (a + r2 * b);
  uint32_t tb;
  memcpy(&tb, &t, sizeof tb);
  /* (0x4B400000 + n) << 23 == n << 23 (mod 2^32); + 127 << 23 biases the exponent. */
  const uint32_t sb = (tb << 23) + 0x3F800000u;
  float s;
  memcpy(&s, &sb, sizeof s);
  const float y = p * s;
  return x < SATTN_EXP_MIN_X ? 0.0f : y;
}

#endif
