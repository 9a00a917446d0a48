/* The scheme tiles (sattn_qtile_r*_l*) of the integer kernels: attn-rvv-tile.inc.h for every
 * (rows, LMUL) the register budget allows, as the per-tensor set in attn-rvv-common.inc.h.
 * Included by attn-rvv-common.inc.h with SATTN_SCHEME 1 and SATTN_TILE_PREFIX set. */
#define SATTN_R 1
#define SATTN_LP 8
#define SATTN_L 1
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 2
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 4
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 8
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#undef SATTN_LP
#undef SATTN_R

#define SATTN_R 2
#define SATTN_LP 4
#define SATTN_L 1
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 2
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 4
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#if !SATTN_INT_PREC
#define SATTN_L 8
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#endif
#undef SATTN_LP
#undef SATTN_R

#define SATTN_R 4
#define SATTN_LP 4
#define SATTN_L 1
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 2
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 4
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#undef SATTN_LP
#undef SATTN_R

#define SATTN_R 8
#define SATTN_LP 2
#define SATTN_L 1
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#define SATTN_L 2
#include "attn-rvv-tile.inc.h"
#undef SATTN_L
#undef SATTN_LP
#undef SATTN_R

