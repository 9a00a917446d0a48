// The fast fused CPU kernel (DESIGN §5 "CPU"): checks the inputs, applies the op's precision,
// then runs one task per (batch, head, row tile) on a small thread pool (run_tasks, also used by
// the backward in kernel_fast_backward.cpp). The tasks themselves are
// in kernel_fast_block.cpp (BSR) and kernel_fast_row.cpp (CSR, integer datapath).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <numeric>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "backends/cpu/kernel_fast_internal.hpp"
#include "layout/blas_threads.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "core/quant.hpp"
#include "core/quant_scheme.hpp"
#include "support/process.hpp"

#if SATTN_CPU_DISPATCH && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace sattn {

namespace fast {

namespace {

std::string shape_str(const std::array<int64_t, 4>& s) {
  return "[" + std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) + ", " +
         std::to_string(s[3]) + "]";
}

}  // namespace

void check_view(const char* who, const char* name, const TensorView& t, const std::array<int64_t, 4>& want) {
  if (t.shape != want)
    throw Error(ExitCode::invalid_input, std::string(who) + ": " + name + " has shape " + shape_str(t.shape) +
                                             ", the op needs " + shape_str(want));
  if (!t.data && t.size() > 0) throw Error(ExitCode::invalid_input, std::string(who) + ": " + name + " has no data");
}

void check_layout(const char* who, const Op& op, const Layout& layout, std::vector<uint8_t>* same_as_previous,
                  int threads) {
  const Shape& s = op.shape;
  const std::string w(who);
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    throw Error(ExitCode::invalid_input, w + ": heads must be a multiple of kv_heads");
  if (layout.rows != s.seq_len || layout.cols != s.kv_len)
    throw Error(ExitCode::invalid_input, w + ": layout is " + std::to_string(layout.rows) + " x " +
                                             std::to_string(layout.cols) + ", the op is " + std::to_string(s.seq_len) +
                                             " x " + std::to_string(s.kv_len));
  if (layout.block_size < 1) throw Error(ExitCode::invalid_input, w + ": layout block_size < 1");
  if (!layout.shared && (layout.batch != s.batch || layout.kv_heads != s.kv_heads))
    throw Error(ExitCode::invalid_input, w + ": layout is for batch " + std::to_string(layout.batch) + " x " +
                                             std::to_string(layout.kv_heads) + " kv heads, the op has " +
                                             std::to_string(s.batch) + " x " + std::to_string(s.kv_heads));
  const size_t want_heads = layout.shared ? 1 : static_cast<size_t>(s.batch * s.kv_heads);
  if (layout.heads.size() < want_heads)
    throw Error(ExitCode::invalid_input, w + ": layout has " + std::to_string(layout.heads.size()) +
                                             " head layouts, the op needs " + std::to_string(want_heads));
  const int64_t lists = layout.block ? layout.block_rows() : layout.rows;
  const int64_t limit = layout.block ? layout.block_cols() : layout.cols;
  const Kernels& kernels = cpu_kernels();
  if (same_as_previous) same_as_previous->assign(layout.block ? 0 : layout.heads.size() * size_t(lists), 0);
  for (const HeadLayout& head : layout.heads) {
    if (head.ptr.size() != static_cast<size_t>(lists + 1) || head.ptr.front() != 0 ||
        head.ptr.back() != static_cast<int64_t>(head.idx.size()))
      throw Error(ExitCode::invalid_input, w + ": layout index arrays are inconsistent");
    for (int64_t r = 0; r < lists; ++r)
      if (head.ptr[r + 1] < head.ptr[r]) throw Error(ExitCode::invalid_input, w + ": layout ptr is not ascending");
  }
  // Each list strictly ascending in [0, limit): a pass over every pair (memory-bound on long
  // layouts), at the vector width of the selected ISA copy, on `threads` threads in blocks of
  // rows, before any output is written.
  constexpr int64_t kCheckRows = 512;
  const int64_t blocks = (lists + kCheckRows - 1) / kCheckRows;
  const auto head_count = int64_t(layout.heads.size());
  std::vector<uint8_t> ok(size_t(head_count * blocks), 1);
  auto check_block = [&](int64_t, int64_t task) {
    const int64_t h = task / blocks, r0 = task % blocks * kCheckRows;
    const HeadLayout& head = layout.heads[size_t(h)];
    uint8_t* same = same_as_previous && !layout.block ? same_as_previous->data() + size_t(h) * size_t(lists) : nullptr;
    ok[size_t(task)] = kernels.lists_ok(head, r0, std::min(lists, r0 + kCheckRows), limit, same);
  };
  const int64_t tasks = head_count * blocks;
  const int64_t pairs = std::accumulate(layout.heads.begin(), layout.heads.end(), int64_t{0},
                                        [](int64_t a, const HeadLayout& h) { return a + int64_t(h.idx.size()); });
  if (const int64_t workers = worker_count(threads, tasks); workers > 1 && pairs >= (int64_t{1} << 18))
    run_tasks(workers, tasks, check_block);
  else
    for (int64_t t = 0; t < tasks; ++t) check_block(0, t);
  if (std::find(ok.begin(), ok.end(), uint8_t{0}) != ok.end())
    throw Error(ExitCode::invalid_input, w + ": layout indices must be ascending and in [0, " +
                                             std::to_string(limit) + ")");
}

