// bench/notifier_impls.h
//
// The notifier implementations the benchmarks compare, behind one shape so that every
// suite runs the same code against each of them. Labels: `itn` (itn::NotifierDomain),
// `kernel_design` (B1, bench/baselines/kernel_notifier.h, its spinlock), `kernel_design_mutex`
// (B1 with an itn::Mutex instead), `list` (B2,
// bench/baselines/list_notifier.h), `multimap` (B3, a std::multimap registry: find only).
//
// Layout: n subscribers, subscriber i covering page i ([i * kPage, i * kPage + kPage - 1]),
// allocated in page order, or in random order (Layout::kShuffled) so that walks in page
// order meet them scattered over memory.
// itn and both kernel_design variants offer all of the calls below; list offers Impl(n), fault(),
// invalidate() and hits(); multimap offers Impl(n) and find().
//   Impl(n[, layout])              n subscribers; the destructor unsubscribes them all
//                                  (ItnImpl also takes the domain's options)
//   read_without_lock(i)           read_begin() then read_retry() on subscriber i, without
//                                  the driver lock (the protocol's own cost)
//   fault(i[, walk])               the device fault fast path on subscriber i: seq =
//                                  read_begin(), walk() (the page-table walk; nothing by
//                                  default), driver lock, read_retry(seq); true = retry
//   invalidate(page, pages)        one invalidate_range_start + invalidate_range_end
//   start(page, pages), end(...)   the two halves, for work during an active invalidation
//   hits()                         invalidate() calls so far, over all subscribers
//   insert_remove(page)            a new subscriber on `page`, inserted and removed
//   find_fault(page)               find the subscriber of `page`, then fault() on it
//   find(page)                     find the subscriber of `page` (no fault)
//
// Thread safety: fault(), find(), find_fault(), invalidate() and insert_remove() may run on
// several threads; start(), end() and hits() on one thread at a time. Lifetime: subscribers created
// by insert_remove() end with it. Memory ordering: that of each implementation.
#ifndef ITN_BENCH_NOTIFIER_IMPLS_H_
#define ITN_BENCH_NOTIFIER_IMPLS_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"

#include "bench/baselines/kernel_notifier.h"
#include "bench/baselines/list_notifier.h"
#include "bench/baselines/multimap_intervals.h"
#include "notifier/domain.h"
#include "notifier/interval_notifier.h"
#include "notifier/range.h"
#include "sync/check.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::bench {

constexpr std::uint64_t kPage = 4096;

inline void check_ok(const absl::Status& status) {
  ITN_CHECK_OK(status, "notifier benchmark setup");
}

inline Range page_range(std::uint64_t page, std::uint64_t pages) {
  return Range{.start = page * kPage, .end = (page + pages) * kPage};
}

enum class Layout { kAllocationOrder, kShuffled };

// n subscribers made by make(), in allocation order or shuffled (a fixed seed).
template <class Ptr, class Make>
std::vector<Ptr> make_subscribers(std::size_t n, Layout layout, Make&& make) {
  std::vector<Ptr> subs;
  subs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) subs.push_back(make(i));
  if (layout == Layout::kShuffled) std::shuffle(subs.begin(), subs.end(), std::mt19937_64(7));
  return subs;
}

// A driver's subscriber: invalidate() takes the driver lock, records the sequence and
// counts itself. Base is IntervalNotifier or a KernelSub.
template <class Base>
class CountingSub : public Base {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    MutexLock l(driver_mu);
    this->set_seq(cur_seq);
    ++hits;
    return true;
  }
  Mutex& driver_lock() ABSL_LOCK_RETURNED(driver_mu) { return driver_mu; }

  Mutex driver_mu;
  std::uint64_t hits ABSL_GUARDED_BY(driver_mu) = 0;
};

// B2's subscriber: its own mutex is the driver lock.
class ListCountingSub : public ListSub {
 public:
  using ListSub::ListSub;
  void invalidate(const Range&) override ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { ++hits; }
  Mutex& driver_lock() ABSL_LOCK_RETURNED(mu) { return mu; }

