// The accelerator's bit-exact C++ model (sattn::accel::run_model) against the fp32 reference,
// against a reference fed the same quantized values, hand-computed cases, and counter
// identities (hw/README.md).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <tuple>

#include "accel_test_support.hpp"
#include "sattn/error.hpp"

using namespace sattn;
using namespace sattn::accel_test;

TEST_CASE("accel: the generated exp2 table is round(2^15 * 2^(-f/256))") {
  // hw/isa/isa.toml defines the table by its formula; gen_isa.py computes sattn_isa.hpp's copy.
  static_assert(accel::isa::kExp2Table.size() == 256);
  for (int f = 0; f < 256; ++f)
    CHECK(accel::isa::kExp2Table[size_t(f)] == uint16_t(std::floor(32768.0 * std::exp2(-f / 256.0) + 0.5)));
  CHECK(accel::isa::kExp2Table[0] == 32768);
  CHECK(accel::isa::kExp2Table[255] == 16428);
}

TEST_CASE("accel: score multiplier") {
  const double c = 0.05 * 0.03 * 0.125 * 1.4426950408889634 * 256;
  const auto [m, sh] = accel::score_multiplier(0.05, 0.03, 0.125);
  CHECK(m < (1u << 31));
  CHECK(m >= (1u << 30));  // the largest shift keeps it in the top bit range
  CHECK(std::abs(std::ldexp(double(m), -sh) / c - 1) < 1e-8);
}

TEST_CASE("accel model: hand-computed uniform softmax gives the mean of v") {
  // One query of zeros against two keys: both scores 0, p = 32768 each, l = 65536, e = 1,
  // lm = 32768, R = 65536, o = (32768 * (v0 + v1) * 65536 + 2^23) >> 24 = 128 * (v0 + v1).
  Op op;
  op.shape = Shape{1, 1, 1, 1, 2, 16};
  op.precision = Precision::i8;
  QKV d{Tensor(1, 1, 1, 16), Tensor(1, 1, 2, 16), Tensor(1, 1, 2, 16)};
  for (int i = 0; i < 16; ++i) {
    d.k.data[size_t(i)] = 1.0f;
    d.k.data[size_t(16 + i)] = -1.0f;
    d.v.data[size_t(i)] = 127.0f;      // v0 = 127 with scale 1
    d.v.data[size_t(16 + i)] = -1.0f;  // v1 = -1
  }
  const Layout layout = build_layout(op, Spec::dense, resolve_params(op, Spec::dense), nullptr, nullptr);
  const accel::Config cfg;
  const accel::Program p = accel::build_program(op, layout, d, Scales{1, 1, 1}, cfg);
  const accel::RunResult r = accel::run_model(p, cfg);
  REQUIRE(r.out_bits.size() == 16);
  for (int16_t o : r.out_bits) CHECK(o == 128 * (127 - 1));
  const Tensor out = accel::decode_output(p, r);
  CHECK(out.data[0] == doctest::Approx(63.0));
  CHECK(r.counters.macs_issued == 2 * 2 * 16);
}

TEST_CASE("accel model: every spec, i8 and i4, causal or not, against the references") {
  for (Spec spec : kAllSpecs)
    for (Precision prec : {Precision::i8, Precision::i4})
      for (bool causal : {false, true}) {
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        CAPTURE(causal);
        const Case c = make_case(spec, prec, causal);
        accel::Config cfg;
        cfg.lanes = 8;
        const accel::Program p = program_of(c, cfg);
        const accel::RunResult r = accel::run_model(p, cfg);
        const Tensor out = accel::decode_output(p, r);
        const Tensor ref = reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v);
        const ErrorStats err = compare(out, ref);
        CHECK(err.finite);
        CHECK(err.max_rel <= tolerance(prec));
        // Tightly against the reference on the same quantized inputs: what is left is the
        // datapath's own rounding (8-bit log2 fraction, Q15 probabilities, Q8 output).
        const QKV dq = accel::dequantized_inputs(p, c.data);
        const ErrorStats tight = compare(out, reference_attention(c.op, c.layout, dq.q, dq.k, dq.v));
        CHECK(tight.max_rel <= 1e-2);
        // Counter identities.
        const accel::Counters& k = r.counters;
        CHECK(k.macs_issued == 2 * allowed_pairs(c) * c.op.shape.head_dim);
        CHECK(k.busy * cfg.lanes == k.macs_issued);  // head_dim is a multiple of LANES here
        CHECK(k.cycles == k.busy + k.stall_dma + k.stall_index + k.stall_softmax + k.stall_bank + k.stall_other);
        CHECK(k.dma_bytes_in >= touched_bytes(c));
        CHECK(k.dma_bytes_out == 2 * c.op.shape.batch * c.op.shape.heads * c.op.shape.seq_len * c.op.shape.head_dim);
        CHECK(k.stall_bank == 0);
        CHECK((k.gathers > 0) == !is_block_spec(spec));
        // The snapshot is taken before its own COUNTER command is counted: all but it and the 13 reads.
        CHECK(k.commands == int64_t(p.commands.size()) - 1 - accel::kEventCount);
      }
}

TEST_CASE("accel model: empty rows give exactly 0, partial last block, GQA") {
  // seq_len > kv_len and causal: the first rows are aligned before key 0 and have no key.
  const Case c = make_case(Spec::dense, Precision::i8, true, 40, 24, 16, 4, 2);
  accel::Config cfg;
  const accel::Program p = program_of(c, cfg);
  const accel::RunResult r = accel::run_model(p, cfg);
  const Tensor out = accel::decode_output(p, r);
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t d = 0; d < 16; ++d) CHECK(out.row(0, h, i)[d] == 0.0f);
  CHECK(compare(out, reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v)).max_rel <= tolerance(Precision::i8));
  CHECK(r.counters.macs_issued == 2 * allowed_pairs(c) * 16);
}