void check_disjoint(const char* who, const char* a_name, const float* a, int64_t a_count, const char* b_name,
                    const float* b, int64_t b_count) {
  if (!a || !b || a_count <= 0 || b_count <= 0) return;
  const auto a0 = reinterpret_cast<uintptr_t>(a), b0 = reinterpret_cast<uintptr_t>(b);
  const uintptr_t a1 = a0 + uintptr_t(a_count) * sizeof(float), b1 = b0 + uintptr_t(b_count) * sizeof(float);
  if (a0 < b1 && b0 < a1)
    throw Error(ExitCode::invalid_input, std::string(who) + ": " + a_name + " overlaps " + b_name +
                                             " (outputs must not alias inputs)");
}

int64_t worker_count(int threads_option, int64_t tasks) {
  int64_t threads = threads_option > 0 ? threads_option : int64_t(std::thread::hardware_concurrency());
  return std::clamp<int64_t>(threads, 1, std::max<int64_t>(tasks, 1));
}

void run_tasks(int64_t threads, int64_t tasks, const std::function<void(int64_t, int64_t)>& work,
               const std::function<void(int64_t, int64_t)>& progress) {
  std::atomic<int64_t> next_task{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const CancelScope* cancel = CancelScope::current();  // the caller's cancellation, for every worker
  std::atomic<int64_t> tasks_done{0};                   // for progress (reported by the caller's thread)
  const int64_t report_every = std::max<int64_t>(1, tasks / 200);
  auto worker = [&](int64_t id) {
    const CancelScope adopt(CancelScope::Adopt{}, cancel);
    try {
      for (int64_t t = next_task.fetch_add(1); t < tasks; t = next_task.fetch_add(1), tasks_done.fetch_add(1)) {
        throw_if_interrupted();  // cancelled: stop at the next task
        if (id == 0 && progress && t % report_every == 0) progress(tasks_done.load(), tasks);
        work(id, t);
      }
    } catch (...) {
      const std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next_task.store(tasks);  // stop the other workers early
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int64_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker, t);
    } catch (const std::system_error&) {
      break;  // no more threads available: the ones we have share the tasks
    }
  }
  worker(0);
  for (std::thread& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
  if (progress) progress(tasks, tasks);
}

#if SATTN_CPU_DISPATCH
namespace avx2 {
extern const Kernels kernels;
}
namespace avx512 {
extern const Kernels kernels;
}
#endif

namespace {

#if SATTN_CPU_AMX
// AMX for the bf16 tiles: CPUID leaf 7 (EDX bits 22 AMX-BF16 and 24 AMX-TILE; subleaf 1 EAX bit 5
// AVX512-BF16), XCR0 bits 17-18 (the OS saves the tile configuration and data), and on Linux the
// process's permission to use the tile data (XFEATURE_XTILEDATA = 18): asked once with
// ARCH_REQ_XCOMP_PERM and read back with ARCH_GET_XCOMP_PERM; a kernel that refuses (or predates
// the call, < 5.16) leaves the avx512 copy.
bool amx_usable() {
  static const bool usable = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return false;
    __cpuid_count(7, 1, a, b, c, d);
    if (!(a & (1u << 5))) return false;
    __cpuid(1, a, b, c, d);
    if (!(c & (1u << 27))) return false;  // OSXSAVE: xgetbv is allowed
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & (3u << 17)) != (3u << 17)) return false;
#if defined(__linux__)
    constexpr long kArchGetXcompPerm = 0x1022, kArchReqXcompPerm = 0x1023, kXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXtiledata) != 0) return false;
    unsigned long long permitted = 0;
    if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &permitted) != 0) return false;
    return (permitted & (1ull << kXtiledata)) != 0;
