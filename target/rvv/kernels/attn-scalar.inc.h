/* The scalar twin of the RVV attention kernels (one query row at a time), included by
 * PREC-attn-{row,block}-scalar.c after prec-scalar.h. The same online softmax as the vector
 * kernels: keys in chunks of SATTN_SCALAR_CHUNK, per chunk the raw scores, their max, one
 * rescale of the running sum and accumulator, exp of every score (exp-scalar-rr2-p6.h) and the
 * P.V accumulation; a row with no key gives 0. Written as plain loops so that clang -O3
 * -march=rv64gcv can auto-vectorize it (the autovec runner) without float->int conversions. */
#include <math.h>

#include "exp-scalar-rr2-p6.h"

#define SATTN_SCALAR_CHUNK 64

typedef struct sattn_row_state {
  float m, l;       /* running max of the raw scores, running sum of exp */
  float *acc;       /* head_dim running P.V */
  float *s;         /* SATTN_SCALAR_CHUNK scores / probabilities */
} sattn_row_state;

static void sattn_row_begin(sattn_row_state *st, int64_t hd) {
  st->m = -INFINITY;
  st->l = 0.0f;
  for (int64_t d = 0; d < hd; ++d) st->acc[d] = 0.0f;
}

/* Keys: keys[0..n) when keys is not null, else j0 .. j0 + n - 1 (n <= SATTN_SCALAR_CHUNK). */
static void sattn_row_chunk(sattn_row_state *st, const sattn_qc *q, const int32_t *keys, int64_t j0, int64_t n,
                            const uint8_t *kbase, const uint8_t *vbase, int64_t row_bytes, int64_t hd, float scale) {
  float *s = st->s;
  for (int64_t c = 0; c < n; ++c) {
    const int64_t j = keys ? keys[c] : j0 + c;
    s[c] = sattn_score(q, kbase + j * row_bytes, hd);
  }
  float mx = -INFINITY;
  for (int64_t c = 0; c < n; ++c) mx = s[c] > mx ? s[c] : mx;
  if (mx > st->m) {
    const float corr = sattn_exp_rr2_p6(scale * (st->m - mx)); /* 0 when m was -inf */
    st->l *= corr;
    for (int64_t d = 0; d < hd; ++d) st->acc[d] *= corr;
    st->m = mx;
  }
  const float m = st->m;
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) {
    s[c] = sattn_exp_rr2_p6(scale * (s[c] - m));
    sum += s[c];
  }
  st->l += sum;
  for (int64_t c = 0; c < n; ++c) {
    const int64_t j = keys ? keys[c] : j0 + c;
    sattn_accumulate(st->acc, s[c], vbase + j * row_bytes, hd);
  }
}

#if SATTN_PREC == SATTN_I8 || SATTN_PREC == SATTN_I4
/* Quantization scheme tables (job->scheme; sattn-quant(7)): where one query row's chunk reads
 * them. The score of key j is dot(q codes, k codes) * qs * k_scale[j], plus mean . k_smooth[j]
 * (the mean-Q . K term in fp32) when mean is set; P is rounded to [0, p_max] (half to even, by
 * the 1.5 * 2^23 trick: no float->int conversion) unless p_max is 0; V is read at v_bits. */
typedef struct sattn_scheme_row {
  float qs;               /* the query row's scale */
  const float *k_scale;   /* this (batch, kv head)'s kv_len key scales */
  const float *mean;      /* the row's Q mean (head_dim), or NULL */
  const float *k_smooth;  /* this (batch, kv head)'s smoothed K in fp32 */
  float p_max;
  int v_bits;
  int64_t v_row_bytes;
} sattn_scheme_row;

static inline float sattn_v_at(const uint8_t *row, int64_t d, int v_bits) {
  if (v_bits == 16) return (float)((const int16_t *)row)[d];
  if (v_bits == 8) return (float)((const int8_t *)row)[d];
  return (float)((d & 1) ? sattn_i4_hi(row[d >> 1]) : sattn_i4_lo(row[d >> 1]));
}

