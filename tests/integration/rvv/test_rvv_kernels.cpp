// The RVV backend's riscv64 runners, run for real under qemu-riscv64: every kernel kind (row,
// block) x variant (rvv, scalar, autovec) x precision at VLEN 128 and 512 against the CPU
// reference oracle, on layouts from build_layout (every spec), with tails (seq_len and head_dim
// not multiples of VL), causal, empty rows and GQA 2 and 4; the tile_rows/LMUL choices; the
// runner's counters; and the error paths of run_runner. A missing runner or qemu is a failure.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "sattn/layout.hpp"
#include "formats/npy.hpp"
#include "support/process.hpp"
#include "core/quant.hpp"
#include "core/quant_scheme.hpp"
#include "backends/rvv/rvv.hpp"
#include "backends/rvv/rvv_model.hpp"
#include "core/synthetic.hpp"

// The kernels' exp (plain C, shared by the scalar twins and, constant for constant, the RVV
// version), checked here against the host's exp.
#include "exp-scalar-rr2-p6.h"

using namespace sattn;
using rvv::Kernel;

namespace {

struct Case {
  std::string name;
  Op op;
  Layout layout;
  QKV data;
  int64_t empty_row = -1;  // a query row left with no key (its output must be exactly 0)
};

Op small_op(Shape shape, bool causal) {
  Op op;
  op.shape = shape;
  op.causal = causal;
  op.attrs.window_size = 3;
  op.attrs.block_size = 8;
  op.attrs.keep_ratio = 0.4;
  op.attrs.window_blocks = 1;
  op.attrs.global_tokens = 8;
  op.attrs.nm_n = 2;
  op.attrs.nm_m = 5;
  op.attrs.topk_k = 6;
  op.attrs.lsh_buckets = 4;
  op.attrs.num_landmarks = 7;
  op.attrs.landmark_iters = 1;
  op.attrs.page_size = 8;
  op.attrs.top_pages = 3;
  return op;
}

// Removes every index of index row `r` (a CSR query row or a BSR block row) in every layout.
void empty_index_row(Layout& l, int64_t r) {
  for (HeadLayout& hl : l.heads) {
    const int64_t n = hl.ptr[size_t(r + 1)] - hl.ptr[size_t(r)];
    hl.idx.erase(hl.idx.begin() + hl.ptr[size_t(r)], hl.idx.begin() + hl.ptr[size_t(r + 1)]);
    for (size_t t = size_t(r + 1); t < hl.ptr.size(); ++t) hl.ptr[t] -= n;
  }
}

Case make_case(const std::string& name, Spec spec, Shape shape, bool causal, int64_t empty_row = -1,
               int64_t window_size = 3) {
  Case c;
  c.name = name;
  c.op = small_op(shape, causal);
  if (spec == Spec::sliding_window) {
    c.op.attrs.window_size = window_size;
    c.op.attrs.dilation = window_size > 3 ? 1 : 2;
    c.op.attrs.wrap = !causal;
  }
  c.data = synthetic_qkv(shape, 7);
  c.layout = build_layout(c.op, spec, resolve_params(c.op, spec), &c.data.q, &c.data.k);
  if (empty_row >= 0) {
    empty_index_row(c.layout, c.layout.block ? empty_row / c.layout.block_size : empty_row);
    c.empty_row = empty_row;
  }
  return c;
}

// Row case: sliding window with dilation 2 and wrap, GQA 2, seq_len 37 and head_dim 13 (no
// multiple of any VL), query row 5 left empty. Block case: bsr under causal, GQA 2, block 8 with
// a partial last block (seq_len 37), block row 2 (queries 16..23) left empty.
const Case& row_case() {
  static const Case c = make_case("sliding_window dilation 2 wrap, GQA 2", Spec::sliding_window, {1, 4, 2, 37, 37, 13}, false, 5);
  return c;
}
const Case& block_case() {
  static const Case c = make_case("bsr causal, GQA 2", Spec::bsr, {1, 4, 2, 37, 37, 13}, true, 17);
  return c;
}
// Rows of up to 41 keys: several key chunks per row at small VLEN or LMUL, so the online
// softmax rescales between chunks in the row kernel too.
const Case& wide_row_case() {
  static const Case c = make_case("sliding_window 20 wide, causal", Spec::sliding_window, {1, 2, 1, 45, 45, 20}, true, -1, 20);
  return c;
}

rvv::RunnerOutput run(const Case& c, Precision p, Kernel kernel, int vlen, int tile_rows = 0, int lmul = 0) {
  Op op = c.op;
  op.precision = p;
  op.quant_scheme = per_tensor_scheme();  // the historical job; schemes: test_rvv_schemes.cpp
  rvv::RunnerJob job;
  job.kernel = kernel;
  job.vlen = vlen;
  job.tile_rows = tile_rows;
  job.lmul = lmul;
  job.timeout_s = 120;
  TempDir dir("sattn-rvv-test");
  const Scales s = resolve_scales(op, c.data.q, c.data.k, c.data.v);
  rvv::write_workdir(dir.path(), op, c.layout, c.data, s, job);
  return rvv::run_runner(dir.path(), op, job);
}

// Allowed pairs of the layout over every batch and query head (the oracle's view).
int64_t allowed_pairs(const Case& c) {
  int64_t n = 0;
  const Shape& s = c.op.shape;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h) n += c.layout.allowed_pairs(b, h / s.group_size());
  return n;
}

