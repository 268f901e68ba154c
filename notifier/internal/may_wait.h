// notifier/internal/may_wait.h
//
// The I9 checks, for domain calls that may wait for invalidations (and so for callbacks)
// to finish: remove(), read_begin(), barrier(), unregister_notifier(). Debug builds
// die with a message naming the call and the rule instead of deadlocking when the caller
// is itself inside a callback of the domain, or holds an itn::Mutex that callbacks of the
// domain have taken (lock_tracking learns those as callbacks run).
#ifndef ITN_NOTIFIER_INTERNAL_MAY_WAIT_H_
#define ITN_NOTIFIER_INTERNAL_MAY_WAIT_H_

#include "sync/check.h"
#include "sync/lock_tracking.h"

#define ITN_CHECK_MAY_WAIT(domain, fn)                                                   \
  do {                                                                                   \
    ITN_DCHECK(!::itn::lock_tracking::ContextScope::inside(domain),                      \
               "I9: " fn                                                                 \
               "() called from a callback of the same domain (it would wait for "        \
               "the callback itself)");                                                  \
    ITN_DCHECK(!::itn::lock_tracking::holds_lock_taken_in(domain),                       \
               "I9: " fn                                                                 \
               "() called while holding an itn::Mutex that callbacks of this "           \
               "domain take (a callback waiting for that mutex would deadlock with the " \
               "call)");                                                                 \
  } while (false)

#endif  // ITN_NOTIFIER_INTERNAL_MAY_WAIT_H_
