/* One key chunk for a tile of SATTN_R query rows, RVV intrinsics; included once per
 * (SATTN_R, SATTN_L) by attn-rvv-common.inc.h with SATTN_PREC and SATTN_GATHER set.
 *
 * 1. Scores, vectorized across the chunk's vl keys (vl = VLMAX(e32, m{L}) except at the tail):
 *    for each d, one K column load (indexed gather of the listed keys, strided over
 *    contiguous keys, or unit-stride from the block row's K panel) feeds one multiply-
 *    accumulate per tile row with the scalar q[r][d]. The column is loaded once for all R rows. fp32/bf16 accumulate in fp32 (vfmacc.vf); i8/i4
 *    widen K to e16 and accumulate exact int32 dot products (vwmacc.vx).
 * 2. Online softmax per row: vfredmax, one scalar exp for the correction when the max grows,
 *    the vector exp of the chunk, vfredusum; p is stored for step 3. Keys past a row's causal
 *    limit (block kernels) get p = 0.
 * 3. P.V, vectorized across head_dim (LMUL SATTN_LP): each V row is loaded (and converted) once
 *    and multiply-accumulated into the R accumulators, which are rescaled by the correction
 *    as they are loaded. */
#include "rvv-lmul.h"

#define VF SATTN_CAT3(vfloat32, M32, _t)
#define VI32 SATTN_CAT3(vint32, M32, _t)
#define VU32 SATTN_CAT3(vuint32, M32, _t)
#define PF SATTN_CAT3(vfloat32, P32, _t)
#define F32(op) SATTN_CAT(__riscv_##op##_f32, M32)
#define PF32(op) SATTN_CAT(__riscv_##op##_f32, P32)

#if SATTN_R == 1
#define SATTN_ROWS(X) X(0)
#elif SATTN_R == 2
#define SATTN_ROWS(X) X(0) X(1)
#elif SATTN_R == 4
#define SATTN_ROWS(X) X(0) X(1) X(2) X(3)
#else
#define SATTN_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#endif

#if SATTN_PREC == SATTN_FP32 || SATTN_PREC == SATTN_BF16
#define VACC VF
#define QT float
#else
#define VACC VI32
#define QT int8_t
#endif

/* The K column of head_dim element d (or packed byte d for i4) for the chunk's keys. */
/* (d: the head_dim element or i4 byte, eb: its bytes) Block kernels: strided over the keys of
 * K (SATTN_KMODE S), or unit-stride from the block row's K panel (P: column d at kpp + d * kcol,
 * the chunk's keys contiguous; sattn_kpanel_build). SATTN_KMODE is read where the macros are
 * expanded, so one score loop source gives both forms. */
#define SATTN_KM_CAT_(a, b) a##b
#define SATTN_KM_CAT(a, b) SATTN_KM_CAT_(a, b)
#define SATTN_K8_CAT_(a, b) a##b
#define SATTN_K8_CAT(a, b) SATTN_K8_CAT_(a, b)
#define SATTN_KMODE S
#if SATTN_GATHER
#define SATTN_COL(bits, tsfx, ctype, lm, d, eb) SATTN_CAT(__riscv_vluxei32_v_##tsfx, lm)((const ctype *)(kp + (d) * (eb)), off, vl)
#else
#define SATTN_COL_S(bits, tsfx, ctype, lm, d, eb) SATTN_CAT(__riscv_vlse##bits##_v_##tsfx, lm)((const ctype *)(kp + (d) * (eb)), row_bytes, vl)
#define SATTN_COL_P(bits, tsfx, ctype, lm, d, eb) SATTN_CAT(__riscv_vle##bits##_v_##tsfx, lm)((const ctype *)(kpp + (d) * kcol), vl)
#define SATTN_COL(bits, tsfx, ctype, lm, d, eb) SATTN_KM_CAT(SATTN_COL_, SATTN_KMODE)(bits, tsfx, ctype, lm, d, eb)
#endif