// The output against the fp32 oracle (tolerance(p)) and against the oracle fed the same
// rounded/quantized values (1e-3; fp32: 1e-4); the empty row is exactly 0.
void check_output(const Case& c, Precision p, const rvv::RunnerOutput& out) {
  const Tensor ref32 = reference_attention(c.op, c.layout, c.data.q, c.data.k, c.data.v);
  Op op = c.op;
  op.precision = p;
  op.quant_scheme = per_tensor_scheme();
  const Scales s = resolve_scales(op, c.data.q, c.data.k, c.data.v);
  const Tensor ref_same = reference_attention(op, c.layout, apply_precision(c.data.q, p, s.q),
                                              apply_precision(c.data.k, p, s.k), apply_precision(c.data.v, p, s.v));
  const ErrorStats same = compare(out.out, ref_same), full = compare(out.out, ref32);
  CHECK(same.finite);
  CHECK(same.max_rel <= (p == Precision::fp32 ? 1e-4 : 1e-3));
  CHECK(full.max_rel <= tolerance(p));
  if (c.empty_row >= 0)
    for (int64_t b = 0; b < c.op.shape.batch; ++b)
      for (int64_t h = 0; h < c.op.shape.heads; ++h)
        for (int64_t d = 0; d < c.op.shape.head_dim; ++d) CHECK(out.out.row(b, h, c.empty_row)[d] == 0.0f);
  CHECK(out.runner.at("pairs").get<int64_t>() == allowed_pairs(c));
  CHECK(out.runner.at("precision").get<std::string>() == std::string(to_string(p)));
}

const Precision kPrecisions[] = {Precision::fp32, Precision::bf16, Precision::i8, Precision::i4};
const Kernel kKernels[] = {Kernel::rvv, Kernel::scalar, Kernel::autovec};

}  // namespace

TEST_CASE("rvv runners: every kernel kind x variant x precision at VLEN 128 and 512") {
  for (const Case* c : {&row_case(), &block_case()})
    for (Kernel kernel : kKernels)
      for (Precision p : kPrecisions)
        for (int vlen : {128, 512}) {
          INFO(c->name << " " << rvv::to_string(kernel) << " " << to_string(p) << " VLEN " << vlen);
          const rvv::RunnerOutput out = run(*c, p, kernel, vlen);
          check_output(*c, p, out);
          CHECK(out.runner.at("kernel").get<std::string>() == rvv::to_string(kernel));
          CHECK(out.runner.at("kind").get<std::string>() == (c->layout.block ? "block" : "row"));
          CHECK(out.runner.at("vlenb").get<int>() == vlen / 8);
        }
}