  std::uint64_t hits ABSL_GUARDED_BY(mu) = 0;
};

// The device fault path every design shares.
struct NoWalk {
  void operator()() const {}
};
template <class Sub, class Walk = NoWalk>
bool fault_once(Sub& s, Walk&& walk = {}) {
  const std::uint64_t seq = s.read_begin();
  walk();
  MutexLock l(s.driver_lock());
  return s.read_retry(seq);
}

template <class SubPtr>
std::uint64_t total_hits(const std::vector<SubPtr>& subs) {
  std::uint64_t total = 0;
  for (const SubPtr& s : subs) {
    MutexLock l(s->driver_lock());
    total += s->hits;
  }
  return total;
}

class ItnImpl {
 public:
  using Sub = CountingSub<IntervalNotifier>;

  explicit ItnImpl(std::size_t n, Layout layout = Layout::kAllocationOrder,
                   NotifierDomainOptions options = {})
      : domain_(make_ref<NotifierDomain>(options)),
        subs_(make_subscribers<Ref<Sub>>(n, layout, [](std::size_t) { return make_ref<Sub>(); })) {
    for (std::size_t i = 0; i < n; ++i) {
      check_ok(domain_->insert(subs_[i], Interval::sized(i * kPage, kPage), kOwner));
    }
  }
  ~ItnImpl() {
    // The notifier and the domain hold references to each other until remove().
    for (const Ref<Sub>& s : subs_) check_ok(domain_->remove(*s));
  }

  template <class Walk = NoWalk>
  bool fault(std::size_t i, Walk&& walk = {}) {
    return fault_once(*subs_[i], std::forward<Walk>(walk));
  }
  bool read_without_lock(std::size_t i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // No driver lock: only the cost is of interest, the answer is not (nobody invalidates).
    return subs_[i]->read_retry(subs_[i]->read_begin());
  }
  // One invalidation at a time is left open between start() and end().
  void start(std::uint64_t page, std::uint64_t pages) { open_.emplace(begin(page, pages)); }
  void end(std::uint64_t, std::uint64_t) {
    domain_->invalidate_range_end(std::move(*open_));
    open_.reset();
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    domain_->invalidate_range_end(begin(page, pages));
  }
  void insert_remove(std::uint64_t page) {
    Ref<Sub> s = make_ref<Sub>();  // notifiers are single-use
    check_ok(domain_->insert(s, Interval::sized(page * kPage, kPage), kOwner));
    check_ok(domain_->remove(*s));
  }
  bool find(std::uint64_t page) {
    return domain_->find(kOwner, Interval::closed(page * kPage, page * kPage)) != nullptr;
  }
  bool find_fault(std::uint64_t page) {
    const Ref<IntervalNotifier> s =
        domain_->find(kOwner, Interval::closed(page * kPage, page * kPage));
    ITN_CHECK(s != nullptr, "every faulted page has a subscriber");
    return fault_once(static_cast<Sub&>(*s));
  }
  std::uint64_t hits() { return total_hits(subs_); }
  IntervalTreeMemory memory() const { return domain_->memory(); }

 private:
  InvalidationToken begin(std::uint64_t page, std::uint64_t pages) {
    absl::StatusOr<InvalidationToken> token =
        domain_->invalidate_range_start(page_range(page, pages));
    check_ok(token.status());
    return *std::move(token);
  }

  static constexpr const void* kOwner = nullptr;
  Ref<NotifierDomain> domain_;
  std::vector<Ref<Sub>> subs_;
  std::optional<InvalidationToken> open_;
};

template <class Lock>
class KernelDesignImpl {
 public:
  using Sub = CountingSub<KernelSub<Lock>>;

  explicit KernelDesignImpl(std::size_t n, Layout layout = Layout::kAllocationOrder)
      : subs_(make_subscribers<std::unique_ptr<Sub>>(
            n, layout, [](std::size_t) { return std::make_unique<Sub>(); })) {
    for (std::size_t i = 0; i < n; ++i) domain_.insert(*subs_[i], i * kPage, i * kPage + kPage - 1);
  }
  ~KernelDesignImpl() {
    for (const auto& s : subs_) domain_.remove(*s);
  }

