/* Block (BSR) attention with RVV intrinsics: the rows of a block row go in tiles of tile_rows;
 * each kept block's keys are contiguous, so the K columns are strided loads (vlse, stride = row
 * bytes) shared by the tile's rows, or, where the block row has two or more full tiles, one
 * strided copy per block row into the K panel that those tiles read unit-stride (tiling.h). Keys at or past kv_len are never loaded; under causal the
 * chunk stops at the tile's last row's limit and the other rows mask the rest (p = 0).
 * Included by PREC-attn-block-rvv.c with SATTN_PREC and SATTN_KERNEL_NAME set. */
#define SATTN_GATHER 0
#include "attn-rvv-common.inc.h"

/* Copies the K columns of block row br's kept blocks into the K panel (tiling.h,
 * sattn_kpanel_used): block e's chunk k (cw keys from idx[e] * bs + k * cw) at
 * ((e - ptr[br]) * spb + k) * chunk_bytes, its column d at d * kcol. One strided load and one
 * unit-stride store a column, at the LMUL of the chunk's e32 scores (so of the element width). */
#define SATTN_KP_COPY(bits, tsfx)                                                                            \
  for (int64_t d = 0; d < cols; ++d)                                                                         \
    __riscv_vse##bits##_v_##tsfx((uint##bits##_t *)(out + d * kcol),                                         \
                                 __riscv_vlse##bits##_v_##tsfx((const uint##bits##_t *)(src + d * eb), rb, n), n);
static void SATTN_CAT(SATTN_KERNEL_NAME, _kpanel)(sattn_tile_ctx *c, const sattn_job *job, const int64_t *ptr, int64_t br, int64_t i1,
                                                  int64_t cw, int64_t spb, int lf) {
  const int64_t eb = sattn_kpanel_eb(SATTN_PREC), cols = sattn_kpanel_cols(SATTN_PREC, job->head_dim);
  const int64_t kcol = c->kcol, chunk_bytes = cols * kcol, rb = c->row_bytes;
  for (int64_t e = ptr[br]; e < ptr[br + 1]; ++e) {
    const int64_t j0 = (int64_t)job->idx[e] * job->block_size, end = sattn_kpanel_end(job, job->idx[e], i1);
    uint8_t *blk = c->kpanel_buf + (e - ptr[br]) * spb * chunk_bytes;
    for (int64_t c0 = j0; c0 < end; c0 += cw) {
      const size_t n = (size_t)(end - c0 < cw ? end - c0 : cw);
      const uint8_t *src = c->kbase + c0 * rb;
      uint8_t *out = blk + (c0 - j0) / cw * chunk_bytes;
#if SATTN_PREC == SATTN_FP32
      switch (lf) {
        case 1: SATTN_KP_COPY(32, u32m1) break;
        case 2: SATTN_KP_COPY(32, u32m2) break;
        case 4: SATTN_KP_COPY(32, u32m4) break;
        default: SATTN_KP_COPY(32, u32m8) break;
      }
#elif SATTN_PREC == SATTN_BF16
      switch (lf) {
        case 1: SATTN_KP_COPY(16, u16mf2) break;
        case 2: SATTN_KP_COPY(16, u16m1) break;
        case 4: SATTN_KP_COPY(16, u16m2) break;
        default: SATTN_KP_COPY(16, u16m4) break;
      }
#else
      switch (lf) {
        case 1: SATTN_KP_COPY(8, u8mf4) break;
        case 2: SATTN_KP_COPY(8, u8mf2) break;
        case 4: SATTN_KP_COPY(8, u8m1) break;
        default: SATTN_KP_COPY(8, u8m2) break;
      }
#endif
    }
  }
}
#undef SATTN_KP_COPY

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
  /* The K panel (per-tensor tiles only, so none of this in the scheme body): chunks of cw keys,
   * the full calls' VLMAX. */
  int lf = 0;
  int64_t cw = 1, spb = 0, chunk_bytes = 0;
  if (!scheme) {
    lf = sattn_call_lmul(SATTN_PREC, R, L);
    cw = sattn_kpanel_cw(job, (int64_t)__riscv_vsetvlmax_e32m1());
    spb = sattn_kpanel_spb(job, cw);
    c.kcol = cw * sattn_kpanel_eb(SATTN_PREC);
    chunk_bytes = sattn_kpanel_cols(SATTN_PREC, hd) * c.kcol;
    c.kpanel_buf = (uint8_t *)job->scratch + sattn_scratch_base_bytes(job);
    c.kpanel = 0;
  }
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
        const int panel = !scheme && sattn_kpanel_used(job, i1 - br * bs);
        if (panel) SATTN_CAT(SATTN_KERNEL_NAME, _kpanel)(&c, job, ptr, br, i1, cw, spb, lf);
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
            if (panel && t == R) {
              const uint8_t *blk = c.kpanel_buf + (e - ptr[br]) * spb * chunk_bytes;
              for (int64_t c0 = j0; c0 < j1; c0 += (int64_t)vl) {
                vl = (size_t)(j1 - c0 < cw ? j1 - c0 : cw);
                c.kpanel = blk + (c0 - j0) / cw * chunk_bytes;
                fn(&c, c0, 0, vl, 0);
              }
              c.kpanel = 0;
            } else
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
