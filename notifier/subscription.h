// notifier/subscription.h
//
// itn::Subscription: an inserted interval notifier that removes itself. insert() and
// remove() are a pair the caller must not forget: an inserted notifier and its domain keep
// each other alive, so a forgotten remove() leaks both, silently. A Subscription holds
// the pair and removes on destruction, like a std::unique_lock holds a lock.
//
//   absl::StatusOr<Subscription> s = Subscription::insert(
//       domain, make_ref<Mine>(), Interval::sized(addr, length), /*key=*/this);
//   if (!s.ok()) return s.status();
//   ... s->notifier() is called by invalidations until `s` goes ...
//
// Thread safety: a value; one thread uses it at a time. It may be moved to another thread.
// Lifetime: holds a reference to the domain and to the notifier, and owns the insertion:
//   while it holds `sub`, nothing else may remove() it (reset() would then die, or, had
//   `sub` been inserted again meanwhile, remove that later insertion). The destructor (or
//   reset()) calls remove(), with remove()'s context rules (notifier/domain.h): not from
//   a callback of the domain or a notifier's destructor, not while holding a lock
//   callbacks take, and not while this thread holds an InvalidationToken of the domain,
//   whatever the sequence (an insert() on any thread can make it odd at any moment, and
//   remove() would then wait for this thread's own end).
// Memory ordering: as NotifierDomain::insert() and remove().
#ifndef ITN_NOTIFIER_SUBSCRIPTION_H_
#define ITN_NOTIFIER_SUBSCRIPTION_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "notifier/domain.h"
#include "notifier/interval_notifier.h"
#include "sync/check.h"
#include "sync/ref.h"

namespace itn {

class Subscription {
 public:
  // Subscription::insert()
  //
  // NotifierDomain::insert(sub, interval, key), with the same errors; on success
  // the Subscription removes `sub` when it goes.
  [[nodiscard]] static absl::StatusOr<Subscription> insert(Ref<NotifierDomain> domain,
                                                           Ref<IntervalNotifier> sub,
                                                           Interval interval, const void* key) {
    if (!domain) return absl::InvalidArgumentError("Subscription::insert: null domain");
    absl::Status inserted = domain->insert(sub, interval, key);
    if (!inserted.ok()) return inserted;
    return Subscription(std::move(domain), std::move(sub));
  }

  Subscription(Subscription&& other) noexcept = default;
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      domain_ = std::move(other.domain_);
      sub_ = std::move(other.sub_);
    }
    return *this;
  }
  ~Subscription() { reset(); }

  // Subscription::reset()
  //
  // Removes the notifier now (remove() may wait for invalidations that can still reach
  // it); afterwards the Subscription is empty. Does nothing if it already is.
  void reset() {
    if (!sub_) return;
    ITN_CHECK_OK(domain_->remove(*sub_),
                 "a Subscription's notifier is removed only by the Subscription");
    sub_.reset();
    domain_.reset();
  }

  // The notifier, or null once reset or moved from.
  IntervalNotifier* notifier() const { return sub_.get(); }
  NotifierDomain* domain() const { return domain_.get(); }

 private:
  Subscription(Ref<NotifierDomain> domain, Ref<IntervalNotifier> sub)
      : domain_(std::move(domain)), sub_(std::move(sub)) {}

  Ref<NotifierDomain> domain_;
  Ref<IntervalNotifier> sub_;
};

}  // namespace itn

#endif  // ITN_NOTIFIER_SUBSCRIPTION_H_
