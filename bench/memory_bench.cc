// BM_Memory_*: what notifiers cost in memory, from the live heap bytes counted by
// bench/heap_counter.cc (this binary only: counting slows every allocation).
//
// - PerNotifier/n:N: heap bytes of a domain with N subscribers minus those of an empty
//   domain, per subscriber (counter bytes_per_notifier): the subscriber object, its tree
//   node, and for itn the node pool's unused slots (counter tree_bytes_per_notifier:
//   itn's tree nodes alone; retired_bytes_per_notifier: nodes the inserts replaced that
//   wait for their free batch, left out of bytes_per_notifier).
// - RetiredUnderChurn/n:N/readers:R: itn only, one insert+remove per iteration with R
//   threads running find() in read sections meanwhile; counters max_retired_bytes and
//   mean_retired_bytes: tree nodes replaced but not yet freed (waiting for a free batch of
//   IntervalTreeOptions::free_batch_nodes and a grace period; the baselines free at once).
// - RetiredWithALongReader/hold_ms:H/cap_mb:C: itn only. One thread stays inside a read
//   section of the domain for H ms (a whole-space notifier's callback that sleeps) while a
//   writer inserts and removes flat out, with NotifierDomainOptions::max_retired_bytes =
//   C MiB. Counters: max_retired_bytes (sampled after every change; the cap holds it),
//   cap_bytes, changes (how far the writer got before the cap stopped it), and
//   heap_bytes_during / heap_bytes_after: live heap bytes at the cap and once the reader
//   left and one more change let the node pool give its free chunks back.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/heap_counter.h"
#include "bench/notifier_impls.h"
#include "notifier/domain.h"
#include "notifier/notifier.h"

namespace itn::bench {
namespace {

template <class Impl>
void BM_Memory_PerNotifier(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  double per_notifier = 0, tree_per_notifier = 0, retired_per_notifier = 0;
  for (auto _ : state) {
    std::int64_t empty = live_heap_bytes();
    {
      Impl none(0);
      empty = live_heap_bytes() - empty;
    }  // the domain's own fixed cost
    const std::int64_t before = live_heap_bytes();
    Impl impl(n);
    std::int64_t bytes = live_heap_bytes() - before - empty;
    if constexpr (requires { impl.memory(); }) {
      const IntervalTreeMemory m = impl.memory();
      bytes -= static_cast<std::int64_t>(m.retired_bytes);  // reported on its own
      tree_per_notifier = static_cast<double>(m.live_bytes) / static_cast<double>(n);
      retired_per_notifier = static_cast<double>(m.retired_bytes) / static_cast<double>(n);
    }
    per_notifier = static_cast<double>(bytes) / static_cast<double>(n);
  }
  state.counters["bytes_per_notifier"] = per_notifier;
  if (tree_per_notifier > 0) {
    state.counters["tree_bytes_per_notifier"] = tree_per_notifier;
    state.counters["retired_bytes_per_notifier"] = retired_per_notifier;
  }
}

void BM_Memory_RetiredUnderChurn(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto readers = static_cast<int>(state.range(1));
  ItnImpl impl(n);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r) {
    threads.emplace_back([&, r] {
      std::uint64_t page = static_cast<std::uint64_t>(r);
      // Relaxed: a plain stop flag; pairs with the store after the timed loop.
      while (!stop.load(std::memory_order_relaxed)) (void)impl.find(page++ % n);
    });
  }
  std::uint64_t i = 0, max_retired = 0;
  double sum = 0;
  for (auto _ : state) {
    impl.insert_remove(n + i++ % 4096);
    const std::uint64_t retired = impl.memory().retired_bytes;
    max_retired = std::max(max_retired, retired);
    sum += static_cast<double>(retired);
  }
  // Relaxed: pairs with the readers' loads; join() ends them.
  stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : threads) t.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["max_retired_bytes"] = static_cast<double>(max_retired);
  state.counters["mean_retired_bytes"] = sum / static_cast<double>(state.iterations());
}

// Sits in its start callback, and so in a read section of the domain, for `hold`.
class SleepingNotifier : public Notifier {
 public:
  explicit SleepingNotifier(std::chrono::milliseconds hold) : hold_(hold) {}
  bool invalidate_range_start(const Range&) override {
    inside.store(true);
    std::this_thread::sleep_for(hold_);
    return true;
  }
  std::atomic<bool> inside{false};

