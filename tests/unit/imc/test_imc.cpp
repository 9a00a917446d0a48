// The IMC crossbar cost model (libsattn/src/imc_*.cpp): properties every report must have, a
// GEMM worked out by hand, an attention mapping counted by hand, and the parameter loaders.
#include <doctest/doctest.h>

#include <cmath>

#include "sattn/error.hpp"
#include "backends/imc/imc.hpp"
#include "sattn/layout.hpp"
#include "core/synthetic.hpp"

using namespace sattn;

namespace {

Op small_op(int64_t seq, int64_t dim, Precision prec = Precision::i8) {
  Op op;
  op.name = "t";
  op.shape.batch = 1;
  op.shape.heads = 2;
  op.shape.kv_heads = 2;
  op.shape.seq_len = seq;
  op.shape.kv_len = seq;
  op.shape.head_dim = dim;
  op.precision = prec;
  return op;
}

Layout bsr_layout(const Op& op, double keep, int64_t block) {
  BsrParams prm;
  prm.block_size = block;
  prm.keep_ratio = keep;
  const QKV data = synthetic_qkv(op.shape);
  return build_layout(op, Spec::bsr, prm, &data.q, &data.k);
}

Layout dense_layout(const Op& op) { return build_layout(op, Spec::dense, DenseParams{}, nullptr, nullptr); }

// Every breakdown in the JSON report: its parts add up to its total.
void check_sums(const nlohmann::json& cost) {
  for (const char* kind : {"energy_pj", "latency_ns", "area_mm2"}) {
    const auto& b = cost[kind];
    double sum = 0;
    for (const char* part : {"array", "adc", "accumulation", "buffer", "interconnect", "writes"}) {
      CHECK(b[part].get<double>() >= 0);
      sum += b[part].get<double>();
    }
    CHECK(sum == doctest::Approx(b["total"].get<double>()).epsilon(1e-12));
  }
}

}  // namespace

