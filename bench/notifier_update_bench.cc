// BM_Notifier_InsertRemove and BM_Notifier_Find: changing and looking up the set of
// subscribers (bench/notifier_impls.h), with n subscribers already in place.
//
// - InsertRemove/n:N/deferred:0: a new subscriber (allocated in the loop by every
//   implementation: itn's notifiers are single-use) inserted and removed, no invalidation
//   active.
// - InsertRemove/n:N/deferred:1: the same while one invalidation that hit a subscriber is
//   active for the whole run, so every insert is deferred and every remove cancels it.
//   B1 only queues (its deferred inserts are not in the tree); itn also puts the notifier
//   in the tree at once so that find() sees it (two publishes per iteration).
// - InsertRemoveFreeBatch/free_batch:B: the same at n = 10^4 with the tree's free batch
//   (NotifierDomainOptions::free_batch_nodes) set to B.
// - Find/n:N: the subscriber of a random page; itn's lock-free find() returning a
//   reference, B1's lookup under its spinlock returning a raw pointer, B3's
//   std::multimap under a mutex.
#include <cstdint>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/notifier_impls.h"
#include "sync/check.h"

namespace itn::bench {
namespace {

template <class Impl>
void BM_Notifier_InsertRemove(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const bool deferred = state.range(1) == 1;
  Impl impl(n);
  if (deferred) impl.start(0, 1);
  std::uint64_t i = 0;
  for (auto _ : state) impl.insert_remove(n + i++ % 4096);  // past the n in place
  if (deferred) impl.end(0, 1);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class Impl>
void BM_Notifier_Find(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  Impl impl(n);
  std::mt19937_64 rng(1);
  std::vector<std::uint64_t> pages(4096);
  for (std::uint64_t& p : pages) p = rng() % n;
  std::size_t i = 0;
  for (auto _ : state) ITN_CHECK(impl.find(pages[i++ % pages.size()]), "every page has one");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

#define ITN_INSERT_REMOVE_ARGS ->ArgNames({"n", "deferred"})->ArgsProduct({{1000, 100000}, {0, 1}})
BENCHMARK(BM_Notifier_InsertRemove<ItnImpl>)
    ->Name("BM_Notifier_InsertRemove/itn") ITN_INSERT_REMOVE_ARGS;
BENCHMARK(BM_Notifier_InsertRemove<KernelSpinImpl>)
    ->Name("BM_Notifier_InsertRemove/kernel_design") ITN_INSERT_REMOVE_ARGS;
BENCHMARK(BM_Notifier_InsertRemove<KernelMutexImpl>)
    ->Name("BM_Notifier_InsertRemove/kernel_design_mutex") ITN_INSERT_REMOVE_ARGS;

// The reclamation granularity: replaced tree nodes are handed to grace periods in groups
// of free_batch; n = 10^4 subscribers.
void BM_Notifier_InsertRemoveFreeBatch(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  ItnImpl impl(10000, Layout::kAllocationOrder, NotifierDomainOptions{.free_batch_nodes = batch});
  std::uint64_t i = 0;
  for (auto _ : state) impl.insert_remove(10000 + i++ % 4096);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["retired_bytes_at_end"] = static_cast<double>(impl.memory().retired_bytes);
}
BENCHMARK(BM_Notifier_InsertRemoveFreeBatch)
    ->Name("BM_Notifier_InsertRemoveFreeBatch/itn")
    ->ArgName("free_batch")
    ->Arg(64)
    ->Arg(1024)
    ->Arg(16384);

#define ITN_FIND_ARGS ->ArgName("n")->Arg(100)->Arg(1000)->Arg(10000)->Arg(100000)
BENCHMARK(BM_Notifier_Find<ItnImpl>)->Name("BM_Notifier_Find/itn") ITN_FIND_ARGS;
BENCHMARK(BM_Notifier_Find<KernelSpinImpl>)->Name("BM_Notifier_Find/kernel_design") ITN_FIND_ARGS;
BENCHMARK(BM_Notifier_Find<MultimapImpl>)->Name("BM_Notifier_Find/multimap") ITN_FIND_ARGS;

}  // namespace
}  // namespace itn::bench