 private:
  const std::chrono::milliseconds hold_;
};

class Churned : public IntervalNotifier {
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    return true;
  }
};

void BM_Memory_RetiredWithALongReader(benchmark::State& state) {
  const std::chrono::milliseconds hold(state.range(0));
  const std::uint64_t cap = static_cast<std::uint64_t>(state.range(1)) << 20;
  std::uint64_t max_retired = 0, changes = 0;
  std::int64_t during = 0, after = 0;
  for (auto _ : state) {
    const std::int64_t base = live_heap_bytes();
    auto domain = make_ref<NotifierDomain>(NotifierDomainOptions{.max_retired_bytes = cap});
    std::vector<Ref<Churned>> resident;
    for (std::uint64_t i = 0; i < 10000; ++i) {
      resident.push_back(make_ref<Churned>());
      check_ok(
          domain->insert(resident.back(), Interval::sized((1 << 20) + i * kPage, kPage), nullptr));
    }
    SleepingNotifier reader(hold);
    check_ok(domain->register_notifier(reader));
    // Reaches no interval notifier: the writer's changes apply at once meanwhile.
    std::thread holder([&] {
      absl::StatusOr<InvalidationToken> token = domain->invalidate_range_start(page_range(0, 1));
      check_ok(token.status());
      domain->invalidate_range_end(*std::move(token));
    });
    while (!reader.inside.load()) std::this_thread::yield();
    const std::uint64_t waits = domain->stats().reclaim_waits;
    // Until the writer has waited for the reader once (at the cap), and the reader left.
    for (bool done = false; !done;) {
      done = domain->stats().reclaim_waits > waits;
      Ref<Churned> s = make_ref<Churned>();
      Churned* raw = s.get();
      check_ok(domain->insert(
          std::move(s), Interval::sized((1 << 19) + (changes % 4096) * kPage, kPage), nullptr));
      check_ok(domain->remove(*raw));
      ++changes;
      max_retired = std::max(max_retired, domain->memory().retired_bytes);
      if (!done) during = std::max(during, live_heap_bytes() - base);
    }
    holder.join();
    domain->barrier();  // frees what the churn retired and trims the node pool
    after = live_heap_bytes() - base;
    for (const Ref<Churned>& r : resident) check_ok(domain->remove(*r));
    check_ok(domain->unregister_notifier(reader));
  }
  state.counters["max_retired_bytes"] = static_cast<double>(max_retired);
  state.counters["cap_bytes"] = static_cast<double>(cap);
  state.counters["changes"] = static_cast<double>(changes);
  state.counters["heap_bytes_during"] = static_cast<double>(during);
  state.counters["heap_bytes_after"] = static_cast<double>(after);
}

#define ITN_MEMORY_SIZES ->ArgName("n")->Arg(1000)->Arg(100000)->Iterations(1)
BENCHMARK(BM_Memory_PerNotifier<ItnImpl>)->Name("BM_Memory_PerNotifier/itn") ITN_MEMORY_SIZES;
BENCHMARK(BM_Memory_PerNotifier<KernelSpinImpl>)
    ->Name("BM_Memory_PerNotifier/kernel_design") ITN_MEMORY_SIZES;
BENCHMARK(BM_Memory_PerNotifier<ListImpl>)->Name("BM_Memory_PerNotifier/list") ITN_MEMORY_SIZES;
BENCHMARK(BM_Memory_RetiredUnderChurn)
    ->Name("BM_Memory_RetiredUnderChurn/itn")
    ->ArgNames({"n", "readers"})
    ->ArgsProduct({{10000}, {0, 1}})
    ->UseRealTime();
BENCHMARK(BM_Memory_RetiredWithALongReader)
    ->Name("BM_Memory_RetiredWithALongReader/itn")
    ->ArgNames({"hold_ms", "cap_mb"})
    ->Args({1000, 8})
    ->Args({1000, 64})
    ->Args({10, 1})
    ->Iterations(1)
    ->UseRealTime();

}  // namespace
}  // namespace itn::bench

BENCHMARK_MAIN();
