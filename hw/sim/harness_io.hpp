// What both Verilator harnesses (harness.cpp, grid_harness.cpp) read and print the same way: the
// error exit, the input files (the program, sattn-accel-program v1, hw/README.md "Harness"; the
// grid harness's task table uses the same "KEY N" line shape through TextFile), and the debug
// names of the tile's DMA and core states. Header-only; each harness defines
// sattn::accel_sim::kHarnessName, its name in error messages.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace sattn::accel_sim {

extern const char* const kHarnessName;

[[noreturn]] inline void die(int code, const std::string& msg) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: error: %s\n", kHarnessName, msg.c_str());
  std::exit(code);
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die(3, "cannot read '" + path + "'");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A text input read line by line: errors name the file and the line.
struct TextFile {
  std::string path;
  std::ifstream in;
  int line_no = 0;
  explicit TextFile(const std::string& p) : path(p), in(p) {
    if (!in) die(3, "cannot read '" + path + "'");
  }
  [[noreturn]] void bad(const std::string& what) { die(3, path + ":" + std::to_string(line_no) + ": " + what); }
  // The next line; at the end of the file, `at_eof` is the error.
  std::string line(const std::string& at_eof = "unexpected end of file") {
    std::string s;
    ++line_no;
    if (!std::getline(in, s)) bad(at_eof);
    return s;
  }
  // A "KEY N" line with this key.
  uint64_t key(const char* k) {
    std::istringstream ls(line(std::string("missing '") + k + "'"));
    std::string got;
    uint64_t v = 0;
    if (!(ls >> got >> v) || got != k) bad(std::string("expected '") + k + " N'");
    return v;
  }
};

struct Cmd {
  unsigned funct;
  uint64_t rs1, rs2;
};

struct Program {
  uint64_t dram_bytes = 0, out_offset = 0, out_bytes = 0;
  std::vector<Cmd> cmds;
};

inline Program read_program(const std::string& path) {
  TextFile f(path);
  Program p;
  if (f.line("expected 'sattn-accel-program v1'") != "sattn-accel-program v1")
    f.bad("expected 'sattn-accel-program v1'");
  p.dram_bytes = f.key("dram_bytes");
  p.out_offset = f.key("out_offset");
  p.out_bytes = f.key("out_bytes");
  const uint64_t count = f.key("commands");
  for (uint64_t i = 0; i < count; ++i) {
    Cmd c{};
    const std::string l = f.line("expected " + std::to_string(count) + " commands");
    if (std::sscanf(l.c_str(), "%u %lx %lx", &c.funct, &c.rs1, &c.rs2) != 3 || c.funct > 127)  // funct7
      f.bad("expected 'FUNCT RS1 RS2'");
    p.cmds.push_back(c);
  }
  if (p.out_offset + p.out_bytes > p.dram_bytes) f.bad("output area outside DRAM");
  return p;
}

inline const char* dma_state_name(unsigned s) {
  static const char* names[] = {"idle", "request", "data", "?"};
  return names[s & 3];
}
inline const char* core_state_name(unsigned s) {
  static const char* names[] = {"idle", "row_start", "qk", "softmax", "rescale", "pv", "store_setup", "store_divide",
                                "store_normalize", "store_write"};
  return s < 10 ? names[s] : "?";
}

}  // namespace sattn::accel_sim