TEST_CASE("rvv runners: each spec's layout (row specs through the row kernel, block specs through the block kernel)") {
  const Case cases[] = {
      make_case("sliding_window causal, GQA 4", Spec::sliding_window, {1, 4, 1, 29, 29, 16}, true),
      wide_row_case(),
      make_case("nm_structured", Spec::nm_structured, {1, 2, 1, 33, 33, 9}, false),
      make_case("topk_per_query causal", Spec::topk_per_query, {1, 2, 2, 30, 30, 17}, true),
      make_case("lsh, GQA 2", Spec::lsh, {1, 4, 2, 31, 31, 12}, false),
      make_case("landmark (iterations: per-head layouts)", Spec::landmark, {2, 2, 1, 26, 26, 10}, false),
      make_case("block_local_global causal, kv_len > seq_len", Spec::block_local_global, {1, 2, 1, 21, 35, 11}, true),
      make_case("dense causal, GQA 4", Spec::dense, {1, 4, 1, 19, 19, 33}, true),
      make_case("quest decode chunk of 3, kv_len 45 (partial page), GQA 2", Spec::quest, {1, 4, 2, 3, 45, 13}, true),
  };
  for (const Case& c : cases) {
    REQUIRE(c.layout.block == is_block_spec(c.layout.spec));
    for (Kernel kernel : kKernels)
      for (int vlen : {128, 512}) {
        // Every variant on fp32; one reduced precision per vlen on the vector kernel.
        for (Precision p : {Precision::fp32, vlen == 128 ? Precision::i8 : Precision::bf16}) {
          if (p != Precision::fp32 && kernel != Kernel::rvv) continue;
          INFO(c.name << " " << rvv::to_string(kernel) << " " << to_string(p) << " VLEN " << vlen);
          check_output(c, p, run(c, p, kernel, vlen));
        }
      }
  }
}

TEST_CASE("rvv kernel: short last key chunks scored by dot products (fp32, bf16)") {
  // head_dim 72: up to 9 keys (72 / 8) in a row's last chunk take the dot-product path; at VLEN
  // 128 a K row is 3 slices of VLMAX(e32, m8) = 32. Causal rows have 1..33 keys, so the last
  // chunk takes every size; landmark rows share key lists, so tiles of 4 rows take it too.
  const Case sw = make_case("sliding_window 16 wide, causal, GQA 2", Spec::sliding_window, {1, 4, 2, 45, 45, 72}, true, 9, 16);
  const Case landmark = make_case("landmark", Spec::landmark, {1, 2, 1, 27, 27, 72}, false);
  for (const Case* c : {&sw, &landmark})
    for (Precision p : {Precision::fp32, Precision::bf16})
      for (int vlen : {128, 256})
        for (int tile_rows : {1, 4})
          for (int lmul : {1, 4}) {
            INFO(c->name << " " << to_string(p) << " VLEN " << vlen << " tile_rows " << tile_rows << " lmul " << lmul);
            const rvv::RunnerOutput out = run(*c, p, Kernel::rvv, vlen, tile_rows, lmul);
            check_output(*c, p, out);
            CHECK(out.runner.at("dot_elements").get<int64_t>() > 0);
            if (tile_rows == 1)
              CHECK(out.runner.at("indexed_elements").get<int64_t>() + out.runner.at("dot_elements").get<int64_t>() ==
                    allowed_pairs(*c) * c->op.shape.head_dim);
          }
  // Integer precisions keep the gathers.
  const rvv::RunnerOutput i8 = run(sw, Precision::i8, Kernel::rvv, 128, 1, 4);
  check_output(sw, Precision::i8, i8);
  CHECK(i8.runner.at("dot_elements").get<int64_t>() == 0);
}

