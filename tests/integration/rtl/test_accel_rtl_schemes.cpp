// Quantization schemes on the accelerator (hw/README.md "Quantization schemes"): the RTL against
// the bit-exact model (output bits, all 13 counters, cycles) and the output against the
// same-quantized reference (reference_attention_quantized: the scheme's codes, scales and mean-Q
// bias in double) and the fp32 reference, for the recommended schemes (smooth at i8,
// smooth,block=4 and the default block=2 at i4), sage-like granularities with pv=fp32, causal, GQA and partial blocks.
#include <doctest/doctest.h>

#include <string>

#include "accel_test_support.hpp"
#include "core/quant_scheme.hpp"
#include "sattn/error.hpp"

using namespace sattn;
using namespace sattn::accel_test;

namespace {

QuantScheme scheme_named(const std::string& s) {
  std::string why;
  const auto q = parse_quant_scheme(s, &why);
  REQUIRE_MESSAGE(q, why);
  return *q;
}

// The fp32 check of sattn-quant(7) for the precision (i8 max-norm 5e-2; i4 rel-L1 0.2, cosine
// 0.98) and the same-quantized reference at the accelerator's fixed-point tolerance.
void check_against_references(const Case& c, const QuantScheme& scheme, const Tensor& out) {
  const ErrorStats e32 = compare(out, reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v));
  CHECK(within(e32, tolerance_of(c.op.precision, scheme)));
  const ErrorStats eq =
      compare(out, reference_attention_quantized(c.op, scheme, c.layout, c.data.q, c.data.k, c.data.v));
  CAPTURE(eq.max_rel);
  CHECK(eq.max_rel <= (c.op.precision == Precision::i4 ? 2e-2 : 1e-2));
}

}  // namespace

TEST_CASE("accel rtl schemes: smooth (i8), smooth,block=4 and block=2 (i4) and pv=fp32 schemes, RTL == model, vs references") {
  struct Item {
    Spec spec;
    Precision prec;
    const char* scheme;
    bool causal;
    int lanes;
  };
  const Item items[] = {
      {Spec::bsr, Precision::i8, "smooth", true, 16},
      {Spec::bsr, Precision::i4, "smooth,block=4", false, 8},
      {Spec::sliding_window, Precision::i8, "smooth", false, 8},
      {Spec::topk_per_query, Precision::i4, "smooth,block=2", true, 16},  // the i4 default
      {Spec::dense, Precision::i8, "q=token,k=block,block=16,smooth=qk,pv=fp32,v=channel", true, 16},
      {Spec::block_local_global, Precision::i4, "q=head,k=token,smooth=k,pv=fp32", true, 8},
      {Spec::dense, Precision::i8, "q=block,k=head,block=8,smooth=q,pv=fix16,v=tensor", false, 16},
  };
  for (const Item& it : items) {
    CAPTURE(to_string(it.spec));
    CAPTURE(to_string(it.prec));
    CAPTURE(it.scheme);
    CAPTURE(it.causal);
    // GQA 2:1, seq 40 (a partial last block of 16, and of the 64-row tile), head_dim 32.
    Case c = make_case(it.spec, it.prec, it.causal, 40, 40, 32, 2, 1);
    const QuantScheme scheme = scheme_named(it.scheme);
    c.op.quant_scheme = scheme;
    accel::Config cfg;
    cfg.lanes = it.lanes;
    cfg.dram_latency_cycles = 7;
    cfg.dram_bytes_per_cycle = it.lanes == 8 ? 5 : 16;
    const accel::Program p = program_of(c, cfg);
    REQUIRE(p.schemed);
    CHECK(p.quant_bytes > 0);
    const accel::RunResult model = accel::run_model(p, cfg);
    const accel::RunResult rtl = accel::run_rtl(p, cfg);
    CHECK(rtl.out_bits == model.out_bits);
    for (int e = 0; e < accel::kEventCount; ++e) {
      CAPTURE(accel::event_name(accel::Event(e)));
      CHECK(rtl.counters.get(accel::Event(e)) == model.counters.get(accel::Event(e)));
    }
    CHECK(rtl.sim_cycles == model.sim_cycles);
    CHECK(rtl.counters.macs_issued == 2 * allowed_pairs(c) * 32);
    check_against_references(c, scheme, accel::decode_output(p, rtl));
  }
}

TEST_CASE("accel rtl schemes: bias rows per query row when the scheme's block does not align with the tiles") {
  // block=3 is not a power of two: one bias row per tile row (bias_shift 0); q_tile_rows 24.
  Case c = make_case(Spec::bsr, Precision::i8, true, 56, 56, 32, 2, 1);
  const QuantScheme scheme = scheme_named("smooth,block=3");
  c.op.quant_scheme = scheme;
  accel::Config cfg;
  cfg.q_tile_rows = 24;
  const accel::Program p = program_of(c, cfg);
  CHECK(p.bias_shift == 0);
  const accel::RunResult model = accel::run_model(p, cfg);
  const accel::RunResult rtl = accel::run_rtl(p, cfg);
  CHECK(rtl.out_bits == model.out_bits);
  CHECK(rtl.counters == model.counters);
  check_against_references(c, scheme, accel::decode_output(p, rtl));
  // The aligned block of the recommended i8 scheme groups 16 rows per bias row.
  Case d = make_case(Spec::bsr, Precision::i8, true, 56, 56, 32, 2, 1);
  d.op.quant_scheme = scheme_named("smooth");
  CHECK(program_of(d, accel::Config{}).bias_shift == 4);
}

TEST_CASE("accel schemes: pv=i8 is refused with the reason; per-tensor programs carry no scheme commands") {
  Case c = make_case(Spec::bsr, Precision::i8, false, 40, 40, 32, 2, 1);
  c.op.quant_scheme = sage_scheme();
  try {
    (void)program_of(c, accel::Config{});
    FAIL("pv=i8 ran");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::invalid_input);
    CHECK(e.message().find("pv=i8") != std::string::npos);
  }
  c.op.quant_scheme = per_tensor_scheme();
  const accel::Program p = program_of(c, accel::Config{});
  CHECK_FALSE(p.schemed);
  for (const accel::Command& cmd : p.commands) CHECK(cmd.funct != accel::Funct::load_scale);
  const auto caps = accel::decode_capabilities(accel::capability_words(16).first, accel::capability_words(16).second);
  CHECK(caps.quant_scales);
  CHECK(caps.pv_fix16);
  CHECK(accel::scheme_support(smooth_scheme(), caps).empty());
  CHECK_FALSE(accel::scheme_support(sage_scheme(), caps).empty());
}