static void sattn_row_chunk_scheme(sattn_row_state *st, const sattn_qc *q, const int32_t *keys, int64_t j0, int64_t n,
                                   const uint8_t *kbase, const uint8_t *vbase, int64_t row_bytes, int64_t hd, float scale,
                                   const sattn_scheme_row *z) {
  float *s = st->s;
  for (int64_t c = 0; c < n; ++c) {
    const int64_t j = keys ? keys[c] : j0 + c;
    float x = sattn_score(q, kbase + j * row_bytes, hd) * z->qs * z->k_scale[j];
    if (z->mean) {
      const float *kf = z->k_smooth + j * hd;
      float bias = 0.0f;
      for (int64_t d = 0; d < hd; ++d) bias += z->mean[d] * kf[d];
      x += bias;
    }
    s[c] = x;
  }
  float mx = -INFINITY;
  for (int64_t c = 0; c < n; ++c) mx = s[c] > mx ? s[c] : mx;
  if (mx > st->m) {
    const float corr = sattn_exp_rr2_p6(scale * (st->m - mx));
    st->l *= corr;
    for (int64_t d = 0; d < hd; ++d) st->acc[d] *= corr;
    st->m = mx;
  }
  const float m = st->m, magic = 12582912.0f; /* 1.5 * 2^23 */
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) {
    float e = sattn_exp_rr2_p6(scale * (s[c] - m));
    if (z->p_max > 0.0f) e = (e * z->p_max + magic) - magic;
    s[c] = e;
    sum += e;
  }
  st->l += sum;
  for (int64_t c = 0; c < n; ++c) {
    const int64_t j = keys ? keys[c] : j0 + c;
    const uint8_t *vrow = vbase + j * z->v_row_bytes;
    for (int64_t d = 0; d < hd; ++d) st->acc[d] += s[c] * sattn_v_at(vrow, d, z->v_bits);
  }
}

/* The scheme view of row i of (b, h): its scale and Q mean. */
static void sattn_scheme_row_at(const sattn_job *job, sattn_scheme_row *z, int64_t b, int64_t h, int64_t i) {
  const int64_t kvh = h / (job->heads / job->kv_heads), hd = job->head_dim;
  z->qs = job->q_scale[(b * job->heads + h) * job->seq_len + i];
  z->k_scale = job->k_scale + (b * job->kv_heads + kvh) * job->kv_len;
  z->p_max = (float)job->p_max;
  z->v_bits = job->v_bits;
  z->v_row_bytes = sattn_v_row_bytes(job);
  z->mean = 0;
  if (job->q_mean) {
    const int64_t blocks = (job->seq_len + job->mean_block - 1) / job->mean_block;
    z->mean = job->q_mean + ((b * job->heads + h) * blocks + i / job->mean_block) * hd;
    z->k_smooth = job->k_smooth + (b * job->kv_heads + kvh) * job->kv_len * hd;
  }
}

/* out = acc * v_scale[d] / l (the per-channel V scales of a scheme). */
static void sattn_row_end_scheme(const sattn_row_state *st, float *out, int64_t hd, const float *v_scale) {
  const float f = st->l > 0.0f ? 1.0f / st->l : 0.0f;
  for (int64_t d = 0; d < hd; ++d) out[d] = st->acc[d] * v_scale[d] * f;
}
#endif

static void sattn_row_end(const sattn_row_state *st, float *out, int64_t hd, float v_scale) {
  const float f = st->l > 0.0f ? v_scale / st->l : 0.0f;
  for (int64_t d = 0; d < hd; ++d) out[d] = st->acc[d] * f;
}

/* Scratch: acc[hd], s[chunk], q[hd] (compute form). */
static void sattn_scalar_setup(const sattn_job *job, sattn_row_state *st, sattn_qc **q) {
  const int64_t hd = job->head_dim;
  float *base = (float *)job->scratch;
  st->acc = base;
  st->s = base + ((hd + 15) & ~(int64_t)15);
  *q = (sattn_qc *)(st->s + SATTN_SCALAR_CHUNK);
}