TEST_CASE("rvv kernels: four-row pair tiles (P.V at LMUL 8, the V panel) and segment-loaded K columns") {
  // Tiles of 4 rows run P.V in two passes of two rows at LMUL 8 when head_dim needs more than
  // one LMUL-4 slice (VLEN 128: head_dim > 16; 256: > 32; not at 1024), and the block kernel
  // loads 2-8 K columns per strided segment load in the unrolled score loop (8 head_dim steps,
  // the rest one by one). head_dim 72: three m8 slices at VLEN 128 (32 + 32 + 8), 9 segment
  // blocks; head_dim 41: odd (i4's last low nibble after 2 blocks of 8 bytes + 4). Causal, GQA 2,
  // a partial last block, one block row left empty; every precision and score LMUL 1, 2, 4. The
  // row kernel's pair tiles (gathered keys, V rows by address; bf16/i8/i4 through the V panel):
  // landmark rows share their key lists, so its rows run in tiles of 4.
  const Case wide = make_case("bsr causal, GQA 2, head_dim 72", Spec::bsr, {1, 4, 2, 45, 45, 72}, true, 20);
  const Case odd = make_case("bsr causal, head_dim 41", Spec::bsr, {1, 2, 1, 37, 37, 41}, true, 9);
  const Case lm = make_case("landmark, head_dim 40", Spec::landmark, {1, 2, 1, 27, 27, 40}, false);
  for (const Case* c : {&wide, &odd, &lm})
    for (Precision p : kPrecisions)
      for (int vlen : {128, 256, 1024})
        for (int lmul : {1, 2, 4}) {
          INFO(c->name << " " << to_string(p) << " VLEN " << vlen << " lmul " << lmul);
          const rvv::RunnerOutput out = run(*c, p, Kernel::rvv, vlen, 4, lmul);
          check_output(*c, p, out);
          CHECK(out.runner.at("tile_rows").get<int>() == 4);
          CHECK(out.runner.at("pv_lmul").get<int>() == (c->op.shape.head_dim > vlen / 8 ? 8 : 4));
          CHECK(out.runner.at(c->layout.block ? "indexed_elements" : "strided_elements").get<int64_t>() == 0);
          CHECK(out.runner.at(c->layout.block ? "strided_elements" : "indexed_elements").get<int64_t>() > 0);
        }
}

TEST_CASE("rvv kernel: every tile_rows and LMUL, and the exact indexed/strided element counts") {
  // Landmark rows share one key list, so row tiles really group rows there.
  const Case landmark = make_case("landmark", Spec::landmark, {1, 2, 1, 27, 27, 13}, false);
  for (const Case* c : {&row_case(), &block_case(), &landmark, &wide_row_case()})
    for (int tile_rows : {1, 2, 4, 8})
      for (int lmul : {1, 2, 4, 8})
        for (Precision p : {Precision::fp32, Precision::i4}) {
          if ((tile_rows + lmul) % 3 == 0 && p == Precision::i4) continue;  // keep the sweep short
          INFO(c->name << " tile_rows " << tile_rows << " lmul " << lmul << " " << to_string(p));
          const rvv::RunnerOutput out = run(*c, p, Kernel::rvv, 256, tile_rows, lmul);
          check_output(*c, p, out);
          const int used_lmul = out.runner.at("lmul").get<int>();
          CHECK(out.runner.at("tile_rows").get<int>() == tile_rows);
          CHECK(used_lmul <= lmul);
          CHECK(used_lmul >= 1);
          for (const auto& [rows, call_lmul] : out.runner.at("lmul_by_rows").items()) {
            CHECK(call_lmul.get<int>() <= lmul);
            CHECK(std::stoi(rows) <= tile_rows);
          }
          // Row kernels: with one row per tile every pair's K elements are loaded exactly once:
          // gathered, or (fp32/bf16) a short last chunk's K rows loaded whole (dot_elements).
          // (Block kernels copy K into the block row's panel once; the K panel test below
          // checks their strided count against the plugin's.)
          const int64_t per_key = p == Precision::i4 ? (c->op.shape.head_dim + 1) / 2 : c->op.shape.head_dim;
          const int64_t dot = out.runner.at("dot_elements").get<int64_t>();
          if (c->layout.block || p != Precision::fp32) CHECK(dot == 0);
          const int64_t moved = out.runner.at(c->layout.block ? "strided_elements" : "indexed_elements").get<int64_t>() + dot;
          const int64_t other = out.runner.at(c->layout.block ? "indexed_elements" : "strided_elements").get<int64_t>();
          CHECK(other == 0);
          if (tile_rows == 1 && !c->layout.block) CHECK(moved == allowed_pairs(*c) * per_key);
          if (tile_rows > 1 && c == &landmark) CHECK(moved < allowed_pairs(*c) * per_key);
        }
  // The scalar twin moves nothing with vector loads; autovec's loads are clang's choice (null).
  const rvv::RunnerOutput s = run(row_case(), Precision::fp32, Kernel::scalar, 128);
  CHECK(s.runner.at("indexed_elements").get<int64_t>() == 0);
  CHECK(s.runner.at("strided_elements").get<int64_t>() == 0);
  const rvv::RunnerOutput a = run(block_case(), Precision::i4, Kernel::autovec, 128);
  CHECK(a.runner.at("indexed_elements").is_null());
  CHECK(a.runner.at("strided_elements").is_null());
}

