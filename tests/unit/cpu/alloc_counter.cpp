// The replaced global operator new/delete behind alloc_counter.hpp. Its own translation unit, so
// the compiler never inlines the pair into a caller (GCC then warns about new/free mismatches).
// Every plain, array and nothrow form is replaced (all on malloc/free), so that no allocation
// made by one form is released by another (ASan checks the pairing); the aligned forms keep the
// runtime's own pair.
#include "alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace sattn::test {
std::atomic<bool> g_alloc_counting{false};
std::atomic<int64_t> g_alloc_bytes{0};
}  // namespace sattn::test

namespace {
void* counted_malloc(std::size_t n) noexcept {
  if (sattn::test::g_alloc_counting.load(std::memory_order_relaxed))
    sattn::test::g_alloc_bytes.fetch_add(int64_t(n), std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
