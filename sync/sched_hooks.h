// sync/sched_hooks.h
//
// The scheduling seam. Every lock, unlock, condition wait, wake-up, atomic operation,
// polling pause, thread start and join that itn performs reports itself here first. The
// deterministic scheduler of proptests/ installs a SchedHooks object on each thread it
// manages and, at every such point, picks the single managed thread that runs next
// (baton passing on real threads). Nothing else in the library may use std::atomic,
// std::mutex, std::condition_variable or std::thread directly: the ctest `seam_lint`
// enforces that. (The one exception is the trace recorder, sync/trace.h, which must not be
// a scheduling point.)
//
// Cost: built with ITN_SCHED_SEAM=0 (the release preset) every function below is an
// empty inline and itn::Atomic, itn::Mutex, itn::CondVar compile to the bare std::
// operations. Built with the seam and no hooks installed, a point costs one thread-local
// load and a predictable branch.
//
// Thread safety: hooks are per thread; set_thread_hooks() affects only the caller. A
// deterministic schedule needs every thread that touches an object to be managed, but a
// managed and an unmanaged thread may share a Mutex or CondVar without deadlock: unlock
// and notify always wake real waiters too.
// Lifetime: a SchedHooks object must outlive every thread it is installed on. Threads
// started through itn::Thread inherit their creator's hooks.
// Memory ordering: the seam adds none; the wrapped std:: operation provides it.
#ifndef ITN_SYNC_SCHED_HOOKS_H_
#define ITN_SYNC_SCHED_HOOKS_H_

#include <cstdint>

#ifndef ITN_SCHED_SEAM
#define ITN_SCHED_SEAM 1
#endif

namespace itn {

// The kinds of scheduling points.
enum class SchedPoint : std::uint8_t {
  kLoad,    // atomic load
  kStore,   // atomic store
  kRmw,     // atomic read-modify-write (exchange, CAS, fetch_*)
  kLock,    // before acquiring a Mutex
  kUnlock,  // before releasing a Mutex
  kWait,    // before waiting on a CondVar
  kNotify,  // before waking CondVar waiters
  kPoll,    // a polling loop found nothing to do and pauses (e.g. a grace period wait)
  kSpawn,   // before starting a thread
  kJoin,    // before joining a thread
};

// SchedHooks
//
// Implemented by a scheduler. Calls arrive on the managed thread that reaches the point.
class SchedHooks {
 public:
  virtual ~SchedHooks() = default;

  // SchedHooks::on_point()
  //
  // The calling thread is about to perform `point` on `object`. The scheduler may run
  // other managed threads before returning.
  virtual void on_point(SchedPoint point, const void* object) = 0;

  // SchedHooks::on_block()
  //
  // The calling thread cannot proceed until another thread calls on_wake(object): it is
  // not runnable until then. May return early; callers re-check their condition.
  virtual void on_block(const void* object) = 0;

  // SchedHooks::on_wake()
  //
  // `object` changed state (a mutex was released, a condition notified, a thread ended):
  // threads blocked on it become runnable.
  virtual void on_wake(const void* object) = 0;

  // SchedHooks::on_thread_start() / on_thread_exit()
  //
  // Called on a thread started through itn::Thread by a managed thread, first thing and
  // last thing. The new thread is managed by the same hooks.
  virtual void on_thread_start() = 0;
  virtual void on_thread_exit() = 0;
};

namespace sched_internal {
#if ITN_SCHED_SEAM
inline thread_local SchedHooks* tl_hooks = nullptr;
inline SchedHooks* hooks() { return tl_hooks; }
#else
constexpr SchedHooks* hooks() { return nullptr; }
#endif

inline void point(SchedPoint p, const void* object) {
  if (SchedHooks* h = hooks()) [[unlikely]] {
    h->on_point(p, object);
  }
}
}  // namespace sched_internal

// set_thread_hooks()
//
// Installs `hooks` (or nullptr to remove them) on the calling thread. Returns false, and
// does nothing, when the seam is compiled out.
bool set_thread_hooks(SchedHooks* hooks);

}  // namespace itn

#endif  // ITN_SYNC_SCHED_HOOKS_H_
