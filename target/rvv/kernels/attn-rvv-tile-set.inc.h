/* One set of tile functions: attn-rvv-tile.inc.h for every (rows, LMUL) the register budget
 * allows (tiling.h: sattn_max_lmul, sattn_pv_lmul). Included by attn-rvv-common.inc.h twice,
 * with SATTN_SCHEME 0 / SATTN_TILE_PREFIX sattn_tile_r (the per-tensor tiles) and, for i8/i4,
 * SATTN_SCHEME 1 / sattn_qtile_r (the scheme tiles). P.V LMUL (SATTN_LP): 8 up to 2 rows
 * (2 accumulators and the V row: 24 registers), 4 at 4 rows, 2 at 8. */
#undef SATTN_TILE_SFX
#define SATTN_TILE_SFX
#undef SATTN_PV_PAIRS
#define SATTN_PV_PAIRS 0
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

#if !SATTN_SCHEME
/* The per-tensor four-row tiles again with P.V in two passes of two rows at LMUL 8 (named
 * sattn_tile_r4_lL_p; the row of sattn_tiles_pv8). */
#undef SATTN_TILE_SFX
#define SATTN_TILE_SFX _p
#undef SATTN_PV_PAIRS
#define SATTN_PV_PAIRS 1
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
#undef SATTN_TILE_SFX
#define SATTN_TILE_SFX
#undef SATTN_PV_PAIRS
#define SATTN_PV_PAIRS 0
#endif

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

