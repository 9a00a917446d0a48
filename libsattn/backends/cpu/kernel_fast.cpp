// The fast fused CPU kernel (DESIGN §5 "CPU"): checks the inputs, applies the op's precision,
// then runs one task per (batch, head, row tile) on a small thread pool. The tasks themselves are
// in kernel_fast_block.cpp (BSR) and kernel_fast_row.cpp (CSR, integer datapath).
#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "backends/cpu/kernel_fast_internal.hpp"
#include "layout/blas_threads.hpp"
#include "sattn/attention.hpp"
#include "sattn/error.hpp"
#include "core/quant.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

std::string shape_str(const Tensor& t) {
  return "[" + std::to_string(t.shape[0]) + ", " + std::to_string(t.shape[1]) + ", " + std::to_string(t.shape[2]) +
         ", " + std::to_string(t.shape[3]) + "]";
}

void check_inputs(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v) {
  const Shape& s = op.shape;
  auto expect = [](const Tensor& t, const char* name, std::array<int64_t, 4> want) {
    if (t.shape != want || t.data.size() != static_cast<size_t>(want[0] * want[1] * want[2] * want[3]))
      throw Error(ExitCode::invalid_input, std::string("fast_attention: ") + name + " has shape " + shape_str(t) +
                                               ", the op needs [" + std::to_string(want[0]) + ", " +
                                               std::to_string(want[1]) + ", " + std::to_string(want[2]) + ", " +
                                               std::to_string(want[3]) + "]");
  };
  if (s.kv_heads <= 0 || s.heads % s.kv_heads != 0)
    throw Error(ExitCode::invalid_input, "fast_attention: heads must be a multiple of kv_heads");
  expect(q, "q", {s.batch, s.heads, s.seq_len, s.head_dim});
  expect(k, "k", {s.batch, s.kv_heads, s.kv_len, s.head_dim});
  expect(v, "v", {s.batch, s.kv_heads, s.kv_len, s.head_dim});
  if (layout.rows != s.seq_len || layout.cols != s.kv_len)
    throw Error(ExitCode::invalid_input, "fast_attention: layout is " + std::to_string(layout.rows) + " x " +
                                             std::to_string(layout.cols) + ", the op is " +
                                             std::to_string(s.seq_len) + " x " + std::to_string(s.kv_len));
  if (layout.block_size < 1) throw Error(ExitCode::invalid_input, "fast_attention: layout block_size < 1");
  const size_t want_heads = layout.shared ? 1 : static_cast<size_t>(s.batch * s.kv_heads);
  if (layout.heads.size() < want_heads)
    throw Error(ExitCode::invalid_input, "fast_attention: layout has " + std::to_string(layout.heads.size()) +
                                             " head layouts, the op needs " + std::to_string(want_heads));
  const size_t want_ptr = static_cast<size_t>((layout.block ? layout.block_rows() : layout.rows) + 1);
  for (const HeadLayout& head : layout.heads)
    if (head.ptr.size() != want_ptr || head.ptr.back() != static_cast<int64_t>(head.idx.size()))
      throw Error(ExitCode::invalid_input, "fast_attention: layout index arrays are inconsistent");
}

std::vector<int8_t> quantize_all(const Tensor& t, float scale, Precision p) {
  std::vector<int8_t> out(t.data.size());
  for (size_t e = 0; e < out.size(); ++e) out[e] = quantize(t.data[e], scale, p);
  return out;
}

}  // namespace

