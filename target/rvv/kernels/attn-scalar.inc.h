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
