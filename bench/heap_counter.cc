#include "bench/heap_counter.h"

#include <atomic>
#include <cstdlib>
#include <malloc.h>
#include <new>

namespace itn::bench {
namespace {

std::atomic<std::int64_t> live_bytes{0};

void* counted(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  // Relaxed: a statistic; pairs with the load in live_heap_bytes().
  live_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}

void uncounted(void* p) {
  if (p == nullptr) return;
  // Relaxed: as in counted().
  live_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

}  // namespace

std::int64_t live_heap_bytes() {
  // Relaxed: pairs with the adds and subtracts above (see the header).
  return live_bytes.load(std::memory_order_relaxed);
}

}  // namespace itn::bench

// The array and nothrow forms of libstdc++ call these.
void* operator new(std::size_t size) {
  return itn::bench::counted(std::malloc(size == 0 ? 1 : size));
}
void operator delete(void* p) noexcept { itn::bench::uncounted(p); }
void operator delete(void* p, std::size_t) noexcept { itn::bench::uncounted(p); }
void* operator new(std::size_t size, std::align_val_t align) {
  const auto a = static_cast<std::size_t>(align);
  return itn::bench::counted(std::aligned_alloc(a, (size + a - 1) / a * a));
}
void operator delete(void* p, std::align_val_t) noexcept { itn::bench::uncounted(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { itn::bench::uncounted(p); }
