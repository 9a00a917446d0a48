#include "layout/blas_threads.hpp"

#include <cblas.h>

#include <mutex>

#ifdef OPENBLAS_VERSION
// OpenBLAS's pool shutdown (driver/others/blas_server.c, the pthread_atfork handler's); weak, so
// that a BLAS without it leaves the pointer null.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));
#endif

namespace sattn {

namespace {

std::mutex g_mutex;
int g_open = 0;   // scopes alive, on every thread
int g_saved = 1;  // the caller's OpenBLAS thread count, restored when the last scope closes

}  // namespace

BlasSingleThreaded::BlasSingleThreaded(bool active) : active_(active) {
  if (!active_) return;
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (g_open++ == 0) {
#ifdef OPENBLAS_VERSION
    g_saved = openblas_get_num_threads();
    if (g_saved != 1) openblas_set_num_threads(1);
#endif
  }
}

BlasSingleThreaded::~BlasSingleThreaded() {
  if (!active_) return;
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (--g_open == 0) {
#ifdef OPENBLAS_VERSION
    if (g_saved != 1) openblas_set_num_threads(g_saved);
#endif
  }
}

void stop_idle_blas_threads() {
#ifdef OPENBLAS_VERSION
  // One thread first: openblas_set_num_threads starts a stopped pool again (OpenBLAS's lazy
  // re-initialization after a fork), so a later BlasSingleThreaded finding 1 must not call it.
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  if (blas_thread_shutdown_) blas_thread_shutdown_();
#endif
}

}  // namespace sattn
