// sync/mutex.h
//
// itn::Mutex and itn::MutexLock: std::mutex with Abseil thread-safety annotations,
// routed through the scheduling seam (sync/sched_hooks.h). Clang's -Wthread-safety (the
// `tsa` preset) then proves at compile time that every ABSL_GUARDED_BY(mu_) field is
// touched only with mu_ held and that every `_locked` function is called with its lock.
//
// Why not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer, so TSan cannot
// see the happens-before edges inside it. std::mutex is intercepted by TSan.
//
// Thread safety: lock()/unlock() from any thread; unlock() only by the owner. Not
// recursive: locking a mutex the caller already holds is a contract violation (debug:
// dies with a message).
// Lifetime: must not be destroyed while held.
// Memory ordering: unlock() happens-before every later lock() of the same mutex.
#ifndef ITN_SYNC_MUTEX_H_
#define ITN_SYNC_MUTEX_H_

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"

#include "sync/check.h"
#include "sync/lock_tracking.h"
#include "sync/sched_hooks.h"

namespace itn {

class CondVar;

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  ~Mutex() {
    if (ITN_DEBUG_CHECKS) lock_tracking::on_destroy(this);
  }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Mutex::lock()
  //
  // Blocks until the calling thread owns the mutex.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    ITN_DCHECK(!held_by_caller(), "itn::Mutex is not recursive: lock() by its owner");
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
      h->on_point(SchedPoint::kLock, this);
      while (!mu_.try_lock()) h->on_block(this);
    } else {
      mu_.lock();
    }
    set_owner();
  }

  // Mutex::try_lock()
  //
  // Takes the mutex if it is free and returns true; otherwise returns false at once.
  bool try_lock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    ITN_DCHECK(!held_by_caller(), "itn::Mutex is not recursive: try_lock() by its owner");
    sched_internal::point(SchedPoint::kLock, this);
    if (!mu_.try_lock()) return false;
    set_owner();
    return true;
  }

  // Mutex::unlock()
  //
  // Releases the mutex, which the calling thread must own.
  void unlock() ABSL_UNLOCK_FUNCTION() {
    ITN_DCHECK(held_by_caller(), "itn::Mutex::unlock() by a thread that does not own it");
    sched_internal::point(SchedPoint::kUnlock, this);
    clear_owner();
    mu_.unlock();
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]]
      h->on_wake(this);
  }

  // Mutex::assert_held()
  //
  // Debug builds: dies unless the calling thread owns the mutex. Always tells the
  // thread-safety analysis that it does.
  void assert_held() const ABSL_ASSERT_EXCLUSIVE_LOCK() {
    ITN_DCHECK(held_by_caller(), "itn::Mutex::assert_held(): the caller must hold this mutex");
  }

  // Mutex::held_by_caller()
  //
  // True if the calling thread owns the mutex. For checks and tests only: the answer
  // about other threads is stale by the time it is returned.
  bool held_by_caller() const {
    // Relaxed: only the owner ever stores its own id, so the caller either sees its own
    // store (program order) or some other value; no ordering is needed.
    return owner_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  friend class CondVar;

  void set_owner() {
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    if (ITN_DEBUG_CHECKS) lock_tracking::on_acquire(this);
  }
  void clear_owner() {
    if (ITN_DEBUG_CHECKS) lock_tracking::on_release(this);
    owner_.store(std::thread::id(), std::memory_order_relaxed);
  }

  std::mutex mu_;
  // Seam-internal bookkeeping for the ownership checks; not a scheduling point.
  std::atomic<std::thread::id> owner_{};
};

// MutexLock
//
// Holds `mu` from construction to the end of the scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

}  // namespace itn

#endif  // ITN_SYNC_MUTEX_H_
