// Fast kernel, the integer datapath of a quantization scheme other than per-tensor
// (sattn-quant(7)): one query row at a time over its keys, both layout kinds.
//   scores: int8 x int8 dot products (exact in int32) times the row's and the key's scales, plus
//           the mean-Q bias in fp32 (smooth_q), in the exp2 domain;
//   P:      exp2(s - row max), quantized to [0, p_max] (pv i8 / fix16) with round half to even;
//   P.V:    integer products accumulated in int64, scaled per V channel and divided by sum(P).
// Two passes over a row's scores (max, then P) so that P is quantized against the row's final
// max, as the same-quantized reference does.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "backends/cpu/kernel_fast_simd.hpp"
#include "core/quant_scheme.hpp"

namespace sattn::fast {

namespace {

inline int32_t dot_codes(const int8_t* a, const int8_t* b, int64_t n) {
  int32_t sum = 0;  // exact: |a|, |b| <= 127
  for (int64_t c = 0; c < n; ++c) sum += int32_t(a[c]) * int32_t(b[c]);
  return sum;
}

}  // namespace

void run_quant_tile(const Problem& p, Scratch& scratch, int64_t b, int64_t h, int64_t tile) {
  const QuantizedQKV& z = *p.quant;
  const Layout& layout = *p.layout;
  const int64_t tile_height = layout.block ? layout.block_size : p.tile_rows;
  const int64_t row0 = tile * tile_height;
  const int64_t rows = std::min(tile_height, p.seq_len - row0);
  const int64_t kvh = h / p.group, d = p.dim;
  const HeadLayout& head = layout.head(b, kvh);
  const int64_t k_row0 = z.k_row(b, kvh, 0);
  const float* v_scale = z.v_scale.data() + (b * p.kv_heads + kvh) * d;
  std::vector<int64_t> acc_int(static_cast<size_t>(d), 0);
  std::vector<float> acc_f(static_cast<size_t>(d), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = row0 + r;
    const int64_t qr = z.q_row(b, h, i);
    const int8_t* qc = z.q_codes.data() + qr * d;
    const float* mean = z.scheme.smooth_q ? z.mean_of(b, h, i) : nullptr;
    const auto [keys, key_count] = row_keys(layout, head, tile, i, scratch);
    float* out = p.out_row(b, h, i);
    float* lse = p.lse_row(b, h, i);
    if (key_count == 0) {  // no allowed key: output 0, log-sum-exp -inf
      std::fill(out, out + d, 0.0f);
      if (lse) *lse = kNegInf;
      continue;
    }
    if (int64_t(scratch.scores.size()) < key_count) scratch.scores.resize(size_t(key_count));
    float* scores = scratch.scores.data();
    const float row_scale = z.q_scale[size_t(qr)] * p.score_scale;
    // Softcap with smooth_k: q . mean(K) added back before the cap (exact only under softmax).
    const float row_bias = z.row_bias.empty() ? 0.0f : z.row_bias[size_t(qr)] * p.score_scale;
    for (int64_t t = 0; t < key_count; ++t) {
      const int64_t kr = k_row0 + keys[t];
      float s = float(dot_codes(qc, z.k_codes.data() + kr * d, d)) * (row_scale * z.k_scale[size_t(kr)]);
      if (mean) s += dot(mean, z.k_smooth.data() + kr * d, d) * p.score_scale;  // mean-Q term in fp32
      scores[t] = s + row_bias;
    }
    apply_softcap(scores, key_count, p.softcap2);
    const float m = row_max(scores, key_count);
    float sum_exp = 0;
    if (z.p_max > 0) {
      std::fill(acc_int.begin(), acc_int.end(), 0);
      int64_t sum_p = 0;
      const float p_max = float(z.p_max);
      for (int64_t t = 0; t < key_count; ++t) {
        const float e = exp2_scalar(scores[t] - m);
        sum_exp += e;
        const auto pq = int64_t(std::nearbyint(e * p_max));
        if (pq == 0) continue;
        sum_p += pq;
        const int16_t* vc = z.v_codes.data() + (k_row0 + keys[t]) * d;
        for (int64_t c = 0; c < d; ++c) acc_int[size_t(c)] += pq * int64_t(vc[c]);
      }
      // sum_p >= p_max: the row's largest score gives P = 1.
      const double inv = 1.0 / double(sum_p);
      for (int64_t c = 0; c < d; ++c) out[c] = float(double(acc_int[size_t(c)]) * double(v_scale[c]) * inv);
    } else {
      std::fill(acc_f.begin(), acc_f.end(), 0.0f);
      for (int64_t t = 0; t < key_count; ++t) {
        const float e = exp2_scalar(scores[t] - m);
        sum_exp += e;
        axpy(acc_f.data(), e, z.v_dequant.data() + (k_row0 + keys[t]) * d, d);
      }
      const float inv = 1.0f / sum_exp;
      for (int64_t c = 0; c < d; ++c) out[c] = acc_f[size_t(c)] * inv;
    }
    // Scores live in the exp2 domain: ln(sum e^s) = ln2 * (max2 + log2(sum)).
    if (lse) *lse = float(0.6931471805599453 * (double(m) + std::log2(double(sum_exp))));
  }
}

}  // namespace sattn::fast
