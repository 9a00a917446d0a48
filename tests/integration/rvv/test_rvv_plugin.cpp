// The instruction-count plugin (libsattn/qemu-plugin) against counts made by hand: single
// encodings (checked with llvm-mc), and tests/rvv-plugin/handcount.S run under qemu-riscv64.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "sattn/layout.hpp"
#include "support/process.hpp"
#include "backends/rvv/rvv.hpp"
#include "backends/rvv/rvv_model.hpp"
#include "core/synthetic.hpp"

// The plugin's decoder is C that also compiles as C++; test it directly.
extern "C" {
#include "riscv_classify.c"
}

namespace fs = std::filesystem;
using namespace sattn;

namespace {

insn_class class_of(uint32_t word, size_t size = 4) { return riscv_key_class(riscv_insn_key(word, size)); }

// Encodings from `llvm-mc --triple=riscv64 -mattr=+v,+c,+d --show-encoding`.
TEST_CASE("rvv plugin: single encodings fall in their class") {
  CHECK(class_of(0x00052007) == CLASS_SCALAR);               // flw ft0, 0(a0): scalar FP load
  CHECK(class_of(0x00053007) == CLASS_SCALAR);               // fld ft0, 0(a0)
  CHECK(class_of(0x0685, 2) == CLASS_SCALAR);                // c.addi a3, 1
  CHECK(class_of(0x02056087) == CLASS_VECTOR_LOAD_UNIT);     // vle32.v v1, (a0)
  CHECK(class_of(0x06456187) == CLASS_VECTOR_LOAD_INDEXED);  // vluxei32.v v3, (a0), v4
  CHECK(class_of(0x0ac5e2a7) == CLASS_VECTOR_STORE_STRIDED); // vsse32.v v5, (a1), a2
  CHECK(class_of(0x065313d7) == CLASS_VECTOR_REDUCTION);     // vfredusum.vs v7, v5, v6
  CHECK(class_of(0xc62180d7) == CLASS_VECTOR_REDUCTION);     // vwredsum.vs v1, v2, v3
  CHECK(class_of(0x42502857) == CLASS_VECTOR_ARITH);         // vmv.x.s a6, v5
  CHECK(class_of(0x0d03f357) == CLASS_VSETVL);               // vsetvli t1, t2, e32, m1, ta, ma
  CHECK(SATTN_MARKER_BEGIN == 0x5a102013u);                  // slti zero, zero, 1441
}

std::string here() { return fs::read_symlink("/proc/self/exe").parent_path().string(); }

rvv::InstructionMix run_counted(const std::string& program, int vlen, const std::string& out) {
  const std::string plugin = libexec_dir() + "/libsattn-insn-count.so";
  REQUIRE_MESSAGE(fs::exists(plugin), plugin << " is missing: build the target sattn-insn-count");
  REQUIRE_MESSAGE(fs::exists(program), program << " is missing: build the target sattn-rvv-handcount");
  const ProcessResult r = run_process({"qemu-riscv64", "-cpu", "rv64,v=true,vlen=" + std::to_string(vlen) + ",vext_spec=v1.0",
                                       "-plugin", plugin + ",out=" + out, program},
                                      120);
  REQUIRE_MESSAGE(r.ok(), "qemu-riscv64: " << r.describe(120) << "\n" << r.err_tail());
  return rvv::read_instruction_mix(out);
}

// The count by hand, from the structure of handcount.S (its header comment lists every line).
struct HandCount {
  uint64_t scalar, arith, load_unit, store_unit, load_strided, store_strided, load_indexed, store_indexed,
      reduction, vsetvl, unit_elements, strided_elements, indexed_elements;
  uint64_t strip;  // strip-mine iterations per region (each: 1 arith, 1 load, 1 store at LMUL 2)
};

HandCount count_by_hand(int vlen) {
  const uint64_t regions = 2, fixed = 10, elems_per_reg = uint64_t(vlen) / 32;
  const uint64_t strip = (64 + 2 * elems_per_reg - 1) / (2 * elems_per_reg);  // LMUL 2
  const uint64_t fixed_vl = 4;  // AVL 4 <= VLMAX at every VLEN >= 128
  HandCount h{};
  h.scalar = regions * (3 + fixed * 4 + strip * 4);
  h.vsetvl = regions * (fixed * 2 + strip + 1);
  h.load_unit = regions * (fixed * 2 + strip);
  h.store_unit = regions * (fixed + strip);
  h.load_strided = regions * fixed;
  h.store_strided = regions * fixed;
  h.load_indexed = regions * fixed * 2;
  h.store_indexed = regions * fixed;
  h.arith = regions * (fixed * 4 + strip);
  h.reduction = regions * fixed * 2;
  // vle32 (vl 4) + vl1re32 (a whole register) + vse32 (vl 4) per fixed iteration; the strip
  // loop loads and stores all 64 elements.
  h.unit_elements = regions * (fixed * (fixed_vl + elems_per_reg + fixed_vl) + 64 + 64);
  h.strided_elements = regions * fixed * fixed_vl * 2;
  h.indexed_elements = regions * fixed * fixed_vl * 3;
  h.strip = strip;
  return h;
}

TEST_CASE("rvv plugin: the hand-countable program's mix matches the count by hand at every VLEN") {
  const std::string program = here() + "/rvv-plugin/sattn-rvv-handcount";
  TempDir tmp("sattn-plugin-test");
  uint64_t previous_vector = ~uint64_t(0);
  for (int vlen : {128, 256, 512, 1024}) {
    CAPTURE(vlen);
    const rvv::InstructionMix m = run_counted(program, vlen, tmp.path() + "/counts.json");
    const HandCount h = count_by_hand(vlen);
    CHECK(m.regions == 2);
    CHECK(m.scalar == h.scalar);
    CHECK(m.vector_arith == h.arith);
    CHECK(m.vector_load_unit == h.load_unit);
    CHECK(m.vector_store_unit == h.store_unit);
    CHECK(m.vector_load_strided == h.load_strided);
    CHECK(m.vector_store_strided == h.store_strided);
    CHECK(m.vector_load_indexed == h.load_indexed);
    CHECK(m.vector_store_indexed == h.store_indexed);
    CHECK(m.vector_reduction == h.reduction);
    CHECK(m.vsetvl == h.vsetvl);
    CHECK(m.unit_elements == h.unit_elements);
    CHECK(m.strided_elements == h.strided_elements);
    CHECK(m.indexed_elements == h.indexed_elements);
    // LMUL of each instruction: the fixed loop at m1, the strip-mine loop at m2.
    REQUIRE(m.by_lmul.size() == 2);
    const auto& m1 = m.by_lmul[0];
    const auto& m2 = m.by_lmul[1];
    CHECK(m1.lmul == 1);
    CHECK(m1.vector_arith == 2 * 10 * 4);
    CHECK(m1.vector_load_unit == 2 * 10 * 2);
    CHECK(m1.vector_store_unit == 2 * 10);
    CHECK(m1.vector_reduction == 2 * 10 * 2);
    CHECK(m2.lmul == 2);
    CHECK(m2.vector_arith == 2 * h.strip);
    CHECK(m2.vector_load_unit == 2 * h.strip);
    CHECK(m2.vector_store_unit == 2 * h.strip);
    CHECK(m2.vector_reduction == 0);
    // The strip-mined loop needs fewer iterations as the registers grow.
    CHECK(m.vector() < previous_vector);
    previous_vector = m.vector();
    // Single mnemonics land in the histogram under their names.
    CHECK(m.histogram.at("vluxei32.v").at("count") == 2 * 10);
    CHECK(m.histogram.at("vfredusum.vs").at("class") == "vector_reduction");
  }
}

TEST_CASE("rvv plugin: a real runner's vector instructions fall as VLEN grows") {
  Op op;
  op.shape = Shape{1, 1, 1, 128, 128, 64};
  op.attrs.window_size = 32;
  const Layout layout = build_layout(op, Spec::sliding_window, resolve_params(op, Spec::sliding_window), nullptr, nullptr);
  const QKV data = synthetic_qkv(op.shape);
  const std::string plugin = libexec_dir() + "/libsattn-insn-count.so";
  uint64_t previous_vector = ~uint64_t(0), previous_total = ~uint64_t(0);
  for (int vlen : {128, 256, 512}) {
    CAPTURE(vlen);
    TempDir dir("sattn-plugin-test");
    rvv::RunnerJob job;
    job.vlen = vlen;
    job.tile_rows = 4;
    job.lmul = 1;
    job.qemu_args = {"-plugin", plugin + ",out=" + dir.path() + "/counts.json"};
    rvv::write_workdir(dir.path(), op, layout, data, Scales{}, job);
    const rvv::RunnerOutput out = rvv::run_runner(dir.path(), op, job);
    const rvv::InstructionMix m = rvv::read_instruction_mix(dir.path() + "/counts.json");
    CHECK(m.regions == 1);
    CHECK(m.vector() > 0);
    CHECK(m.vector() < previous_vector);
    CHECK(m.total() < previous_total);
    previous_vector = m.vector();
    previous_total = m.total();
    // Two independent counts of the gathered elements: the plugin's (one per memory access QEMU
    // makes) and the runner's (replaying the kernel's loops).
    CHECK(m.indexed_elements == out.runner.at("indexed_elements").get<uint64_t>());
    CHECK(m.strided_elements == out.runner.at("strided_elements").get<uint64_t>());
  }
}

TEST_CASE("rvv plugin: a bad argument stops qemu with a message") {
  const std::string plugin = libexec_dir() + "/libsattn-insn-count.so";
  const std::string program = here() + "/rvv-plugin/sattn-rvv-handcount";
  const ProcessResult r = run_process({"qemu-riscv64", "-plugin", plugin + ",colour=blue", program}, 60);
  CHECK_FALSE(r.ok());
  CHECK(r.err.find("unknown argument 'colour=blue'") != std::string::npos);
}

}  // namespace