static void SATTN_CAT(SATTN_CAT3(SATTN_TILE_PREFIX, SATTN_R, SATTN_CAT(_l, SATTN_L)), SATTN_TILE_SFX)(sattn_tile_ctx *c, int64_t j0, const int32_t *keys, size_t vl, int dot) {
#if SATTN_SCHEME
  /* Scheme tiles (i8/i4 with scale tables; attn.h): the chunk's key scales and mean-Q biases. */
  sattn_scheme_prep(c, SATTN_R, j0, keys, vl);
#endif
  const int64_t hd = c->hd, row_bytes = c->row_bytes;
  const float scale = c->scale;
#define SATTN_Q(r) const QT *q##r = (const QT *)c->q[r];
  SATTN_ROWS(SATTN_Q)
#if SATTN_GATHER
  const VU32 off = SATTN_CAT(__riscv_vmul_vx_u32, M32)(SATTN_CAT(__riscv_vle32_v_u32, M32)((const uint32_t *)keys, vl),
                                                         (uint32_t)row_bytes, vl);
  SATTN_CAT(__riscv_vse32_v_u32, M32)(c->off, off, vl);
  const uint8_t *kp = c->kbase;
  const uint8_t *vp = c->vbase;
#else
  (void)keys;
  const uint8_t *kp = c->kbase + j0 * row_bytes;
  const uint8_t *vp = c->vbase + j0 * row_bytes;
#endif

  /* ---- 1. scores ---- */
#if SATTN_PREC == SATTN_FP32 || SATTN_PREC == SATTN_BF16
#define SATTN_ZERO(r) VACC s##r = F32(vfmv_v_f)(0.0f, vl);
#elif SATTN_PREC == SATTN_I8
#define SATTN_ZERO(r) VACC s##r = SATTN_CAT(__riscv_vmv_v_x_i32, M32)(0, vl);
#else /* i4: set from the first block's int16 sums */
#define SATTN_ZERO(r) VACC s##r;
#endif
  SATTN_ROWS(SATTN_ZERO)
#if SATTN_GATHER && !SATTN_INT_PREC
  if (dot) {
    /* A short last chunk (sattn_dot_chunk): each key's score as a dot product along head_dim,
     * the K row loaded unit-stride once (bf16: widened) for the tile's rows; the scores go
     * through the p rows (step 2 overwrites them) into the score vectors. */
    const size_t vm = __riscv_vsetvlmax_e32m8();
    for (size_t j = 0; j < vl; ++j) {
      const uint8_t *krow = kp + c->off[j];
#define SATTN_DOT_INIT(r) vfloat32m1_t t##r = __riscv_vfmv_v_f_f32m1(0.0f, 1);
      SATTN_ROWS(SATTN_DOT_INIT)
      for (size_t d0 = 0, vd; d0 < (size_t)hd; d0 += vd) {
        vd = (size_t)hd - d0 < vm ? (size_t)hd - d0 : vm;
#if SATTN_PREC == SATTN_FP32
        const vfloat32m8_t kv = __riscv_vle32_v_f32m8((const float *)krow + d0, vd);
#else
        const vfloat32m8_t kv = __riscv_vreinterpret_v_u32m8_f32m8(
            __riscv_vsll_vx_u32m8(__riscv_vzext_vf2_u32m8(__riscv_vle16_v_u16m4((const uint16_t *)krow + d0, vd), vd), 16, vd));
#endif
#define SATTN_DOT(r) t##r = __riscv_vfredusum_vs_f32m8_f32m1(__riscv_vfmul_vv_f32m8(kv, __riscv_vle32_v_f32m8(q##r + d0, vd), vd), t##r, vd);
        SATTN_ROWS(SATTN_DOT)
      }
#define SATTN_DOT_STORE(r) c->p[(r) * SATTN_MAX_CHUNK + j] = __riscv_vfmv_f_s_f32m1_f32(t##r);
      SATTN_ROWS(SATTN_DOT_STORE)
    }
#define SATTN_DOT_LOAD(r) s##r = F32(vle32_v)(c->p + (r) * SATTN_MAX_CHUNK, vl);
    SATTN_ROWS(SATTN_DOT_LOAD)
#undef SATTN_DOT_INIT
#undef SATTN_DOT
#undef SATTN_DOT_STORE
#undef SATTN_DOT_LOAD
  } else {
#else
  (void)dot;
  {
#endif
  /* One step per head_dim element d (i4: per packed byte, two elements); unrolled by 8 so the
   * loop overhead is paid once per eight K columns. */
#if SATTN_PREC == SATTN_FP32
#define SATTN_MACC(r) s##r = F32(vfmacc_vf)(s##r, q##r[dd], col, vl);
#define SATTN_QK_COL(darg, raw) \
  {                             \
    const int64_t dd = (darg);  \
    const VF col = (raw);       \
    SATTN_ROWS(SATTN_MACC)      \
  }
#define SATTN_QK_STEP(darg) SATTN_QK_COL(darg, SATTN_COL(32, f32, float, M32, darg, 4))
#define SATTN_SEG_T VF
#define SATTN_SEG_SFX SATTN_CAT(e32_v_f32, M32)
#define SATTN_SEG_CT float
#define SATTN_SEG_BYTES 4
#elif SATTN_PREC == SATTN_BF16
#define SATTN_MACC(r) s##r = F32(vfmacc_vf)(s##r, q##r[dd], col, vl);
#define SATTN_QK_STEP(darg) SATTN_QK_COL(darg, SATTN_COL(16, u16, uint16_t, M16, darg, 2))
#define SATTN_SEG_T SATTN_CAT3(vuint16, M16, _t)
#define SATTN_SEG_SFX SATTN_CAT(e16_v_u16, M16)
#define SATTN_SEG_CT uint16_t
#define SATTN_SEG_BYTES 2
#define SATTN_QK_COL(darg, raw)                                                                                  \
  {                                                                                                              \
    const int64_t dd = (darg);                                                                                   \
    const SATTN_CAT3(vuint16, M16, _t) h = (raw);                                                                \
    const VU32 w = SATTN_CAT(__riscv_vsll_vx_u32, M32)(SATTN_CAT(__riscv_vzext_vf2_u32, M32)(h, vl), 16, vl);    \
    const VF col = SATTN_CAT3(__riscv_vreinterpret_v_u32, M32, SATTN_CAT(_f32, M32))(w);                         \
    SATTN_ROWS(SATTN_MACC)                                                                                       \
  }
#elif SATTN_PREC == SATTN_I8
#define SATTN_MACC(r) s##r = SATTN_CAT(__riscv_vwmacc_vx_i32, M32)(s##r, (int16_t)q##r[dd], col, vl);
#define SATTN_QK_COL(darg, raw)                                                                       \
  {                                                                                               \
    const int64_t dd = (darg);                                                                    \
    const SATTN_CAT3(vint16, M16, _t) col = SATTN_CAT(__riscv_vsext_vf2_i16, M16)((raw), vl);     \
    SATTN_ROWS(SATTN_MACC)                                                                        \
  }
#define SATTN_QK_STEP(darg) SATTN_QK_COL(darg, SATTN_COL(8, i8, int8_t, M8, darg, 1))
#define SATTN_SEG_T SATTN_CAT3(vint8, M8, _t)
#define SATTN_SEG_SFX SATTN_CAT(e8_v_i8, M8)
#define SATTN_SEG_CT int8_t
#define SATTN_SEG_BYTES 1
#else /* i4: packed byte e holds dims 2e (low nibble) and 2e + 1 (high nibble) */
/* Everything at SEW 8, so no vsetvli inside the loop: the nibbles are sign-extended in e8 and
 * multiply-accumulated by vwmacc.vx (e8 x e8 -> e16) into int16 sums h (|code| <= 8: at most
 * 64 per product, 256 products per block of 128 bytes: |h| <= 16384, exact), which are widened
 * into the int32 scores once per block (head_dim <= 256: once per chunk). */
#define SATTN_MACC_LO(r) h##r = SATTN_CAT(__riscv_vwmacc_vx_i16, M16)(h##r, q##r[2 * (ee)], lo, vl);
#define SATTN_MACC_HI(r) h##r = SATTN_CAT(__riscv_vwmacc_vx_i16, M16)(h##r, q##r[2 * (ee) + 1], hi, vl);
#define SATTN_I4_NIBBLES(ee)                                                                                           \
  const SATTN_CAT3(vint8, M8, _t) b = SATTN_COL(8, i8, int8_t, M8, ee, 1);                                         \
  const SATTN_CAT3(vint8, M8, _t) lo = SATTN_CAT(__riscv_vsra_vx_i8, M8)(SATTN_CAT(__riscv_vsll_vx_i8, M8)(b, 4, vl), 4, vl);
#define SATTN_QK_COL(earg, raw)                                                                                            \
  {                                                                                                                        \
    const int64_t ee = (earg);                                                                                             \
    const SATTN_CAT3(vint8, M8, _t) b = (raw);                                                                             \
    const SATTN_CAT3(vint8, M8, _t) lo = SATTN_CAT(__riscv_vsra_vx_i8, M8)(SATTN_CAT(__riscv_vsll_vx_i8, M8)(b, 4, vl), 4, vl); \
    const SATTN_CAT3(vint8, M8, _t) hi = SATTN_CAT(__riscv_vsra_vx_i8, M8)(b, 4, vl);                                      \
    SATTN_ROWS(SATTN_MACC_LO)                                                                                              \
    SATTN_ROWS(SATTN_MACC_HI)                                                                                              \
  }
#define SATTN_QK_STEP(earg) SATTN_QK_COL(earg, SATTN_COL(8, i8, int8_t, M8, earg, 1))
#define SATTN_SEG_T SATTN_CAT3(vint8, M8, _t)
#define SATTN_SEG_SFX SATTN_CAT(e8_v_i8, M8)
#define SATTN_SEG_CT int8_t
#define SATTN_SEG_BYTES 1
#define SATTN_H_ZERO(r) SATTN_CAT3(vint16, M16, _t) h##r = SATTN_CAT(__riscv_vmv_v_x_i16, M16)(0, vl);
#define SATTN_S_SET(r) s##r = SATTN_CAT(__riscv_vsext_vf2_i32, M32)(h##r, vl);
#define SATTN_S_ADD(r) s##r = SATTN_CAT(__riscv_vwadd_wv_i32, M32)(s##r, h##r, vl);
/* One block of at most 128 bytes from d, unrolled by 8 (one step's e8 temporaries beside the
 * int16 sums and the offsets fit at every (R, LMUL)); the odd head_dim's last low nibble with
 * the last block; then FLUSH the int16 sums into the int32 scores. */
#define SATTN_I4_BLOCK(FLUSH)                                                                \
  {                                                                                          \
    const int64_t e1 = steps - d > 128 ? d + 128 : steps;                                    \
    SATTN_ROWS(SATTN_H_ZERO)                                                                 \
    for (const int64_t end8 = d + ((e1 - d) & ~(int64_t)7); d < end8; d += 8) {              \
      SATTN_QK_8STEPS(d)                                                                     \
    }                                                                                        \
    for (; d < e1; ++d) SATTN_QK_STEP(d)                                                     \
    if (d == steps && (hd & 1)) {                                                            \
      const int64_t ee = steps;                                                              \
      SATTN_I4_NIBBLES(ee)                                                                   \
      SATTN_ROWS(SATTN_MACC_LO)                                                              \
    }                                                                                        \
    SATTN_ROWS(FLUSH)                                                                        \
  }
#endif
/* Block kernels: the K columns of consecutive head_dim steps come NF at a time from one strided
 * segment load (vlssegNF: key j's NF consecutive elements into NF register groups), so the
 * unrolled body issues 8 / NF loads and address steps instead of 8. NF is the most the register
 * budget allows beside the accumulators: the fields take 8 registers (NF x the column's EMUL;
 * i4: 4, as its int16 sums are live too) and the widened column or nibbles one more group, so
 * only tiles of at most 16 accumulator registers and LMUL <= 4 use it. Same elements as the
 * strided loads (the runner's counts hold). */
#if SATTN_GATHER || SATTN_L > 4 || SATTN_R * SATTN_L > 16
#define SATTN_SEG_NF 1
#elif SATTN_PREC == SATTN_FP32
#define SATTN_SEG_NF (8 / SATTN_L)
#elif SATTN_PREC == SATTN_BF16
#define SATTN_SEG_NF (SATTN_L == 4 ? 4 : 8)
#elif SATTN_PREC == SATTN_I8
#define SATTN_SEG_NF 8
#else
#define SATTN_SEG_NF 4
#endif
#define SATTN_SEG_LOAD(nf) SATTN_CAT(SATTN_CAT(__riscv_vlsseg, nf), SATTN_SEG_SFX)
#define SATTN_SEG_AT(d) ((const SATTN_SEG_CT *)(kp + (d) * SATTN_SEG_BYTES))
#define SATTN_QK_SEG2(d)                                                  \
  {                                                                       \
    SATTN_SEG_T f0, f1;                                                   \
    SATTN_SEG_LOAD(2)(&f0, &f1, SATTN_SEG_AT(d), row_bytes, vl);          \
    SATTN_QK_COL((d), f0)                                                 \
    SATTN_QK_COL((d) + 1, f1)                                             \
  }
#define SATTN_QK_SEG4(d)                                                  \
  {                                                                       \
    SATTN_SEG_T f0, f1, f2, f3;                                           \
    SATTN_SEG_LOAD(4)(&f0, &f1, &f2, &f3, SATTN_SEG_AT(d), row_bytes, vl); \
    SATTN_QK_COL((d), f0)                                                 \
    SATTN_QK_COL((d) + 1, f1)                                             \
    SATTN_QK_COL((d) + 2, f2)                                             \
    SATTN_QK_COL((d) + 3, f3)                                             \
  }
#define SATTN_QK_SEG8(d)                                                                      \
  {                                                                                           \
    SATTN_SEG_T f0, f1, f2, f3, f4, f5, f6, f7;                                               \
    SATTN_SEG_LOAD(8)(&f0, &f1, &f2, &f3, &f4, &f5, &f6, &f7, SATTN_SEG_AT(d), row_bytes, vl); \
    SATTN_QK_COL((d), f0)                                                                     \
    SATTN_QK_COL((d) + 1, f1)                                                                 \
    SATTN_QK_COL((d) + 2, f2)                                                                 \
    SATTN_QK_COL((d) + 3, f3)                                                                 \
    SATTN_QK_COL((d) + 4, f4)                                                                 \
    SATTN_QK_COL((d) + 5, f5)                                                                 \
    SATTN_QK_COL((d) + 6, f6)                                                                 \
    SATTN_QK_COL((d) + 7, f7)                                                                 \
  }
/* Eight head_dim steps from d (the panel form: one column a load). */
#define SATTN_QK_8STEPS(d) SATTN_K8_CAT(SATTN_QK_8STEPS_, SATTN_KMODE)(d)
#if SATTN_SEG_NF == 8
#define SATTN_QK_8STEPS_S(d) SATTN_QK_SEG8(d)
#elif SATTN_SEG_NF == 4
#define SATTN_QK_8STEPS_S(d) SATTN_QK_SEG4(d) SATTN_QK_SEG4((d) + 4)
#elif SATTN_SEG_NF == 2
#define SATTN_QK_8STEPS_S(d) SATTN_QK_SEG2(d) SATTN_QK_SEG2((d) + 2) SATTN_QK_SEG2((d) + 4) SATTN_QK_SEG2((d) + 6)
#else
#define SATTN_QK_8STEPS_S(d) SATTN_QK_8STEPS_P(d)
#endif
#define SATTN_QK_8STEPS_P(d)  \
  SATTN_QK_STEP(d)          \
  SATTN_QK_STEP((d) + 1)    \
  SATTN_QK_STEP((d) + 2)    \
  SATTN_QK_STEP((d) + 3)    \
  SATTN_QK_STEP((d) + 4)    \
  SATTN_QK_STEP((d) + 5)    \
  SATTN_QK_STEP((d) + 6)    \
  SATTN_QK_STEP((d) + 7)
/* The panel's full chunks (vl = cw = VLMAX: the columns are adjacent, cw apart): NF columns
 * from one whole-register load of 8 registers (i4: 4; vl8re*, which needs no vsetvli, so the
 * score LMUL's vtype stays), split into its NF column groups (vget, no instruction), as the
 * segment loads do from K; the same register budget
 * (SATTN_SEG_NF). Where the column group is fractional (bf16 at LMUL 1, i8/i4 below LMUL 4), one
 * column a load. */
#define SATTN_COL_Q SATTN_COL_P
#if SATTN_SEG_NF > 1 && (SATTN_PREC == SATTN_FP32 || (SATTN_PREC == SATTN_BF16 && SATTN_L >= 2) || SATTN_L == 4)
#if SATTN_PREC == SATTN_FP32
#define SATTN_PG_T vfloat32m8_t
#define SATTN_PG_LOAD(a, n) (*(const vfloat32m8_t *)(const void *)(a))
#define SATTN_PG_GET(g, i) SATTN_CAT(__riscv_vget_v_f32m8_f32, M32)(g, i)
#elif SATTN_PREC == SATTN_BF16
#define SATTN_PG_T vuint16m8_t
#define SATTN_PG_LOAD(a, n) (*(const vuint16m8_t *)(const void *)(a))
#define SATTN_PG_GET(g, i) SATTN_CAT(__riscv_vget_v_u16m8_u16, M16)(g, i)
#elif SATTN_PREC == SATTN_I8
#define SATTN_PG_T vint8m8_t
#define SATTN_PG_LOAD(a, n) (*(const vint8m8_t *)(const void *)(a))
#define SATTN_PG_GET(g, i) SATTN_CAT(__riscv_vget_v_i8m8_i8, M8)(g, i)
#else
#define SATTN_PG_T vint8m4_t
#define SATTN_PG_LOAD(a, n) (*(const vint8m4_t *)(const void *)(a))
#define SATTN_PG_GET(g, i) SATTN_CAT(__riscv_vget_v_i8m4_i8, M8)(g, i)
#endif
#define SATTN_PQ2(d)                                                \
  {                                                                 \
    const SATTN_PG_T g = SATTN_PG_LOAD(kpp + (d) * kcol, 2 * vl);   \
    SATTN_QK_COL((d), SATTN_PG_GET(g, 0))                           \
    SATTN_QK_COL((d) + 1, SATTN_PG_GET(g, 1))                       \
  }
#define SATTN_PQ4(d)                                                \
  {                                                                 \
    const SATTN_PG_T g = SATTN_PG_LOAD(kpp + (d) * kcol, 4 * vl);   \
    SATTN_QK_COL((d), SATTN_PG_GET(g, 0))                           \
    SATTN_QK_COL((d) + 1, SATTN_PG_GET(g, 1))                       \
    SATTN_QK_COL((d) + 2, SATTN_PG_GET(g, 2))                       \
    SATTN_QK_COL((d) + 3, SATTN_PG_GET(g, 3))                       \
  }
#define SATTN_PQ8(d)                                                \
  {                                                                 \
    const SATTN_PG_T g = SATTN_PG_LOAD(kpp + (d) * kcol, 8 * vl);   \
    SATTN_QK_COL((d), SATTN_PG_GET(g, 0))                           \
    SATTN_QK_COL((d) + 1, SATTN_PG_GET(g, 1))                       \
    SATTN_QK_COL((d) + 2, SATTN_PG_GET(g, 2))                       \
    SATTN_QK_COL((d) + 3, SATTN_PG_GET(g, 3))                       \
    SATTN_QK_COL((d) + 4, SATTN_PG_GET(g, 4))                       \
    SATTN_QK_COL((d) + 5, SATTN_PG_GET(g, 5))                       \
    SATTN_QK_COL((d) + 6, SATTN_PG_GET(g, 6))                       \
    SATTN_QK_COL((d) + 7, SATTN_PG_GET(g, 7))                       \
  }
#if SATTN_SEG_NF == 8
#define SATTN_QK_8STEPS_Q(d) SATTN_PQ8(d)
#elif SATTN_SEG_NF == 4
#define SATTN_QK_8STEPS_Q(d) SATTN_PQ4(d) SATTN_PQ4((d) + 4)
#else
#define SATTN_QK_8STEPS_Q(d) SATTN_PQ2(d) SATTN_PQ2((d) + 2) SATTN_PQ2((d) + 4) SATTN_PQ2((d) + 6)
#endif
#else
#define SATTN_QK_8STEPS_Q(d) SATTN_QK_8STEPS_P(d)
#endif
#if SATTN_PREC == SATTN_I4
  const int64_t steps = hd / 2; /* full bytes; an odd head_dim leaves a last low nibble */
#define SATTN_SCORE_LOOP                   \
  {                                        \
    int64_t d = 0;                         \
    SATTN_I4_BLOCK(SATTN_S_SET)            \
    while (d < steps) SATTN_I4_BLOCK(SATTN_S_ADD) \
  }
#else
  const int64_t steps = hd;
  /* Unrolled by 8, so the loop overhead (counter, branch, pointer steps) is paid once per eight
   * K columns. Each step's column load feeds its multiply-adds at once, so one column group (two
   * for the converting precisions) is live beside the R accumulators and the gather offsets;
   * this relies on the runner being compiled with clang's pre-RA scheduler off
   * (target/rvv/CMakeLists.txt), which would otherwise hoist the four loads above the
   * multiply-adds and spill. Where even one step does not fit (bf16 gathers, 2 rows at LMUL 8)
   * the loop is not unrolled, so its spills are not multiplied. */
#if SATTN_PREC == SATTN_FP32
#define SATTN_FREE_GROUPS (32 / SATTN_L - SATTN_R - SATTN_GATHER)
#else
#define SATTN_FREE_GROUPS ((32 / SATTN_L - SATTN_R - SATTN_GATHER) / 2)
#endif
#if SATTN_FREE_GROUPS >= 1
#define SATTN_SCORE_LOOP                                                \
  {                                                                     \
    int64_t d = 0;                                                      \
    for (const int64_t end8 = steps & ~(int64_t)7; d < end8; d += 8) {  \
      SATTN_QK_8STEPS(d)                                                \
    }                                                                   \
    for (; d < steps; ++d) SATTN_QK_STEP(d)                             \
  }
#else
#define SATTN_SCORE_LOOP                        \
  {                                             \
    for (int64_t d = 0; d < steps; ++d) SATTN_QK_STEP(d) \
  }
#endif
#undef SATTN_FREE_GROUPS
#endif
  /* The score loop in the form the chunk needs: block kernels read the K panel when the kernel
   * built one for this call (c->kpanel), else strided K columns. */
#if !SATTN_GATHER && !SATTN_SCHEME
  if (c->kpanel) {
    const uint8_t *const kpp = c->kpanel;
    const int64_t kcol = c->kcol;
    if ((int64_t)vl * sattn_kpanel_eb(SATTN_PREC) == kcol) {
#undef SATTN_KMODE
#define SATTN_KMODE Q
      SATTN_SCORE_LOOP
    } else {
#undef SATTN_KMODE
#define SATTN_KMODE P
      SATTN_SCORE_LOOP
    }
#undef SATTN_KMODE
#define SATTN_KMODE S
  } else
#endif
    SATTN_SCORE_LOOP
#undef SATTN_SCORE_LOOP
#if SATTN_PREC == SATTN_I4
#undef SATTN_MACC_LO
#undef SATTN_MACC_HI
#undef SATTN_I4_NIBBLES
#undef SATTN_H_ZERO
#undef SATTN_S_SET
#undef SATTN_S_ADD
#undef SATTN_I4_BLOCK
#else
#undef SATTN_MACC
#endif
#undef SATTN_QK_STEP
#undef SATTN_QK_COL
#undef SATTN_QK_8STEPS
#undef SATTN_QK_SEG2
#undef SATTN_QK_SEG4
#undef SATTN_QK_SEG8
#undef SATTN_SEG_AT
#undef SATTN_SEG_LOAD
#undef SATTN_SEG_NF
#undef SATTN_SEG_T
#undef SATTN_SEG_SFX
#undef SATTN_SEG_CT
#undef SATTN_SEG_BYTES
#undef SATTN_QK_8STEPS_S
#undef SATTN_QK_8STEPS_P
#undef SATTN_QK_8STEPS_Q
#undef SATTN_COL_Q
#undef SATTN_PG_T
#undef SATTN_PG_LOAD
#undef SATTN_PG_GET
#undef SATTN_PQ2
#undef SATTN_PQ4
#undef SATTN_PQ8
#undef SATTN_COL
#undef SATTN_COL_S
#undef SATTN_COL_P
#undef SATTN_KMODE
#undef SATTN_KM_CAT
#undef SATTN_KM_CAT_
#undef SATTN_K8_CAT
#undef SATTN_K8_CAT_
  }

  /* ---- 2. online softmax, per row ---- */
  /* The reductions' start values and the zero fill are made where they are used (each is one
   * instruction), not kept live across the exp, where at LMUL 8 they would be spilled. */
#define SATTN_ZERO_FILL(ptr, n) F32(vse32_v)(ptr, F32(vfmv_v_f)(0.0f, n), n)
/* The max reduction starts from the row's own scores (element 0 is in the range, so the max is
 * unchanged): no start value to make, no vsetvli pair around an LMUL-1 vfmv.s.f. The sum's 0 is
 * written at LMUL L where that is no dearer in the core model than the LMUL-1 write and its two
 * vsetvli (L <= 2: each vector instruction is charged for its whole register group). */
#if SATTN_L == 1
#define SATTN_M1(x) (x)
#else
#define SATTN_M1(x) SATTN_CAT3(__riscv_vlmul_trunc_v_f32, M32, _f32m1)(x)
#endif
#if SATTN_L <= 2
#define SATTN_SUM0(n) SATTN_M1(F32(vfmv_s_f)(0.0f, n))
#else
#define SATTN_SUM0(n) __riscv_vfmv_s_f_f32m1(0.0f, 1)
#endif
#if SATTN_PREC == SATTN_FP32 || SATTN_PREC == SATTN_BF16
#define SATTN_TO_F32(x) (x)
#else
#define SATTN_TO_F32(x) SATTN_CAT(__riscv_vfcvt_f_x_v_f32, M32)(x, vl)
#endif
#define SATTN_SOFTMAX(r)                                                                                      \
  {                                                                                                           \
    size_t vr = vl;                                                                                           \
    if (c->lim[r] - j0 < (int64_t)vl) vr = c->lim[r] > j0 ? (size_t)(c->lim[r] - j0) : 0;                     \
    float *pr = c->p + (r) * SATTN_MAX_CHUNK;                                                                 \
    c->corr[r] = 1.0f;                                                                                        \
    if (vr == 0) {                                                                                            \
      SATTN_ZERO_FILL(pr, vl);                                                                                \
    } else {                                                                                                  \
      const VF sf = SATTN_SCHEME_SCORES(r, SATTN_TO_F32(s##r));                                               \
      const float mx = __riscv_vfmv_f_s_f32m1_f32(SATTN_CAT3(__riscv_vfredmax_vs_f32, M32, _f32m1)(sf, SATTN_M1(sf), vr)); \
      if (mx > c->m[r]) {                                                                                     \
        c->corr[r] = sattn_exp_rr2_p6(scale * (c->m[r] - mx));                                                \
        c->m[r] = mx;                                                                                         \
      }                                                                                                       \
      const VF pv = SATTN_SCHEME_P(SATTN_CAT(sattn_vexp_, M32)(F32(vfsub_vf)(sf, c->m[r], vr), scale, vr));    \
      const float sum = __riscv_vfmv_f_s_f32m1_f32(SATTN_CAT3(__riscv_vfredusum_vs_f32, M32, _f32m1)(pv, SATTN_SUM0(vr), vr)); \
      c->l[r] = c->l[r] * c->corr[r] + sum;                                                                   \
      F32(vse32_v)(pr, pv, vr);                                                                               \
      if (vr < vl) SATTN_ZERO_FILL(pr + vr, vl - vr);                                                         \
    }                                                                                                         \
  }
#if SATTN_SCHEME
  /* Scores times the key's and the row's scale, plus the row's mean-Q . K bias (fp32); P rounded
   * to [0, p_max] (half to even: + 1.5 * 2^23 - 1.5 * 2^23 under the default frm) when p_max > 0,
   * against the running max (one pass, as SageAttention; the reference rounds against the row's
   * final max: docs/decisions.md). */
#define SATTN_SCHEME_SCORES(r, x)                                                                         \
  (c->biasp[r] ? F32(vfmadd_vf)(F32(vfmul_vv)(x, F32(vle32_v)(c->ksp, vr), vr), c->qs[r], F32(vle32_v)(c->biasp[r], vr), vr) \
               : F32(vfmul_vf)(F32(vfmul_vv)(x, F32(vle32_v)(c->ksp, vr), vr), c->qs[r], vr))
#define SATTN_SCHEME_P(x) \
  (c->p_max > 0.0f ? F32(vfsub_vf)(F32(vfadd_vf)(F32(vfmul_vf)(x, c->p_max, vr), 12582912.0f, vr), 12582912.0f, vr) : (x))
#else
#define SATTN_SCHEME_SCORES(r, x) (x)
#define SATTN_SCHEME_P(x) (x)
#endif
  SATTN_ROWS(SATTN_SOFTMAX)
#undef SATTN_SCHEME_SCORES
#undef SATTN_SCHEME_P

  /* ---- 3. P.V ---- */
#define SATTN_P(r) const float *p##r = c->p + (r) * SATTN_MAX_CHUNK;
  SATTN_ROWS(SATTN_P)
#if SATTN_SCHEME
  /* P.V of the scheme tiles: V stored at v_bits (int16, int8 or packed int4) with its own row
   * bytes; products accumulated in fp32 (the per-channel V scales are applied at the row's end). */
  {
    const size_t vlmaxp = SATTN_CAT(__riscv_vsetvlmax_e32, P32)();
    const int vbits = c->v_bits;
#if SATTN_GATHER
    const uint8_t *vq = c->vbase;
#define SATTN_VROW(j) (vpd + c->voff[j])
#else
    const int64_t vrb = c->v_row_bytes;
    const uint8_t *vq = c->vbase + j0 * vrb;
#define SATTN_VROW(j) (vpd + (int64_t)(j) * vrb)
#endif
    (void)vp;
    size_t vlp;
    for (int64_t d0 = 0; d0 < hd; d0 += (int64_t)vlp) {
      vlp = (size_t)(hd - d0) < vlmaxp ? (size_t)(hd - d0) : vlmaxp;
#define SATTN_ACC_LOAD(r) PF a##r = PF32(vfmul_vf)(PF32(vle32_v)(c->acc[r] + d0, vlp), c->corr[r], vlp);
      SATTN_ROWS(SATTN_ACC_LOAD)
#define SATTN_PV(r) a##r = PF32(vfmacc_vf)(a##r, p##r[jj], vv, vlp);
#define SATTN_PV_KEYS(VLOAD)                              \
  {                                                       \
    size_t jj = 0;                                        \
    for (const size_t end4 = vl & ~(size_t)3; jj < end4;) { \
      for (int u = 0; u < 4; ++u, ++jj) {                 \
        const PF vv = VLOAD(jj);                          \
        SATTN_ROWS(SATTN_PV)                              \
      }                                                   \
    }                                                     \
    for (; jj < vl; ++jj) {                               \
      const PF vv = VLOAD(jj);                            \
      SATTN_ROWS(SATTN_PV)                                \
    }                                                     \
  }
#define SATTN_VLOAD16(j) SATTN_CAT(__riscv_vfwcvt_f_x_v_f32, P32)(SATTN_CAT(__riscv_vle16_v_i16, P16)((const int16_t *)SATTN_VROW(j), vlp), vlp)
#define SATTN_VLOAD8(j)                                 \
  SATTN_CAT(__riscv_vfcvt_f_x_v_f32, P32)(              \
      SATTN_CAT(__riscv_vsext_vf4_i32, P32)(SATTN_CAT(__riscv_vle8_v_i8, P8)((const int8_t *)SATTN_VROW(j), vlp), vlp), vlp)
#define SATTN_VLOAD4(j) SATTN_CAT(sattn_i4_row_f32_, P32)(SATTN_VROW(j), vlp)
      if (vbits == 16) {
        const uint8_t *vpd = vq + d0 * 2;
        SATTN_PV_KEYS(SATTN_VLOAD16)
      } else if (vbits == 8) {
        const uint8_t *vpd = vq + d0;
        SATTN_PV_KEYS(SATTN_VLOAD8)
      } else {
        const uint8_t *vpd = vq + d0 / 2;
        SATTN_PV_KEYS(SATTN_VLOAD4)
      }
#undef SATTN_VLOAD16
#undef SATTN_VLOAD8
#undef SATTN_VLOAD4
#undef SATTN_PV_KEYS
#undef SATTN_PV
#undef SATTN_VROW
#define SATTN_ACC_STORE(r) PF32(vse32_v)(c->acc[r] + d0, a##r, vlp);
      SATTN_ROWS(SATTN_ACC_STORE)
    }
  }
#else
/* vpd: the V rows' columns d0.. (i4: packed byte d0 / 2; d0 is a multiple of VLMAX, so even). */
#if SATTN_PREC == SATTN_FP32
#define SATTN_VPD(d0) (vp + (d0) * 4)
#elif SATTN_PREC == SATTN_BF16
#define SATTN_VPD(d0) (vp + (d0) * 2)
#elif SATTN_PREC == SATTN_I8
#define SATTN_VPD(d0) (vp + (d0))
#else
#define SATTN_VPD(d0) (vp + (d0) / 2)
#endif
#if SATTN_GATHER
  /* Row kernels: a P.V slice's V row addresses, 64-bit, computed as vectors (a few instructions
   * per VLMAX(e64, m8) keys), so the key loop loads an address instead of loading an offset and
   * adding it. */
  const size_t vlmax64 = __riscv_vsetvlmax_e64m8();
  const uint32_t *const offs = c->off;
  uint64_t *const vrows = (uint64_t *)c->vrow;
#define SATTN_VROW_ADDRS(vpd)                                                                  \
  for (size_t j0 = 0, n; j0 < vl; j0 += n) {                                                   \
    n = vl - j0 < vlmax64 ? vl - j0 : vlmax64;                                                 \
    const vuint64m8_t a = __riscv_vzext_vf2_u64m8(__riscv_vle32_v_u32m4(offs + j0, n), n);     \
    __riscv_vse64_v_u64m8(vrows + j0, __riscv_vadd_vx_u64m8(a, (uint64_t)(uintptr_t)(vpd), n), n); \
  }
#endif
#if SATTN_PV_PAIRS
  /* The pair tiles (four rows, sattn_tiles_pv8; chosen by the kernels when head_dim needs more
   * than one LMUL-4 slice, e.g. VLEN 256 and head_dim 64): P.V in two passes of two rows at
   * LMUL 8 (two accumulators and the V row: 24 registers), so each p is loaded once per
   * ceil(head_dim / VLMAX(e32, m8)) slices instead of once per LMUL-4 slice: per key and m8 slice
   * 2 x (V row, 2 p, 2 multiply-adds) against 2 x (V row, 4 p, 4 multiply-adds) for the two m4
   * slices it replaces. fp32 loads the V row in both passes; the converting precisions convert it
   * once, into the V panel (below). */
  {
    const size_t vlmax8 = __riscv_vsetvlmax_e32m8();
    size_t vl8;
    for (int64_t d0 = 0; d0 < hd; d0 += (int64_t)vl8) {
      vl8 = (size_t)(hd - d0) < vlmax8 ? (size_t)(hd - d0) : vlmax8;
      const uint8_t *vpd = SATTN_VPD(d0);
#if SATTN_GATHER
      SATTN_VROW_ADDRS(vpd)
#define SATTN_VROW8(j) (c->vrow[j])
#else
#define SATTN_VROW8(j) (vpd + (int64_t)(j) * row_bytes)
#endif
#if SATTN_PREC == SATTN_FP32
#define SATTN_VLOAD8(j) __riscv_vle32_v_f32m8((const float *)SATTN_VROW8(j), vl8)
#elif SATTN_PREC == SATTN_BF16
#define SATTN_VLOAD8(j) \
  __riscv_vreinterpret_v_u32m8_f32m8(__riscv_vsll_vx_u32m8(__riscv_vzext_vf2_u32m8(__riscv_vle16_v_u16m4((const uint16_t *)SATTN_VROW8(j), vl8), vl8), 16, vl8))
#elif SATTN_PREC == SATTN_I8
#define SATTN_VLOAD8(j) __riscv_vfcvt_f_x_v_f32m8(__riscv_vsext_vf4_i32m8(__riscv_vle8_v_i8m2((const int8_t *)SATTN_VROW8(j), vl8), vl8), vl8)
#else
#define SATTN_VLOAD8(j) sattn_i4_row_f32_m8(SATTN_VROW8(j), vl8)
#endif
/* fp32: both passes load the V row. The converting precisions: the first pass converts the V
 * row once and also stores it in fp32 into the V panel (scratch, vl x vl8 floats), the second
 * reads it back (one unit-stride load instead of the load and 2-3 conversions, each charged a
 * whole LMUL-8 group by the core model). */
#define SATTN_PV8_MACC                                  \
  x = __riscv_vfmacc_vf_f32m8(x, pa[jj], vv, vl8);      \
  y = __riscv_vfmacc_vf_f32m8(y, pb[jj], vv, vl8);
#if SATTN_PREC == SATTN_FP32
#define SATTN_PV8_STEP_A(j)                             \
  {                                                     \
    const size_t jj = (j);                              \
    const vfloat32m8_t vv = SATTN_VLOAD8(jj);           \
    SATTN_PV8_MACC                                      \
  }
#define SATTN_PV8_STEP_B(j) SATTN_PV8_STEP_A(j)
#else
#define SATTN_PV8_STEP_A(j)                                  \
  {                                                          \
    const size_t jj = (j);                                   \
    const vfloat32m8_t vv = SATTN_VLOAD8(jj);                \
    __riscv_vse32_v_f32m8(panel + jj * vl8, vv, vl8);        \
    SATTN_PV8_MACC                                           \
  }
#define SATTN_PV8_STEP_B(j)                                                  \
  {                                                                          \
    const size_t jj = (j);                                                   \
    const vfloat32m8_t vv = __riscv_vle32_v_f32m8(panel + jj * vl8, vl8);    \
    SATTN_PV8_MACC                                                           \
  }
#endif
#define SATTN_PV8_PAIR(ra, rb, STEP)                                                                    \
  {                                                                                                     \
    const float *pa = p##ra, *pb = p##rb;                                                               \
    vfloat32m8_t x = __riscv_vfmul_vf_f32m8(__riscv_vle32_v_f32m8(c->acc[ra] + d0, vl8), c->corr[ra], vl8); \
    vfloat32m8_t y = __riscv_vfmul_vf_f32m8(__riscv_vle32_v_f32m8(c->acc[rb] + d0, vl8), c->corr[rb], vl8); \
    size_t j = 0;                                                                                       \
    for (const size_t end8 = vl & ~(size_t)7; j < end8; j += 8) {                                       \
      STEP(j)                                                                                           \
      STEP(j + 1)                                                                                       \
      STEP(j + 2)                                                                                       \
      STEP(j + 3)                                                                                       \
      STEP(j + 4)                                                                                       \
      STEP(j + 5)                                                                                       \
      STEP(j + 6)                                                                                       \
      STEP(j + 7)                                                                                       \
    }                                                                                                   \
    for (; j < vl; ++j) STEP(j)                                                                         \
    __riscv_vse32_v_f32m8(c->acc[ra] + d0, x, vl8);                                                     \
    __riscv_vse32_v_f32m8(c->acc[rb] + d0, y, vl8);                                                     \
  }
#if SATTN_PREC != SATTN_FP32
      float *const panel = c->vpanel;
#endif
      SATTN_PV8_PAIR(0, 1, SATTN_PV8_STEP_A)
      SATTN_PV8_PAIR(2, 3, SATTN_PV8_STEP_B)
#undef SATTN_PV8_PAIR
#undef SATTN_PV8_MACC
#undef SATTN_PV8_STEP_A
#undef SATTN_PV8_STEP_B
#undef SATTN_VLOAD8
#undef SATTN_VROW8
    }
  }
#else
  {
  /* The slice length is min(rest, VLMAX) in scalar code rather than a vsetvl intrinsic: clang 16
   * gives the intrinsic's vsetvli the mask-undisturbed policy, unlike the loads and
   * multiply-adds below, and then re-issues a vsetvli in every iteration of the key loop. */
  const size_t vlmaxp = SATTN_CAT(__riscv_vsetvlmax_e32, P32)();
  size_t vlp;
  for (int64_t d0 = 0; d0 < hd; d0 += (int64_t)vlp) {
    vlp = (size_t)(hd - d0) < vlmaxp ? (size_t)(hd - d0) : vlmaxp;
    /* One V row per key, loaded (and converted) once for the R rows; unrolled by 8. */
    const uint8_t *vpd = SATTN_VPD(d0);
#if SATTN_GATHER
    SATTN_VROW_ADDRS(vpd)
#endif
    /* (after the address vectors, so the key loop runs under one vtype) */
#define SATTN_ACC_LOAD(r) PF a##r = PF32(vfmul_vf)(PF32(vle32_v)(c->acc[r] + d0, vlp), c->corr[r], vlp);
    SATTN_ROWS(SATTN_ACC_LOAD)
#if SATTN_GATHER
#define SATTN_VROW(j) (c->vrow[j])
#else
#define SATTN_VROW(j) (vpd + (int64_t)(j) * row_bytes)
#endif
#if SATTN_PREC == SATTN_FP32
#define SATTN_VLOAD(j) PF32(vle32_v)((const float *)SATTN_VROW(j), vlp)
#elif SATTN_PREC == SATTN_BF16
#define SATTN_VLOAD(j)                                                                                           \
  SATTN_CAT3(__riscv_vreinterpret_v_u32, P32, SATTN_CAT(_f32, P32))(SATTN_CAT(__riscv_vsll_vx_u32, P32)(         \
      SATTN_CAT(__riscv_vzext_vf2_u32, P32)(SATTN_CAT(__riscv_vle16_v_u16, P16)((const uint16_t *)SATTN_VROW(j), vlp), vlp), 16, vlp))
#elif SATTN_PREC == SATTN_I8
#define SATTN_VLOAD(j)                                 \
  SATTN_CAT(__riscv_vfcvt_f_x_v_f32, P32)(             \
      SATTN_CAT(__riscv_vsext_vf4_i32, P32)(SATTN_CAT(__riscv_vle8_v_i8, P8)((const int8_t *)SATTN_VROW(j), vlp), vlp), vlp)
#else
#define SATTN_VLOAD(j) SATTN_CAT(sattn_i4_row_f32_, P32)(SATTN_VROW(j), vlp)
#endif
#define SATTN_PV(r) a##r = PF32(vfmacc_vf)(a##r, p##r[jj], vv, vlp);
#define SATTN_PV_STEP(j)               \
  {                                    \
    const size_t jj = (j);             \
    const PF vv = SATTN_VLOAD(jj);     \
    SATTN_ROWS(SATTN_PV)               \
  }
    size_t j = 0;
    for (const size_t end8 = vl & ~(size_t)7; j < end8; j += 8) {
      SATTN_PV_STEP(j)
      SATTN_PV_STEP(j + 1)
      SATTN_PV_STEP(j + 2)
      SATTN_PV_STEP(j + 3)
      SATTN_PV_STEP(j + 4)
      SATTN_PV_STEP(j + 5)
      SATTN_PV_STEP(j + 6)
      SATTN_PV_STEP(j + 7)
    }
    for (; j < vl; ++j) SATTN_PV_STEP(j)
#undef SATTN_PV_STEP
#undef SATTN_PV
#undef SATTN_VLOAD
#undef SATTN_VROW
#define SATTN_ACC_STORE(r) PF32(vse32_v)(c->acc[r] + d0, a##r, vlp);
    SATTN_ROWS(SATTN_ACC_STORE)
  }
  }
#endif
#endif
#undef SATTN_VPD
#undef SATTN_VROW_ADDRS
#undef SATTN_Q
#undef SATTN_ZERO
#undef SATTN_TO_F32
#undef SATTN_SOFTMAX
#undef SATTN_ZERO_FILL
#undef SATTN_M1
#undef SATTN_SUM0
#undef SATTN_P
#undef SATTN_ACC_LOAD
#undef SATTN_ACC_STORE
}

#undef SATTN_ROWS
#undef SATTN_COL
#undef VACC
#undef QT
#undef VF
#undef VI32
#undef VU32
#undef PF
#undef F32
#undef PF32