TEST_CASE("rvv block kernel: the K panel (one strided copy per block row, unit-stride columns after)") {
  // A block row with at least two full tiles copies its kept blocks' K columns once into the
  // panel; the full tiles read it unit-stride (whole-register loads of 2-8 columns where the
  // chunk is a full VLMAX, one column a load in a shorter last chunk), the rest strided. Block 24
  // at kv_len 61 and seq_len 53: chunks of 16 + 8 keys at VLEN 128 and LMUL 4, a partial last
  // block of keys and of rows (5 rows: one full tile of 4, then one of 1, no panel), GQA 2,
  // causal and not, block row 1 left empty; head_dim 20 (i4: 10 bytes, 8 + 2 steps).
  // Each output against the oracle; the runner's strided count (its replay of the kernel's
  // loops) against the plugin's (one per element QEMU accessed), and below what the strided
  // loads of every call would move.
  for (bool causal : {false, true}) {
    Case c;
    c.name = causal ? "bsr block 24, causal" : "bsr block 24";
    c.op = small_op({1, 4, 2, 53, 61, 20}, causal);
    c.op.attrs.block_size = 24;
    c.op.attrs.keep_ratio = 0.7;
    c.data = synthetic_qkv(c.op.shape, 11);
    c.layout = build_layout(c.op, Spec::bsr, resolve_params(c.op, Spec::bsr), &c.data.q, &c.data.k);
    empty_index_row(c.layout, 1);  // queries 24..47
    c.empty_row = 30;
    for (Precision p : kPrecisions)
      for (int vlen : {128, 256})
        for (int tile_rows : {1, 4})
          for (int lmul : {1, 4}) {
            INFO(c.name << " " << to_string(p) << " VLEN " << vlen << " tile_rows " << tile_rows << " lmul " << lmul);
            Op op = c.op;
            op.precision = p;
            op.quant_scheme = per_tensor_scheme();
            rvv::RunnerJob job;
            job.vlen = vlen;
            job.tile_rows = tile_rows;
            job.lmul = lmul;
            job.timeout_s = 120;
            TempDir dir("sattn-rvv-test");
            job.qemu_args = {"-plugin", libexec_dir() + "/libsattn-insn-count.so,out=" + dir.path() + "/counts.json"};
            rvv::write_workdir(dir.path(), op, c.layout, c.data, resolve_scales(op, c.data.q, c.data.k, c.data.v), job);
            const rvv::RunnerOutput out = rvv::run_runner(dir.path(), op, job);
            check_output(c, p, out);
            const rvv::InstructionMix m = rvv::read_instruction_mix(dir.path() + "/counts.json");
            const int64_t strided = out.runner.at("strided_elements").get<int64_t>();
            CHECK(m.strided_elements == uint64_t(strided));
            const int64_t per_key = p == Precision::i4 ? 10 : 20;
            // Without the panel every tile (of tile_rows rows) loads its kept keys strided.
            if (!causal && tile_rows == 4) CHECK(strided < allowed_pairs(c) * per_key / 4);
          }
  }
}

