// `sattn doctor`: checks every external component the backends need by really using it (compile,
// link, run a tiny program), reports versions, and prints the command that fixes what is
// missing. `sattn version` reuses the version probes.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "support/process.hpp"
#include "formats/data.hpp"
#include "support/text_table.hpp"
#include "backends/cuda/run_cuda.hpp"

namespace fs = std::filesystem;

namespace sattn {

namespace {

// A tiny RVV program: a vector dot product with a tail (37 elements, LMUL 4). Prints 1332.
constexpr const char* kRvvProgram = R"(#include <riscv_vector.h>
#include <stdio.h>
int main(void) {
  float a[37], b[37];
  for (int i = 0; i < 37; ++i) { a[i] = (float)i; b[i] = 2.0f; }
  vfloat32m1_t acc = __riscv_vfmv_v_f_f32m1(0.0f, 1);
  for (size_t n = 37, off = 0; n > 0;) {
    size_t vl = __riscv_vsetvl_e32m4(n);
    vfloat32m4_t x = __riscv_vle32_v_f32m4(a + off, vl), y = __riscv_vle32_v_f32m4(b + off, vl);
    acc = __riscv_vfredusum_vs_f32m4_f32m1(__riscv_vfmul_vv_f32m4(x, y, vl), acc, vl);
    off += vl; n -= vl;
  }
  printf("%d\n", (int)__riscv_vfmv_f_s_f32m1_f32(acc));
  return 0;
}
)";
constexpr const char* kScalarProgram = "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 6 * 7); return 0; }\n";
constexpr const char* kVerilogProgram =
    "module top;\n  initial begin $display(\"%0d\", 6 * 7); $finish; end\nendmodule\n";
constexpr const char* kScdocPage = "x(1)\n\n# NAME\n\nx - a page\n";

// What a component is needed for: running sattn (the backends' helpers, qemu), building it from
// source (the compilers, verilator, scdoc: an installed .deb has what they built), or nothing
// required (sattn-opt, a GPU). The exit status counts "run" always and "build" with --build.
enum class Need { run, build, optional };
const char* to_string(Need n) { return n == Need::run ? "run" : n == Need::build ? "build" : "optional"; }

struct Check {
  std::string name;
  Need need = Need::run;
  std::string version;
  std::string status;  // "ok", "missing", "broken"
  std::string detail;
  std::string fix;
};

std::string first_line(const std::string& text) {
  const auto nl = text.find('\n');
  return text.substr(0, nl);
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream f(p);
  f << text;
  if (!f) throw Error(ExitCode::runtime, "cannot write " + p.string());
}

std::string version_of(const std::string& program, const std::vector<std::string>& args) {
  auto path = find_executable(program);
  if (!path) return "";
  std::vector<std::string> argv{*path};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult r = run_process(argv, 20);
  return first_line(r.out.empty() ? r.err : r.out);
}

// Marks `c` broken with the program's own words when `r` failed.
bool failed(Check& c, const ProcessResult& r, const std::string& what, double timeout) {
  if (r.ok()) return false;
  c.status = "broken";
  c.detail = what + ": " + r.describe(timeout) + (r.err.empty() ? "" : ": " + first_line(r.err_tail(3)));
  return true;
}

Check check_clang(const fs::path& dir, bool& rvv_built) {
  Check c{"clang-16 (RVV intrinsics)", Need::build, version_of("clang-16", {"--version"}), "ok", "", "apt-get install clang-16 lld-16"};
  if (c.version.empty()) return c.status = "missing", c.detail = "clang-16 not in PATH", c;
  write_file(dir / "rvv.c", kRvvProgram);
  const ProcessResult r = run_process({"clang-16", "--target=riscv64-linux-gnu", "-march=rv64gcv", "-O2", "-static",
                                       "-fuse-ld=bfd", "rvv.c", "-o", "rvv"},
                                      120, dir.string());
  if (failed(c, r, "compiling and linking an RVV program (static, GNU riscv64 ld)", 120)) {
    c.fix = "apt-get install clang-16 gcc-riscv64-linux-gnu g++-riscv64-linux-gnu (clang-16 links with the GNU riscv64 toolchain)";
    return c;
  }
  rvv_built = true;
  c.detail = "compiled and linked a static RVV 1.0 intrinsics program";
  return c;
}

Check check_gcc(const fs::path& dir) {
  Check c{"riscv64-linux-gnu-gcc", Need::build, version_of("riscv64-linux-gnu-gcc", {"--version"}), "ok", "",
          "apt-get install gcc-riscv64-linux-gnu g++-riscv64-linux-gnu"};
  if (c.version.empty()) return c.status = "missing", c.detail = "riscv64-linux-gnu-gcc not in PATH", c;
  write_file(dir / "scalar.c", kScalarProgram);
  const ProcessResult r = run_process({"riscv64-linux-gnu-gcc", "-O2", "-static", "scalar.c", "-o", "scalar"}, 120, dir.string());
  if (failed(c, r, "compiling a static scalar program", 120)) return c;
  c.detail = "compiled and linked a static scalar program";
  return c;
}

Check check_qemu(const fs::path& dir, const std::string& qemu, bool rvv_built) {
  Check c{"qemu-riscv64 (vector)", Need::run, version_of(qemu, {"--version"}), "ok", "", "apt-get install qemu-user"};
  if (c.version.empty()) return c.status = "missing", c.detail = qemu + " not found", c;
  if (!rvv_built) {  // no clang-16 (an installed package): the RVV backend check below runs qemu
    c.detail = "found (no clang-16 to build a test program: the RVV backend check runs it)";
    return c;
  }
  const ProcessResult r =
      run_process({qemu, "-cpu", "rv64,v=true,vlen=128,vext_spec=v1.0", (dir / "rvv").string()}, 60, dir.string());
  if (failed(c, r, "running the RVV program with -cpu rv64,v=true,vlen=128,vext_spec=v1.0", 60)) return c;
  if (first_line(r.out) != "1332") {
    c.status = "broken";
    c.detail = "the RVV program printed '" + first_line(r.out) + "', expected 1332";
    return c;
  }
  c.detail = "ran an RVV 1.0 program at VLEN 128 (correct result)";
  return c;
}

Check check_verilator(const fs::path& dir) {
  Check c{"verilator", Need::build, version_of("verilator", {"--version"}), "ok", "", "apt-get install verilator"};
  if (c.version.empty()) return c.status = "missing", c.detail = "verilator not in PATH", c;
  write_file(dir / "top.sv", kVerilogProgram);
  const ProcessResult build = run_process(
      {"verilator", "--binary", "-Wall", "--Mdir", "vobj", "-o", "vtop", "top.sv"}, 300, dir.string());
  if (failed(c, build, "building a tiny SystemVerilog model", 300)) return c;
  const ProcessResult r = run_process({(dir / "vobj" / "vtop").string()}, 30, dir.string());
  if (failed(c, r, "running the tiny model", 30)) return c;
  if (first_line(r.out) != "42") {
    c.status = "broken";
    c.detail = "the model printed '" + first_line(r.out) + "', expected 42";
    return c;
  }
  c.detail = "built and ran a tiny SystemVerilog model";
  return c;
}

Check check_scdoc(const fs::path& dir) {
  Check c{"scdoc (man pages)", Need::build, "", "ok", "", "apt-get install scdoc"};
  auto path = find_executable("scdoc");
  if (!path) return c.status = "missing", c.detail = "scdoc not in PATH; man pages are not built", c;
  c.version = "scdoc";
  write_file(dir / "page.scd", kScdocPage);
  const ProcessResult r = run_process({"sh", "-c", "scdoc < page.scd"}, 30, dir.string());
  if (failed(c, r, "formatting a tiny page", 30)) return c;
  c.detail = "formatted a man page";
  return c;
}

// sattn-opt (optional: built when MLIR 16 was found): the one next to this sattn, else the one in
// PATH, asked to lower a tiny op to sattn.rvv_call.
Check check_sattn_opt(const fs::path& dir) {
  Check c{"sattn-opt (MLIR dialect)", Need::optional, "", "ok", "",
          "apt-get install libmlir-16-dev mlir-16-tools llvm-16-dev, then reconfigure and rebuild sattn "
          "(SATTN_MLIR=AUTO)"};
  std::error_code ec;
  const fs::path beside = fs::read_symlink("/proc/self/exe", ec).parent_path() / "sattn-opt";
  std::optional<std::string> opt;
  if (!ec && fs::exists(beside)) opt = beside.string();
  else opt = find_executable("sattn-opt");
  if (!opt) return c.status = "missing", c.detail = "not built (MLIR 16 was not found when sattn was configured)", c;
  // `--version` is LLVM's: "LLVM (http://llvm.org/):\n  LLVM version 16.0.6\n ...".
  const ProcessResult v = run_process({*opt, "--version"}, 20);
  if (const size_t at = v.out.find("version "); at != std::string::npos)
    c.version = "MLIR " + first_line(v.out.substr(at + 8));
  write_file(dir / "op.mlir", "sattn.sparse_attention {seq_len = 64 : i64, window_size = 4 : i64}\n");
  const ProcessResult r = run_process({*opt, "op.mlir", "-sattn-lower-rvv"}, 60, dir.string());
  if (failed(c, r, "lowering a tiny op with -sattn-lower-rvv", 60)) return c;
  if (r.out.find("sattn.rvv_call") == std::string::npos || r.out.find("spec = \"sliding_window\"") == std::string::npos) {
    c.status = "broken";
    c.detail = *opt + " did not lower a sliding-window op to sattn.rvv_call";
    return c;
  }
  c.detail = *opt + ": lowered a tiny op to sattn.rvv_call";
  return c;
}

// The files the build puts in libexec: present or not (they are built with the project).
Check check_built(const std::string& name, const std::string& file, const std::string& needs) {
  const fs::path p = fs::path(libexec_dir()) / file;
  Check c{name, Need::run, "", "ok", p.string(), "install " + needs + ", then rebuild sattn (make)"};
  if (!fs::exists(p)) {
    c.status = "missing";
    c.detail = p.string() + " was not built";
  }
  return c;
}

// A backend end to end: this sattn runs a tiny op on it (`sattn run --backend NAME`), which uses
// the installed helpers (runner, plugin, qemu; the harness) and checks the output against the
// reference. Skipped (broken, naming the cause) when a check it depends on failed. It runs the
// qemu-riscv64 in PATH, as `sattn run` does (--qemu changes only the qemu check above).
Check check_backend(const fs::path& dir, const std::string& backend, const std::string& name,
                    const std::vector<std::string>& depends, const std::vector<Check>& done) {
  Check c{name, Need::run, "", "ok", "", "fix the components above"};
  for (const Check& d : done)
    for (const std::string& dep : depends)
      if (d.name == dep && d.status != "ok") {
        c.status = "broken";
        c.detail = "not run: " + dep + " is " + d.status;
        return c;
      }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return c.status = "broken", c.detail = "cannot find this executable: " + ec.message(), c;
  write_file(dir / "doctor-op.json",
             R"({"seq_len": 32, "heads": 1, "head_dim": 16, "spec": "sliding_window", "window_size": 4})" "\n");
  std::vector<std::string> argv{self.string(), "run", "--backend", backend, "doctor-op.json", "--format", "json",
                                "-o", "result.json"};
  const ProcessResult r = run_process(argv, 300, dir.string());
  if (failed(c, r, "running a tiny sliding-window op", 300)) return c;
  c.detail = "ran a tiny op and checked it against the reference";
  return c;
}

struct DoctorCli {
  OutputFlags out{"-", "text"};  // -o, --format, -q
  std::string qemu = "qemu-riscv64";
  bool build = false;  // --build: the build-only tools count for the exit status too
};

int doctor_action(const DoctorCli& o) {
  o.out.check();
  TempDir dir("sattn-doctor");
  ProgressLine progress(o.out.progress());
  std::vector<Check> checks;
  bool rvv_built = false;
  auto step = [&](const char* what) {
    progress.show("checking " + std::string(what) + "...");
  };
  step("clang-16");
  checks.push_back(check_clang(dir.path(), rvv_built));
  step("riscv64-linux-gnu-gcc");
  checks.push_back(check_gcc(dir.path()));
  step("qemu-riscv64");
  checks.push_back(check_qemu(dir.path(), o.qemu, rvv_built));
  step("verilator");
  checks.push_back(check_verilator(dir.path()));
  step("scdoc");
  checks.push_back(check_scdoc(dir.path()));
  step("sattn-opt");
  checks.push_back(check_sattn_opt(dir.path()));
  checks.push_back(check_built("RVV runner (rvv)", "sattn-rvv-runner-rvv", "clang-16 and gcc-riscv64-linux-gnu"));
  checks.push_back(check_built("RVV runner (scalar)", "sattn-rvv-runner-scalar", "gcc-riscv64-linux-gnu"));
  checks.push_back(check_built("RVV runner (autovec)", "sattn-rvv-runner-autovec", "clang-16"));
  checks.push_back(check_built("QEMU counting plugin", "libsattn-insn-count.so", "a host C compiler"));
  checks.push_back(check_built("accelerator harness", "sattn-accel-sim-lanes16", "verilator"));
  step("the rvv backend");
  checks.push_back(check_backend(dir.path(), "rvv", "rvv backend (tiny op)",
                                 {"qemu-riscv64 (vector)", "RVV runner (rvv)", "QEMU counting plugin"}, checks));
  step("the rocc backend");
  checks.push_back(check_backend(dir.path(), "rocc", "rocc backend (tiny op)", {"accelerator harness"}, checks));
  // The fast CPU kernels' ISA (run-time dispatch; SATTN_CPU_ISA overrides): broken only when
  // SATTN_CPU_ISA asks for a copy this build or CPU lacks.
  std::string cpu_isa_name;
  std::string cpu_isas;
  for (CpuIsa isa : cpu_isas_available()) cpu_isas += (cpu_isas.empty() ? "" : ", ") + std::string(to_string(isa));
  {
    Check c{"CPU kernels (SATTN_CPU_ISA)", Need::run, "", "ok", "", ""};
    try {
      cpu_isa_name = std::string(to_string(cpu_isa()));
      c.version = cpu_isa_name;
      const char* env = std::getenv("SATTN_CPU_ISA");
      c.detail = std::string(env && *env ? "forced by SATTN_CPU_ISA" : "best of") + "; available: " + cpu_isas;
      if (cpu_isa() == CpuIsa::amx) c.detail += " (amx: the avx512 kernels, bf16 block tiles on AMX)";
    } catch (const Error& e) {
      c.status = "broken";
      c.detail = e.what();
      c.fix = "unset SATTN_CPU_ISA or set it to one of: " + cpu_isas;
    }
    checks.push_back(c);
  }
  step("CUDA GPU");
  const CudaProbe gpu = probe_cuda();  // optional: only --backend cuda needs it
  checks.push_back({"CUDA GPU (--backend cuda)", Need::optional, gpu.version, gpu.status, gpu.detail,
                    "a machine with an NVIDIA GPU and its driver; nvcc when sattn is configured (SATTN_CUDA)"});
  progress.clear();

  const auto counts = [&](const Check& c) { return c.need == Need::run || (o.build && c.need == Need::build); };
  bool required_ok = true, build_ok = true;
  for (const Check& c : checks) {
    required_ok = required_ok && (c.status == "ok" || !counts(c));
    build_ok = build_ok && (c.status == "ok" || c.need != Need::build);
  }
  if (o.out.json()) {
    nlohmann::json j = envelope("doctor", "sattn doctor");
    j["ok"] = required_ok;
    j["libexec_dir"] = libexec_dir();
    j["cpu_isa"] = cpu_isa_name.empty() ? nlohmann::json() : nlohmann::json(cpu_isa_name);
    j["cpu_isas_available"] = nlohmann::json::array();
    for (CpuIsa isa : cpu_isas_available()) j["cpu_isas_available"].push_back(std::string(to_string(isa)));
    for (const Check& c : checks)
      j["checks"].push_back({{"name", c.name}, {"needed", to_string(c.need)}, {"required", counts(c)},
                             {"version", c.version}, {"status", c.status},
                             {"detail", c.detail}, {"fix", c.status == "ok" ? "" : c.fix}});
    write_atomic(o.out.output, j.dump(2) + "\n");
  } else {
    TextTable t({"component", "needed", "status", "version", "detail"});
    std::string fixes;
    for (const Check& c : checks) {
      t.add({c.name, to_string(c.need), c.status, c.version, c.detail});
      if (c.status != "ok") fixes += "  " + c.name + ": " + c.fix + "\n";
    }
    std::string text = t.str();
    text += required_ok ? "\nEverything sattn needs to run is installed and works.\n"
                        : "\nSomething sattn needs to run is missing or broken.\n";
    if (!build_ok && !o.build)
      text += "Building sattn from source needs the missing build tools (sattn doctor --build checks them).\n";
    if (!fixes.empty()) text += "\nTo fix (or run scripts/install-deps from the source tree):\n" + fixes;
    write_atomic(o.out.output, text);
  }
  return required_ok ? 0 : exit_code(ErrorKind::external_tool);
}

}  // namespace