TEST_CASE("accel model: single buffering serializes loads and compute") {
  const Case c = make_case(Spec::bsr, Precision::i8, false, 128, 128, 64, 1, 1);
  accel::Config dbl, single;
  single.double_buffer = false;
  const accel::RunResult a = accel::run_model(program_of(c, dbl), dbl);
  const accel::RunResult b = accel::run_model(program_of(c, single), single);
  CHECK(a.out_bits == b.out_bits);
  CHECK(b.counters.cycles > a.counters.cycles);
  CHECK(a.counters.macs_issued == b.counters.macs_issued);
}

TEST_CASE("accel model: rejects what the hardware cannot run, and its watchdog fires") {
  Case c = make_case(Spec::dense, Precision::i8, false, 16, 16, 16, 1, 1);
  accel::Config cfg;
  c.op.precision = Precision::bf16;
  CHECK_THROWS_AS(program_of(c, cfg), Error);
  c.op.precision = Precision::i8;
  // head_dim beyond the scratchpad row (DMAX 256) once padded: i8 257 -> 272, 264 -> 272, 512;
  // i4 232 -> 256 fits (below), 260 -> 288 does not.
  for (const auto& [dim, prec] : {std::pair{int64_t(257), Precision::i8}, std::pair{int64_t(264), Precision::i8},
                                  std::pair{int64_t(512), Precision::i8}, std::pair{int64_t(260), Precision::i4}}) {
    CAPTURE(dim);
    const Case wide = make_case(Spec::dense, prec, false, 8, 8, dim, 1, 1);
    try {
      program_of(wide, cfg);
      FAIL("head_dim " << dim << " accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::invalid_input);
      CHECK(std::string(e.what()).find("head_dim " + std::to_string(dim) + " is not supported") != std::string::npos);
      CHECK(std::string(e.what()).find("DMAX") != std::string::npos);
    }
  }
  // Up to DMAX it runs: Gemma's 256, 136 (padded to 144), and i4 232 (padded to 256).
  for (const auto& [dim, prec] : {std::pair{int64_t(256), Precision::i8}, std::pair{int64_t(136), Precision::i8},
                                  std::pair{int64_t(232), Precision::i4}}) {
    CAPTURE(dim);
    const Case fits = make_case(Spec::dense, prec, false, 8, 8, dim, 1, 1);
    const accel::Program p = program_of(fits, cfg);
    CHECK(p.shape.head_dim == accel::padded_head_dim(dim, prec));
    CHECK(p.shape.head_dim <= 256);
  }
  cfg.max_cycles = 50;
  try {
    accel::run_model(program_of(c, cfg), cfg);
    FAIL("no watchdog");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    CHECK(std::string(e.what()).find("watchdog") != std::string::npos);
  }
}

TEST_CASE("accel: Config::apply_yaml is strict") {
  accel::Config cfg;
  cfg.apply_yaml(YAML::Load("{lanes: 8, double_buffer: false, dram_latency_cycles: 10}"), "p.yaml");
  CHECK(cfg.lanes == 8);
  CHECK_FALSE(cfg.double_buffer);
  CHECK(cfg.dram_latency_cycles == 10);
  CHECK_THROWS_AS(cfg.apply_yaml(YAML::Load("{lanez: 8}"), "p.yaml"), Error);
  CHECK_THROWS_AS(cfg.apply_yaml(YAML::Load("{lanes: 12}"), "p.yaml"), Error);
  CHECK_THROWS_AS(cfg.apply_yaml(YAML::Load("{dram_bytes_per_cycle: 0}"), "p.yaml"), Error);
  CHECK(cfg.lanes == 8);  // all or nothing
}

TEST_CASE("accel: a head_dim the MAC array does not divide runs zero-padded, exactly, on the RTL too") {
  // head_dim 40 (i8: padded to 48) and 24 (i4: padded to 32); decode-like kv_len > seq_len.
  for (const auto& [dim, prec, padded] : {std::tuple{int64_t(40), Precision::i8, int64_t(48)},
                                          std::tuple{int64_t(24), Precision::i4, int64_t(32)}}) {
    CAPTURE(dim);
    CHECK(accel::padded_head_dim(dim, prec) == padded);
    for (Spec spec : {Spec::bsr, Spec::sliding_window}) {
      CAPTURE(to_string(spec));
      const Case c = make_case(spec, prec, true, 20, 36, dim, 2, 1);
      accel::Config cfg;
      cfg.dram_latency_cycles = 7;
      const accel::Program p = program_of(c, cfg);
      CHECK(p.shape.head_dim == padded);
      const accel::RunResult model = accel::run_model(p, cfg);
      const accel::RunResult rtl = accel::run_rtl(p, cfg);
      CHECK(rtl.out_bits == model.out_bits);
      CHECK(rtl.counters.cycles == model.counters.cycles);
      const Tensor out = accel::decode_output(p, rtl);
      CHECK(out.shape == c.data.q.shape);
      // Exact: the same output as the reference on the same quantized values, within the
      // datapath's fixed-point tolerance against the fp32 reference.
      CHECK(compare(out, reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v)).max_rel <= tolerance(prec));
      // The cost: every MAC of the padded columns is issued (2 * pairs * padded head_dim).
      CHECK(model.counters.macs_issued == 2 * allowed_pairs(c) * padded);
    }
  }
}