#else
    return false;  // no known way to ask for the tile state
#endif
  }();
  return usable;
}
#endif

bool cpu_has(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::baseline:
      return true;
#if SATTN_CPU_DISPATCH
    // x86-64-v3 and x86-64-v4, the -march levels the copies are built for (libgcc's check also
    // asks the OS whether it saves the AVX / AVX-512 registers).
    // (clang-16, the fuzz build's compiler, does not know "f16c"; no AVX2+FMA+BMI2 CPU lacks it.)
    case CpuIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
#if !defined(__clang__)
             __builtin_cpu_supports("f16c") &&
#endif
             __builtin_cpu_supports("bmi2");
    case CpuIsa::avx512:
      return cpu_has(CpuIsa::avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
    case CpuIsa::amx:
#if SATTN_CPU_AMX
      return cpu_has(CpuIsa::avx512) && amx_usable();
#else
      return false;
#endif
#else
    default:
      return false;
#endif
  }
  return false;
}

bool compiled(CpuIsa isa) {
#if SATTN_CPU_DISPATCH
#if SATTN_CPU_AMX
  (void)isa;
  return true;
#else
  return isa != CpuIsa::amx;  // the compiler had no AMX flags
#endif
#else
  return isa == CpuIsa::baseline;
#endif
}

const Kernels& kernels_of(CpuIsa isa) {
#if SATTN_CPU_DISPATCH
  if (isa == CpuIsa::amx) {  // the avx512 copy; its BSR driver runs bf16 tiles on AMX (Problem::amx_bf16)
    static const Kernels amx_kernels = [] {
      Kernels k = avx512::kernels;
      k.isa = CpuIsa::amx;
      return k;
    }();
    return amx_kernels;
  }
  if (isa == CpuIsa::avx512) return avx512::kernels;
  if (isa == CpuIsa::avx2) return avx2::kernels;
#endif
  (void)isa;
  return baseline::kernels;
}

CpuIsa choose_isa() {
  const char* env = std::getenv("SATTN_CPU_ISA");
  if (env && *env) {
    const std::string want(env);
    for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512, CpuIsa::amx}) {
      if (want != to_string(isa)) continue;
      if (!compiled(isa))
        throw Error(ErrorKind::invalid_input,
                    "SATTN_CPU_ISA=" + want + ": this build has no " + want + " kernels (" +
                        (isa == CpuIsa::amx && compiled(CpuIsa::avx512) ? "its compiler had no AMX flags"
                                                                        : "baseline only") + ")");
      if (!cpu_has(isa))
        throw Error(ErrorKind::invalid_input, "SATTN_CPU_ISA=" + want + ": this CPU does not support " + want +
                                                  " (available: " +
                                                  [] {
                                                    std::string list;
                                                    for (CpuIsa a : cpu_isas_available())
                                                      list += (list.empty() ? "" : ", ") + std::string(to_string(a));
                                                    return list;
                                                  }() + ")");
      return isa;
    }
    throw Error(ErrorKind::invalid_input,
                "SATTN_CPU_ISA=" + want + ": unknown ISA (expected baseline, avx2, avx512 or amx)");
  }
  return cpu_isas_available().back();
}

}  // namespace