TEST_CASE("rvv exp rr2-p6: relative error under 3e-7 on the softmax range, exact 0 below it and at -inf") {
  double worst = 0;
  for (int n = 0; n <= 400000; ++n) {
    const float x = -87.3f * float(n) / 400000.0f;
    const double want = std::exp(double(x));
    worst = std::max(worst, std::abs(double(sattn_exp_rr2_p6(x)) - want) / want);
  }
  CHECK(worst < 3e-7);
  CHECK(sattn_exp_rr2_p6(0.0f) == 1.0f);
  CHECK(sattn_exp_rr2_p6(-88.0f) == 0.0f);
  CHECK(sattn_exp_rr2_p6(-INFINITY) == 0.0f);
  CHECK(std::abs(sattn_exp_rr2_p6(1.0f) - 2.7182817f) < 1e-6f);
}

TEST_CASE("run_runner error paths: missing runner or qemu, qemu crash, timeout, bad input") {
  const Case& c = row_case();
  TempDir dir("sattn-rvv-test");
  rvv::RunnerJob job;
  job.vlen = 128;
  job.timeout_s = 120;
  rvv::write_workdir(dir.path(), c.op, c.layout, c.data, Scales{}, job);
  auto code_of = [&](const rvv::RunnerJob& j) {
    try {
      rvv::run_runner(dir.path(), c.op, j);
    } catch (const Error& e) {
      INFO(e.message());
      return e.code();
    }
    return ExitCode::ok;
  };
  CHECK(code_of(job) == ExitCode::ok);

  SUBCASE("qemu missing") {
    rvv::RunnerJob j = job;
    j.qemu = "/nonexistent/qemu-riscv64";
    CHECK(code_of(j) == ExitCode::external_tool);
  }
  SUBCASE("runner missing") {
    TempDir empty("sattn-rvv-empty");
    const char* old = std::getenv("SATTN_LIBEXEC_DIR");
    const std::string saved = old ? old : "";
    setenv("SATTN_LIBEXEC_DIR", empty.path().c_str(), 1);
    try {
      rvv::run_runner(dir.path(), c.op, job);
      FAIL("no error for a missing runner");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::external_tool);
      CHECK(e.message().find("apt-get install") != std::string::npos);
    }
    if (old) setenv("SATTN_LIBEXEC_DIR", saved.c_str(), 1);
    else unsetenv("SATTN_LIBEXEC_DIR");
  }
  SUBCASE("qemu crash: the rvv runner on a CPU without V dies of SIGILL") {
    rvv::RunnerJob j = job;
    j.qemu_args = {"-cpu", "rv64,v=false"};
    CHECK(code_of(j) == ExitCode::external_tool);
  }
  SUBCASE("timeout") {
    rvv::RunnerJob j = job;
    j.timeout_s = 0.001;
    CHECK(code_of(j) == ExitCode::external_tool);
  }
  SUBCASE("bad job.txt") {
    std::ofstream(dir.path() + "/job.txt", std::ios::app) << "kind = diagonal\n";
    CHECK(code_of(job) == ExitCode::invalid_input);
  }
  SUBCASE("index out of range") {
    const std::vector<int32_t> bad{0, 99};
    write_npy(dir.path() + "/col_idx.npy", make_npy(std::span<const int32_t>(bad), {2}));
    CHECK(code_of(job) == ExitCode::invalid_input);
  }
  SUBCASE("VLEN outside QEMU's range") {
    rvv::RunnerJob j = job;
    j.vlen = 96;
    CHECK(code_of(j) == ExitCode::invalid_input);
  }
}
