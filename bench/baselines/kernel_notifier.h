// bench/baselines/kernel_notifier.h
//
// Baseline `kernel_design` (B1): the kernel's interval-notifier algorithm (the interval
// part of mm/mmu_notifier.c over lib/rbtree.c's augmented interval tree), rewritten here
// from the algorithm so that itn is measured against the design it replaces, not against
// a weaker copy of it. `Lock` is SpinLock (the kernel's spinlock_t: label kernel_design) or
// itn::Mutex (label kernel_design_mutex).
//
// What makes it the kernel's:
// - The tree is intrusive: each subscriber embeds its red-black node (RbIntervalNode), so
//   insert and remove allocate nothing. One lock guards the tree, the sequence, the
//   active count and the deferred list.
// - invalidate_range_start(): under the lock, ++active and one descent to the first
//   overlapping subscriber; if there is one the sequence becomes odd. The lock is dropped
//   and the walk goes on from that node without it: while the sequence is odd the tree
//   does not change, every insert and remove is deferred.
// - invalidate_range_end(): under the lock, --active; the end that reaches zero with an
//   odd sequence applies the deferred list in order and makes the sequence even; waiters
//   are woken after the lock is dropped.
// - read_begin() takes the lock to compare the subscriber's sequence with the domain's
//   and sleeps, without it, while an invalidation that reached the subscriber runs.
// - remove() during an invalidation defers the erase and sleeps until the sequence moves
//   on; removing a subscriber whose insert is still deferred cancels the insert.
//
// Baseline simplifications: subscribers are owned by the caller (no reference counts, so
// find() returns a raw pointer only as good as the caller's own lifetime rule); no
// whole-space notifiers, no non-blocking invalidations, no misuse checks.
//
// Thread safety: every method may be called from any thread. invalidate() must not call
// back into the domain.
// Lifetime: a subscriber must stay alive from insert() until its remove() returns and
// must not be inserted twice at once; the domain must outlive its subscribers' use.
// Memory ordering: the lock orders read_begin(), insert() and remove() against starts
// and ends; a woken waiter's acquire load of the sequence pairs with the end's release
// store, after the deferred list was applied; set_seq() and read_retry() are ordered by
// the driver lock that both run under.
#ifndef ITN_BENCH_BASELINES_KERNEL_NOTIFIER_H_
#define ITN_BENCH_BASELINES_KERNEL_NOTIFIER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"

#include "bench/baselines/rb_interval_tree.h"
#include "bench/baselines/spin_lock.h"
#include "notifier/range.h"
#include "sync/atomic.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"

namespace itn::bench {

template <class Lock>
class KernelDomain;

template <class Lock>
class KernelSub : private RbIntervalNode {
 public:
  virtual ~KernelSub() = default;

  // KernelSub::invalidate()
  //
  // Called for each invalidation overlapping the subscriber; cur_seq is odd.
  // Implementations take their driver lock, call set_seq(cur_seq), clear device state,
  // return true.
  virtual bool invalidate(const Range& range, std::uint64_t cur_seq) = 0;

  // KernelSub::read_begin()
  //
  // Takes the domain lock; sleeps while an invalidation that reached (or was active at
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
    // read_begin() (ordered by the domain lock the start released before calling us).
    invalidate_seq_.store(cur_seq, std::memory_order_relaxed);
  }

 private:
  friend class KernelDomain<Lock>;

  KernelDomain<Lock>* domain_ = nullptr;
  Atomic<std::uint64_t> invalidate_seq_{0};
  bool linked_ = false;                 // in the tree (the kernel's !RB_EMPTY_NODE)
  KernelSub* deferred_next_ = nullptr;  // the domain's deferred list, FIFO
};

template <class Lock>
class KernelDomain {
 public:
  using Sub = KernelSub<Lock>;

  // KernelDomain::insert() / remove()
  //
  // Subscribes `sub` to [start, last] / unsubscribes it. remove() may sleep until the
  // active invalidations end; on return no invalidate() of `sub` runs.
  void insert(Sub& sub, std::uint64_t start, std::uint64_t last) ABSL_LOCKS_EXCLUDED(lock_) {
    LockGuard<Lock> g(lock_);
    sub.domain_ = this;
    sub.start = start;
    sub.last = last;
    // Relaxed: seq_ is written only under lock_, which we hold.
    std::uint64_t seq = seq_.load(std::memory_order_relaxed);
    if (active_ > 0) {
      // An active invalidation may cover the new range without having seen it: the first
      // read_begin() must wait for it.
      if ((seq & 1) == 0) {
        seq |= 1;
        // Relaxed: read under lock_ by read_begin(), or after a later even store.
        seq_.store(seq, std::memory_order_relaxed);
      }
      // Relaxed: published to read_begin() by lock_.
      sub.invalidate_seq_.store(seq, std::memory_order_relaxed);
      defer_locked(sub);
    } else {
      // Relaxed: published to read_begin() by lock_.
      sub.invalidate_seq_.store(seq - 1, std::memory_order_relaxed);
      link_locked(sub);
    }
  }

  void remove(Sub& sub) ABSL_LOCKS_EXCLUDED(lock_) {
    std::uint64_t seq = 0;
    {
      LockGuard<Lock> g(lock_);
      // Relaxed: seq_ is written only under lock_, which we hold.
      const std::uint64_t cur = seq_.load(std::memory_order_relaxed);
      if ((cur & 1) == 0) {
        unlink_locked(sub);
        return;
      }
      if (!sub.linked_) {
        cancel_deferred_locked(sub);  // never walked: nothing to wait for
        return;
      }
      defer_locked(sub);
      seq = cur;
    }
    wait_for_seq_change(seq);  // the end that moves the sequence on applied our erase
  }

