// sync/rw_mutex.h
//
// itn::RwMutex, itn::ReadLock and itn::WriteLock: std::shared_mutex with Abseil
// thread-safety annotations, routed through the scheduling seam (sync/sched_hooks.h) like
// itn::Mutex. Many readers or one writer: what the kernel's mmap_lock is, so that faults
// (readers) run side by side while mmap/munmap/fork (writers) run alone.
// ABSL_GUARDED_BY(rw_) fields may then be read with either mode held and written only
// with the write lock; -Wthread-safety checks both.
//
// Thread safety: any thread. Not recursive in either mode: taking it again while holding
// it (read or write) is a contract violation (debug: dies with a message), as a waiting
// writer would deadlock a recursive reader. No upgrade from read to write.
// Lifetime: must not be destroyed while held.
// Memory ordering: an unlock() happens-before every later lock() and lock_shared(); an
// unlock_shared() happens-before every later lock().
#ifndef ITN_SYNC_RW_MUTEX_H_
#define ITN_SYNC_RW_MUTEX_H_

#include <atomic>
#include <shared_mutex>
#include <thread>

#include "absl/base/thread_annotations.h"

#include "sync/check.h"
#include "sync/lock_tracking.h"
#include "sync/sched_hooks.h"

namespace itn {

class ABSL_LOCKABLE RwMutex {
 public:
  RwMutex() = default;
  ~RwMutex() {
    if (ITN_DEBUG_CHECKS) lock_tracking::on_destroy(this);
  }
  RwMutex(const RwMutex&) = delete;
  RwMutex& operator=(const RwMutex&) = delete;

  // RwMutex::lock() / unlock()
  //
  // The write side: blocks until no thread holds the mutex in either mode.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    check_not_held();
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
      h->on_point(SchedPoint::kLock, this);
      while (!mu_.try_lock()) h->on_block(this);
    } else {
      mu_.lock();
    }
    // Relaxed: only the owner stores its own id (see held_by_caller()).
    writer_.store(std::this_thread::get_id(), std::memory_order_relaxed);
    if (ITN_DEBUG_CHECKS) lock_tracking::on_acquire(this);
  }
  void unlock() ABSL_UNLOCK_FUNCTION() {
    ITN_DCHECK(held_by_caller(), "itn::RwMutex::unlock() by a thread that is not its writer");
    sched_internal::point(SchedPoint::kUnlock, this);
    if (ITN_DEBUG_CHECKS) lock_tracking::on_release(this);
    writer_.store(std::thread::id(), std::memory_order_relaxed);
    mu_.unlock();
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]]
      h->on_wake(this);
  }

  // RwMutex::lock_shared() / unlock_shared()
  //
  // The read side: blocks while a writer holds the mutex.
  void lock_shared() ABSL_SHARED_LOCK_FUNCTION() {
    check_not_held();
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
      h->on_point(SchedPoint::kLock, this);
      while (!mu_.try_lock_shared()) h->on_block(this);
    } else {
      mu_.lock_shared();
    }
    if (ITN_DEBUG_CHECKS) lock_tracking::on_acquire(this);
  }
  void unlock_shared() ABSL_UNLOCK_FUNCTION() {
    ITN_DCHECK(lock_tracking::holds(this),
               "itn::RwMutex::unlock_shared() by a thread that does not hold it");
    sched_internal::point(SchedPoint::kUnlock, this);
    if (ITN_DEBUG_CHECKS) lock_tracking::on_release(this);
    mu_.unlock_shared();
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]]
      h->on_wake(this);
  }

  // RwMutex::assert_held()
  //
  // Debug builds: dies unless the calling thread is the writer. Always tells the
  // thread-safety analysis that it is.
  void assert_held() const ABSL_ASSERT_EXCLUSIVE_LOCK() {
    ITN_DCHECK(held_by_caller(), "itn::RwMutex::assert_held(): the caller must hold it to write");
  }

  // RwMutex::held_by_caller()
  //
  // True if the calling thread holds the write side. For checks and tests only.
  bool held_by_caller() const {
    // Relaxed: only the writer stores its own id, so the caller sees either its own store
    // (program order) or some other value.
    return writer_.load(std::memory_order_relaxed) == std::this_thread::get_id();
  }

 private:
  void check_not_held() const {
    ITN_DCHECK(!lock_tracking::holds(this),
               "itn::RwMutex is not recursive: the caller already holds it");
  }

  std::shared_mutex mu_;
  // Seam-internal bookkeeping for the ownership checks; not a scheduling point.
  std::atomic<std::thread::id> writer_{};
};

// ReadLock / WriteLock
//
// Hold `mu` in one mode from construction to the end of the scope.
class ABSL_SCOPED_LOCKABLE ReadLock {
 public:
  explicit ReadLock(RwMutex& mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReadLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }
  ReadLock(const ReadLock&) = delete;
  ReadLock& operator=(const ReadLock&) = delete;

 private:
  RwMutex& mu_;
};

class ABSL_SCOPED_LOCKABLE WriteLock {
 public:
  explicit WriteLock(RwMutex& mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_.lock(); }
  ~WriteLock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  RwMutex& mu_;
};

}  // namespace itn

#endif  // ITN_SYNC_RW_MUTEX_H_
