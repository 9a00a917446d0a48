// The IMC model's costing of quantization schemes (sattn-imc(1) QUANTIZATION SCHEMES): the
// peripheral counts worked out by hand from the documented formulas, the P.V bits of each P.V
// precision, per-tensor unchanged, and the scheme's energy against per-tensor.
#include <doctest/doctest.h>

#include "backends/imc/imc.hpp"
#include "core/quant_scheme.hpp"
#include "sattn/layout.hpp"

using namespace sattn;

namespace {

// heads 2 on 1 KV head (group 2), 32 queries x 32 keys, head_dim 16, dense, not causal.
Op scheme_op(const char* scheme, Precision p = Precision::i8) {
  Op op;
  op.name = "s";
  op.shape.batch = 1;
  op.shape.heads = 2;
  op.shape.kv_heads = 1;
  op.shape.seq_len = op.shape.kv_len = 32;
  op.shape.head_dim = 16;
  op.precision = p;
  if (scheme) op.quant_scheme = *parse_quant_scheme(scheme);
  return op;
}

ImcOpReport report(const Op& op) {
  const Layout dense = build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr);
  ImcParams p;
  p.rows = p.cols = 64;
  return imc_attention(op, dense, dense, p);
}

}  // namespace

TEST_CASE("imc schemes: smooth's peripheral counts as documented") {
  const ImcOpReport r = report(scheme_op("smooth"));
  REQUIRE(r.scheme);
  CHECK(r.scheme_name == "smooth");
  CHECK(r.scheme->pv_input_bits == 16);
  CHECK(r.scheme->pv_weight_bits == 16);
  const ImcCounts& c = r.sparse.counts;
  // per row (32 rows, each counted for 2 query heads, 32 keys each):
  //   multiplies: 32 keys x (k scale + P rounding) + 1 (q scale) + 16 (V channel scales) = 81
  //   adds: 32 (mean-Q bias) + 16 (Q minus its mean) + 16 x log2 16 (rotation) = 112
  // per key (32): adds 16 (K minus its mean) + 64 (rotation)
  CHECK(c.scale_multiplies == 32 * 2 * 81);
  CHECK(c.scale_adds == 32 * 2 * 112 + 32 * (16 + 64));
  // bits: q scales 32 x 2 x 32; 2 mean vectors (block 16) x 2 heads x 16 x 32; 32 key scales,
  // 16 V channel scales and the 16-value K mean, 32 bits each
  CHECK(c.scale_bits == 32 * 2 * 32 + 2 * 2 * 16 * 32 + (32 + 16 + 16) * 32);
  CHECK(c.mean_vectors == 2 * 2);
  // The mean vectors read the arrays (more ADC conversions) but are not the op's MACs.
  REQUIRE(r.sparse_per_tensor);
  CHECK(c.macs == r.sparse_per_tensor->counts.macs);
  CHECK(r.sparse.energy_pj.adc > r.sparse_per_tensor->energy_pj.adc);
  CHECK(r.sparse.energy_pj.accumulation > r.sparse_per_tensor->energy_pj.accumulation);
  CHECK(r.sparse.energy_pj.total() > r.sparse_per_tensor->energy_pj.total());
}

TEST_CASE("imc schemes: per-tensor is the historical mapping; P.V bits follow pv") {
  const ImcOpReport pt = report(scheme_op("per-tensor"));
  CHECK_FALSE(pt.scheme);
  CHECK_FALSE(pt.sparse_per_tensor);
  CHECK(pt.sparse.counts.scale_multiplies == 0);
  CHECK(pt.sparse.counts.scale_adds == 0);
  CHECK(pt.sparse.counts.scale_bits == 0);
  // The per-tensor figure of a scheme's report is exactly the per-tensor op's cost.
  const ImcOpReport sage = report(scheme_op("sage"));
  REQUIRE(sage.sparse_per_tensor);
  CHECK(sage.sparse_per_tensor->energy_pj.total() == doctest::Approx(pt.sparse.energy_pj.total()).epsilon(1e-12));
  CHECK(sage.scheme->pv_input_bits == 8);
  CHECK(sage.scheme->pv_weight_bits == 8);
  // sage: k per block of 16 (a multiply per score), P in i8 (a multiply per score); no rotation.
  CHECK(sage.sparse.counts.scale_multiplies == 32 * 2 * (32 * 2 + 1 + 16));
  // P.V in fp32 at i4: the op's 4 bits; no per-score multiply for per-head K scales.
  const ImcOpReport plain = report(scheme_op("q=head,k=head,smooth=k", Precision::i4));
  REQUIRE(plain.scheme);
  CHECK(plain.scheme->pv_input_bits == 4);
  CHECK(plain.scheme->pv_weight_bits == 4);
  CHECK(plain.sparse.counts.scale_multiplies == 0);
  CHECK(plain.sparse.counts.scale_adds == 32 * 16);  // K smoothing only
  // An op without a quant_scheme runs the recommended one (smooth,block=2 at i4).
  const ImcOpReport def = report(scheme_op(nullptr, Precision::i4));
  REQUIRE(def.scheme);
  CHECK(def.scheme->mean_block == 2);
  CHECK(def.sparse.counts.mean_vectors == 2 * 32 / 2);
}