  template <class Walk = NoWalk>
  bool fault(std::size_t i, Walk&& walk = {}) {
    return fault_once(*subs_[i], std::forward<Walk>(walk));
  }
  bool read_without_lock(std::size_t i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // No driver lock: only the cost is of interest, the answer is not (nobody invalidates).
    return subs_[i]->read_retry(subs_[i]->read_begin());
  }
  void start(std::uint64_t page, std::uint64_t pages) {
    domain_.invalidate_range_start(page_range(page, pages));
  }
  void end(std::uint64_t page, std::uint64_t pages) {
    domain_.invalidate_range_end(page_range(page, pages));
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    start(page, pages);
    end(page, pages);
  }
  void insert_remove(std::uint64_t page) {
    auto s = std::make_unique<Sub>();  // allocated per insert, as itn's are
    domain_.insert(*s, page * kPage, page * kPage + kPage - 1);
    domain_.remove(*s);
  }
  bool find(std::uint64_t page) { return domain_.find(page * kPage, page * kPage) != nullptr; }
  bool find_fault(std::uint64_t page) {
    // A raw pointer, valid only because nobody removes the subscribers faulted here: B1
    // has no lifetime rule for find() (the one itn's Ref adds).
    KernelSub<Lock>* s = domain_.find(page * kPage, page * kPage);
    ITN_CHECK(s != nullptr, "every faulted page has a subscriber");
    return fault_once(static_cast<Sub&>(*s));
  }
  std::uint64_t hits() { return total_hits(subs_); }

 private:
  KernelDomain<Lock> domain_;
  std::vector<std::unique_ptr<Sub>> subs_;
};
using KernelSpinImpl = KernelDesignImpl<SpinLock>;
using KernelMutexImpl = KernelDesignImpl<Mutex>;

class ListImpl {
 public:
  using Sub = ListCountingSub;

  explicit ListImpl(std::size_t n, Layout layout = Layout::kAllocationOrder)
      : subs_(make_subscribers<std::unique_ptr<Sub>>(n, layout, [](std::size_t i) {
          return std::make_unique<Sub>(i * kPage, i * kPage + kPage - 1);
        })) {
    for (const auto& s : subs_) domain_.add(*s);
  }
  ~ListImpl() {
    for (const auto& s : subs_) domain_.remove(*s);
  }

  template <class Walk = NoWalk>
  bool fault(std::size_t i, Walk&& walk = {}) {
    return fault_once(*subs_[i], std::forward<Walk>(walk));
  }
  bool read_without_lock(std::size_t i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // No driver lock: only the cost is of interest, the answer is not (nobody invalidates).
    return subs_[i]->read_retry(subs_[i]->read_begin());
  }
  void invalidate(std::uint64_t page, std::uint64_t pages) {
    domain_.invalidate_range_start(page_range(page, pages));
    domain_.invalidate_range_end(page_range(page, pages));
  }
  std::uint64_t hits() { return total_hits(subs_); }

 private:
  ListDomain domain_;
  std::vector<std::unique_ptr<Sub>> subs_;
};

// B3: subscribers registered in a std::multimap under a mutex; only find() is measured.
class MultimapImpl {
 public:
  using Sub = CountingSub<KernelSub<SpinLock>>;

  explicit MultimapImpl(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      subs_.push_back(std::make_unique<Sub>());
      check_ok(map_.insert(i * kPage, i * kPage + kPage - 1, subs_.back().get()));
    }
  }

  bool find(std::uint64_t page) {
    Sub* found = nullptr;
    map_.for_each_overlap(page * kPage, page * kPage, [&](std::uint64_t, std::uint64_t, Sub* s) {
      if (found == nullptr) found = s;
    });
    return found != nullptr;
  }

 private:
  MultimapIntervals<Sub*> map_;
  std::vector<std::unique_ptr<Sub>> subs_;
};

}  // namespace itn::bench

#endif  // ITN_BENCH_NOTIFIER_IMPLS_H_