const Kernels& cpu_kernels() { return kernels_of(cpu_isa()); }

bool fused_block_tiles() {
  // Read on every call (cheap next to a kernel run), so a test can compare both tiles in-process.
  const char* env = std::getenv("SATTN_CPU_BLOCK_KERNEL");
  if (!env || !*env || std::string(env) == "fused") return true;
  if (std::string(env) == "gemm") return false;
  throw Error(ErrorKind::invalid_input,
              "SATTN_CPU_BLOCK_KERNEL=" + std::string(env) + ": unknown block kernel (expected fused or gemm)");
}

bool amx_bf16_tiles(const Op& op, const Layout& layout) {
  return op.precision == Precision::bf16 && cpu_isa() == CpuIsa::amx && layout.block && layout.block_size >= 16 &&
         op.shape.head_dim % 32 == 0 && op.shape.head_dim > 0 && op.softmax_scale() > 0 && fused_block_tiles();
}

bool packed_csr_tiles() {
  const char* env = std::getenv("SATTN_CPU_CSR_KERNEL");
  if (!env || !*env || std::string(env) == "packed") return true;
  if (std::string(env) == "legacy") return false;
  throw Error(ErrorKind::invalid_input,
              "SATTN_CPU_CSR_KERNEL=" + std::string(env) + ": unknown CSR kernel (expected packed or legacy)");
}

}  // namespace fast

std::string_view to_string(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::baseline: return "baseline";
    case CpuIsa::avx2: return "avx2";
    case CpuIsa::avx512: return "avx512";
    case CpuIsa::amx: return "amx";
  }
  return "?";
}

std::vector<CpuIsa> cpu_isas_available() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512, CpuIsa::amx})
    if (fast::compiled(isa) && fast::cpu_has(isa)) out.push_back(isa);
  return out;
}

CpuIsa cpu_isa() {
  // Decided once; a bad SATTN_CPU_ISA throws on every call (not only the first).
  static const std::optional<CpuIsa> chosen = []() -> std::optional<CpuIsa> {
    try {
      return fast::choose_isa();
    } catch (const Error&) {
      return std::nullopt;
    }
  }();
  if (!chosen) return fast::choose_isa();  // throws the message
  return *chosen;
}

void fast_attention_backward(const Op& op, const Layout& layout, TensorView q, TensorView k, TensorView v,
                             TensorView out, TensorView dout, const float* lse, MutableTensorView dq,
                             MutableTensorView dk, MutableTensorView dv, const FastOptions& options) {
  fast::cpu_kernels().backward(op, layout, q, k, v, out, dout, lse, dq, dk, dv, options);
}

namespace {

std::vector<int8_t> quantize_all(const TensorView& t, float scale, Precision p) {
  std::vector<int8_t> out(static_cast<size_t>(t.size()));
  for (size_t e = 0; e < out.size(); ++e) out[e] = quantize(t.data[e], scale, p);
  return out;
}

std::vector<float> converted(const TensorView& t, Precision p, float scale) {
  std::vector<float> out(static_cast<size_t>(t.size()));
  for (size_t e = 0; e < out.size(); ++e) {
    const float x = t.data[e];
    out[e] = p == Precision::bf16 ? bf16_to_float(float_to_bf16(x)) : float(quantize(x, scale, p)) * scale;
  }
  return out;
}

}  // namespace

