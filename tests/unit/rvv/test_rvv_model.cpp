// The RVV core model: cycles for small count vectors, computed by hand from the formulas in
// sattn-run-rvv(1), CORE MODEL; the strict YAML loader.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "sattn/error.hpp"
#include "support/process.hpp"
#include "backends/rvv/rvv_model.hpp"

using namespace sattn;
using namespace sattn::rvv;

namespace {

InstructionMix small_mix() {
  InstructionMix m;
  m.scalar = 100;
  m.vector_arith = 50;
  m.vector_load_unit = 10;
  m.vector_store_unit = 5;
  m.vector_load_strided = 2;
  m.strided_elements = 16;
  m.vector_load_indexed = 4;
  m.indexed_elements = 64;
  m.vector_reduction = 3;
  m.vsetvl = 7;
  return m;
}

TEST_CASE("rvv model: default core, VLEN 512, LMUL 2") {
  // Register group 1024 bits: 8 beats of DLEN 128 and of mem_bits 128; 32 fp32 elements, so a
  // reduction tree of 5 levels.
  //   scalar 100/1 = 100        vsetvl 7*1 = 7
  //   arith 50*8 = 400          loads 10*8 = 80      stores 5*8 = 40
  //   reductions 3*(8+5) = 39
  //   strided 2*1 + 16*1/1 = 18
  //   indexed 4*1 + 64*2/1 = 132
  //   total 816
  const CycleEstimate e = model_cycles(CoreModel{}, small_mix(), RegionShape{512, 2});
  REQUIRE(e.groups.size() == 1);
  CHECK(e.groups[0].at("arith_beats") == 8);
  CHECK(e.groups[0].at("mem_beats") == 8);
  CHECK(e.groups[0].at("reduction_levels") == 5);
  CHECK(e.by_class.at("vector_arith").get<double>() == doctest::Approx(400));
  CHECK(e.by_class.at("vector_reduction").get<double>() == doctest::Approx(39));
  CHECK(e.by_class.at("vector_indexed").get<double>() == doctest::Approx(132));
  CHECK(e.total == doctest::Approx(816));
  CHECK(e.to_json().at("total") == 816);
}

TEST_CASE("rvv model: a wider datapath, more lanes and dual issue") {
  CoreModel core;
  core.dlen = 256;
  core.lanes = 4;
  core.scalar_ipc = 2;
  core.indexed_cycles_per_element = 3;
  // VLEN 128, LMUL 1: 128 bits -> 1 beat of DLEN 256 (ceil), 1 beat of mem_bits 128;
  // 4 elements -> 2 reduction levels.
  //   scalar 100/2 = 50   vsetvl 7   arith 50*1 = 50   loads 10   stores 5
  //   reductions 3*(1+2) = 9   strided 2 + 16/4 = 6   indexed 4 + 64*3/4 = 52
  //   total 189
  const CycleEstimate e = model_cycles(core, small_mix(), RegionShape{128, 1});
  CHECK(e.groups[0].at("arith_beats") == 1);
  CHECK(e.groups[0].at("reduction_levels") == 2);
  CHECK(e.total == doctest::Approx(189));
}

TEST_CASE("rvv model: the vector issue floor applies to fast classes") {
  CoreModel core;
  core.vector_issue_cycles = 2;
  core.arith_cycles_per_beat = 0.5;  // 2 beats * 0.5 = 1 cycle, raised to the floor of 2
  InstructionMix m;
  m.vector_arith = 10;
  const CycleEstimate e = model_cycles(core, m, RegionShape{256, 1});
  CHECK(e.total == doctest::Approx(20));
}

TEST_CASE("rvv model: each instruction is charged for the LMUL it ran at") {
  InstructionMix m;
  m.vector_arith = 30;
  m.vector_load_unit = 6;
  m.vector_reduction = 2;
  InstructionMix::LmulBin m1, m4, mf2, unknown;
  m1.lmul = 1;
  m1.vector_arith = 10;
  m1.vector_load_unit = 6;
  m4.lmul = 4;
  m4.vector_arith = 10;
  m4.vector_reduction = 2;
  mf2.lmul = 0.5;
  mf2.vector_arith = 5;
  unknown.vector_arith = 5;  // charged at RegionShape::lmul = 2
  m.by_lmul = {m1, m4, mf2, unknown};
  // VLEN 256, DLEN 128: m1 2 beats, m4 8 beats, mf2 1 beat, m2 4 beats; mem_bits 128 likewise.
  //   arith 10*2 + 10*8 + 5*1 + 5*4 = 125
  //   loads 6*2 = 12
  //   reductions at m4: 32 elements -> 5 levels: 2*(8+5) = 26
  //   total 163
  const CycleEstimate e = model_cycles(CoreModel{}, m, RegionShape{256, 2});
  CHECK(e.by_class.at("vector_arith").get<double>() == doctest::Approx(125));
  CHECK(e.by_class.at("vector_load_unit").get<double>() == doctest::Approx(12));
  CHECK(e.by_class.at("vector_reduction").get<double>() == doctest::Approx(26));
  CHECK(e.total == doctest::Approx(163));
  CHECK(e.groups.size() == 4);
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST_CASE("rvv model: YAML overrides only the keys it names") {
  TempDir tmp("sattn-model-test");
  const std::string path = write_file(tmp.path(), "core.yaml", "name: wide\ndlen: 512\nlanes: 8\nindexed_cycles_per_element: 0.5\n");
  CoreModel core;
  core.apply_file(path);
  CHECK(core.name == "wide");
  CHECK(core.dlen == 512);
  CHECK(core.lanes == 8);
  CHECK(core.indexed_cycles_per_element == doctest::Approx(0.5));
  CHECK(core.mem_bits == 128);  // untouched
  CHECK(core.source == path);
  // A profile-style document contributes its rvv: section.
  const std::string profile = write_file(tmp.path(), "p.yaml", "rvv:\n  vlen: 512\n");
  core.apply_file(profile);
  CHECK(core.vlen == 512);
}

void expect_yaml_error(const std::string& text, int line, int col, const std::string& words) {
  TempDir tmp("sattn-model-test");
  const std::string path = write_file(tmp.path(), "bad.yaml", text);
  CoreModel core;
  try {
    core.apply_file(path);
    FAIL("no error for: " << text);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::invalid_input);
    CHECK(e.loc().file == path);
    CHECK(e.loc().line == line);
    CHECK(e.loc().col == col);
    CHECK_MESSAGE(e.message().find(words) != std::string::npos, e.message());
  }
}

TEST_CASE("rvv model: strict YAML loader") {
  expect_yaml_error("dlen: 128\nlane: 2\n", 2, 1, "unknown key 'lane'");
  expect_yaml_error("dlen: wide\n", 1, 7, "dlen must be an integer");
  expect_yaml_error("scalar_ipc: [1]\n", 1, 13, "scalar_ipc must be a number");
  expect_yaml_error("vlen: 2048\n", 1, 7, "out of range");
  expect_yaml_error("vlen: 384\n", 1, 7, "power of two");
  expect_yaml_error("dlen: 128\n  bad: [\n", 2, 6, "YAML syntax error");
  expect_yaml_error("- 1\n", 1, 1, "mapping");
}

}  // namespace