std::function<int()> configure_doctor(CLI::App& app) {
  auto o = std::make_shared<DoctorCli>();
  app.add_option("--qemu", o->qemu, "The qemu-riscv64 to check")->capture_default_str();
  app.add_flag("--build", o->build,
               "Also require the tools that build sattn from source (clang-16, riscv64 gcc, verilator, scdoc)");
  o->out.add_to(app, "Write the report to FILE, atomically",
                "text (a table and the fix commands) or json",
                "No progress on stderr");
  app.footer("Exit status: 0 everything needed to run works (with --build: and to build), 4 otherwise. See man sattn.");
  return [o] { return doctor_action(*o); };
}

}  // namespace sattn

namespace sattn {

std::string version_report() {
  std::string text = version_line("sattn") + "\n";
  text += "built with: " + std::string(
#if defined(__clang__)
                               "clang "
#else
                               "gcc "
#endif
                               __VERSION__) +
          ", CLI11 " CLI11_VERSION ", nlohmann_json " + std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
          std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." + std::to_string(NLOHMANN_JSON_VERSION_PATCH) + "\n";
  text += "libexec: " + libexec_dir() + "\n";
  const std::pair<const char*, std::vector<std::string>> tools[] = {
      {"clang-16", {"--version"}},  {"riscv64-linux-gnu-gcc", {"--version"}}, {"qemu-riscv64", {"--version"}},
      {"verilator", {"--version"}}, {"scdoc", {}}};
  for (const auto& [name, args] : tools) {
    std::string v = name == std::string("scdoc") ? (find_executable("scdoc") ? "found" : "") : version_of(name, args);
    text += std::string(name) + ": " + (v.empty() ? "not found" : v) + "\n";
  }
  return text;
}

}  // namespace sattn
