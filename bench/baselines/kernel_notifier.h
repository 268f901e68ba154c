// bench/baselines/kernel_notifier.h
//
// Baseline `kernel_design` (B1): the kernel's mmu_interval_notifier design, written plainly
// for the benchmarks. One domain mutex guards the sequence, the active-invalidation count
// and the deferred list; the subscribers live in a mutable AVL tree behind its own mutex
// (LockedIntervalTree). Unlike itn::NotifierDomain, read_begin() takes the domain mutex,
// as the kernel's mmu_interval_read_begin() takes subscriptions->lock: that lock on the
// device fault path is what the benchmarks measure.
//
// The protocol (the same as notifier/domain.h):
// - invalidate_range_start(): under the mutex, ++active; if the range overlaps a subscriber
//   the sequence becomes odd. Then (mutex dropped) every overlapping subscriber's
//   invalidate() is called with that odd sequence.
// - invalidate_range_end(): under the mutex, --active; at zero, if the sequence is odd, the
//   deferred inserts and removes are applied in order, the sequence becomes even and
//   waiters wake.
// - insert()/remove() during an active invalidation are deferred (the walked set must not
//   change under a walk); remove() then waits, under the mutex, until they are applied.
//
// Baseline simplifications: subscribers are owned by the caller (no reference counts);
// there are no whole-space notifiers, no non-blocking invalidations and no misuse checks.
// The tree walk holds the tree's mutex while it calls invalidate(), so concurrent
// invalidations are serialised by it.
//
// Thread safety: every method may be called from any thread. invalidate() must not call
// back into the domain.
// Lifetime: a KernelSub must stay alive from insert() until its remove() returns; the
// domain must outlive its subscribers' use.
// Memory ordering: the domain mutex orders read_begin() against starts and ends;
// set_seq() and read_retry() are ordered by the driver lock that both run under.
#ifndef ITN_BENCH_BASELINES_KERNEL_NOTIFIER_H_
#define ITN_BENCH_BASELINES_KERNEL_NOTIFIER_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"

#include "bench/baselines/locked_interval_tree.h"
#include "notifier/range.h"
#include "sync/atomic.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"

namespace itn::bench {

class KernelDomain;

class KernelSub {
 public:
  virtual ~KernelSub() = default;

  // KernelSub::invalidate()
  //
  // Called for each invalidation overlapping [start, last]; cur_seq is odd. Implementations
  // take their driver lock, call set_seq(cur_seq), clear device state, return true.
  virtual bool invalidate(const Range& range, std::uint64_t cur_seq) = 0;

  // KernelSub::read_begin()
  //
  // Takes the domain mutex; waits while an invalidation that reached (or was active at
  // the insert of) this subscriber runs. Must not be called with the driver lock held.
  std::uint64_t read_begin();

  // KernelSub::read_retry()
  //
  // True if an invalidation reached this subscriber since read_begin() returned `seq`.
  // MUST be called under the driver lock that invalidate() takes around set_seq().
  bool read_retry(std::uint64_t seq) const {
    // Relaxed: pairs with the store in set_seq(); the driver lock orders the two.
    return invalidate_seq_.load(std::memory_order_relaxed) != seq;
  }

  // KernelSub::set_seq()
  //
  // From invalidate(), under the driver lock.
  void set_seq(std::uint64_t cur_seq) {
    // Relaxed: pairs with the loads in read_retry() (ordered by the driver lock) and in
    // read_begin() (ordered by the domain mutex: see there).
    invalidate_seq_.store(cur_seq, std::memory_order_relaxed);
  }

 private:
  friend class KernelDomain;

  KernelDomain* domain_ = nullptr;
  std::uint64_t start_ = 0;
  std::uint64_t last_ = 0;
  Atomic<std::uint64_t> invalidate_seq_{0};
};

class KernelDomain {
 public:
  // KernelDomain::insert() / remove()
  //
  // Subscribes `sub` to [start, last] / unsubscribes it. remove() may block until the
  // active invalidations end; on return no invalidate() of `sub` runs.
  void insert(KernelSub& sub, std::uint64_t start, std::uint64_t last) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    sub.domain_ = this;
    sub.start_ = start;
    sub.last_ = last;
    if (active_ > 0) {
      seq_ |= 1;  // the new subscriber's first read_begin() waits for the active ones
      // Relaxed: published to read_begin() by the domain mutex held here.
      sub.invalidate_seq_.store(seq_, std::memory_order_relaxed);
      deferred_.push_back({true, &sub});
    } else {
      // Relaxed: published to read_begin() by the domain mutex held here.
      sub.invalidate_seq_.store(seq_ - 1, std::memory_order_relaxed);
      (void)tree_.insert(start, last, &sub);
    }
  }

