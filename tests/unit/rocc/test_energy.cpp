// The accelerator's energy estimate and roofline bound (energy.hpp), against hand-computed values.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "backends/rocc/energy.hpp"
#include "sattn/error.hpp"

using namespace sattn;

namespace {

// A YAML file in the test's temporary directory, removed at the end of the scope.
struct YamlFile {
  std::string path;
  explicit YamlFile(const std::string& text) {
    char name[] = "/tmp/sattn-energy-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    path = name;
    std::FILE* f = fdopen(fd, "w");
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  ~YamlFile() { std::remove(path.c_str()); }
};

ExitCode code_of(const std::function<void()>& fn, std::string* message = nullptr, SourceLoc* loc = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.message();
    if (loc) *loc = e.loc();
    return e.code();
  }
  return ExitCode::ok;
}

}  // namespace

TEST_CASE("energy: the defaults are Horowitz's 45 nm figures per MAC and per byte") {
  const EnergyModel m;
  CHECK(m.mac_i8_pj == doctest::Approx(0.2 + 0.1));      // 8-bit mult + 32-bit add
  CHECK(m.mac_i4_pj == doctest::Approx(0.2 / 4 + 0.1));  // bits^2 multiplier + the same add
  CHECK(m.sram_byte_pj == doctest::Approx(10.0 / 8));    // 8 KB, 64-bit access
  CHECK(m.dram_byte_pj == doctest::Approx(1300.0 / 8));  // 1.3 nJ per 64-bit access
  CHECK(m.static_pj_per_cycle == 0);
}

TEST_CASE("energy: events times per-event energies") {
  EnergyModel m;
  m.mac_i8_pj = 0.5;
  m.mac_i4_pj = 0.25;
  m.sram_byte_pj = 2;
  m.dram_byte_pj = 100;
  m.static_pj_per_cycle = 3;
  EnergyEvents e;
  e.precision = Precision::i8;
  e.macs = 1000;
  e.sram_bytes = 400;
  e.dram_bytes = 30;
  e.cycles = 70;
  EnergyBreakdown b = estimate_energy(m, e);
  CHECK(b.mac == doctest::Approx(500));
  CHECK(b.sram == doctest::Approx(800));
  CHECK(b.dram == doctest::Approx(3000));
  CHECK(b.static_ == doctest::Approx(210));
  CHECK(b.total() == doctest::Approx(4510));
  e.precision = Precision::i4;
  b = estimate_energy(m, e);
  CHECK(b.mac == doctest::Approx(250));
  CHECK(b.to_json()["total"].get<double>() == doctest::Approx(4260));
}

TEST_CASE("roofline: the larger of compute and memory time, and actual / bound") {
  RooflineInputs in;
  in.macs = 2 * 64 * 64 * 64;  // 524288 MACs on 16 lanes: 32768 cycles
  in.lanes = 16;
  in.dram_bytes = 3 * 64 * 64;  // 12288 bytes at 8 B/cycle: 1536 cycles + 100 latency
  in.dram_bytes_per_cycle = 8;
  in.dram_latency_cycles = 100;
  in.actual_cycles = 36045;
  Roofline r = roofline(in);
  CHECK(r.compute_cycles == doctest::Approx(32768));
  CHECK(r.memory_cycles == doctest::Approx(1636));
  CHECK(r.bound_cycles == doctest::Approx(32768));
  CHECK(std::string(r.bound_by()) == "compute");
  CHECK(r.ratio == doctest::Approx(36045.0 / 32768));

  // Memory-bound: few MACs per byte.
  in.macs = 1600;
  r = roofline(in);
  CHECK(r.compute_cycles == doctest::Approx(100));
  CHECK(r.bound_cycles == doctest::Approx(1636));
  CHECK(std::string(r.bound_by()) == "memory");

  // No DRAM traffic: no exposed latency either.
  in.dram_bytes = 0;
  r = roofline(in);
  CHECK(r.memory_cycles == 0);
  CHECK(r.bound_cycles == doctest::Approx(100));

  in.lanes = 0;
  CHECK(code_of([&] { roofline(in); }) == ExitCode::usage);
}

TEST_CASE("energy: YAML files override only what they name") {
  YamlFile f("# a lower-power node\nmac_i8_pj: 0.1\ndram_byte_pj: 20\n");
  const EnergyModel m = load_energy_file(f.path);
  CHECK(m.mac_i8_pj == doctest::Approx(0.1));
  CHECK(m.dram_byte_pj == doctest::Approx(20));
  CHECK(m.mac_i4_pj == doctest::Approx(0.15));  // untouched default
  CHECK(m.source == f.path);

  // A profile-shaped file contributes its energy: section.
  YamlFile p("schema: sattn.profile/v1\nname: x\nenergy:\n  sram_byte_pj: 0.5\n");
  CHECK(load_energy_file(p.path).sram_byte_pj == doctest::Approx(0.5));
}

TEST_CASE("energy: unknown keys, wrong types and negative values are input errors at file:line:col") {
  std::string msg;
  SourceLoc loc;
  YamlFile typo("mac_i8_pj: 0.2\nsram_bytes_pj: 1\n");
  CHECK(code_of([&] { load_energy_file(typo.path); }, &msg, &loc) == ExitCode::invalid_input);
  CHECK(msg.find("unknown key 'sram_bytes_pj'") != std::string::npos);
  CHECK(loc.line == 2);
  CHECK(loc.col == 1);

  YamlFile type("dram_byte_pj: lots\n");
  CHECK(code_of([&] { load_energy_file(type.path); }, &msg, &loc) == ExitCode::invalid_input);
  CHECK(msg.find("energy.dram_byte_pj must be a finite number") != std::string::npos);
  CHECK(loc.line == 1);
  CHECK(loc.col == 15);

  YamlFile negative("\n\nmac_i4_pj: -1\n");
  CHECK(code_of([&] { load_energy_file(negative.path); }, &msg, &loc) == ExitCode::invalid_input);
  CHECK(msg.find("out of range") != std::string::npos);
  CHECK(loc.line == 3);

  YamlFile syntax("mac_i8_pj: [1,\n");
  CHECK(code_of([&] { load_energy_file(syntax.path); }, &msg, &loc) == ExitCode::invalid_input);
  CHECK(loc.line >= 1);

  YamlFile list("- 1\n- 2\n");
  CHECK(code_of([&] { load_energy_file(list.path); }) == ExitCode::invalid_input);

  // A failed apply leaves the model unchanged.
  EnergyModel m;
  YAML::Node n = YAML::Load("mac_i8_pj: 9\nbogus: 1\n");
  CHECK(code_of([&] { m.apply_yaml(n, "inline"); }) == ExitCode::invalid_input);
  CHECK(m.mac_i8_pj == doctest::Approx(0.3));

  CHECK(code_of([&] { load_energy_file("/nonexistent/energy.yaml"); }) == ExitCode::runtime);
}
