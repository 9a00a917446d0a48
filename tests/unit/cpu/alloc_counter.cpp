// The replaced global operator new/delete behind alloc_counter.hpp. Its own translation unit, so
// the compiler never inlines the pair into a caller (GCC then warns about new/free mismatches).
#include "alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace sattn::test {
std::atomic<bool> g_alloc_counting{false};
std::atomic<int64_t> g_alloc_bytes{0};
}  // namespace sattn::test

void* operator new(std::size_t n) {
  if (sattn::test::g_alloc_counting.load(std::memory_order_relaxed))
    sattn::test::g_alloc_bytes.fetch_add(int64_t(n), std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