  void remove(KernelSub& sub) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    if ((seq_ & 1) == 0) {
      (void)tree_.erase(sub.start_, sub.last_, &sub);
      return;
    }
    // An insert still deferred is cancelled: never walked, nothing to wait for.
    auto it = std::find(deferred_.begin(), deferred_.end(), DeferredOp{true, &sub});
    if (it != deferred_.end()) {
      deferred_.erase(it);
      return;
    }
    deferred_.push_back({false, &sub});
    const std::uint64_t seq = seq_;
    while (seq_ == seq) wq_.wait(mu_);  // checked under the mutex (the 2022 kernel fix)
  }

  // KernelDomain::find()
  //
  // The subscriber overlapping [start, last] with the lowest start, or null; looked up
  // under the tree's mutex. The pointer is only as good as the caller's own guarantee
  // that nobody removes the subscriber meanwhile (B1 has no lifetime rule for lookups).
  KernelSub* find(std::uint64_t start, std::uint64_t last) {
    KernelSub* found = nullptr;
    tree_.for_each_overlap(start, last, [&](std::uint64_t, std::uint64_t, KernelSub* sub) {
      found = sub;
      return false;  // the first in key order: stop
    });
    return found;
  }

  void invalidate_range_start(const Range& range) ABSL_LOCKS_EXCLUDED(mu_) {
    std::uint64_t cur_seq = 0;
    {
      MutexLock l(mu_);
      ++active_;
      bool hit = false;
      tree_.for_each_overlap(range.start, range.interval().last(),
                             [&](std::uint64_t, std::uint64_t, KernelSub*) {
                               hit = true;
                               return false;  // one overlap is enough: stop the walk
                             });
      if (!hit) return;  // nobody to call: the sequence stays as it is
      seq_ |= 1;
      cur_seq = seq_;
    }
    // No domain mutex: while active_ > 0 the walked set only changes through deferred_.
    tree_.for_each_overlap(range.start, range.interval().last(),
                           [&](std::uint64_t, std::uint64_t, KernelSub* sub) {
                             (void)sub->invalidate(range, cur_seq);
                           });
  }

  void invalidate_range_end(const Range&) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    if (--active_ > 0 || (seq_ & 1) == 0) return;
    for (const DeferredOp& op : deferred_) {
      if (op.insert) {
        (void)tree_.insert(op.sub->start_, op.sub->last_, op.sub);
      } else {
        (void)tree_.erase(op.sub->start_, op.sub->last_, op.sub);
      }
    }
    deferred_.clear();
    ++seq_;  // even: no invalidation runs
    wq_.notify_all();
  }

 private:
  friend class KernelSub;

  struct DeferredOp {
    bool insert;  // else remove
    KernelSub* sub;
    bool operator==(const DeferredOp&) const = default;
  };

  LockedIntervalTree<KernelSub*> tree_;  // its own mutex; taken after mu_
  Mutex mu_;
  CondVar wq_;                                  // signalled when seq_ becomes even
  std::uint64_t seq_ ABSL_GUARDED_BY(mu_) = 2;  // odd: an invalidation hit a subscriber
  std::uint64_t active_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<DeferredOp> deferred_ ABSL_GUARDED_BY(mu_);
};

inline std::uint64_t KernelSub::read_begin() {
  KernelDomain& d = *domain_;
  MutexLock l(d.mu_);
  // Relaxed: pairs with the store in set_seq(). If we read an invalidation's cur_seq, its
  // start released the domain mutex before calling us, so d.seq_ read here is that value
  // or later, never older.
  const std::uint64_t seq = invalidate_seq_.load(std::memory_order_relaxed);
  while (d.seq_ == seq) d.wq_.wait(d.mu_);  // an invalidation that reached us is active
  return seq;
}

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_KERNEL_NOTIFIER_H_
