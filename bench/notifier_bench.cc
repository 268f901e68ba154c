// BM_Notifier_ReadBeginRetry and BM_Notifier_InvalidateRange: the read side and the
// invalidation side of the sequence protocol, for itn, kernel_design (B1, spinlock and mutex) and
// list (B2)
// (bench/notifier_impls.h). Single-threaded, so every figure is the cost of the calls
// themselves, never of waiting.
//
// - ReadBeginRetry/collide:0: the fault fast path on one subscriber: read_begin(), driver
//   lock, read_retry(), unlock.
// - ReadBeginRetry/collide:1: a fault that collides with an invalidation: read_begin(),
//   an invalidate_range_start + end over the subscriber during the page-table walk,
//   read_retry() says retry, and the second attempt succeeds (counter retries_per_op: 1).
// - ReadBeginRetryNoLock: read_begin() + read_retry() alone, without the driver lock
//   (what the protocol itself costs; read_retry() is only meaningful under the lock), and
//   `two_acquire_loads`: the floor, two acquire loads of atomics.
// - InvalidateRange/n:N/k:K: N subscribers; one invalidate_range_start +
//   invalidate_range_end over K random consecutive pages, so it hits exactly K
//   subscribers (K = 0: a range past them all; counter hits_per_op, expected K).
// - InvalidateRangeShuffled/n:N/k:K: the same with the subscribers allocated in random
//   order, so that the walk meets them scattered over memory rather than in the
//   allocator's order.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/notifier_impls.h"
#include "sync/atomic.h"
#include "sync/check.h"

namespace itn::bench {
namespace {

template <class Impl>
void BM_Notifier_ReadBeginRetry(benchmark::State& state) {
  const bool collide = state.range(0) == 1;
  Impl impl(1);
  std::uint64_t retries = 0;
  for (auto _ : state) {
    if (collide) {
      retries += impl.fault(0, [&] { impl.invalidate(0, 1); }) ? 1 : 0;
    }
    ITN_CHECK(!impl.fault(0), "no invalidation runs during this attempt");
  }
  ITN_CHECK(retries == (collide ? static_cast<std::uint64_t>(state.iterations()) : 0),
            "every collision retries once");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["retries_per_op"] =
      static_cast<double>(retries) / static_cast<double>(state.iterations());
}

template <class Impl>
void BM_Notifier_ReadBeginRetryNoLock(benchmark::State& state) {
  Impl impl(1);
  for (auto _ : state) {
    ITN_CHECK(!impl.read_without_lock(0), "no invalidation runs during this attempt");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_Notifier_ReadBeginRetryNoLock_TwoAcquireLoads(benchmark::State& state) {
  Atomic<std::uint64_t> sub_seq{2};
  Atomic<std::uint64_t> domain_seq{4};
  for (auto _ : state) {
    // Acquire: the loads read_begin() makes; nothing writes them here.
    const std::uint64_t a = sub_seq.load(std::memory_order_acquire);
    const std::uint64_t b = domain_seq.load(std::memory_order_acquire);
    ITN_CHECK(a != b, "as read_begin()'s fast path");
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class Impl, Layout kLayout = Layout::kAllocationOrder>
void BM_Notifier_InvalidateRange(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto k = static_cast<std::uint64_t>(state.range(1));
  ITN_CHECK(k <= n, "notifier_sizes() keeps k <= n");
  Impl impl(n, kLayout);
  // Ranges of max(k, 1) pages hitting exactly k subscribers (k = 0: a range past the last
  // one), drawn before the timed loop so that the generator is not measured.
  std::mt19937_64 rng(1);
  std::vector<std::uint64_t> first(4096);
  for (std::uint64_t& p : first) p = k == 0 ? n + 1 + rng() % n : rng() % (n - k + 1);
  std::size_t i = 0;
  for (auto _ : state) impl.invalidate(first[i++ % first.size()], std::max<std::uint64_t>(k, 1));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hits_per_op"] =
      static_cast<double>(impl.hits()) / static_cast<double>(state.iterations());
}

#define ITN_COLLIDE ->ArgName("collide")->Arg(0)->Arg(1)
BENCHMARK(BM_Notifier_ReadBeginRetry<ItnImpl>)->Name("BM_Notifier_ReadBeginRetry/itn") ITN_COLLIDE;
BENCHMARK(BM_Notifier_ReadBeginRetry<KernelSpinImpl>)
    ->Name("BM_Notifier_ReadBeginRetry/kernel_design") ITN_COLLIDE;
BENCHMARK(BM_Notifier_ReadBeginRetry<KernelMutexImpl>)
    ->Name("BM_Notifier_ReadBeginRetry/kernel_design_mutex") ITN_COLLIDE;
BENCHMARK(BM_Notifier_ReadBeginRetry<ListImpl>)
    ->Name("BM_Notifier_ReadBeginRetry/list") ITN_COLLIDE;
BENCHMARK(BM_Notifier_ReadBeginRetryNoLock<ItnImpl>)->Name("BM_Notifier_ReadBeginRetryNoLock/itn");
BENCHMARK(BM_Notifier_ReadBeginRetryNoLock<KernelSpinImpl>)
    ->Name("BM_Notifier_ReadBeginRetryNoLock/kernel_design");
BENCHMARK(BM_Notifier_ReadBeginRetryNoLock_TwoAcquireLoads)
    ->Name("BM_Notifier_ReadBeginRetryNoLock/two_acquire_loads");

// n subscribers x k hits, k <= n.
void notifier_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "k"});
  for (std::int64_t n : {100, 1000, 10000, 100000}) {
    for (std::int64_t k : {0, 1, 16, 256}) {
      if (k <= n) b->Args({n, k});
    }
  }
}
#define ITN_NOTIFIER_SIZES ->Apply(notifier_sizes)
BENCHMARK(BM_Notifier_InvalidateRange<ItnImpl>)
    ->Name("BM_Notifier_InvalidateRange/itn") ITN_NOTIFIER_SIZES;
BENCHMARK(BM_Notifier_InvalidateRange<KernelSpinImpl>)
    ->Name("BM_Notifier_InvalidateRange/kernel_design") ITN_NOTIFIER_SIZES;
BENCHMARK(BM_Notifier_InvalidateRange<KernelMutexImpl>)
    ->Name("BM_Notifier_InvalidateRange/kernel_design_mutex") ITN_NOTIFIER_SIZES;
BENCHMARK(BM_Notifier_InvalidateRange<ListImpl>)
    ->Name("BM_Notifier_InvalidateRange/list") ITN_NOTIFIER_SIZES;
#define ITN_SHUFFLED_SIZES ->ArgNames({"n", "k"})->Args({10000, 256})->Args({100000, 256})
BENCHMARK(BM_Notifier_InvalidateRange<ItnImpl, Layout::kShuffled>)
    ->Name("BM_Notifier_InvalidateRangeShuffled/itn") ITN_SHUFFLED_SIZES;
BENCHMARK(BM_Notifier_InvalidateRange<KernelSpinImpl, Layout::kShuffled>)
    ->Name("BM_Notifier_InvalidateRangeShuffled/kernel_design") ITN_SHUFFLED_SIZES;

}  // namespace
}  // namespace itn::bench

BENCHMARK_MAIN();
