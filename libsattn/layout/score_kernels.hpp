// Internal to the layout part: the score-tile kernels of nm_structured / topk_per_query
// (layout_scored.cpp), one copy per ISA (docs/decisions.md "Layout build: own score kernels").
//
// A row tile holds `tile_rows` query rows (a few SIMD vectors of rows). Its scores are computed
// one chunk of keys at a time, transposed: scores[(j - j0) * tile_rows + r] = float dot product of
// row r's (group-summed, float) query with key j, so that a SIMD vector holds one key's scores
// for consecutive rows and every selection below runs down the keys with per-row state in the
// vector lanes. The scores are approximations: layout_scored.cpp bounds their error and decides
// every doubtful case in double; a kernel only has to be a float dot product (any order).
//
// score_kernels.cpp is compiled once per ISA into its own namespace (baseline: no -march;
// avx2: x86-64-v3; avx512: x86-64-v4); layout_scored.cpp picks one at run time.
#pragma once
#include <cstdint>

namespace sattn::layout_detail {

// One row tile of one (batch, kv head).
struct ScoreTile {
  const float* qt = nullptr;    // [d][tile_rows]: query c of row r at qt[c * tile_rows + r]; padding rows 0
  const float* keys = nullptr;  // key j at keys + j * d (contiguous rows of K)
  int64_t d = 0;
  const int64_t* end = nullptr;  // [tile_rows]: row r may use keys [0, end[r]) (0: skip the row)
};

// N:M with N <= 4 in the vector lanes; every other case goes to `doubtful`.
struct NmTile {
  int64_t m = 0;
  int64_t n = 0;                  // nm_n (< m): the vector path decides groups when n <= 4
  const float* margin = nullptr;  // [tile_rows]: a best this far above the runner-up is taken
  int32_t* const* out = nullptr;  // [tile_rows]: row r's keys of group g go to out[r][(g / m) * n ...]
  // Called for a (row r, group [g, min(g + m, end[r]))) the vector path did not decide; the
  // row's approximate scores of the group are col[0], col[stride], ...
  void (*doubtful)(void* ctx, int64_t r, int64_t g, const float* col, int64_t stride) = nullptr;
  void* ctx = nullptr;
};

// top-k: every key scoring at least the row's threshold is listed (value and key, ascending).
struct TopkTile {
  float* threshold = nullptr;  // [tile_rows]; +inf lists nothing; `full` may raise it
  float* values = nullptr;     // row r's list at values + r * cap
  int32_t* keys = nullptr;     // same layout
  int64_t* count = nullptr;    // [tile_rows]
  int64_t cap = 0;
  // Scratch of (keys per call + 16) * tile_rows entries each.
  float* event_values = nullptr;
  int32_t* event_keys = nullptr;
  int32_t* event_lanes = nullptr;
  // Called when row r's list holds cap entries: it must shrink the list and may raise the
  // threshold (or set it to +inf to stop listing the row).
  void (*full)(void* ctx, int64_t r) = nullptr;
  void* ctx = nullptr;
};

struct ScoreKernels {
  const char* name;
  int64_t tile_rows;
  // Scores of keys [j0, j1) for every row of the tile into out (layout above).
  void (*score)(const ScoreTile& t, int64_t j0, int64_t j1, float* out);
  // Groups [g, g + m) with j0 <= g < j1, g a multiple of m, j1 a multiple of m or the tile's end.
  void (*nm)(const ScoreTile& t, const NmTile& nm, int64_t j0, int64_t j1, const float* scores);
  void (*topk)(const ScoreTile& t, TopkTile& tk, int64_t j0, int64_t j1, const float* scores);
};

namespace baseline {
extern const ScoreKernels score_kernels;
}
namespace avx2 {
extern const ScoreKernels score_kernels;
}
namespace avx512 {
extern const ScoreKernels score_kernels;
}

}  // namespace sattn::layout_detail
