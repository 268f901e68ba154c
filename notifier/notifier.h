// notifier/notifier.h
//
// itn::Notifier: a whole-space subscription (the kernel's classic mmu_notifier), told about
// every invalidation of its domain and about the domain's teardown, and NotifierOps, the
// allocator pair behind NotifierDomain::get_notifier() / put_notifier().
//
// Two ways to subscribe:
// - register_notifier(n) / unregister_notifier(n): the caller owns `n`. Unregister is a
//   synchronous fence: on return no callback of `n` runs on any thread (I15).
// - get_notifier(&ops, priv) / put_notifier(n): one notifier per (domain, ops), shared by
//   every caller (e.g. every SVA bond of one address space). ops.alloc_notifier(domain,
//   priv) builds it complete before anything can see it (I12, R4); the last put
//   unpublishes it and ops.free_notifier() runs after a grace period, never concurrently
//   with one of its callbacks (I13).
//
// release() is delivered exactly once per registration: by the domain's teardown or by
// unregister, whichever comes first; the other is a no-op (I14, R7). After the teardown's
// release() the address space is gone, but invalidations already started still end (and
// late starts are not refused): callbacks must be ready for starts and ends after it.
//
// Thread safety: callbacks run on the invalidating (or releasing) thread, inside a read
// section of the domain, concurrently with each other.
// Lifetime: a registered notifier keeps the domain's memory alive until unregistered (or
// its last put). free_notifier must not use the domain: it may run while the domain is
// being destroyed.
// Memory ordering: alloc_notifier()'s writes happen-before every callback of the notifier.
#ifndef ITN_NOTIFIER_NOTIFIER_H_
#define ITN_NOTIFIER_NOTIFIER_H_

#include <cstdint>

#include "absl/status/statusor.h"

#include "notifier/range.h"
#include "sync/atomic.h"
#include "sync/ref.h"

namespace itn {

class NotifierDomain;
class Notifier;

// The allocator pair of one kind of shared notifier. Its address is the key
// get_notifier() looks the domain's instance up by, so it must have static storage
// duration (a namespace-scope constexpr, as in the kernel): a temporary would dangle.
struct NotifierOps {
  // Builds the domain's notifier for these ops, completely; `priv` is the caller's context
  // from get_notifier(). An error refuses: get_notifier() returns it unchanged.
  absl::StatusOr<Notifier*> (*alloc_notifier)(NotifierDomain& domain, void* priv);
  // Frees what alloc_notifier() built, a grace period after the last put_notifier().
  void (*free_notifier)(Notifier* notifier);
};

class Notifier {
 public:
  Notifier() = default;
  virtual ~Notifier() = default;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Notifier::release()
  //
  // The address space is being torn down: stop every device access to it. Delivered once.
  // Context: must not call unregister_notifier() or barrier() of this domain (I9).
  virtual void release(NotifierDomain& domain) { (void)domain; }

  // Notifier::invalidate_range_start() / invalidate_range_end()
  //
  // Bracket every invalidation of the domain. start may return false only when
  // !range.blockable and it would have to sleep; the invalidation then fails, and the
  // notifiers whose start succeeded get their end (R5). Each invalidation's end goes to
  // exactly the notifiers its start reached (I25): one registered while an invalidation
  // is active gets neither its start nor its end, but every invalidation that starts
  // after register_notifier() returned (I28).
  virtual bool invalidate_range_start(const Range& range) {
    (void)range;
    return true;
  }
  virtual void invalidate_range_end(const Range& range) { (void)range; }

 private:
  friend class NotifierDomain;

  // The domain it is registered with: claimed by a CAS from null (I27), released when
  // unregister_notifier() returns. The rest is guarded by the domain's mutexes.
  Atomic<NotifierDomain*> domain_{nullptr};
  const NotifierOps* ops_ = nullptr;  // set for get_notifier() instances
  std::uint64_t users_ = 0;           // get_notifier() references
  Ref<RefCounted> grab_;              // the domain, kept alive while registered
  Atomic<bool> release_delivered_{false};
};

}  // namespace itn

#endif  // ITN_NOTIFIER_NOTIFIER_H_
