// BM_Notifier_*: interval notifiers against their baselines, in one binary so that every
// ratio compares figures from the same run. Implementation labels: `itn`
// (itn::NotifierDomain: lock-free read_begin(), SRCU tree walk), `kernel_design` (B1,
// bench/baselines/kernel_notifier.h: read_begin() takes the domain mutex, locked AVL tree),
// `list` (B2, bench/baselines/list_notifier.h: every invalidation calls every subscriber).
//
// Workloads (single-threaded, so no invalidation ever runs during a read):
// - ReadBeginRetry: a device fault's fast path on one subscriber: seq = read_begin(), take
//   the driver lock, read_retry(seq), unlock.
// - InvalidateRange/n:N/k:K: N subscribers, subscriber i covering page [i * 4096,
//   i * 4096 + 4095]; one invalidate_range_start + invalidate_range_end over K random
//   consecutive pages, so it hits exactly K subscribers (K = 0: a range past them all;
//   counter hits_per_op, expected K).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "benchmark/benchmark.h"

#include "bench/baselines/kernel_notifier.h"
#include "bench/baselines/list_notifier.h"
#include "notifier/domain.h"
#include "notifier/interval_notifier.h"
#include "notifier/range.h"
#include "sync/check.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::bench {
namespace {

constexpr std::uint64_t kPage = 4096;

void check_ok(const absl::Status& status) { ITN_CHECK(status.ok(), "notifier_bench setup"); }

// Uniform access to the three implementations: construct with n subscribers (subscriber i
// on page i), fault(i) runs the read fast path once, invalidate(page) one start + end,
// hits() counts the invalidate() calls so far. Destructors unsubscribe everything.

class ItnImpl {
 public:
  class Sub : public IntervalNotifier {
   public:
    bool invalidate(const Range&, std::uint64_t cur_seq) override {
      MutexLock l(driver_mu);
      set_seq(cur_seq);
      ++hits;
      return true;
    }
    Mutex driver_mu;
    std::uint64_t hits ABSL_GUARDED_BY(driver_mu) = 0;
  };

  explicit ItnImpl(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      subs_.push_back(make_ref<Sub>());
      check_ok(domain_->insert(subs_.back(), i * kPage, kPage, nullptr));
    }
  }
  ~ItnImpl() {
    // The notifier and the domain hold references to each other until remove().
    for (const Ref<Sub>& s : subs_) check_ok(domain_->remove(*s));
  }

  bool fault(std::size_t i) {
    Sub& s = *subs_[i];
    const std::uint64_t seq = s.read_begin();
    MutexLock l(s.driver_mu);
    return s.read_retry(seq);
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    const Range r{page * kPage, (page + pages) * kPage};
    check_ok(domain_->invalidate_range_start(r));
    check_ok(domain_->invalidate_range_end(r));
  }
  std::uint64_t hits() {
    std::uint64_t total = 0;
    for (const Ref<Sub>& s : subs_) {
      MutexLock l(s->driver_mu);
      total += s->hits;
    }
    return total;
  }

 private:
  Ref<NotifierDomain> domain_ = make_ref<NotifierDomain>();
  std::vector<Ref<Sub>> subs_;
};

class KernelDesignImpl {
 public:
  class Sub : public KernelSub {
   public:
    bool invalidate(const Range&, std::uint64_t cur_seq) override {
      MutexLock l(driver_mu);
      set_seq(cur_seq);
      ++hits;
      return true;
    }
    Mutex driver_mu;
    std::uint64_t hits ABSL_GUARDED_BY(driver_mu) = 0;
  };

  explicit KernelDesignImpl(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      subs_.push_back(std::make_unique<Sub>());
      domain_.insert(*subs_.back(), i * kPage, i * kPage + kPage - 1);
    }
  }
  ~KernelDesignImpl() {
    for (const auto& s : subs_) domain_.remove(*s);
  }

  bool fault(std::size_t i) {
    Sub& s = *subs_[i];
    const std::uint64_t seq = s.read_begin();
    MutexLock l(s.driver_mu);
    return s.read_retry(seq);
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    const Range r{page * kPage, (page + pages) * kPage};
    domain_.invalidate_range_start(r);
    domain_.invalidate_range_end(r);
  }
  std::uint64_t hits() {
    std::uint64_t total = 0;
    for (const auto& s : subs_) {
      MutexLock l(s->driver_mu);
      total += s->hits;
    }
    return total;
  }

 private:
  KernelDomain domain_;
  std::vector<std::unique_ptr<Sub>> subs_;
};

class ListImpl {
 public:
  // The subscriber's own mutex `mu` is the driver lock in this design.
  class Sub : public ListSub {
   public:
    using ListSub::ListSub;
    void invalidate(const Range&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { ++hits; }
    std::uint64_t hits ABSL_GUARDED_BY(mu) = 0;
  };

  explicit ListImpl(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      subs_.push_back(std::make_unique<Sub>(i * kPage, i * kPage + kPage - 1));
      domain_.add(*subs_.back());
    }
  }
  ~ListImpl() {
    for (const auto& s : subs_) domain_.remove(*s);
  }

  bool fault(std::size_t i) {
    Sub& s = *subs_[i];
    const std::uint64_t seq = s.read_begin();
    MutexLock l(s.mu);
    return s.read_retry(seq);
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    const Range r{page * kPage, (page + pages) * kPage};
    domain_.invalidate_range_start(r);
    domain_.invalidate_range_end(r);
  }
  std::uint64_t hits() {
    std::uint64_t total = 0;
    for (const auto& s : subs_) {
      MutexLock l(s->mu);
      total += s->hits;
    }
    return total;
  }

 private:
  ListDomain domain_;
  std::vector<std::unique_ptr<Sub>> subs_;
};

template <class Impl>
void BM_Notifier_ReadBeginRetry(benchmark::State& state) {
  Impl impl(1);
  std::uint64_t retries = 0;
  for (auto _ : state) retries += impl.fault(0) ? 1 : 0;
  ITN_CHECK(retries == 0, "no invalidation runs, so nothing may retry");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

template <class Impl>
void BM_Notifier_InvalidateRange(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto k = static_cast<std::uint64_t>(state.range(1));
  ITN_CHECK(k <= n, "notifier_sizes() keeps k <= n");
  Impl impl(n);
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

BENCHMARK(BM_Notifier_ReadBeginRetry<ItnImpl>)->Name("BM_Notifier_ReadBeginRetry/itn");
BENCHMARK(BM_Notifier_ReadBeginRetry<KernelDesignImpl>)
    ->Name("BM_Notifier_ReadBeginRetry/kernel_design");
BENCHMARK(BM_Notifier_ReadBeginRetry<ListImpl>)->Name("BM_Notifier_ReadBeginRetry/list");

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
BENCHMARK(BM_Notifier_InvalidateRange<KernelDesignImpl>)
    ->Name("BM_Notifier_InvalidateRange/kernel_design") ITN_NOTIFIER_SIZES;
BENCHMARK(BM_Notifier_InvalidateRange<ListImpl>)
    ->Name("BM_Notifier_InvalidateRange/list") ITN_NOTIFIER_SIZES;

}  // namespace
}  // namespace itn::bench

BENCHMARK_MAIN();
