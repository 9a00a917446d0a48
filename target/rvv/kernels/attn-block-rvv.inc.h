/* Block (BSR) attention with RVV intrinsics: the rows of a block row go in tiles of tile_rows;
 * each kept block's keys are contiguous, so the K columns are strided loads (vlse, stride = row
 * bytes) shared by the tile's rows. Keys at or past kv_len are never loaded; under causal the
 * chunk stops at the tile's last row's limit and the other rows mask the rest (p = 0).
 * Included by PREC-attn-block-rvv.c with SATTN_PREC and SATTN_KERNEL_NAME set. */
#define SATTN_GATHER 0
#include "attn-rvv-common.inc.h"

/* The kernel body; scheme (compile-time constant at each call) selects the scheme tiles and the
 * scale tables (attn.h), so the per-tensor code has no test of it. */
static inline __attribute__((always_inline)) void SATTN_CAT(SATTN_KERNEL_NAME, _body)(const sattn_job *job, const int scheme) {
  sattn_tile_ctx c;
  (void)scheme;
  sattn_ctx_init(&c, job);
  const sattn_tile_table *const tiles = sattn_tiles_for(job->head_dim);
  const int R = job->tile_rows, L = job->lmul;
  const int64_t hd = job->head_dim, rows = job->seq_len, group = job->heads / job->kv_heads;
  const int64_t bs = job->block_size, block_rows = (rows + bs - 1) / bs, off = job->causal_offset;
  const float v_scale = sattn_v_scale_of(job);
  for (int64_t b = 0; b < job->batch; ++b)
    for (int64_t h = 0; h < job->heads; ++h) {
      const int64_t kvh = h / group;
      const int64_t *ptr = job->ptr + sattn_layout_index(job, b, kvh) * (block_rows + 1);
      c.kbase = (const uint8_t *)job->k + (b * job->kv_heads + kvh) * job->kv_len * c.row_bytes;
      c.vbase = (const uint8_t *)job->v + (b * job->kv_heads + kvh) * job->kv_len * c.row_bytes;
#if SATTN_INT_PREC
      if (scheme) sattn_scheme_head(&c, job, b, kvh);
#endif
      const uint8_t *qbase = (const uint8_t *)job->q + (b * job->heads + h) * rows * c.row_bytes;
      float *obase = job->o + (b * job->heads + h) * rows * hd;
      for (int64_t br = 0; br < block_rows; ++br) {
        const int64_t i1 = (br + 1) * bs < rows ? (br + 1) * bs : rows;
        for (int64_t i = br * bs; i < i1;) {
          const int t = sattn_call_rows(i1 - i, R);
          const int lmul = sattn_call_lmul(SATTN_PREC, t, L);
#if SATTN_INT_PREC
          const sattn_tile_fn fn = (scheme ? sattn_qtiles : *tiles)[sattn_log2(t)][sattn_log2(lmul)];
#else
          const sattn_tile_fn fn = (*tiles)[sattn_log2(t)][sattn_log2(lmul)];
#endif
          for (int r = 0; r < t; ++r) {
            sattn_row_begin(&c, r, qbase + (i + r) * c.row_bytes, job->causal ? i + r + off + 1 : INT64_MAX);
#if SATTN_INT_PREC
            if (scheme) sattn_scheme_row(&c, r, job, b, h, i + r);
#endif
          }
          for (int64_t e = ptr[br]; e < ptr[br + 1]; ++e) {
            const int64_t j0 = (int64_t)job->idx[e] * bs;
            int64_t j1 = j0 + bs < job->kv_len ? j0 + bs : job->kv_len;
            if (job->causal && j1 > i + t + off) j1 = i + t + off; /* last row's limit */
            size_t vl;
            for (int64_t c0 = j0; c0 < j1; c0 += (int64_t)vl) {
              vl = sattn_chunk_vl(lmul, (size_t)(j1 - c0));
              fn(&c, c0, 0, vl, 0);
            }
          }
#if SATTN_INT_PREC
          if (scheme)
            for (int r = 0; r < t; ++r) sattn_row_end_scheme(&c, r, obase + (i + r) * hd);
          else
#endif
            for (int r = 0; r < t; ++r) sattn_row_end(&c, r, obase + (i + r) * hd, v_scale);
          i += t;
        }
      }
    }
}

void SATTN_KERNEL_NAME(const sattn_job *job) {
  if (job->scheme) SATTN_CAT(SATTN_KERNEL_NAME, _body)(job, 1);
  else SATTN_CAT(SATTN_KERNEL_NAME, _body)(job, 0);
}
