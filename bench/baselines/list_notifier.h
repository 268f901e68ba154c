// bench/baselines/list_notifier.h
//
// Baseline `list` (B2): the design before interval notifiers (Linux < 5.5). The address
// space keeps a flat list of subscribers; every invalidation calls every one of them, and
// each subscriber checks the range against its own [start, last] under its own mutex. The
// subscriber keeps its own sequence and count of active invalidations under that mutex,
// the way drivers did (e.g. RDMA ODP's notifiers_seq / notifiers_count under umem_mutex);
// that mutex is also the driver lock, so read_retry() is called under it.
//
// Per subscriber, with mu held:
// - an overlapping start: if it is the first active one, seq becomes odd; invalidate().
// - an overlapping end: if it was the last active one, seq becomes even; waiters wake.
// - read_begin() waits until no invalidation of this subscriber is active and returns the
//   (even) seq; read_retry(seq) is true if seq moved since.
// Cost of one invalidation: O(n) subscriber locks for start and again for end.
//
// Thread safety: every method may be called from any thread; invalidate() runs with `mu`
// held and must not call back into the list.
// Lifetime: a ListSub must stay alive from add() until remove() returns.
// Memory ordering: all state is read and written under mutexes; nothing lock-free.
#ifndef ITN_BENCH_BASELINES_LIST_NOTIFIER_H_
#define ITN_BENCH_BASELINES_LIST_NOTIFIER_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "notifier/range.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"

namespace itn::bench {

class ListSub {
 public:
  ListSub(std::uint64_t start, std::uint64_t last) : start_(start), last_(last) {}
  virtual ~ListSub() = default;

  // ListSub::invalidate()
  //
  // Called, with `mu` held, for each invalidation overlapping [start, last], after the
  // sequence was made odd. Clears device state.
  virtual void invalidate(const Range& range) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // ListSub::read_begin()
  //
  // Takes `mu`; waits while an invalidation of this subscriber is active.
  std::uint64_t read_begin() ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock l(mu);
    while (active_ > 0) cv_.wait(mu);
    return seq_;
  }

  // ListSub::read_retry()
  //
  // True if an invalidation of this subscriber began since read_begin() returned `seq`.
  bool read_retry(std::uint64_t seq) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return seq_ != seq; }

  // The subscriber's own lock, which is also the driver lock.
  mutable Mutex mu;

 private:
  friend class ListDomain;

  // The per-subscriber overlap check. Cond1: start_ <= range.interval().last(); Cond2: range.start
  // <= last_ (both bounds inclusive).
  bool overlaps(const Range& range) const {
    return start_ <= range.interval().last() && range.start <= last_;
  }

  void start(const Range& range) ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock l(mu);
    if (!overlaps(range)) return;
    if (active_++ == 0) ++seq_;  // odd: read_begin() waits, read_retry() is true
    invalidate(range);
  }

  void end(const Range& range) ABSL_LOCKS_EXCLUDED(mu) {
    MutexLock l(mu);
    // active_ == 0: `sub` was added after this invalidation's start (it missed the start,
    // a known gap of this design); its end must not underflow the count.
    if (!overlaps(range) || active_ == 0) return;
    if (--active_ > 0) return;
    ++seq_;  // even again
    cv_.notify_all();
  }

  const std::uint64_t start_;
  const std::uint64_t last_;
  CondVar cv_;                                 // signalled when active_ drops to zero
  std::uint64_t seq_ ABSL_GUARDED_BY(mu) = 0;  // odd while active_ > 0
  std::uint64_t active_ ABSL_GUARDED_BY(mu) = 0;
};

class ListDomain {
 public:
  void add(ListSub& sub) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    subs_.push_back(&sub);
  }

  // ListDomain::remove()
  //
  // On return no start() or end() of `sub` runs: both run under mu_, which we take.
  void remove(ListSub& sub) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    subs_.erase(std::find(subs_.begin(), subs_.end(), &sub));
  }

  void invalidate_range_start(const Range& range) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    for (ListSub* sub : subs_) sub->start(range);  // every subscriber, overlapping or not
  }

  void invalidate_range_end(const Range& range) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    for (ListSub* sub : subs_) sub->end(range);
  }

 private:
  Mutex mu_;  // taken before every subscriber's mu
  std::vector<ListSub*> subs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_LIST_NOTIFIER_H_