  // KernelDomain::find()
  //
  // The subscriber overlapping [start, last] with the lowest start, or null, looked up
  // under the lock. The pointer is only as good as the caller's guarantee that nobody
  // removes the subscriber meanwhile (B1 has no lifetime rule for lookups).
  Sub* find(std::uint64_t start, std::uint64_t last) ABSL_LOCKS_EXCLUDED(lock_) {
    LockGuard<Lock> g(lock_);
    return sub_of(tree_.first_overlap(start, last));
  }

  void invalidate_range_start(const Range& range) ABSL_LOCKS_EXCLUDED(lock_) {
    const std::uint64_t last = range.interval().last();
    RbIntervalNode* node = nullptr;
    std::uint64_t cur_seq = 0;
    {
      LockGuard<Lock> g(lock_);
      ++active_;
      node = tree_.first_overlap(range.start, last);
      if (node == nullptr) return;  // nobody to call: the sequence stays as it is
      // Relaxed: seq_ is written only under lock_, which we hold.
      cur_seq = seq_.load(std::memory_order_relaxed) | 1;
      // Relaxed: read under lock_ by read_begin() and insert().
      seq_.store(cur_seq, std::memory_order_relaxed);
    }
    // No lock: while the sequence is odd the tree only changes through the deferred list.
    for (; node != nullptr; node = RbIntervalTree::next_overlap(*node, range.start, last)) {
      (void)sub_of(node)->invalidate(range, cur_seq);
    }
  }

  void invalidate_range_end(const Range&) ABSL_LOCKS_EXCLUDED(lock_) {
    {
      LockGuard<Lock> g(lock_);
      // Relaxed: seq_ is written only under lock_, which we hold.
      const std::uint64_t seq = seq_.load(std::memory_order_relaxed);
      if (--active_ > 0 || (seq & 1) == 0) return;
      apply_deferred_locked();
      // Release: pairs with the acquire load in wait_for_seq_change(); the deferred list
      // is applied.
      seq_.store(seq + 1, std::memory_order_release);
    }
    // The kernel's wake_up_all(): taking the wait mutex orders this wake after any waiter
    // that checked the old sequence has gone to sleep.
    { MutexLock l(wait_mu_); }
    wq_.notify_all();
  }

 private:
  friend class KernelSub<Lock>;

  static Sub* sub_of(RbIntervalNode* node) { return static_cast<Sub*>(node); }

  void link_locked(Sub& sub) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    tree_.insert(sub);
    sub.linked_ = true;
  }
  void unlink_locked(Sub& sub) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    tree_.erase(sub);
    sub.linked_ = false;
  }

  void defer_locked(Sub& sub) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    sub.deferred_next_ = nullptr;
    *deferred_tail_ = &sub;
    deferred_tail_ = &sub.deferred_next_;
  }
  void cancel_deferred_locked(Sub& sub) ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    Sub** link = &deferred_head_;
    while (*link != &sub) link = &(*link)->deferred_next_;
    *link = sub.deferred_next_;
    if (deferred_tail_ == &sub.deferred_next_) deferred_tail_ = link;
  }
  // In FIFO order: an unlinked subscriber was a deferred insert, a linked one a remove.
  void apply_deferred_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(lock_) {
    for (Sub* sub = deferred_head_; sub != nullptr;) {
      Sub* next = sub->deferred_next_;
      if (sub->linked_) {
        unlink_locked(*sub);
      } else {
        link_locked(*sub);
      }
      sub = next;
    }
    deferred_head_ = nullptr;
    deferred_tail_ = &deferred_head_;
  }

  void wait_for_seq_change(std::uint64_t seq) ABSL_LOCKS_EXCLUDED(lock_, wait_mu_) {
    MutexLock l(wait_mu_);
    // Acquire: pairs with the release store in invalidate_range_end().
    while (seq_.load(std::memory_order_acquire) == seq) wq_.wait(wait_mu_);
  }

  Lock lock_;
  // Changed only under lock_ and only while the sequence is even; walked without lock_
  // while it is odd (the walk's start took lock_ after the last change).
  RbIntervalTree tree_;
  // Even: idle; odd: an invalidation that reached a subscriber (or was active at a
  // deferred insert) runs. Written under lock_; read without it only by sleepers.
  Atomic<std::uint64_t> seq_{2};
  std::uint64_t active_ ABSL_GUARDED_BY(lock_) = 0;
  Sub* deferred_head_ ABSL_GUARDED_BY(lock_) = nullptr;
  Sub** deferred_tail_ ABSL_GUARDED_BY(lock_) = &deferred_head_;
  // The kernel's wait queue: sleepers in read_begin() and remove().
  Mutex wait_mu_;
  CondVar wq_;
};

template <class Lock>
std::uint64_t KernelSub<Lock>::read_begin() {
  KernelDomain<Lock>& d = *domain_;
  std::uint64_t seq = 0;
  bool invalidating = false;
  {
    LockGuard<Lock> g(d.lock_);
    // Relaxed: written under d.lock_ (insert) or by set_seq() after the start that
    // released d.lock_; either way the lock makes it visible here.
    seq = invalidate_seq_.load(std::memory_order_relaxed);
    // Relaxed: written only under d.lock_, which we hold.
    invalidating = seq == d.seq_.load(std::memory_order_relaxed);
  }
  if (invalidating) d.wait_for_seq_change(seq);
  return seq;
}

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_KERNEL_NOTIFIER_H_