TEST_CASE("imc: a GEMM worked out by hand") {
  // 3 input vectors x a 12x6 weight matrix; 2-bit inputs, 4-bit weights in 2-bit cells.
  ImcParams p;
  p.tech_nm = 22;
  p.cell = ImcCell::rram;
  p.rows = 8;
  p.cols = 8;
  p.cell_bits = 2;
  p.adc_bits = 4;
  p.cols_per_adc = 4;
  p.parallel_rows = 4;
  p.clock_mhz = 1000;
  p.input_bits = 2;
  p.weight_bits = 4;
  p.input_activity = 0.5;
  p.overrides = {{"row_energy_fj_per_col", 10},    {"cell_read_energy_fj", 1},       {"read_ns", 1},
                 {"adc_fom_fj", 1},                {"adc_ns_per_bit", 0.5},          {"shift_add_energy_pj", 0.01},
                 {"accum_energy_pj", 0.1},         {"buffer_energy_pj_per_bit", 0.01}, {"buffer_bits_per_cycle", 64},
                 {"interconnect_energy_pj_per_bit_mm", 1}, {"bus_bits_per_cycle", 128}, {"cell_area_f2", 100},
                 {"periphery_f2_per_line", 0}, {"adc_area_um2", 100}, {"accum_area_um2", 0},
                 {"buffer_kib", 1},            {"buffer_area_um2_per_kib", 1e6 - 812.3904},
                 {"interconnect_area_fraction", 0}};
  // On paper. cells per weight = 4/2 = 2, so an 8-column sub-array holds 4 outputs; 2 ADCs
  // (8 / 4 columns each). Row tiles: rows 0-7 (8 rows = 2 groups of 4 parallel rows) and 8-11
  // (4 rows, 1 group). Column tiles: outputs 0-3 (8 columns) and 4-5 (4 columns). 4 sub-arrays.
  // Per vector and sub-array (r, c): steps = groups(r) * 2 input bits -> r0: 4, r1: 2.
  //   row activations = rows(r) * 2 bits: (16 + 16) + (8 + 8) = 48            -> x3 = 144
  //   cell reads = rows(r) * 2 * columns(c): 16*8 + 16*4 + 8*8 + 8*4 = 288     -> x3 = 864
  //   conversions = steps(r) * columns(c): 4*8 + 4*4 + 2*8 + 2*4 = 72          -> x3 = 216
  //   MACs = 12 * 6 = 72                                                       -> x3 = 216
  //   partial-sum adds = outputs * (2 row tiles - 1) = 6                       -> x3 = 18
  //   psum bits = 2 + 4 + ceil(log2 12) = 10
  //   buffer bits = inputs 12*2 + outputs 6*10 = 84                            -> x3 = 252
  //   interconnect bits = sum over sub-arrays of rows(r)*2 + outs(c)*10
  //     = (16+40) + (16+20) + (8+40) + (8+20) = 168                            -> x3 = 504
  // Busiest sub-array (0,0): per vector 4 steps * 1 ns read + 4 * ceil(8/2) conversions *
  //   (4 bits * 0.5 ns) = 4 + 32 ns -> x3: array 12 ns, adc 96 ns.
  // Energy (pJ): array 0.5 * (144 * 10 fJ * 8 columns + 864 * 1 fJ) = 6.192; adc 216 * 1 fJ * 16
  //   = 3.456; accumulation 216 * 0.01 + 18 * 0.1 = 3.96; buffer 252 * 0.01 = 2.52;
  //   area = cells 4 * 64 * 100 F^2 * (0.022 um)^2 = 12.3904 um^2 + ADCs 8 * 100 um^2
  //   + buffer (1e6 - 812.3904) um^2 = 1 mm^2, so the H-tree is 0.5 * sqrt(1) = 0.5 mm long:
  //   interconnect 504 * 1 * 0.5 = 252; writes 0 (weights are programmed once).
  // Latency (ns, 1 GHz): array 12, adc 96, accumulation ceil(18 / 4 sub-arrays) = 5,
  //   buffer ceil(252 / 64) = 4, interconnect ceil(504 / 128) = 4; total 121.
  const ImcGemmReport r = imc_gemm(3, 12, 6, p);
  const ImcCounts& c = r.cost.counts;
  CHECK(c.arrays_allocated == 4);
  CHECK(c.array_activations == 12);
  CHECK(c.row_activations == 144);
  CHECK(c.cell_reads == 864);
  CHECK(c.adc_conversions == 216);
  CHECK(c.shift_adds == 216);
  CHECK(c.macs == 216);
  CHECK(c.partial_sum_adds == 18);
  CHECK(c.buffer_bits == 252);
  CHECK(c.interconnect_bits == 504);
  CHECK(c.cells_written == 0);
  const ImcBreakdown& e = r.cost.energy_pj;
  CHECK(e.array == doctest::Approx(6.192));
  CHECK(e.adc == doctest::Approx(3.456));
  CHECK(e.accumulation == doctest::Approx(3.96));
  CHECK(e.buffer == doctest::Approx(2.52));
  CHECK(e.interconnect == doctest::Approx(252));
  CHECK(e.writes == 0);
  CHECK(r.cost.area_mm2.total() == doctest::Approx(1.0));
  const ImcBreakdown& t = r.cost.latency_ns;
  CHECK(t.array == doctest::Approx(12));
  CHECK(t.adc == doctest::Approx(96));
  CHECK(t.accumulation == doctest::Approx(5));
  CHECK(t.buffer == doctest::Approx(4));
  CHECK(t.interconnect == doctest::Approx(4));
  CHECK(t.total() == doctest::Approx(121));
  CHECK(r.cost.ops == 432);
  CHECK(r.cost.tops_per_w() == doctest::Approx(432 / (6.192 + 3.456 + 3.96 + 2.52 + 252)));
}

TEST_CASE("imc: an attention mapping counted by hand") {
  // One head, 16 queries x 16 keys, head_dim 8, i8; a hand-made CSR layout where query i uses
  // keys {i} and, for i >= 8, also key 0 (a "global" first key).
  Op op = small_op(16, 8);
  op.shape.heads = op.shape.kv_heads = 1;
  Layout l;
  l.spec = Spec::sliding_window;
  l.block = false;
  l.rows = l.cols = 16;
  l.shared = true;
  HeadLayout h;
  h.ptr.push_back(0);
  for (int i = 0; i < 16; ++i) {
    if (i >= 8) h.idx.push_back(0);
    h.idx.push_back(i);
    h.ptr.push_back(int64_t(h.idx.size()));
  }
  l.heads = {h};
  ImcParams p;
  p.rows = 8;
  p.cols = 64;  // 8 cells per 8-bit weight in 1-bit cells: 8 keys per K sub-array
  p.cell_bits = 1;
  p.cols_per_adc = 8;  // 8 ADCs per sub-array
  p.parallel_rows = 8;
  // Q·Kᵀ: K is 8 dims x 16 keys -> 2 sub-arrays (keys 0-7, 8-15). Query i < 8 activates one
  //   (8 steps of its 8 input bits), queries 8..15 activate both. 8*1 + 8*2 = 24 activations;
  //   conversions = 8 steps * 8 columns per used key * keys: (8 + 8*2) * 64 = 1536.
  // P·V: V is 16 keys x 8 dims (64 columns) -> 2 sub-arrays (keys 0-7, 8-15); the same 24
  //   activations; each converts all 64 columns per step: 24 * 8 * 64 = 12288.
  // MACs: 24 allowed pairs * 8 dims, twice: 384. Cells written: 16 keys * 8 dims * 8 cells, twice.
  const AttentionCounts a = map_attention(op, l, p, 8, 8);
  CHECK(a.qk.array_activations == 24);
  CHECK(a.pv.array_activations == 24);
  CHECK(a.qk.adc_conversions == 1536);
  CHECK(a.pv.adc_conversions == 12288);
  CHECK(a.total.macs == 384);
  CHECK(a.total.cells_written == 2 * 16 * 8 * 8);
  CHECK(a.total.arrays_allocated == 4);
  // Row activations: Q·Kᵀ drives 8 dims * 8 bits per activation; P·V drives one key row per
  // used key * 8 bits: 24 * 64 + 24 * 8.
  CHECK(a.total.row_activations == 24 * 64 + 24 * 8);
}

