// BM_Itree_*: the interval tree against its baselines, in one binary so that every ratio
// compares figures from the same run. Implementation labels: `itn` (itn::IntervalTree,
// lock-free readers in an SRCU read section), `kernel_design` (B1's tree: the kernel's
// intrusive augmented red-black tree under a spinlock, each interval's node allocated
// once, as it is embedded in the subscriber there), `locked_avl` (itn's AVL algorithms,
// mutable, behind one mutex: what path copying and SRCU cost), `multimap` (std::multimap
// behind a mutex).
//
// Workload: n intervals with uniformly random starts in [0, 1024 n) and lengths in
// [1, 4096], so a point query overlaps about 2 of them; queries are [q, q + 1023].
#include <atomic>
#include <cstdint>
#include <deque>
#include <random>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "bench/baselines/locked_interval_tree.h"
#include "bench/baselines/multimap_intervals.h"
#include "bench/baselines/rb_interval_tree.h"
#include "bench/baselines/spin_lock.h"
#include "itree/interval_tree.h"

namespace itn::bench {
namespace {

struct Interval {
  std::uint64_t start, last;
  int value;
};

// n intervals valued first_value, first_value + 1, ...; the values of one benchmark's
// intervals are distinct.
std::vector<Interval> make_intervals(std::size_t n, std::uint64_t seed, int first_value = 0) {
  std::mt19937_64 rng(seed);
  std::vector<Interval> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t start = rng() % (1024 * n);
    out[i] = {start, start + rng() % 4096, first_value + static_cast<int>(i)};
  }
  return out;
}
constexpr int kExtraValues = 1 << 30;  // the values of the intervals inserted and erased

// Uniform access to the three implementations.
class ItnImpl {
 public:
  void insert(const Interval& i) { (void)tree_.insert(i.start, i.last, i.value); }
  void erase(const Interval& i) { (void)tree_.erase(i.start, i.last, i.value); }
  std::uint64_t count_overlaps(std::uint64_t start, std::uint64_t last) {
    std::uint64_t k = 0;
    auto guard = srcu_.read_lock();
    tree_.for_each_overlap(start, last, [&](std::uint64_t, std::uint64_t, int) { ++k; });
    return k;
  }

 private:
  SrcuDomain srcu_;
  IntervalTree<int> tree_{srcu_};
};

template <class Tree>
class LockedImpl {
 public:
  void insert(const Interval& i) { (void)tree_.insert(i.start, i.last, i.value); }
  void erase(const Interval& i) { (void)tree_.erase(i.start, i.last, i.value); }
  std::uint64_t count_overlaps(std::uint64_t start, std::uint64_t last) {
    std::uint64_t k = 0;
    tree_.for_each_overlap(start, last, [&](std::uint64_t, std::uint64_t, int) { ++k; });
    return k;
  }

 private:
  Tree tree_;
};
using LockedAvlImpl = LockedImpl<LockedIntervalTree<int>>;
using MultimapImpl = LockedImpl<MultimapIntervals<int>>;

class KernelDesignImpl {
 public:
  void insert(const Interval& i) {
    LockGuard<SpinLock> g(lock_);
    RbIntervalNode& n = node_locked(i.value);
    n.start = i.start;
    n.last = i.last;
    tree_.insert(n);
  }
  void erase(const Interval& i) {
    LockGuard<SpinLock> g(lock_);
    tree_.erase(node_locked(i.value));
  }
  std::uint64_t count_overlaps(std::uint64_t start, std::uint64_t last) {
    LockGuard<SpinLock> g(lock_);
    std::uint64_t k = 0;
    for (const RbIntervalNode* n = tree_.first_overlap(start, last); n != nullptr;
         n = RbIntervalTree::next_overlap(*n, start, last)) {
      ++k;
    }
    return k;
  }

 private:
  // The node of the interval valued `value`, allocated on its first insert only (a deque
  // never moves its elements as it grows).
  RbIntervalNode& node_locked(int value) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    std::deque<RbIntervalNode>& nodes = value >= kExtraValues ? extra_ : base_;
    const auto index =
        static_cast<std::size_t>(value >= kExtraValues ? value - kExtraValues : value);
    if (index >= nodes.size()) nodes.resize(index + 1);
    return nodes[index];
  }

