// bench/heap_counter.h
//
// Live heap bytes of the whole process, counted by replacements of the global operator
// new and delete (bench/heap_counter.cc; link it only into a benchmark that reports
// memory, since the counting costs an atomic add per allocation). Counts what malloc
// hands out (malloc_usable_size), so allocator rounding is included and its headers are
// not.
//
// Thread safety: any thread. Lifetime: process-wide. Memory ordering: relaxed; a reading
// thread sees its own allocations, and those of threads it joined or synchronised with.
#ifndef ITN_BENCH_HEAP_COUNTER_H_
#define ITN_BENCH_HEAP_COUNTER_H_

#include <cstdint>

namespace itn::bench {

std::int64_t live_heap_bytes();

}  // namespace itn::bench

#endif  // ITN_BENCH_HEAP_COUNTER_H_
