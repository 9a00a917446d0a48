// The RVV backend's host side: a runner work directory (job.txt, q/k/v at the op's precision,
// the layout arrays) and one run of a riscv64 runner under qemu-riscv64. The contract is in
// libsattn/rvv/README.md; the runner's side is libsattn/rvv/runner/.
#include "backends/rvv/rvv.hpp"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/quant_scheme.hpp"
#include "sattn/error.hpp"
#include "support/io.hpp"
#include "formats/npy.hpp"
#include "support/process.hpp"

namespace sattn::rvv {

const char* to_string(Kernel k) {
  switch (k) {
    case Kernel::rvv: return "rvv";
    case Kernel::scalar: return "scalar";
    case Kernel::autovec: return "autovec";
  }
  return "?";
}

std::optional<Kernel> parse_kernel(const std::string& s) {
  for (Kernel k : {Kernel::rvv, Kernel::scalar, Kernel::autovec})
    if (s == to_string(k)) return k;
  return std::nullopt;
}

std::string runner_path(Kernel k) { return libexec_dir() + "/sattn-rvv-runner-" + to_string(k); }

namespace {

// The shortest text that strtof reads back as the same float (the kernels compute in fp32).
std::string exact_float(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<float>(v));
  return std::string(buf, end);
}

NpyArray bytes_array(DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  NpyArray a;
  a.dtype = dtype;
  a.shape = std::move(shape);
  a.bytes = std::move(bytes);
  return a;
}

// A tensor in the storage form of `p`: float32, bf16 bits, int8, or int4 packed per row
// (ceil(head_dim / 2) bytes, low nibble first), quantized with `scale`.
NpyArray storage_array(const Tensor& t, Precision p, float scale) {
  const std::vector<int64_t> shape{t.shape[0], t.shape[1], t.shape[2], t.shape[3]};
  switch (p) {
    case Precision::fp32: return tensor_to_npy(t);
    case Precision::bf16: {
      std::vector<uint8_t> bytes(t.data.size() * 2);
      for (size_t n = 0; n < t.data.size(); ++n) {
        const uint16_t h = float_to_bf16(t.data[n]);
        std::memcpy(bytes.data() + 2 * n, &h, 2);
      }
      return bytes_array(DType::u16, shape, std::move(bytes));
    }
    case Precision::i8: {
      std::vector<uint8_t> bytes(t.data.size());
      for (size_t n = 0; n < t.data.size(); ++n) bytes[n] = static_cast<uint8_t>(quantize(t.data[n], scale, p));
      return bytes_array(DType::i8, shape, std::move(bytes));
    }
    case Precision::i4: {
      const int64_t hd = t.shape[3], rows = t.shape[0] * t.shape[1] * t.shape[2], packed = (hd + 1) / 2;
      std::vector<uint8_t> bytes;
      bytes.reserve(static_cast<size_t>(rows * packed));
      std::vector<int8_t> row(static_cast<size_t>(hd));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t d = 0; d < hd; ++d) row[size_t(d)] = quantize(t.data[size_t(r * hd + d)], scale, p);
        const std::vector<uint8_t> pk = pack_i4(row);
        bytes.insert(bytes.end(), pk.begin(), pk.end());
      }
      return bytes_array(DType::u8, {shape[0], shape[1], shape[2], packed}, std::move(bytes));
    }
  }
  throw_runtime_error("storage_array: unknown precision");
}

void check_tensor(const Tensor& t, std::array<int64_t, 4> want, const char* what) {
  if (t.shape != want)
    throw Error(ExitCode::invalid_input, std::string("RVV runner job: ") + what + " has shape [" +
                                             std::to_string(t.shape[0]) + ", " + std::to_string(t.shape[1]) + ", " +
                                             std::to_string(t.shape[2]) + ", " + std::to_string(t.shape[3]) +
                                             "], which does not match the op");
}