TEST_CASE("imc: breakdowns add up, for attention and GEMM, under several configurations") {
  const Op op = small_op(128, 32);
  const Layout sparse = bsr_layout(op, 0.25, 16), dense = dense_layout(op);
  for (const char* cell : {"sram", "rram"})
    for (int tech : {22, 28, 40, 65})
      for (auto kv : {KvPlacement::write, KvPlacement::sram}) {
        ImcParams p;
        p.cell = std::string(cell) == "sram" ? ImcCell::sram : ImcCell::rram;
        p.tech_nm = tech;
        p.kv_placement = kv;
        p.rows = p.cols = 64;
        CAPTURE(cell);
        CAPTURE(tech);
        const ImcOpReport r = imc_attention(op, sparse, dense, p);
        check_sums(to_json(r.sparse, p, r.kv_cell));
        check_sums(to_json(r.dense, p, r.kv_cell));
        CHECK(r.sparse.energy_pj.writes > 0);  // K and V are dynamic
        check_sums(to_json(imc_gemm(7, 100, 30, p).cost, p, p.cell));
      }
}

TEST_CASE("imc: energy rises with ADC bits") {
  const Op op = small_op(128, 32);
  const Layout sparse = bsr_layout(op, 0.25, 16), dense = dense_layout(op);
  double last = 0, last_gemm = 0, last_area = 0;
  for (int bits = 1; bits <= 10; ++bits) {
    ImcParams p;
    p.adc_bits = bits;
    const ImcOpReport r = imc_attention(op, sparse, dense, p);
    CHECK(r.sparse.energy_pj.total() > last);
    CHECK(r.sparse.area_mm2.total() > last_area);
    const double g = imc_gemm(16, 256, 64, p).cost.energy_pj.total();
    CHECK(g > last_gemm);
    last = r.sparse.energy_pj.total();
    last_area = r.sparse.area_mm2.total();
    last_gemm = g;
  }
}

TEST_CASE("imc: energy falls with sparsity") {
  const Op op = small_op(256, 32);
  const Layout dense = dense_layout(op);
  ImcParams p;
  p.rows = p.cols = 64;
  double last = imc_attention(op, dense, dense, p).sparse.energy_pj.total();
  for (double keep : {0.5, 0.25, 0.125}) {
    CAPTURE(keep);
    const Layout l = bsr_layout(op, keep, 16);
    const ImcOpReport r = imc_attention(op, l, dense, p);
    CHECK(r.sparse.energy_pj.total() < last);
    CHECK(r.sparse.counts.adc_conversions < r.dense.counts.adc_conversions);
    CHECK(r.sparse.counts.row_activations < r.dense.counts.row_activations);
    last = r.sparse.energy_pj.total();
  }
}

TEST_CASE("imc: larger sub-arrays use fewer arrays") {
  const Op op = small_op(256, 64);
  const Layout dense = dense_layout(op);
  int64_t last = INT64_MAX, last_gemm = INT64_MAX;
  for (int64_t size : {32, 64, 128, 256}) {
    ImcParams p;
    p.rows = p.cols = size;
    const ImcOpReport r = imc_attention(op, dense, dense, p);
    CHECK(r.dense.counts.arrays_allocated < last);
    const int64_t g = imc_gemm(4, 1000, 300, p).cost.counts.arrays_allocated;
    CHECK(g < last_gemm);
    last = r.dense.counts.arrays_allocated;
    last_gemm = g;
  }
}

