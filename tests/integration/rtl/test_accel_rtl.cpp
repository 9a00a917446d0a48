// The accelerator's RTL (Verilator harness) against the bit-exact model: every spec x {i8, i4} x
// LANES {8, 16}, output bits and all 13 counters; PROBE; the watchdog; a missing harness. These
// tests need the harness built (ninja sattn_accel_harness): they fail, never skip, without it.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "accel_test_support.hpp"
#include "sattn/error.hpp"

using namespace sattn;
using namespace sattn::accel_test;

namespace {
void check_counters_equal(const accel::Counters& rtl, const accel::Counters& model) {
  for (int e = 0; e < accel::kEventCount; ++e) {
    CAPTURE(accel::event_name(accel::Event(e)));
    CHECK(rtl.get(accel::Event(e)) == model.get(accel::Event(e)));
  }
}
}  // namespace

TEST_CASE("accel rtl: bit-exact with the model for every spec, i8 and i4, LANES 8 and 16") {
  for (int lanes : {8, 16})
    for (Spec spec : kAllSpecs)
      for (Precision prec : {Precision::i8, Precision::i4}) {
        CAPTURE(lanes);
        CAPTURE(to_string(spec));
        CAPTURE(to_string(prec));
        const bool causal = (int(spec) + int(prec)) % 2 == 0;
        const Case c = make_case(spec, prec, causal, 40, 40, 32, 2, 1);
        accel::Config cfg;
        cfg.lanes = lanes;
        cfg.dram_latency_cycles = 7;
        cfg.dram_bytes_per_cycle = lanes == 8 ? 5 : 16;  // also a fractional-beat bandwidth
        const accel::Program p = program_of(c, cfg);
        const accel::RunResult model = accel::run_model(p, cfg);
        const accel::RunResult rtl = accel::run_rtl(p, cfg);
        CHECK(rtl.out_bits == model.out_bits);
        check_counters_equal(rtl.counters, model.counters);
        CHECK(rtl.sim_cycles == model.sim_cycles);
        const Tensor out = accel::decode_output(p, rtl);
        CHECK(compare(out, reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v)).max_rel <= tolerance(prec));
      }
}

TEST_CASE("accel rtl: single buffering, causal GQA with empty rows") {
  const Case c = make_case(Spec::block_local_global, Precision::i8, true, 48, 32, 64, 4, 2);
  accel::Config cfg;
  cfg.double_buffer = false;
  const accel::Program p = program_of(c, cfg);
  const accel::RunResult model = accel::run_model(p, cfg);
  const accel::RunResult rtl = accel::run_rtl(p, cfg);
  CHECK(rtl.out_bits == model.out_bits);
  check_counters_equal(rtl.counters, model.counters);
  CHECK(rtl.counters.macs_issued == 2 * allowed_pairs(c) * 64);
}

TEST_CASE("accel rtl: head_dim 256 (DMAX), i8 and i4, causal GQA, partial blocks, bit-exact and within tolerance") {
  // The widest head the scratchpad row holds (Gemma 2 and 3), natively and reached by
  // zero-padding (i8 250 -> 256, i4 232 -> 256); kv_len 72 and block 16 give a partial last
  // block, seq_len 40 < kv_len a causal offset, 4 query heads on 2 KV heads GQA.
  struct Wide {
    Spec spec;
    Precision prec;
    int64_t dim;
    bool causal;
    int lanes;
  };
  for (const Wide& w : {Wide{Spec::bsr, Precision::i8, 256, true, 16}, Wide{Spec::sliding_window, Precision::i8, 256, true, 8},
                        Wide{Spec::dense, Precision::i4, 256, true, 16}, Wide{Spec::topk_per_query, Precision::i4, 256, false, 8},
                        Wide{Spec::block_local_global, Precision::i8, 250, true, 16},
                        Wide{Spec::bsr, Precision::i4, 232, true, 16}}) {
    CAPTURE(to_string(w.spec));
    CAPTURE(to_string(w.prec));
    CAPTURE(w.dim);
    CAPTURE(w.lanes);
    const Case c = make_case(w.spec, w.prec, w.causal, 40, 72, w.dim, 4, 2);
    accel::Config cfg;
    cfg.lanes = w.lanes;
    cfg.dram_latency_cycles = 7;
    const accel::Program p = program_of(c, cfg);
    REQUIRE(p.shape.head_dim == 256);
    const accel::RunResult model = accel::run_model(p, cfg);
    const accel::RunResult rtl = accel::run_rtl(p, cfg);
    CHECK(rtl.out_bits == model.out_bits);
    check_counters_equal(rtl.counters, model.counters);
    CHECK(rtl.sim_cycles == model.sim_cycles);
    // Every pair issues 2 x 256 MACs (the padded columns too); Q, K, V rows are 256 (i4: 128) bytes.
    CHECK(rtl.counters.macs_issued == 2 * allowed_pairs(c) * 256);
    const Tensor out = accel::decode_output(p, rtl);
    REQUIRE(out.shape == c.data.q.shape);
    // The double-accumulating reference: on the fp32 inputs within the precision's tolerance, and
    // on the values the datapath sees (dequantized) within the fixed-point datapath's 1e-2 (i4: 2e-2, sim_run.cpp).
    CHECK(compare(out, reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v)).max_rel <= tolerance(w.prec));
    const QKV seen = accel::dequantized_inputs(p, c.data);
    CHECK(compare(out, reference_attention(c.op, c.layout, seen.q, seen.k, seen.v)).max_rel <= (w.prec == Precision::i4 ? 2e-2 : 1e-2));
  }
}

