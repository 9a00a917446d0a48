// Counts the bytes allocated with operator new while counting is on (alloc_counter.cpp replaces
// the global operator new of the unit-test binary). Used to show that a call copies nothing.
#pragma once
#include <atomic>
#include <cstdint>

namespace sattn::test {

extern std::atomic<bool> g_alloc_counting;
extern std::atomic<int64_t> g_alloc_bytes;

}  // namespace sattn::test