void fast_attention_into(const Op& op, const Layout& layout, TensorView q, TensorView k, TensorView v,
                         MutableTensorView out, float* lse, const FastOptions& options) {
  constexpr const char* who = "fast_attention";
  const Shape& s = op.shape;
  std::vector<uint8_t> same_as_previous;
  fast::check_layout(who, op, layout, &same_as_previous, options.threads);
  const std::array<int64_t, 4> q_shape{s.batch, s.heads, s.seq_len, s.head_dim};
  const std::array<int64_t, 4> kv_shape{s.batch, s.kv_heads, s.kv_len, s.head_dim};
  fast::check_view(who, "q", q, q_shape);
  fast::check_view(who, "k", k, kv_shape);
  fast::check_view(who, "v", v, kv_shape);
  fast::check_view(who, "out", out, q_shape);
  const int64_t rows = s.batch * s.heads * s.seq_len;
  for (const auto& [name, in] : {std::pair{"q", q}, std::pair{"k", k}, std::pair{"v", v}}) {
    fast::check_disjoint(who, "out", out.data, out.size(), name, in.data, in.size());
    fast::check_disjoint(who, "lse", lse, rows, name, in.data, in.size());
  }
  fast::check_disjoint(who, "lse", lse, rows, "out", out.data, out.size());
  if (out.size() == 0) return;

  fast::Problem p;
  p.layout = &layout;
  p.batch = s.batch;
  p.heads = s.heads;
  p.kv_heads = s.kv_heads;
  p.group = s.group_size();
  p.seq_len = s.seq_len;
  p.kv_len = s.kv_len;
  p.dim = s.head_dim;
  if (op.attrs.tile_rows && *op.attrs.tile_rows > 0) p.tile_rows = *op.attrs.tile_rows;
  p.score_scale = static_cast<float>(op.softmax_scale() * 1.4426950408889634);  // exp2 domain
  p.softcap2 = static_cast<float>(op.softcap.value_or(0) * 1.4426950408889634);
  p.fused = fast::fused_block_tiles();
  p.csr_fused = fast::packed_csr_tiles();
  p.out = out.data;
  p.lse = lse;
  p.same_as_previous = layout.block ? nullptr : same_as_previous.data();

  // Precision: what the kernels read. fp32 reads the caller's memory; bf16 and i8/i4 work on
  // converted copies.
  std::vector<float> q_conv, k_conv, v_conv;
  std::vector<int8_t> q_int, k_int;
  std::vector<uint16_t> k_bf16, vt_bf16;
  std::optional<QuantizedQKV> quantized;
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  switch (op.precision) {
    case Precision::fp32: break;
    case Precision::bf16:
#if SATTN_CPU_AMX
      if (fast::amx_bf16_tiles(op, layout)) {
        // AMX tiles read bf16 codes: K row-major (16 zero rows after it), V^T in panels of 32 keys,
        // converted per head on the worker threads; Q rounded in fp32.
        const int64_t heads_kv = s.batch * s.kv_heads, dim = s.head_dim;
        p.vt_head_size = (s.kv_len + 31) / 32 * 32 * dim;
        q_conv.resize(size_t(q.size()));
        k_bf16.resize(size_t(k.size() + 16 * dim));
        std::fill(k_bf16.end() - 16 * dim, k_bf16.end(), uint16_t{0});
        vt_bf16.resize(size_t(heads_kv * p.vt_head_size));
        const int64_t q_heads = s.batch * s.heads, q_head_size = s.seq_len * dim;
        fast::run_tasks(fast::worker_count(options.threads, heads_kv + q_heads), heads_kv + q_heads,
                        [&](int64_t, int64_t t) {
                          if (t >= heads_kv) {
                            const int64_t qh = t - heads_kv;
                            fast::amx::round_to_bf16(q.data + qh * q_head_size, q_head_size,
                                                     q_conv.data() + qh * q_head_size);
                            return;
                          }
                          fast::amx::prepare_head(k.data + t * s.kv_len * dim, v.data + t * s.kv_len * dim, s.kv_len,
                                                  dim, k_bf16.data() + t * s.kv_len * dim,
                                                  vt_bf16.data() + t * p.vt_head_size);
                        });
        p.amx_bf16 = true;
        p.q = q_conv.data();
        // p.k, p.v stay the caller's fp32 K and V: the block driver forms its head pointers from
        // them (offsets from a null pointer would be undefined) but reads only k_bf16 / vt_bf16.
        p.k_bf16 = k_bf16.data();
        p.vt_bf16 = vt_bf16.data();
        break;
      }
#endif
      q_conv = converted(q, Precision::bf16, 1.0f);
      k_conv = converted(k, Precision::bf16, 1.0f);
      v_conv = converted(v, Precision::bf16, 1.0f);
      p.q = q_conv.data();
      p.k = k_conv.data();
      p.v = v_conv.data();
      break;
    case Precision::i8:
    case Precision::i4: {
      if (const QuantScheme scheme = quant_scheme_of(op); !scheme.is_per_tensor()) {
        quantized = quantize_qkv(op, scheme, q, k, v);
        p.integer = true;
        p.quant = &*quantized;
        if (quantized->p_max > 0) {  // the P.V kernel reads V codes as floats (exact)
          v_conv.assign(quantized->v_codes.begin(), quantized->v_codes.end());
          p.quant_v = v_conv.data();
        }
        break;
      }
      const Scales scales = resolve_scales(op, {q.data, size_t(q.size())}, {k.data, size_t(k.size())},
                                           {v.data, size_t(v.size())});
      q_int = quantize_all(q, scales.q, op.precision);
      k_int = quantize_all(k, scales.k, op.precision);
      v_conv = converted(v, op.precision, scales.v);  // P V runs on dequantized V in fp32
      p.integer = true;
      p.q_int = q_int.data();
      p.k_int = k_int.data();
      p.v = v_conv.data();
      p.int_score_scale = static_cast<float>(double(scales.q) * double(scales.k) * op.softmax_scale() *
                                             1.4426950408889634);
      break;
    }
  }

  if (s.kv_len == 0) {  // no keys at all: every row is empty, output 0
    std::fill(out.data, out.data + out.size(), 0.0f);
    if (lse) std::fill(lse, lse + rows, -std::numeric_limits<float>::infinity());
    return;
  }
  // CSR tasks: large, so gathered rows share cache lines, but at least ~4 tasks per thread; a
  // whole number of tiles. The task height decides which rows the task regroups (LSH buckets),
  // and so the order of the sums: it is sized for a fixed kTaskThreads, never for the threads
  // actually running, so the output is the same bits whatever --threads is. 4, not 16 (issue 25):
  // a task of 4x the rows regroups 4x the rows of each LSH bucket into one tile (the bucket's
  // gathered K/V and its union shared by 4x the rows: LSH at 4096, 2 heads, 1 thread 30 -> 20 ms
  // CPU); the gather rows (top-k, N:M) measured the same.
  constexpr int64_t kTaskThreads = 4;
  const int64_t rows_per_thread = (s.batch * s.heads * s.seq_len + 4 * kTaskThreads - 1) / (4 * kTaskThreads);
  p.task_rows = std::clamp<int64_t>(rows_per_thread, p.tile_rows, std::max(fast::kCsrTaskRows, p.tile_rows));
  p.task_rows = (p.task_rows + p.tile_rows - 1) / p.tile_rows * p.tile_rows;
  // Task rows: block rows (BSR: one, or kFusedTaskRows of rows with fused tiles), a tile
  // (integer datapath) or a CSR task of tiles.
  if (layout.block && p.fused && !p.integer)
    p.block_rows_per_task = std::max<int64_t>(1, fast::kFusedTaskRows / layout.block_size);
  const int64_t task_height = layout.block ? layout.block_size * (p.integer ? 1 : p.block_rows_per_task)
                                           : p.integer ? p.tile_rows : p.task_rows;
  const int64_t tasks_per_head = (s.seq_len + task_height - 1) / task_height;
  const int64_t tasks = s.batch * s.heads * tasks_per_head;

  // Only the cblas tiles (SATTN_CPU_BLOCK_KERNEL=gemm, SATTN_CPU_CSR_KERNEL=legacy) call BLAS; the
  // default tiles do not, and then OpenBLAS's thread count is left alone (setting it restarts
  // OpenBLAS's worker threads when a tool has stopped them: stop_idle_blas_threads).
  const BlasSingleThreaded blas_guard(!p.fused || !p.csr_fused);
  const fast::Kernels& kernels = fast::cpu_kernels();
  std::vector<fast::Scratch> scratch(static_cast<size_t>(fast::worker_count(options.threads, tasks)));
  fast::run_tasks(int64_t(scratch.size()), tasks, [&](int64_t worker, int64_t t) {
    // Row-major within a head, so consecutive tasks share the head's K/V in cache.
    const int64_t row_task = t % tasks_per_head;
    const int64_t h = (t / tasks_per_head) % s.heads;
    const int64_t b = t / (tasks_per_head * s.heads);
    if (p.quant)
      kernels.quant_tile(p, scratch[worker], b, h, row_task);
    else if (p.integer)
      kernels.integer_tile(p, scratch[worker], b, h, row_task);
    else if (layout.block)
      kernels.block_row(p, scratch[worker], b, h, row_task);
    else
      kernels.csr_task(p, scratch[worker], b, h, row_task);
   }, options.progress);
}

