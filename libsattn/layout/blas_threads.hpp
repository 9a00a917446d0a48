// OpenBLAS threads while sattn's own worker threads call sgemm (layout scoring, the CPU kernel):
// both kinds of threads must not oversubscribe the cores, so OpenBLAS runs single-threaded.
#pragma once

namespace sattn {

// While one is alive, OpenBLAS runs on one thread. OpenBLAS's thread count is process-wide, so
// the scopes are counted across threads: the first one to open saves the caller's count and sets
// 1, the last one to close restores it. Concurrent calls (the Python API calls from many threads)
// therefore never restore the count under another call still running.
class BlasSingleThreaded {
 public:
  explicit BlasSingleThreaded(bool active = true);
  ~BlasSingleThreaded();
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  bool active_;
};

// Sets OpenBLAS to one thread and stops its worker threads, if the BLAS is OpenBLAS's pthreads
// build (which exports blas_thread_shutdown_; with another BLAS this does nothing). OpenBLAS
// starts them when it is loaded, and each spins in sched_yield for about 2^28 cycles (~0.1 s
// here) after it starts and after each job before it sleeps: in a short sattn process that is a
// core taken from the kernels' own threads (blg at 4096: 46-59 ms of process CPU time against
// 28 ms without them). libsattn and the sattn tools call OpenBLAS only single-threaded (the
// kernels' cblas tiles under BlasSingleThreaded, the OpenBLAS dense baseline from its own
// threads), so a tool calls this when it starts. openblas_set_num_threads, with any count,
// starts the threads again (and they spin again). Only while no other thread can be inside a
// BLAS call: a tool's start.
void stop_idle_blas_threads();

}  // namespace sattn
