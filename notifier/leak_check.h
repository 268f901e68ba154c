// notifier/leak_check.h
//
// Debug builds (ITN_DEBUG_CHECKS): catches a forgotten remove() or unregister_notifier().
// An inserted notifier and its domain keep each other alive, so when the caller forgets to
// remove it and drops its own references, both leak and nothing ever notices. Every domain
// is tracked while it lives; when the process exits, one that is still alive although
// only its own notifiers reference it dies naming the rule.
//
// Thread safety: track()/untrack() from any thread. The exit check runs in a static
// destructor, after main() returned or exit() was called, and reads each domain's counts
// without stopping other threads: a thread still inserting, removing or dropping
// references at exit can make it report a leak that is not there (or miss one). Join
// the threads that use domains before main() returns.
// Lifetime: the registry is created with the first domain and never destroyed (domains
// that static objects hold may go after the check ran).
// Memory ordering: none beyond the registry's mutex.
#ifndef ITN_NOTIFIER_LEAK_CHECK_H_
#define ITN_NOTIFIER_LEAK_CHECK_H_

namespace itn {

class NotifierDomain;

namespace notifier_internal {

void track_domain(const NotifierDomain* domain);
void untrack_domain(const NotifierDomain* domain);

}  // namespace notifier_internal
}  // namespace itn

#endif  // ITN_NOTIFIER_LEAK_CHECK_H_
