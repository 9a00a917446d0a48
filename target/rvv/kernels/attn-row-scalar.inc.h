/* Row (CSR) attention, scalar: every query row visits exactly its key list. Included by
 * PREC-attn-row-scalar.c with SATTN_PREC and SATTN_KERNEL_NAME defined. */
#include "prec-scalar.h"
#include "attn-scalar.inc.h"

void SATTN_KERNEL_NAME(const sattn_job *job) {
  const int64_t hd = job->head_dim, rows = job->seq_len, group = job->heads / job->kv_heads;
  const int64_t row_bytes = sattn_row_bytes(SATTN_PREC, hd);
  const float scale = sattn_score_scale(job), v_scale = sattn_v_scale(job);
  sattn_row_state st;
  sattn_qc *q;
  sattn_scalar_setup(job, &st, &q);
  for (int64_t b = 0; b < job->batch; ++b)
    for (int64_t h = 0; h < job->heads; ++h) {
      const int64_t kvh = h / group;
      const int64_t *ptr = job->ptr + sattn_layout_index(job, b, kvh) * (rows + 1);
      const uint8_t *kbase = (const uint8_t *)job->k + (b * job->kv_heads + kvh) * job->kv_len * row_bytes;
      const uint8_t *vbase = (const uint8_t *)job->v + (b * job->kv_heads + kvh) * job->kv_len * row_bytes;
      const uint8_t *qbase = (const uint8_t *)job->q + (b * job->heads + h) * rows * row_bytes;
#if SATTN_PREC == SATTN_I8 || SATTN_PREC == SATTN_I4
      /* scheme tables: V at its own row bytes, per-channel V scales */
      const uint8_t *vbase_s = (const uint8_t *)job->v + (b * job->kv_heads + kvh) * job->kv_len * sattn_v_row_bytes(job);
      const float *vscale_s = job->scheme ? job->v_scale_ch + (b * job->kv_heads + kvh) * hd : 0;
#endif
      float *obase = job->o + (b * job->heads + h) * rows * hd;
      for (int64_t i = 0; i < rows; ++i) {
        sattn_q_prepare(qbase + i * row_bytes, hd, q);
        sattn_row_begin(&st, hd);
#if SATTN_PREC == SATTN_I8 || SATTN_PREC == SATTN_I4
        if (job->scheme) {
          sattn_scheme_row z;
          sattn_scheme_row_at(job, &z, b, h, i);
          for (int64_t c = ptr[i]; c < ptr[i + 1]; c += SATTN_SCALAR_CHUNK) {
            const int64_t n = ptr[i + 1] - c < SATTN_SCALAR_CHUNK ? ptr[i + 1] - c : SATTN_SCALAR_CHUNK;
            sattn_row_chunk_scheme(&st, q, job->idx + c, 0, n, kbase, vbase_s, row_bytes, hd, job->softmax_scale, &z);
          }
          sattn_row_end_scheme(&st, obase + i * hd, hd, vscale_s);
          continue;
        }
#endif
        for (int64_t c = ptr[i]; c < ptr[i + 1]; c += SATTN_SCALAR_CHUNK) {
          const int64_t n = ptr[i + 1] - c < SATTN_SCALAR_CHUNK ? ptr[i + 1] - c : SATTN_SCALAR_CHUNK;
          sattn_row_chunk(&st, q, job->idx + c, 0, n, kbase, vbase, row_bytes, hd, scale);
        }
        sattn_row_end(&st, obase + i * hd, hd, v_scale);
      }
    }
}
