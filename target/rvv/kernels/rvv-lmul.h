/* Type and intrinsic suffixes for one score LMUL (SATTN_L) and one P.V LMUL (SATTN_LP), so a
 * kernel template can be instantiated for each. Re-included once per instantiation. */
#define SATTN_CAT_(a, b) a##b
#define SATTN_CAT(a, b) SATTN_CAT_(a, b)
#define SATTN_CAT3(a, b, c) SATTN_CAT(SATTN_CAT(a, b), c)

#undef M32
#undef M16
#undef M8
#undef MB
/* Scores: e32 at LMUL L; the K column in bf16 (e16) at L/2, in i8/i4 (e8) at L/4; masks b(32/L). */
#if SATTN_L == 1
#define M32 m1
#define M16 mf2
#define M8 mf4
#define MB b32
#elif SATTN_L == 2
#define M32 m2
#define M16 m1
#define M8 mf2
#define MB b16
#elif SATTN_L == 4
#define M32 m4
#define M16 m2
#define M8 m1
#define MB b8
#elif SATTN_L == 8
#define M32 m8
#define M16 m4
#define M8 m2
#define MB b4
#else
#error "SATTN_L must be 1, 2, 4 or 8"
#endif

#undef P32
#undef P16
#undef P8
#undef P8H
/* P.V: e32 at LP; a bf16 V row (e16) at LP/2; an i8 V row (e8) at LP/4; a packed i4 V row
 * (e8, half the elements) at LP/8, widened to e16 at LP/4 = P8. */
#if SATTN_LP == 2
#define P32 m2
#define P16 m1
#define P8 mf2
#define P8H mf4
#elif SATTN_LP == 4
#define P32 m4
#define P16 m2
#define P8 m1
#define P8H mf2
#elif SATTN_LP == 8
#define P32 m8
#define P16 m4
#define P8 m2
#define P8H m1
#else
#error "SATTN_LP must be 2, 4 or 8"
#endif
