// sync/lock_tracking.h
//
// A small user-space lockdep for the I9 checks, active in debug builds (ITN_DEBUG_CHECKS):
// - which itn::Mutexes the calling thread holds;
// - contexts: a ContextScope marks the calling thread as running inside some context
//   (e.g. the callbacks of one notifier domain), and every mutex taken inside a context is
//   remembered for it.
// So a later call that would wait for that context (remove(), read_begin(),
// synchronize()) can die with a message instead of deadlocking when the caller holds a
// mutex that the context's callbacks take. Like lockdep it learns from what has happened:
// a lock is known to belong to a context once a callback has taken it.
//
// Thread safety: any thread. Lifetime: a mutex is forgotten when destroyed.
// Memory ordering: none that callers may rely on.
#ifndef ITN_SYNC_LOCK_TRACKING_H_
#define ITN_SYNC_LOCK_TRACKING_H_

#include "sync/check.h"

namespace itn::lock_tracking {

// Marks the calling thread as inside `context` for the scope's lifetime. Nestable.
class ContextScope {
 public:
  explicit ContextScope(const void* context) : context_(context), outer_(innermost_) {
    innermost_ = this;
  }
  ~ContextScope() { innermost_ = outer_; }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

  // True if the calling thread is inside `context`.
  static bool inside(const void* context) {
    for (const ContextScope* s = innermost_; s != nullptr; s = s->outer_) {
      if (s->context_ == context) return true;
    }
    return false;
  }
  static const ContextScope* innermost() { return innermost_; }
  const void* context() const { return context_; }
  const ContextScope* outer() const { return outer_; }

 private:
  static inline thread_local const ContextScope* innermost_ = nullptr;
  const void* context_;
  const ContextScope* outer_;
};

// Called by itn::Mutex and itn::RwMutex in debug builds.
void on_acquire(const void* mutex);
void on_release(const void* mutex);
void on_destroy(const void* mutex);

// True if the calling thread holds `mutex` (in any mode). Always false in release builds.
bool holds(const void* mutex);

// True if the calling thread holds a mutex that has been taken inside `context`. Always
// false in release builds.
bool holds_lock_taken_in(const void* context);

}  // namespace itn::lock_tracking

#endif  // ITN_SYNC_LOCK_TRACKING_H_
