// bench/baselines/spin_lock.h
//
// itn::bench::SpinLock: a pthread spinlock with Abseil thread-safety annotations, the
// user-space stand-in for the kernel's spinlock_t in the kernel-design baseline (B1).
// LockGuard<L> holds any annotated lock (SpinLock or itn::Mutex) for a scope, so that a
// baseline can be written once for both.
//
// Thread safety: lock()/unlock() from any thread; unlock() only by the owner; not
// recursive (a second lock() by the owner spins for ever).
// Lifetime: must not be destroyed while held.
// Memory ordering: unlock() happens-before every later lock() of the same lock.
#ifndef ITN_BENCH_BASELINES_SPIN_LOCK_H_
#define ITN_BENCH_BASELINES_SPIN_LOCK_H_

#include <pthread.h>

#include "absl/base/thread_annotations.h"

namespace itn::bench {

class ABSL_LOCKABLE SpinLock {
 public:
  SpinLock() { pthread_spin_init(&lock_, PTHREAD_PROCESS_PRIVATE); }
  ~SpinLock() { pthread_spin_destroy(&lock_); }
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { pthread_spin_lock(&lock_); }
  void unlock() ABSL_UNLOCK_FUNCTION() { pthread_spin_unlock(&lock_); }

 private:
  pthread_spinlock_t lock_;
};

template <class L>
class ABSL_SCOPED_LOCKABLE LockGuard {
 public:
  explicit LockGuard(L& lock) ABSL_EXCLUSIVE_LOCK_FUNCTION(lock) : lock_(lock) { lock_.lock(); }
  ~LockGuard() ABSL_UNLOCK_FUNCTION() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  L& lock_;
};

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_SPIN_LOCK_H_
