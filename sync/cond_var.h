// sync/cond_var.h
//
// itn::CondVar: a condition variable over itn::Mutex, routed through the scheduling seam.
// Waits may wake spuriously; always wait in a loop that re-checks the condition:
//
//   MutexLock l(mu_);
//   while (!done_) cv_.wait(mu_);
//
// (A predicate overload is left out on purpose: a lambda that reads guarded fields is
// opaque to Clang's thread-safety analysis.)
//
// Thread safety: any thread; wait() requires the caller to hold `mu`.
// Lifetime: must not be destroyed while a thread waits on it.
// Memory ordering: a notify that a waiter observes, and the waiter's return, are ordered
// by `mu`: whatever the notifier wrote under `mu` is visible after wait() returns.
#ifndef ITN_SYNC_COND_VAR_H_
#define ITN_SYNC_COND_VAR_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

#include "sync/mutex.h"
#include "sync/sched_hooks.h"

namespace itn {

class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // CondVar::wait()
  //
  // Atomically releases `mu` and blocks until notified (or spuriously woken), then
  // re-acquires `mu` before returning.
  void wait(Mutex& mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    ITN_DCHECK(mu.held_by_caller(), "CondVar::wait() requires the caller to hold the mutex");
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
      // Only one managed thread runs at a time, so no notify can slip in between the
      // unlock and on_block(): the wake-up cannot be lost.
      h->on_point(SchedPoint::kWait, this);
      mu.unlock();
      h->on_block(this);
      mu.lock();
      return;
    }
    mu.clear_owner();
    std::unique_lock<std::mutex> native(mu.mu_, std::adopt_lock);
    cv_.wait(native);
    native.release();
    mu.set_owner();
  }

  // CondVar::notify_one() / notify_all()
  //
  // Wakes one / every thread waiting on this CondVar. The caller need not hold the mutex,
  // but usually does: the state change the waiters check must be made under it.
  void notify_one() { notify(/*all=*/false); }
  void notify_all() { notify(/*all=*/true); }

 private:
  void notify(bool all) {
    sched_internal::point(SchedPoint::kNotify, this);
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
      h->on_wake(this);  // wakes every managed waiter; the extra ones wake spuriously
    }
    // Also for a managed notifier: an unmanaged thread may be waiting (a library thread
    // that inherited a test's hooks notifying the test's main thread). Managed waiters
    // never block on cv_, so this wakes nobody under a scheduler.
    if (all) {
      cv_.notify_all();
    } else {
      cv_.notify_one();
    }
  }

  std::condition_variable cv_;
};

}  // namespace itn

#endif  // ITN_SYNC_COND_VAR_H_