TEST_CASE("imc: dense equals sparse at keep_ratio 1") {
  for (bool causal : {false, true}) {
    Op op = small_op(200, 32);  // 200 is not a multiple of the block: a partial last block
    op.causal = causal;
    const Layout all = bsr_layout(op, 1.0, 16), dense = dense_layout(op);
    ImcParams p;
    p.rows = p.cols = 64;
    const ImcOpReport r = imc_attention(op, all, dense, p);
    CAPTURE(causal);
    CHECK(r.sparse.counts.macs == r.dense.counts.macs);
    CHECK(r.sparse.counts.adc_conversions == r.dense.counts.adc_conversions);
    CHECK(r.sparse.energy_pj.total() == doctest::Approx(r.dense.energy_pj.total()).epsilon(1e-12));
    CHECK(r.sparse.latency_ns.total() == doctest::Approx(r.dense.latency_ns.total()).epsilon(1e-12));
    CHECK(r.sparse.area_mm2.total() == doctest::Approx(r.dense.area_mm2.total()).epsilon(1e-12));
    // MACs are the allowed pairs times head_dim, for each of the two products and every head.
    CHECK(r.dense.counts.macs == 2.0 * 2 * 32 * double(dense.allowed_pairs(0, 0)));
  }
}

TEST_CASE("imc: the YAML loader is strict and locates its errors") {
  ImcParams p;
  apply_yaml(p, YAML::Load("tech: 40\ncell: sram\nsubarray: 256x64\nadc_bits: 6\nadc_fom_fj: 2.5\n"), "c.yaml");
  CHECK(p.tech_nm == 40);
  CHECK(p.cell == ImcCell::sram);
  CHECK(p.rows == 256);
  CHECK(p.cols == 64);
  CHECK(p.adc_bits == 6);
  CHECK(p.figures().adc_fom_fj == 2.5);
  CHECK(p.figures().cell_area_f2 == imc_preset(40, ImcCell::sram).cell_area_f2);
  auto fails_at = [](const std::string& text, int line, int col) {
    ImcParams q;
    try {
      apply_yaml(q, YAML::Load(text), "c.yaml");
      FAIL("no error for: " << text);
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::invalid_input);
      CHECK(e.loc().file == "c.yaml");
      CHECK(e.loc().line == line);
      CHECK(e.loc().col == col);
    }
  };
  fails_at("tech: 22\nadc_bitz: 4\n", 2, 1);          // unknown key
  fails_at("tech: 22\nadc_bits: four\n", 2, 11);      // wrong type
  fails_at("adc_bits: 13\n", 1, 11);                  // out of range
  fails_at("tech: 30\n", 1, 7);                       // no preset
  fails_at("cell: pcm\n", 1, 7);
  fails_at("subarray: 128by128\n", 1, 11);
}

TEST_CASE("imc: validation names the conflicting parameters") {
  ImcParams p;
  p.cell = ImcCell::sram;
  p.cell_bits = 2;
  CHECK_THROWS_WITH_AS(validate(p, 8), doctest::Contains("SRAM cells hold 1 bit"), Error);
  ImcParams q;
  q.parallel_rows = 256;
  CHECK_THROWS_WITH_AS(validate(q, 8), doctest::Contains("parallel_rows = 256"), Error);
  ImcParams w;
  w.cols = 8;
  w.weight_bits = 16;
  CHECK_THROWS_WITH_AS(validate(w, 16), doctest::Contains("needs 16 cells"), Error);
}

TEST_CASE("imc: sweeps are cartesian products, the last axis fastest") {
  const auto pts = parse_sweep("subarray=64x64,128x128;adc_bits=3..5;cell_bits=1,2", ImcParams{});
  REQUIRE(pts.size() == 12);
  CHECK(pts[0].rows == 64);
  CHECK(pts[0].adc_bits == 3);
  CHECK(pts[0].cell_bits == 1);
  CHECK(pts[1].cell_bits == 2);
  CHECK(pts[2].adc_bits == 4);
  CHECK(pts[11].rows == 128);
  CHECK(pts[11].adc_bits == 5);
  for (const char* bad : {"adc_bits", "adc_bits=", "foo=1", "adc_bits=5..3", "subarray=64", "adc_bits=1;adc_bits=2"}) {
    CAPTURE(bad);
    try {
      parse_sweep(bad, ImcParams{});
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::usage);
    }
  }
}
