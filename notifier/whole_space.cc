// NotifierDomain members for whole-space notifiers: registration, get/put, release.
#include <algorithm>
#include <utility>

#include "notifier/domain.h"
#include "notifier/internal/may_wait.h"
#include "notifier/internal/trace_args.h"
#include "sync/trace.h"

namespace itn {

using lock_tracking::ContextScope;
using notifier_internal::kTrace;
using notifier_internal::range_args;

const NotifierDomain::NotifierList* NotifierDomain::notifier_list() const {
  // Acquire: pairs with the release store in publish_list_locked(); the list and every
  // notifier on it (built by alloc_notifier(), I12) are complete.
  return notifiers_.load(std::memory_order_acquire);
}

void NotifierDomain::publish_list_locked(NotifierList next) {
  const NotifierList* fresh = next.empty() ? nullptr : new NotifierList(std::move(next));
  // Release: pairs with the acquire load in notifier_list().
  const NotifierList* old = notifiers_.exchange(fresh, std::memory_order_acq_rel);
  if (old != nullptr) srcu_.call([old] { delete old; });
}

absl::Status NotifierDomain::register_locked(Notifier& n) {
  if (released_) {
    return absl::FailedPreconditionError("NotifierDomain: the domain was released");
  }
  // I27: one registration at a time, across domains. Acquire (also on failure): pairs
  // with the release store at the end of unregister_notifier().
  NotifierDomain* expected = nullptr;
  if (!n.domain_.compare_exchange_strong(expected, this, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
    return absl::FailedPreconditionError(
        "NotifierDomain: notifier is registered (here or in another domain, or its "
        "unregister_notifier() has not returned)");
  }
  // A new registration gets release() again (I14); published with the list below.
  n.release_delivered_.store(false, std::memory_order_relaxed);
  n.grab_ = Ref<RefCounted>::from_this(this);
  // Published at once (I28): starts that load the list after this see `n`; those active
  // now carry the old list to their end, so `n` gets neither their start nor their end.
  const NotifierList* current = notifier_list();
  NotifierList next = current ? *current : NotifierList();
  next.push_back(&n);
  publish_list_locked(std::move(next));
  return absl::OkStatus();
}

bool NotifierDomain::unpublish_locked(Notifier& n) {
  const NotifierList* current = notifier_list();
  if (current == nullptr || std::find(current->begin(), current->end(), &n) == current->end()) {
    return false;
  }
  NotifierList next = *current;
  std::erase(next, &n);
  publish_list_locked(std::move(next));
  return true;
}

absl::Status NotifierDomain::register_notifier(Notifier& n) {
  MutexLock l(mu_);
  return register_locked(n);
}

void NotifierDomain::deliver_release(Notifier& n) {
  // Exactly once, whoever gets here first (I14, R7). acq_rel: the winner's callback is
  // ordered after every earlier attempt's effects; the loser does nothing.
  if (n.release_delivered_.exchange(true, std::memory_order_acq_rel)) return;
  auto guard = srcu_.read_lock();  // unregister's synchronize() waits for this (I15)
  ContextScope scope(this);        // callbacks run in this domain's context (I9)
  trace::Span span(kTrace, "release callback", [&] {
    return trace::Args{{"notifier", trace::hex(&n)}};
  });
  n.release(*this);
}

absl::Status NotifierDomain::unregister_notifier(Notifier& n) {
  ITN_CHECK_MAY_WAIT(this, "NotifierDomain::unregister_notifier");
  Ref<RefCounted> grab;
  {
    MutexLock l(mu_);
    // Relaxed: `this` is stored there only under mu_, which we hold.
    if (n.domain_.load(std::memory_order_relaxed) != this || n.ops_ != nullptr ||
        !unpublish_locked(n)) {
      return absl::InvalidArgumentError(
          "NotifierDomain::unregister_notifier: notifier is not registered here");
    }
    grab = std::move(n.grab_);
    ++stats_.unregister_fences;
  }
  trace::Span span(kTrace, "unregister_notifier", [&] {
    return trace::Args{{"notifier", trace::hex(&n)}};
  });
  deliver_release(n);
  // I15: every read section that might be running a callback of `n` (an invalidation
  // that loaded the old list, a concurrent teardown release()) has ended on return.
  srcu_.synchronize();
  // The last access to `n`: from here on it may be registered again (I27). Release:
  // pairs with the acquire CAS in register_locked().
  n.domain_.store(nullptr, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<Notifier*> NotifierDomain::get_notifier(const NotifierOps* ops, void* priv) {
  if (ops == nullptr || ops->alloc_notifier == nullptr || ops->free_notifier == nullptr) {
    return absl::InvalidArgumentError("NotifierDomain::get_notifier: null ops or allocator");
  }
  MutexLock get_lock(get_mu_);
  {
    MutexLock l(mu_);
    if (released_) return absl::FailedPreconditionError("NotifierDomain: the domain was released");
    if (const NotifierList* list = notifier_list()) {
      for (Notifier* n : *list) {
        if (n->ops_ == ops) {
          ++n->users_;
          return n;
        }
      }
    }
  }
  // Built completely before it is published (I12, R4); not under mu_, so the allocator
  // may use the domain (e.g. find()).
  absl::StatusOr<Notifier*> allocated = ops->alloc_notifier(*this, priv);
  if (!allocated.ok()) return allocated.status();
  Notifier* n = *allocated;
  if (n == nullptr) return absl::InternalError("NotifierOps::alloc_notifier returned null");
  MutexLock l(mu_);
  const absl::Status registered = register_locked(*n);
  if (!registered.ok()) {  // released while we allocated
    ops->free_notifier(n);
    return registered;
  }
  n->ops_ = ops;
  n->users_ = 1;
  return n;
}

absl::Status NotifierDomain::put_notifier(Notifier& n) {
  Ref<RefCounted> grab;  // dropped after the locks, possibly destroying the domain
  {
    MutexLock get_lock(get_mu_);
    MutexLock l(mu_);
    // Relaxed: `this` is stored there only under mu_, which we hold.
    if (n.domain_.load(std::memory_order_relaxed) != this || n.ops_ == nullptr || n.users_ == 0) {
      return absl::InvalidArgumentError("NotifierDomain::put_notifier: notifier has no users here");
    }
    if (--n.users_ > 0) return absl::OkStatus();
    ITN_CHECK(unpublish_locked(n), "a got notifier is published");
    grab = std::move(n.grab_);
    n.domain_.store(nullptr, std::memory_order_relaxed);  // freed next; never registered again
    // I13: after every read section that could be running one of its callbacks.
    srcu_.call([free = n.ops_->free_notifier, notifier = &n] { free(notifier); });
  }
  return absl::OkStatus();
}

void NotifierDomain::release() {
  {
    MutexLock l(mu_);
    if (released_) return;
    released_ = true;
  }
  trace::Span span(kTrace, "release", [&] {
    trace::Args args = range_args(Range::whole_space(Event::kRelease));
    args.emplace_back("domain", trace::hex(this));
    return args;
  });
  // I16: one kRelease invalidation over the whole space to the interval notifiers (only;
  // whole-space notifiers hear release() instead), which stay inserted.
  std::uint64_t calls = 0;
  ITN_CHECK_OK(start_interval_part(Range::whole_space(Event::kRelease), calls),
               "a blockable invalidation cannot fail");
  {
    MutexLock l(mu_);
    end_locked(thread_key(), calls);
  }
  auto guard = srcu_.read_lock();
  if (const NotifierList* list = notifier_list()) {
    for (Notifier* n : *list) deliver_release(*n);
  }
}

bool NotifierDomain::released() const {
  MutexLock l(mu_);
  return released_;
}

absl::Status NotifierDomain::call_start_notifiers(const Range& range, const NotifierList* list) {
  if (list == nullptr) return absl::OkStatus();
  ContextScope scope(this);  // callbacks run in this domain's context (I9)
  const auto call_start = [&](Notifier& n) {
    trace::Span span(kTrace, "range_start callback", [&] {
      return trace::Args{{"notifier", trace::hex(&n)}};
    });
    const bool ok = n.invalidate_range_start(range);
    if (!ok) span.end_arg("refused", 1);
    return ok;
  };
  for (auto it = list->begin(); it != list->end(); ++it) {
    if (call_start(**it)) continue;
    ITN_CHECK(!range.blockable,
              "Notifier::invalidate_range_start() returned false for a blockable invalidation");
    // R5 (the 2021 kernel fix): the notifiers whose start succeeded get their end.
    for (auto done = list->begin(); done != it; ++done) {
      trace::Span span(kTrace, "range_end callback", [&] {
        return trace::Args{{"notifier", trace::hex(*done)}};
      });
      (*done)->invalidate_range_end(range);
    }
    return absl::UnavailableError(
        "NotifierDomain::invalidate_range_start: a notifier refused a non-blockable "
        "invalidation; there is nothing to end");
  }
  return absl::OkStatus();
}

void NotifierDomain::call_end_notifiers(const Range& range, const NotifierList* list) {
  if (list == nullptr) return;
  ContextScope scope(this);  // callbacks run in this domain's context (I9)
  for (Notifier* n : *list) {
    trace::Span span(kTrace, "range_end callback", [&] {
      return trace::Args{{"notifier", trace::hex(n)}};
    });
    n->invalidate_range_end(range);
  }
}

}  // namespace itn