// Integer codes [rows, dim] in storage form: int8, or packed int4 rows (ceil(dim / 2) bytes).
NpyArray code_array(const std::vector<int8_t>& codes, std::array<int64_t, 4> shape, bool i4) {
  if (!i4) return bytes_array(DType::i8, {shape[0], shape[1], shape[2], shape[3]}, std::vector<uint8_t>(codes.begin(), codes.end()));
  const int64_t hd = shape[3], rows = shape[0] * shape[1] * shape[2];
  std::vector<uint8_t> bytes;
  bytes.reserve(size_t(rows * ((hd + 1) / 2)));
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> pk = pack_i4(std::span<const int8_t>(codes.data() + r * hd, size_t(hd)));
    bytes.insert(bytes.end(), pk.begin(), pk.end());
  }
  return bytes_array(DType::u8, {shape[0], shape[1], shape[2], (hd + 1) / 2}, std::move(bytes));
}

// The quantization scheme's part of a work directory (attn.h "scheme tables"): Q and K codes, V
// at the P.V precision (int16 for fix16, int8 for i8, else the op's precision), the scales
// expanded per row, and with Q smoothing the Q means and the smoothed K in fp32. Returns the
// job.txt lines. Everything is computed by quantize_qkv, as for the cpu backend and the
// same-quantized reference (K smoothing, the Hadamard rotation and the dynamic scales happen here,
// on the host, before the kernel: sattn-quant(7)).
std::string write_scheme_arrays(const std::string& dir, const Op& op, const QuantScheme& scheme, const QKV& qkv) {
  const QuantizedQKV z = quantize_qkv(op, scheme, qkv.q, qkv.k, qkv.v);
  const Shape& s = op.shape;
  const bool i4 = op.precision == Precision::i4;
  const int64_t d = s.head_dim;
  write_npy(dir + "/q.npy", code_array(z.q_codes, {s.batch, s.heads, s.seq_len, d}, i4));
  write_npy(dir + "/k.npy", code_array(z.k_codes, {s.batch, s.kv_heads, s.kv_len, d}, i4));
  const std::array<int64_t, 4> kv_shape{s.batch, s.kv_heads, s.kv_len, d};
  int v_bits = 0;
  if (scheme.pv == PvPrecision::fix16) {
    v_bits = 16;
    std::vector<uint8_t> bytes(z.v_codes.size() * 2);
    std::memcpy(bytes.data(), z.v_codes.data(), bytes.size());
    write_npy(dir + "/v.npy", bytes_array(DType::i16, {kv_shape.begin(), kv_shape.end()}, std::move(bytes)));
  } else {
    std::vector<int8_t> codes;
    if (scheme.pv == PvPrecision::i8) {
      codes.assign(z.v_codes.begin(), z.v_codes.end());
    } else {  // pv fp32: V quantized at the op's precision; the codes are v_dequant / v_scale
      codes.resize(z.v_dequant.size());
      for (size_t e = 0; e < codes.size(); ++e) {
        const float sc = z.v_scale[(e / size_t(d * s.kv_len)) * size_t(d) + e % size_t(d)];
        codes[e] = static_cast<int8_t>(std::lround(z.v_dequant[e] / sc));
      }
    }
    v_bits = scheme.pv == PvPrecision::i8 || !i4 ? 8 : 4;
    write_npy(dir + "/v.npy", code_array(codes, kv_shape, v_bits == 4));
  }
  write_npy(dir + "/q_scale.npy", make_npy(std::span<const float>(z.q_scale), {s.batch, s.heads, s.seq_len}));
  write_npy(dir + "/k_scale.npy", make_npy(std::span<const float>(z.k_scale), {s.batch, s.kv_heads, s.kv_len}));
  write_npy(dir + "/v_scale.npy", make_npy(std::span<const float>(z.v_scale), {s.batch, s.kv_heads, d}));
  int64_t mean_block = 0;
  if (scheme.smooth_q) {
    mean_block = scheme.block;
    const int64_t blocks = (s.seq_len + mean_block - 1) / mean_block;
    write_npy(dir + "/q_mean.npy", make_npy(std::span<const float>(z.q_mean), {s.batch, s.heads, blocks, d}));
    write_npy(dir + "/k_smooth.npy", make_npy(std::span<const float>(z.k_smooth), {s.batch, s.kv_heads, s.kv_len, d}));
  }
  return "scheme = 1\np_max = " + std::to_string(z.p_max) + "\nv_bits = " + std::to_string(v_bits) +
         "\nmean_block = " + std::to_string(mean_block) + "\n";
}

}  // namespace