namespace {

// A zero-filled output tensor whose pages are mapped in one system call before the fill.
// A large std::vector comes from a fresh anonymous mapping, so its zero fill takes one page
// fault per 4 KiB page (512 for a 2 MiB output, 2048 for 8 MiB): ~1.2-1.6 us each in this VM,
// most of the 0.6-0.8 ms (2 MiB) and 2.3-3.4 ms (8 MiB) that the fill cost, serially, before the
// kernel's threads start. MADV_POPULATE_WRITE (Linux 5.14) maps the same pages without a trap
// per page (0.23 ms resp. 0.95 ms in the same measurement); the fill then writes mapped memory.
// Elsewhere, or on an older kernel (EINVAL), the fill faults the pages in as before. The
// kernels write every element of the output anyway (empty rows as 0: fast_attention_into's
// contract), so the fill is only the std::vector's value-initialization; the Tensor type stays.
Tensor output_tensor(int64_t batch, int64_t heads, int64_t len, int64_t dim) {
  Tensor out;
  out.shape = {batch, heads, len, dim};
  const auto count = static_cast<size_t>(batch * heads * len * dim);
  out.data.reserve(count);
#if defined(__linux__)
  constexpr uintptr_t kPage = 4096;
  constexpr size_t kMinBytes = size_t{1} << 20;  // smaller outputs: a few faults, not worth a call
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;
#endif
  const auto first = (reinterpret_cast<uintptr_t>(out.data.data()) + kPage - 1) & ~(kPage - 1);
  const auto last = reinterpret_cast<uintptr_t>(out.data.data() + count) & ~(kPage - 1);
  if (count * sizeof(float) >= kMinBytes && last > first)
    (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE);  // a hint: failure is harmless
#endif
  out.data.resize(count);
  return out;
}

}  // namespace

Tensor fast_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                      const FastOptions& options) {
  const Shape& s = op.shape;
  // Checked here too, so that a wrong shape fails before the output is allocated.
  fast::check_view("fast_attention", "q", q, {s.batch, s.heads, s.seq_len, s.head_dim});
  if (q.data.size() != size_t(TensorView(q).size()) || k.data.size() != size_t(TensorView(k).size()) ||
      v.data.size() != size_t(TensorView(v).size()))
    throw Error(ExitCode::invalid_input, "fast_attention: a tensor's data does not match its shape");
  Tensor out = output_tensor(s.batch, s.heads, s.seq_len, s.head_dim);
  fast_attention_into(op, layout, q, k, v, out, nullptr, options);
  return out;
}

}  // namespace sattn
