// BM_Notifier_ReadersUnderChurn/n:N/churn:C: one reader thread (the timed one) runs a
// device fault through find(): the subscriber of a random page, read_begin(), driver lock,
// read_retry(). With churn:1 a writer thread inserts and removes subscribers past the
// reader's pages flat out meanwhile. Reader throughput is items_per_second; the ratio
// churn:1 / churn:0 is what readers keep under a writer (goal >= 0.8, B1 beside it).
// Counter writer_ops_per_s. (What the writer leaves retired is measured by memory_bench,
// whose RetiredUnderChurn runs the same writer beside a reader.)
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/notifier_impls.h"
#include "sync/check.h"

namespace itn::bench {
namespace {

// Inserts and removes subscribers past the first n pages until `stop`; returns how many.
template <class Impl>
std::uint64_t churn_until(Impl& impl, std::uint64_t n, const std::atomic<bool>& stop) {
  std::uint64_t ops = 0;
  // Relaxed: a plain stop flag; pairs with the store after the reader's timed loop.
  while (!stop.load(std::memory_order_relaxed)) impl.insert_remove(n + ops++ % 4096);
  return ops;
}

template <class Impl>
void BM_Notifier_ReadersUnderChurn(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const bool churn = state.range(1) == 1;
  Impl impl(n);
  std::atomic<bool> stop{false};
  std::uint64_t writer_ops = 0;
  std::thread writer;
  if (churn) writer = std::thread([&] { writer_ops = churn_until(impl, n, stop); });
  std::mt19937_64 rng(2);
  std::vector<std::uint64_t> pages(4096);
  for (std::uint64_t& p : pages) p = rng() % n;
  std::size_t i = 0;
  std::uint64_t retries = 0;
  for (auto _ : state) retries += impl.find_fault(pages[i++ % pages.size()]) ? 1 : 0;
  // Relaxed: pairs with the writer's load; join() orders its results.
  stop.store(true, std::memory_order_relaxed);
  if (writer.joinable()) writer.join();
  ITN_CHECK(retries == 0, "the writer never invalidates, so no fault retries");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["writer_ops_per_s"] =
      benchmark::Counter(static_cast<double>(writer_ops), benchmark::Counter::kIsRate);
  state.SetLabel(churn ? "churn" : "solo");
}

#define ITN_CHURN_ARGS \
  ->ArgNames({"n", "churn"})->ArgsProduct({{10000, 100000}, {0, 1}})->UseRealTime()
BENCHMARK(BM_Notifier_ReadersUnderChurn<ItnImpl>)
    ->Name("BM_Notifier_ReadersUnderChurn/itn") ITN_CHURN_ARGS;
BENCHMARK(BM_Notifier_ReadersUnderChurn<KernelSpinImpl>)
    ->Name("BM_Notifier_ReadersUnderChurn/kernel_design") ITN_CHURN_ARGS;
BENCHMARK(BM_Notifier_ReadersUnderChurn<KernelMutexImpl>)
    ->Name("BM_Notifier_ReadersUnderChurn/kernel_design_mutex") ITN_CHURN_ARGS;

}  // namespace
}  // namespace itn::bench