void write_workdir(const std::string& dir, const Op& op, const Layout& layout, const QKV& qkv, const Scales& scales,
                   const RunnerJob& job) {
  const Shape& s = op.shape;
  check_tensor(qkv.q, {s.batch, s.heads, s.seq_len, s.head_dim}, "q");
  check_tensor(qkv.k, {s.batch, s.kv_heads, s.kv_len, s.head_dim}, "k");
  check_tensor(qkv.v, {s.batch, s.kv_heads, s.kv_len, s.head_dim}, "v");
  if (layout.rows != s.seq_len || layout.cols != s.kv_len)
    throw Error(ExitCode::invalid_input, "RVV runner job: the layout is " + std::to_string(layout.rows) + " x " +
                                             std::to_string(layout.cols) + ", the op " + std::to_string(s.seq_len) +
                                             " x " + std::to_string(s.kv_len));
  const int64_t layouts = layout.shared ? 1 : s.batch * s.kv_heads;
  if (int64_t(layout.heads.size()) != layouts)
    throw Error(ExitCode::invalid_input, "RVV runner job: the layout holds " + std::to_string(layout.heads.size()) +
                                             " head layouts, expected " + std::to_string(layouts));
  const bool integer = op.precision == Precision::i8 || op.precision == Precision::i4;
  // i8/i4: the op's scheme (quant_scheme_of: its quant_scheme, else the recommended one); the
  // per-tensor one keeps the historical job (scale_q/k/v in job.txt).
  const bool scheme = integer && !quant_scheme_of(op).is_per_tensor();

  std::ostringstream txt;
  txt << "# sattn RVV runner job (libsattn/rvv/README.md)\n"
      << "kind = " << (layout.block ? "block" : "row") << "\n"
      << "precision = " << sattn::to_string(op.precision) << "\n"
      << "batch = " << s.batch << "\nheads = " << s.heads << "\nkv_heads = " << s.kv_heads << "\n"
      << "seq_len = " << s.seq_len << "\nkv_len = " << s.kv_len << "\nhead_dim = " << s.head_dim << "\n"
      << "causal = " << (layout.causal ? 1 : 0) << "\ncausal_offset = " << layout.causal_offset << "\n"
      << "block_size = " << (layout.block ? layout.block_size : 1) << "\nlayouts = " << layouts << "\n"
      << "softmax_scale = " << exact_float(op.softmax_scale()) << "\n"
      << "scale_q = " << exact_float(integer && !scheme ? scales.q : 1.0) << "\n"
      << "scale_k = " << exact_float(integer && !scheme ? scales.k : 1.0) << "\n"
      << "scale_v = " << exact_float(integer && !scheme ? scales.v : 1.0) << "\n"
      << "tile_rows = " << job.tile_rows << "\nlmul = " << job.lmul << "\n";
  if (scheme) {
    txt << write_scheme_arrays(dir, op, quant_scheme_of(op), qkv);
  } else {
    write_npy(dir + "/q.npy", storage_array(qkv.q, op.precision, scales.q));
    write_npy(dir + "/k.npy", storage_array(qkv.k, op.precision, scales.k));
    write_npy(dir + "/v.npy", storage_array(qkv.v, op.precision, scales.v));
  }
  write_atomic(dir + "/job.txt", txt.str());

  // The layout arrays as sattn-emit writes them: pointers global across layouts.
  const int64_t rows = layout.block ? layout.block_rows() : layout.rows;
  std::vector<int64_t> ptr;
  std::vector<int32_t> idx;
  ptr.reserve(size_t(layouts * (rows + 1)));
  for (const HeadLayout& hl : layout.heads) {
    if (int64_t(hl.ptr.size()) != rows + 1)
      throw Error(ExitCode::invalid_input, "RVV runner job: a head layout has " + std::to_string(hl.ptr.size()) +
                                               " row pointers, expected " + std::to_string(rows + 1));
    const int64_t base = int64_t(idx.size()) - hl.ptr[0];
    for (int64_t p : hl.ptr) ptr.push_back(p + base);
    idx.insert(idx.end(), hl.idx.begin() + hl.ptr[0], hl.idx.begin() + hl.ptr[size_t(rows)]);
  }
  write_npy(dir + (layout.block ? "/block_row_ptr.npy" : "/row_ptr.npy"), make_npy(std::span<const int64_t>(ptr), {layouts, rows + 1}));
  write_npy(dir + (layout.block ? "/block_col_idx.npy" : "/col_idx.npy"),
            make_npy(std::span<const int32_t>(idx), {int64_t(idx.size())}));
}

