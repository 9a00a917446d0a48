// CPU seconds of every thread of the process (user + system), for the single-process benchmarks
// (bench/cpu/bench_precision.cpp, bench/layout/bench_layout.cpp): less sensitive to other jobs on a
// shared machine than wall seconds.
#pragma once
#include <ctime>

namespace sattn {

inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace sattn