  SpinLock lock_;
  RbIntervalTree tree_;
  std::deque<RbIntervalNode> base_ ABSL_GUARDED_BY(lock_);
  std::deque<RbIntervalNode> extra_ ABSL_GUARDED_BY(lock_);
};

template <class Impl>
void fill(Impl& impl, const std::vector<Interval>& intervals) {
  for (const Interval& i : intervals) impl.insert(i);
}

template <class Impl>
void BM_Itree_Overlap(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Impl impl;
  fill(impl, make_intervals(n, 1));
  std::mt19937_64 rng(2);
  std::uint64_t found = 0;
  for (auto _ : state) {
    const std::uint64_t q = rng() % (1024 * n);
    found += impl.count_overlaps(q, q + 1023);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["hits_per_query"] = static_cast<double>(found) / state.iterations();
}

// One insert and one erase per iteration; the tree keeps n entries.
template <class Impl>
void BM_Itree_InsertErase(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  Impl impl;
  fill(impl, make_intervals(n, 1));
  const std::vector<Interval> extra = make_intervals(4096, 3, kExtraValues);
  std::size_t i = 0;
  for (auto _ : state) {
    const Interval& x = extra[i++ % extra.size()];
    impl.insert(x);
    impl.erase(x);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// One reader walks (timed); with range(1) == 1 a second thread inserts and erases flat
// out meanwhile. Reader throughput is items_per_second; compare churn with solo.
template <class Impl>
void BM_Itree_OverlapUnderChurn(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const bool churn = state.range(1) == 1;
  Impl impl;
  fill(impl, make_intervals(n, 1));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> writes{0};
  std::thread writer;
  if (churn) {
    writer = std::thread([&] {
      const std::vector<Interval> extra = make_intervals(4096, 3, kExtraValues);
      std::uint64_t w = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const Interval& x = extra[w++ % extra.size()];
        impl.insert(x);
        impl.erase(x);
      }
      writes.store(w);
    });
  }
  std::mt19937_64 rng(2);
  std::uint64_t found = 0;
  for (auto _ : state) {
    const std::uint64_t q = rng() % (1024 * n);
    found += impl.count_overlaps(q, q + 1023);
  }
  stop.store(true);
  if (writer.joinable()) writer.join();
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["writer_ops"] = static_cast<double>(writes.load());
  state.SetLabel(churn ? "churn" : "solo");
}

#define ITN_ITREE_SIZES ->Arg(100)->Arg(10000)->Arg(100000)->Arg(1000000)
BENCHMARK(BM_Itree_Overlap<ItnImpl>)->Name("BM_Itree_Overlap/itn") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_Overlap<KernelDesignImpl>)
    ->Name("BM_Itree_Overlap/kernel_design") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_Overlap<LockedAvlImpl>)->Name("BM_Itree_Overlap/locked_avl") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_Overlap<MultimapImpl>)->Name("BM_Itree_Overlap/multimap") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_InsertErase<ItnImpl>)->Name("BM_Itree_InsertErase/itn") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_InsertErase<KernelDesignImpl>)
    ->Name("BM_Itree_InsertErase/kernel_design") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_InsertErase<LockedAvlImpl>)
    ->Name("BM_Itree_InsertErase/locked_avl") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_InsertErase<MultimapImpl>)
    ->Name("BM_Itree_InsertErase/multimap") ITN_ITREE_SIZES;
BENCHMARK(BM_Itree_OverlapUnderChurn<ItnImpl>)
    ->Name("BM_Itree_OverlapUnderChurn/itn")
    ->ArgsProduct({{10000, 100000}, {0, 1}})
    ->UseRealTime();
BENCHMARK(BM_Itree_OverlapUnderChurn<KernelDesignImpl>)
    ->Name("BM_Itree_OverlapUnderChurn/kernel_design")
    ->ArgsProduct({{10000, 100000}, {0, 1}})
    ->UseRealTime();

}  // namespace
}  // namespace itn::bench

BENCHMARK_MAIN();
