// Several threads on one domain at once (bench/notifier_impls.h), for itn and B1:
//
// - DisjointInvalidators/<impl>/n:N/k:K/threads:T: T threads each run invalidations
//   (start + end over K pages, K = 0: a range past every subscriber) in their own part of
//   the address space, so no two ever overlap. items_per_second is the total; the ratio
//   threads:2 / threads:1 is how invalidations of disjoint ranges scale (the kernel
//   serialises them on one spinlock; the goal for itn is >= 1.8).
// - ReadersOnBothCores/<impl>/n:N/churn:C/threads:2: two reader threads run device
//   faults through find() (the subscriber of a random page, read_begin, driver lock,
//   read_retry); with churn:1 a third thread inserts and removes subscribers past theirs
//   flat out. items_per_second is the readers' total; churn:1 / churn:0 is what readers
//   keep. Counter writer_ops_per_s.
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/notifier_impls.h"
#include "sync/check.h"

namespace itn::bench {
namespace {

// The domain all threads of one benchmark run share: made by thread 0 before the timed
// loop and destroyed by it after; the loop's start and stop barriers order the others'
// uses in between.
template <class Impl>
struct Shared {
  static inline std::unique_ptr<Impl> impl;
  static inline std::atomic<bool> stop{false};
  static inline std::atomic<std::uint64_t> writer_ops{0};
  static inline std::thread writer;
};

template <class Impl>
void BM_Notifier_DisjointInvalidators(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto k = static_cast<std::uint64_t>(state.range(1));
  using S = Shared<Impl>;
  if (state.thread_index() == 0) S::impl = std::make_unique<Impl>(n);
  // Thread t owns pages [t * n, (t + 1) * n) of the subscribers' span, or, for k = 0, its
  // own span past them all.
  const auto t = static_cast<std::uint64_t>(state.thread_index());
  const std::uint64_t per_thread = n / static_cast<std::uint64_t>(state.threads());
  ITN_CHECK(per_thread >= std::max<std::uint64_t>(k, 1), "each thread's part holds its ranges");
  std::mt19937_64 rng(1 + t);
  std::vector<std::uint64_t> first(4096);
  for (std::uint64_t& p : first) {
    p = k == 0 ? n + (t + 1) * n + rng() % (n - 1) : t * per_thread + rng() % (per_thread - k + 1);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    S::impl->invalidate(first[i++ % first.size()], std::max<std::uint64_t>(k, 1));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    state.counters["hits_per_op"] =
        benchmark::Counter(static_cast<double>(S::impl->hits()) /
                           static_cast<double>(state.iterations()) / state.threads());
    S::impl.reset();
  }
}

template <class Impl>
void BM_Notifier_ReadersOnBothCores(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const bool churn = state.range(1) == 1;
  using S = Shared<Impl>;
  if (state.thread_index() == 0) {
    S::impl = std::make_unique<Impl>(n);
    S::stop.store(false);
    S::writer_ops.store(0);
    if (churn) {
      S::writer = std::thread([n] {
        std::uint64_t ops = 0;
        // Relaxed: a plain stop flag.
        while (!S::stop.load(std::memory_order_relaxed)) S::impl->insert_remove(n + ops++ % 4096);
        S::writer_ops.store(ops);
      });
    }
  }
  std::mt19937_64 rng(2 + static_cast<std::uint64_t>(state.thread_index()));
  std::vector<std::uint64_t> pages(4096);
  for (std::uint64_t& p : pages) p = rng() % n;
  std::size_t i = 0;
  std::uint64_t retries = 0;
  for (auto _ : state) retries += S::impl->find_fault(pages[i++ % pages.size()]) ? 1 : 0;
  ITN_CHECK(retries == 0, "the writer never invalidates, so no fault retries");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    S::stop.store(true);
    if (S::writer.joinable()) S::writer.join();
    state.counters["writer_ops_per_s"] =
        benchmark::Counter(static_cast<double>(S::writer_ops.load()), benchmark::Counter::kIsRate);
    S::impl.reset();
  }
  state.SetLabel(churn ? "churn" : "solo");
}

#define ITN_DISJOINT_ARGS \
  ->ArgNames({"n", "k"})->ArgsProduct({{10000}, {0, 1, 16}})->Threads(1)->Threads(2)->UseRealTime()
BENCHMARK(BM_Notifier_DisjointInvalidators<ItnImpl>)
    ->Name("BM_Notifier_DisjointInvalidators/itn") ITN_DISJOINT_ARGS;
BENCHMARK(BM_Notifier_DisjointInvalidators<KernelSpinImpl>)
    ->Name("BM_Notifier_DisjointInvalidators/kernel_design") ITN_DISJOINT_ARGS;

#define ITN_BOTH_CORES_ARGS \
  ->ArgNames({"n", "churn"})->ArgsProduct({{10000}, {0, 1}})->Threads(2)->UseRealTime()
BENCHMARK(BM_Notifier_ReadersOnBothCores<ItnImpl>)
    ->Name("BM_Notifier_ReadersOnBothCores/itn") ITN_BOTH_CORES_ARGS;
BENCHMARK(BM_Notifier_ReadersOnBothCores<KernelSpinImpl>)
    ->Name("BM_Notifier_ReadersOnBothCores/kernel_design") ITN_BOTH_CORES_ARGS;

}  // namespace
}  // namespace itn::bench