TEST_CASE("accel rtl: PROBE reports the capability bits") {
  for (int lanes : {8, 16}) {
    accel::Config cfg;
    cfg.lanes = lanes;
    const accel::Capabilities caps = accel::probe_rtl(cfg);
    CHECK(caps.version == 2);  // 2: max_head_dim in units of 16 (DMAX 256 does not fit 8 bits)
    CHECK(caps.lanes == lanes);
    for (Spec s : kAllSpecs) CHECK(caps.supports(s));
    CHECK(caps.supports(Precision::i8));
    CHECK(caps.supports(Precision::i4));
    CHECK_FALSE(caps.supports(Precision::fp32));
    CHECK_FALSE(caps.supports(Precision::bf16));
    CHECK(caps.q_rows == 64);
    CHECK(caps.k_slots == 64);
    CHECK(caps.max_head_dim == 256);
    CHECK(accel::isa::kCapMaxHeadDim.get(accel::isa::capability_word0(lanes)) == 16);
    CHECK(caps.double_buffer);
    CHECK(caps.causal);
    CHECK(caps.gather);
    CHECK(caps.quant_scales);  // LOAD_SCALE, CONFIG QUANT (hw/README.md "Quantization schemes")
    CHECK(caps.pv_fix16);
    CHECK(caps.scratchpad_bytes == 3 * 2 * 64 * 256 + 2 * 64 * 8 + 2 * 64 * 8);
  }
}

TEST_CASE("accel rtl: the generated C++ ISA header states what the RTL reports") {
  // The RTL gets its values from the generated SystemVerilog package, the C++ side from the
  // generated header (hw/isa): PROBE's words of the RTL must be the header's, bit for bit.
  for (int lanes : {8, 16, 32}) {
    CAPTURE(lanes);
    accel::Config cfg;
    cfg.lanes = lanes;
    accel::Program p;
    p.dram.assign(16, 0);
    // Both PROBE words, then the counter read-out run_rtl expects (a snapshot, one read per event).
    p.commands = {{accel::Funct::probe, 0, 0}, {accel::Funct::probe, 1, 0}, {accel::Funct::counter, 1 << 9, 0}};
    for (uint64_t e = 0; e < 13; ++e) p.commands.push_back({accel::Funct::counter, 1 << 8 | e, 0});
    p.counter_reads_begin = 3;
    const accel::RunResult r = accel::run_rtl(p, cfg);
    REQUIRE(r.responses.size() == 16);
    CHECK(r.responses[0] == accel::isa::capability_word0(lanes));
    CHECK(r.responses[1] == accel::isa::kScratchpadBytes);
    const accel::Capabilities caps = accel::decode_capabilities(r.responses[0], r.responses[1]);
    CHECK(caps.version == accel::isa::kVersion);
    CHECK(caps.q_rows == accel::isa::kQRows);
    CHECK(caps.k_slots == accel::isa::kKSlots);
    CHECK(caps.max_head_dim == accel::isa::kMaxHeadDim);
    // The model answers PROBE with the same words.
    const accel::RunResult m = accel::run_model(p, cfg);
    CHECK(m.responses == r.responses);
  }
}

TEST_CASE("accel rtl: the RTL's exp2 table (generated package) is round(2^15 * 2^(-f/256))") {
  // Read the table the RTL compiles (sattn_isa_pkg.sv: "8'dF: exp2_table = 16'dV;", the last
  // entry as the default) and recompute every entry from the formula.
  std::ifstream in(SATTN_ISA_SV_PACKAGE);
  REQUIRE(in);
  std::vector<int> table(256, -1);
  std::string line;
  const std::regex entry(R"(^\s*8'd(\d+): exp2_table = 16'd(\d+);)"), last(R"(^\s*default: exp2_table = 16'd(\d+);)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, entry)) table.at(size_t(std::stoi(m[1]))) = std::stoi(m[2]);
    else if (std::regex_search(line, m, last)) table[255] = std::stoi(m[1]);
  }
  for (int f = 0; f < 256; ++f) {
    CAPTURE(f);
    CHECK(table[size_t(f)] == int(std::floor(32768.0 * std::exp2(-f / 256.0) + 0.5)));
  }
}

TEST_CASE("accel rtl: the watchdog fires on a DRAM that delivers nothing") {
  const Case c = make_case(Spec::dense, Precision::i8, false, 16, 16, 16, 1, 1);
  accel::Config cfg;
  const accel::Program p = program_of(c, cfg);
  cfg.dram_bytes_per_cycle = 0;  // impossible: no read ever completes
  cfg.max_cycles = 20000;
  try {
    accel::run_rtl(p, cfg);
    FAIL("the RTL finished without DRAM data");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    const std::string msg = e.what();
    CHECK(msg.find("watchdog") != std::string::npos);
    CHECK(msg.find("dma=data") != std::string::npos);
  }
}

TEST_CASE("accel rtl: a missing harness is an external-tool error with the install command") {
  const Case c = make_case(Spec::dense, Precision::i8, false, 16, 16, 16, 1, 1);
  accel::Config cfg;
  accel::RtlOptions opt;
  opt.harness = "/nonexistent/sattn-accel-sim-lanes16";
  try {
    accel::run_rtl(program_of(c, cfg), cfg, opt);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::external_tool);
    CHECK(std::string(e.what()).find("apt-get install verilator") != std::string::npos);
  }
}
