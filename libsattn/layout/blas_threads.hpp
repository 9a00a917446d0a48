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

}  // namespace sattn
