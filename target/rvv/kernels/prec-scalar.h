/* Scalar precision hooks: how one stored K/V/Q row is read at each precision. Included by the
 * scalar kernel files after they define SATTN_PREC (0 fp32, 1 bf16, 2 i8, 3 i4). Q rows are
 * converted once per query row (q_prepare); K and V are read in their storage type, converted
 * element by element on load (bf16 -> fp32 by a shift; i4 unpacked from nibbles). */
#ifndef SATTN_PREC_SCALAR_H
#define SATTN_PREC_SCALAR_H
#include <stdint.h>
#include <string.h>

#include "attn.h"

static inline float sattn_bf16_to_f32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}
/* Sign-extended low and high nibble of a packed i4 byte. */
static inline int32_t sattn_i4_lo(uint8_t b) { return (int32_t)(int8_t)(uint8_t)(b << 4) >> 4; }
static inline int32_t sattn_i4_hi(uint8_t b) { return (int32_t)(int8_t)b >> 4; }

#if SATTN_PREC == SATTN_FP32 || SATTN_PREC == SATTN_BF16
typedef float sattn_qc;  /* Q in compute form */
#else
typedef int32_t sattn_qc;
#endif

/* Q row (storage form) -> compute form in `out` (head_dim values). */
static inline void sattn_q_prepare(const void *row, int64_t hd, sattn_qc *out) {
#if SATTN_PREC == SATTN_FP32
  memcpy(out, row, (size_t)hd * sizeof(float));
#elif SATTN_PREC == SATTN_BF16
  const uint16_t *q = (const uint16_t *)row;
  for (int64_t d = 0; d < hd; ++d) out[d] = sattn_bf16_to_f32(q[d]);
#elif SATTN_PREC == SATTN_I8
  const int8_t *q = (const int8_t *)row;
  for (int64_t d = 0; d < hd; ++d) out[d] = q[d];
#else
  const uint8_t *q = (const uint8_t *)row;
  for (int64_t d = 0; d < hd; ++d) out[d] = (d & 1) ? sattn_i4_hi(q[d >> 1]) : sattn_i4_lo(q[d >> 1]);
#endif
}

/* Raw score q.k: fp32 dot product, or the exact int32 dot product (as float) for i8/i4. */
static inline float sattn_score(const sattn_qc *q, const void *row, int64_t hd) {
#if SATTN_PREC == SATTN_FP32
  const float *k = (const float *)row;
  float sum = 0.0f;
  for (int64_t d = 0; d < hd; ++d) sum += q[d] * k[d];
  return sum;
#elif SATTN_PREC == SATTN_BF16
  const uint16_t *k = (const uint16_t *)row;
  float sum = 0.0f;
  for (int64_t d = 0; d < hd; ++d) sum += q[d] * sattn_bf16_to_f32(k[d]);
  return sum;
#elif SATTN_PREC == SATTN_I8
  const int8_t *k = (const int8_t *)row;
  int32_t sum = 0;
  for (int64_t d = 0; d < hd; ++d) sum += q[d] * (int32_t)k[d];
  return (float)sum;
#else
  const uint8_t *k = (const uint8_t *)row;
  int32_t sum = 0;
  const int64_t pairs = hd >> 1;
  for (int64_t e = 0; e < pairs; ++e) sum += q[2 * e] * sattn_i4_lo(k[e]) + q[2 * e + 1] * sattn_i4_hi(k[e]);
  if (hd & 1) sum += q[hd - 1] * sattn_i4_lo(k[pairs]);
  return (float)sum;
#endif
}

/* acc += p * v (v dequantized up to the factor scale_v, which the caller applies at the end). */
static inline void sattn_accumulate(float *acc, float p, const void *row, int64_t hd) {
#if SATTN_PREC == SATTN_FP32
  const float *v = (const float *)row;
  for (int64_t d = 0; d < hd; ++d) acc[d] += p * v[d];
#elif SATTN_PREC == SATTN_BF16
  const uint16_t *v = (const uint16_t *)row;
  for (int64_t d = 0; d < hd; ++d) acc[d] += p * sattn_bf16_to_f32(v[d]);
#elif SATTN_PREC == SATTN_I8
  const int8_t *v = (const int8_t *)row;
  for (int64_t d = 0; d < hd; ++d) acc[d] += p * (float)v[d];
#else
  const uint8_t *v = (const uint8_t *)row;
  const int64_t pairs = hd >> 1;
  for (int64_t e = 0; e < pairs; ++e) {
    acc[2 * e] += p * (float)sattn_i4_lo(v[e]);
    acc[2 * e + 1] += p * (float)sattn_i4_hi(v[e]);
  }
  if (hd & 1) acc[hd - 1] += p * (float)sattn_i4_lo(v[pairs]);
#endif
}

/* The factor that turns a raw score into softmax_scale * (q.k) of the dequantized values, and
 * the factor applied to P.V at the end. */
static inline float sattn_score_scale(const sattn_job *job) {
#if SATTN_PREC == SATTN_I8 || SATTN_PREC == SATTN_I4
  return job->scale_q * job->scale_k * job->softmax_scale;
#else
  return job->softmax_scale;
#endif
}
static inline float sattn_v_scale(const sattn_job *job) {
#if SATTN_PREC == SATTN_I8 || SATTN_PREC == SATTN_I4
  return job->scale_v;
#else
  (void)job;
  return 1.0f;
#endif
}

#endif