RunnerOutput run_runner(const std::string& dir, const Op& op, const RunnerJob& job) {
  if (job.vlen != 128 && job.vlen != 256 && job.vlen != 512 && job.vlen != 1024)
    throw Error(ExitCode::invalid_input, "VLEN " + std::to_string(job.vlen) + " is not supported: use 128, 256, 512 or 1024");
  const std::string runner = runner_path(job.kernel);
  if (access(runner.c_str(), X_OK) != 0)
    throw Error(ExitCode::external_tool,
                "the RVV runner " + runner + " is missing: it is built with the project when clang-16 and the GNU "
                "riscv64 toolchain are installed (apt-get install clang-16 gcc-riscv64-linux-gnu, then rebuild), "
                "or set SATTN_LIBEXEC_DIR to where it lies");
  const std::optional<std::string> qemu = find_executable(job.qemu);
  if (!qemu)
    throw Error(ExitCode::external_tool, job.qemu + " not found: install it (apt-get install qemu-user)");

  std::vector<std::string> argv{*qemu, "-cpu", "rv64,v=true,vlen=" + std::to_string(job.vlen) + ",vext_spec=v1.0"};
  argv.insert(argv.end(), job.qemu_args.begin(), job.qemu_args.end());
  argv.push_back(runner);
  argv.push_back(dir);
  const ProcessResult r = run_process(argv, job.timeout_s);
  const std::string what = std::string("sattn-rvv-runner-") + to_string(job.kernel) + " under " + job.qemu;
  if (r.exit_code == 3 && !r.timed_out && r.signal == 0)
    throw Error(ExitCode::invalid_input, what + " rejected its input: " + r.err_tail(3));
  if (!r.ok()) {
    const std::string tail = r.err_tail(10);
    throw Error(ExitCode::external_tool, what + " failed (" + r.describe(job.timeout_s) + ")" +
                                             (tail.empty() ? std::string() : ":\n" + tail) +
                                             "\n(run 'sattn doctor' to check qemu-riscv64 and the runners)");
  }

  RunnerOutput out;
  out.workdir = dir;
  const std::string o_path = dir + "/o.npy";
  if (!std::filesystem::exists(o_path))  // e.g. --qemu /bin/true: "succeeded" without running anything
    throw Error(ExitCode::external_tool, what + " exited 0 but wrote no output (o.npy)" +
                                             "\n(run 'sattn doctor' to check qemu-riscv64 and the runners)");
  out.out = npy_to_tensor(read_npy(o_path), o_path);
  const Shape& s = op.shape;
  const std::array<int64_t, 4> want{s.batch, s.heads, s.seq_len, s.head_dim};
  if (out.out.shape != want)
    throw Error(ExitCode::external_tool, o_path + ": the runner wrote an output of the wrong shape");
  const std::string json_path = dir + "/runner.json";
  try {
    out.runner = nlohmann::json::parse(read_text(json_path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ExitCode::external_tool, json_path + ": the runner wrote malformed JSON: " + e.what());
  }
  return out;
}

}  // namespace sattn::rvv
