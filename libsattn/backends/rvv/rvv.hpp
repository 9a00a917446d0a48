// The RVV backend's host side (DESIGN §5 "RVV"): prepare a runner work directory, run one
// riscv64 runner under qemu-riscv64, read its output back. The runners are static riscv64
// executables built from libsattn/rvv/ (see libsattn/rvv/README.md for the work-directory
// contract); sattn-run-rvv adds instruction counting (a QEMU plugin) and the cycle model.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sattn/layout.hpp"
#include "sattn/op.hpp"
#include "core/quant.hpp"
#include "core/synthetic.hpp"
#include "sattn/tensor.hpp"

namespace sattn::rvv {

// rvv: RVV 1.0 intrinsics (clang-16). scalar: the scalar twins (riscv64 GCC 12).
// autovec: the scalar source compiled by clang-16 -O3 -march=rv64gcv.
enum class Kernel { rvv, scalar, autovec };
const char* to_string(Kernel);
std::optional<Kernel> parse_kernel(const std::string&);

struct RunnerJob {
  Kernel kernel = Kernel::rvv;
  int vlen = 256;     // bits: 128, 256, 512 or 1024
  int tile_rows = 0;  // query rows per tile; 0 = the kernel's default
  int lmul = 0;       // 1, 2, 4 or 8; 0 = the kernel's default
  std::string qemu = "qemu-riscv64";
  // Extra qemu-riscv64 arguments placed before the runner (e.g. "-plugin", "PATH,ARGS").
  std::vector<std::string> qemu_args;
  double timeout_s = 600;
};

struct RunnerOutput {
  Tensor out;              // o.npy: float32 [batch, heads, seq_len, head_dim]
  nlohmann::json runner;   // runner.json: what the runner ran (see libsattn/rvv/README.md)
  std::string workdir;
};

// Writes job.txt, q/k/v.npy (at the op's precision: float32, bf16 bits, int8, or packed int4,
// quantized with `scales`) and the layout arrays into `dir` (which must exist).
void write_workdir(const std::string& dir, const Op&, const Layout&, const QKV&, const Scales&, const RunnerJob&);

// Runs the job's runner in `dir` under qemu-riscv64 -cpu rv64,v=true,vlen=N,vext_spec=v1.0 and
// reads o.npy and runner.json. Throws Error(external_tool) when qemu or the runner is missing
// (the message carries the apt-get command that fixes it), or when qemu crashes or times out
// (the message carries the tail of its stderr); Error(invalid_input) when the runner rejects
// its input.
RunnerOutput run_runner(const std::string& dir, const Op&, const RunnerJob&);

// Where the runner of a kernel variant lives: libexec_dir()/sattn-rvv-runner-<kernel>.
std::string runner_path(Kernel);

}  // namespace sattn::rvv