Tensor fast_attention(const Op& op, const Layout& layout, const Tensor& q, const Tensor& k, const Tensor& v,
                      const FastOptions& options) {
  check_inputs(op, layout, q, k, v);
  const Shape& s = op.shape;
  Tensor out(s.batch, s.heads, s.seq_len, s.head_dim);
  if (out.data.empty()) return out;

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
  p.out = out.data.data();

  // Precision: what the kernels read. bf16 and i8/i4 work on converted copies.
  Tensor q_conv, k_conv, v_conv;
  std::vector<int8_t> q_int, k_int;
  p.q = q.data.data();
  p.k = k.data.data();
  p.v = v.data.data();
  switch (op.precision) {
    case Precision::fp32: break;
    case Precision::bf16:
      q_conv = apply_precision(q, Precision::bf16, 1.0f);
      k_conv = apply_precision(k, Precision::bf16, 1.0f);
      v_conv = apply_precision(v, Precision::bf16, 1.0f);
      p.q = q_conv.data.data();
      p.k = k_conv.data.data();
      p.v = v_conv.data.data();
      break;
    case Precision::i8:
    case Precision::i4: {
      const Scales scales = resolve_scales(op, q, k, v);
      q_int = quantize_all(q, scales.q, op.precision);
      k_int = quantize_all(k, scales.k, op.precision);
      v_conv = apply_precision(v, op.precision, scales.v);  // P V runs on dequantized V in fp32
      p.integer = true;
      p.q_int = q_int.data();
      p.k_int = k_int.data();
      p.v = v_conv.data.data();
      p.int_score_scale = static_cast<float>(double(scales.q) * double(scales.k) * op.softmax_scale() *
                                             1.4426950408889634);
      break;
    }
  }

  if (s.kv_len == 0) return out;  // no keys at all: every row is empty, output 0
  int64_t threads = options.threads > 0 ? options.threads : int64_t(std::thread::hardware_concurrency());
  threads = std::max<int64_t>(threads, 1);
  // CSR tasks: large, so gathered rows share cache lines, but at least ~4 tasks per thread; a
  // whole number of tiles. The task height decides which rows the task regroups (LSH buckets),
  // and so the order of the sums: it is sized for a fixed kTaskThreads, never for the threads
  // actually running, so the output is the same bits whatever --threads is.
  constexpr int64_t kTaskThreads = 16;
  const int64_t rows_per_thread = (s.batch * s.heads * s.seq_len + 4 * kTaskThreads - 1) / (4 * kTaskThreads);
  p.task_rows = std::clamp<int64_t>(rows_per_thread, p.tile_rows, std::max(fast::kCsrTaskRows, p.tile_rows));
  p.task_rows = (p.task_rows + p.tile_rows - 1) / p.tile_rows * p.tile_rows;
  // Task rows: a block row (BSR), a tile (integer datapath on CSR) or a CSR task of tiles.
  const int64_t task_height = layout.block ? layout.block_size : p.integer ? p.tile_rows : p.task_rows;
  const int64_t tasks_per_head = (s.seq_len + task_height - 1) / task_height;
  const int64_t tasks = s.batch * s.heads * tasks_per_head;
  threads = std::min(threads, tasks);

  const BlasSingleThreaded blas_guard;
  std::atomic<int64_t> next_task{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  const CancelScope* cancel = CancelScope::current();  // the caller's cancellation, for every worker
  std::atomic<int64_t> tasks_done{0};                   // for options.progress (reported by the caller's thread)
  const int64_t report_every = std::max<int64_t>(1, tasks / 200);
  auto worker = [&](bool caller) {
    const CancelScope adopt(CancelScope::Adopt{}, cancel);
    fast::Scratch scratch;
    try {
      for (int64_t t = next_task.fetch_add(1); t < tasks; t = next_task.fetch_add(1), tasks_done.fetch_add(1)) {
        throw_if_interrupted();  // Ctrl-C: stop at the next row block
        if (caller && options.progress && t % report_every == 0) options.progress(tasks_done.load(), tasks);
        // Row-major within a head, so consecutive tasks share the head's K/V in cache.
        const int64_t row_task = t % tasks_per_head;
        const int64_t h = (t / tasks_per_head) % s.heads;
        const int64_t b = t / (tasks_per_head * s.heads);
        if (p.integer)
          fast::run_integer_tile(p, scratch, b, h, row_task);
        else if (layout.block)
          fast::run_block_row(p, scratch, b, h, row_task);
        else
          fast::run_csr_task(p, scratch, b, h, row_task);
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
      pool.emplace_back(worker, false);
    } catch (const std::system_error&) {
      break;  // no more threads available: the ones we have share the tasks
    }
  }
  worker(true);
  for (std::thread& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
  if (options.progress) options.progress(tasks, tasks);
  return out;
}

}  // namespace sattn
