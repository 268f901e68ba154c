#include "notifier/domain.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "notifier/internal/may_wait.h"

// The interleaving the sequence protocol is built for (driver fault path on the left, a
// CPU invalidation on the right):
//
//   seq = sub->read_begin()                    invalidate_range_start(r)
//     (domain seq even, or not ours: return)     lock; active++; seq |= 1; unlock
//   walk CPU page table ...                      sub->invalidate(r, seq):
//                                                  lock(driver); set_seq(seq);
//                                                  clear device PTEs; unlock(driver)
//   lock(driver)                                 ... CPU page table changes ...
//   read_retry(seq)? -> true: the walk may       invalidate_range_end(r)
//     have seen the old page table, retry          lock; active--; if 0: seq++,
//   unlock(driver)                                 apply deferred ops; wake; unlock
//
// Whichever of set_seq() and read_retry() takes the driver lock first, the result is
// coherent: either read_retry() sees the new sequence, or the PTEs it installs are
// cleared by invalidate() right after.

namespace itn {
namespace {

using lock_tracking::ContextScope;

bool is_odd(std::uint64_t seq) { return (seq & 1) != 0; }

}  // namespace

NotifierDomain::~NotifierDomain() {
  ITN_CHECK(!srcu_.on_worker_thread(),
            "I24: NotifierDomain destroyed on its own SRCU worker (a notifier's destructor "
            "dropped the last reference to its domain)");
  // Inserted and registered notifiers hold a reference to the domain, so none are left.
  ITN_CHECK(tree_.size() == 0, "NotifierDomain destroyed with notifiers inserted");
  ITN_CHECK(notifier_list() == nullptr, "NotifierDomain destroyed with notifiers registered");
}

void NotifierDomain::set_state(IntervalNotifier& sub, State state) {
  // Release: pairs with the acquire load in find(); the notifier's fields are complete.
  sub.state_.store(state, std::memory_order_release);
}

IntervalNotifier::State NotifierDomain::state_of(const IntervalNotifier& sub) {
  // Acquire: pairs with the release store in set_state().
  return sub.state_.load(std::memory_order_acquire);
}

absl::Status NotifierDomain::insert(Ref<IntervalNotifier> sub, std::uint64_t start,
                                    std::uint64_t length, const void* owner) {
  if (!sub) return absl::InvalidArgumentError("NotifierDomain::insert: null notifier");
  if (length == 0) return absl::InvalidArgumentError("NotifierDomain::insert: length 0");
  const std::uint64_t last = start + (length - 1);
  if (last < start) {
    return absl::InvalidArgumentError(absl::StrCat("NotifierDomain::insert: [", start, ", +",
                                                   length, ") runs past the address space"));
  }
  MutexLock l(mu_);
  if (released_) return absl::FailedPreconditionError("NotifierDomain: the domain was released");
  if (state_of(*sub) != State::kNew) {
    return absl::FailedPreconditionError(
        "NotifierDomain::insert: notifier already inserted once (notifiers are single-use)");
  }
  IntervalNotifier& n = *sub;
  n.domain_ = this;
  n.start_ = start;
  n.last_ = last;
  n.owner_ = owner;
  n.grab_ = Ref<RefCounted>::from_this(this);
  n.domain_ref_ = std::move(sub);
  // Relaxed: seq_ is written only under mu_, which we hold.
  std::uint64_t seq = seq_.load(std::memory_order_relaxed);
  if (active_ > 0) {
    // An active invalidation may cover the interval without having seen it: the first
    // read_begin() must wait for it (I7), and walks must not start calling it mid-way.
    if (!is_odd(seq)) {
      seq |= 1;
      // Release: pairs with the acquire load in read_begin().
      seq_.store(seq, std::memory_order_release);
    }
    n.invalidate_seq_.store(seq, std::memory_order_relaxed);  // published by set_state()
    set_state(n, State::kDeferredInsert);
    ++stats_.deferred_inserts;
    deferred_.push_back({true, &n});
  } else {
    n.invalidate_seq_.store(seq - 1, std::memory_order_relaxed);  // published by set_state()
    set_state(n, State::kLive);
  }
  // In the tree at once, deferred or not, so that find() sees it; walks skip it until
  // its state is kLive.
  const absl::Status inserted = tree_.insert(start, last, &n);
  ITN_CHECK(inserted.ok(), "interval checked above");
  return absl::OkStatus();
}

absl::Status NotifierDomain::remove(IntervalNotifier& sub) {
  ITN_CHECK_MAY_WAIT(this, "NotifierDomain::remove");
  // Taken out of `sub` under the mutex, so that nothing else ever hands them off: the
  // domain's reference keeps `sub` alive until this call is done with it (the caller may
  // hold none), and the grab is dropped on this thread, possibly destroying the domain.
  Ref<IntervalNotifier> reference;
  Ref<RefCounted> grab;
  {
    MutexLock l(mu_);
    const State state = state_of(sub);
    if (sub.domain_ != this || !inserted(state)) {
      return absl::InvalidArgumentError(
          "NotifierDomain::remove: notifier is not inserted in this domain");
    }
    // Relaxed: seq_ is written only under mu_, which we hold.
    if (!is_odd(seq_.load(std::memory_order_relaxed))) {
      // No invalidation is calling notifiers: erase now (published on return).
      const absl::Status erased = tree_.erase(sub.start_, sub.last_, &sub);
      ITN_CHECK(erased.ok(), "a live notifier is in the tree");
      set_state(sub, State::kRemoved);
    } else if (state == State::kDeferredInsert) {
      // Never walked: cancel the insert, no need to wait (I8).
      std::erase_if(deferred_, [&](const DeferredOp& op) { return op.sub == &sub; });
      const absl::Status erased = tree_.erase(sub.start_, sub.last_, &sub);
      ITN_CHECK(erased.ok(), "a deferred notifier is in the tree");
      set_state(sub, State::kRemoved);
    } else {
      set_state(sub, State::kRemoving);
      deferred_.push_back({false, &sub});
      ++stats_.deferred_removes;
      // R3: "has my erase been applied" is decided under mu_, the mutex under which
      // end_locked() applies it, never from a lock-free look at the sequence. end_locked()
      // publishes the erase before it releases mu_.
      while (state_of(sub) != State::kRemoved) wq_.wait(mu_);
    }
    reference = std::move(sub.domain_ref_);
    grab = std::move(sub.grab_);
    sub.domain_ = nullptr;  // the last access to `sub` here
  }
  // I24: the erase is published and this call no longer touches `sub`. A find() or walk
  // that loaded an older root may still hold `sub` without a count; the grace period
  // covers it. The reference may be the last: `sub` is then destroyed on the worker, in
  // this domain's context, so that locks its destructor takes are known to the I9 checks.
  srcu_.call([this, reference = std::move(reference)]() mutable {
    ContextScope scope(this);
    reference.reset();
  });
  return absl::OkStatus();
}

Ref<IntervalNotifier> NotifierDomain::find(const void* owner, std::uint64_t start,
                                           std::uint64_t last) const {
  if (start > last) return nullptr;
  Ref<IntervalNotifier> found;
  auto guard = srcu_.read_lock();
  tree_.for_each_overlap(start, last, [&](std::uint64_t, std::uint64_t, IntervalNotifier* n) {
    if (n->owner_ != owner) return true;
    const State state = state_of(*n);
    if (!inserted(state)) return true;  // remove() has begun
    // Cannot fail: the domain's own reference outlives every snapshot that holds `n`.
    found = Ref<IntervalNotifier>::try_get(n);
    return !found;
  });
  return found;
}

bool NotifierDomain::any_walked_overlap(const Range& range) const {
  bool hit = false;
  auto guard = srcu_.read_lock();
  tree_.for_each_overlap(range.start, range.last(),
                         [&](std::uint64_t, std::uint64_t, IntervalNotifier* n) {
                           const State state = state_of(*n);
                           hit = walked(state);
                           return !hit;
                         });
  return hit;
}

absl::StatusOr<InvalidationToken> NotifierDomain::invalidate_range_start(const Range& range) {
  if (range.end <= range.start) {
    return absl::InvalidArgumentError(
        absl::StrCat("NotifierDomain::invalidate_range_start: empty range [", range.start, ", ",
                     range.end, ")"));
  }
  absl::Status status = start_interval_part(range);
  if (!status.ok()) return status;  // undone already
  // I25, I28: the whole-space list as of now, kept alive (and unregister_notifier()
  // fenced) by a section that the token carries to the end.
  SrcuDomain::Section section = srcu_.hold();
  const NotifierList* list = notifier_list();
  status = call_start_notifiers(range, list);
  if (!status.ok()) {  // R5: undo the interval part too; there is no token to end
    MutexLock l(mu_);
    end_locked();
    return status;
  }
  return InvalidationToken(this, range, std::move(section), list);
}

absl::Status NotifierDomain::start_interval_part(const Range& range) {
  std::uint64_t cur_seq = 0;
  {
    MutexLock l(mu_);
    ++active_;
    ++stats_.starts;
    if (any_walked_overlap(range)) {
      // Relaxed load: seq_ is written only under mu_, which we hold.
      cur_seq = seq_.load(std::memory_order_relaxed) | 1;
      // Release: pairs with the acquire load in read_begin().
      seq_.store(cur_seq, std::memory_order_release);
    }
  }
  if (cur_seq != 0) return call_interval_notifiers(range, cur_seq);
  return absl::OkStatus();
}

absl::Status NotifierDomain::call_interval_notifiers(const Range& range, std::uint64_t cur_seq) {
  bool refused = false;
  {
    auto guard = srcu_.read_lock();
    ContextScope scope(this);  // callbacks run in this domain's context (I9)
    // The walked set cannot change under us: erases wait for active_ to reach zero, and
    // inserts made meanwhile are kDeferredInsert, which we skip (I5).
    tree_.for_each_overlap(range.start, range.last(),
                           [&](std::uint64_t, std::uint64_t, IntervalNotifier* n) {
                             const State state = state_of(*n);
                             if (!walked(state)) return true;
                             if (n->invalidate(range, cur_seq)) return true;
                             ITN_CHECK(!range.blockable,
                                       "IntervalNotifier::invalidate() returned false for a "
                                       "blockable invalidation");
                             refused = true;
                             return false;
                           });
  }
  if (!refused) return absl::OkStatus();
  // R5: the notifiers already called hold cur_seq and will retry; undo our own count so
  // that the sequence and the deferred list end consistent. The caller must not end.
  MutexLock l(mu_);
  ++stats_.refusals;
  end_locked();
  return absl::UnavailableError(
      "NotifierDomain::invalidate_range_start: a notifier refused a non-blockable "
      "invalidation; there is nothing to end");
}

void NotifierDomain::invalidate_range_end(InvalidationToken token) {
  ITN_CHECK(token.domain_ == this,
            "I25: invalidate_range_end() with a token this domain did not issue, or one that "
            "was already ended");
  token.domain_ = nullptr;
  call_end_notifiers(token.range_, token.notifiers_);
  token.section_.end();  // unregister_notifier() of a notifier on the list may return now
  MutexLock l(mu_);
  end_locked();
}

InvalidationToken::InvalidationToken(InvalidationToken&& other) noexcept
    : domain_(other.domain_),
      range_(other.range_),
      section_(std::move(other.section_)),
      notifiers_(other.notifiers_) {
  other.domain_ = nullptr;
}

InvalidationToken& InvalidationToken::operator=(InvalidationToken&& other) noexcept {
  if (this == &other) return *this;
  end_dropped();
  domain_ = other.domain_;
  range_ = other.range_;
  section_ = std::move(other.section_);
  notifiers_ = other.notifiers_;
  other.domain_ = nullptr;
  return *this;
}

InvalidationToken::~InvalidationToken() { end_dropped(); }

void InvalidationToken::end_dropped() {
  if (domain_ == nullptr) return;
  ITN_DCHECK(false,
             "I25: an InvalidationToken was dropped without invalidate_range_end() (every "
             "start is ended exactly once, through its token)");
  domain_->invalidate_range_end(std::move(*this));
}

void NotifierDomain::end_locked() {
  if (--active_ > 0) return;
  // Relaxed: seq_ is written only under mu_, which we hold.
  const std::uint64_t seq = seq_.load(std::memory_order_relaxed);
  if (!is_odd(seq)) return;
  {
    // I2: in FIFO order, in one publish.
    IntervalTree<IntervalNotifier*>::Batch batch(tree_);
    for (const DeferredOp& op : deferred_) {
      if (op.insert) {
        set_state(*op.sub, State::kLive);
      } else {
        // remove(), waiting for this, hands the notifier's reference off once the batch
        // is published.
        const absl::Status erased = batch.erase(op.sub->start_, op.sub->last_, op.sub);
        ITN_CHECK(erased.ok(), "a removing notifier is in the tree");
        set_state(*op.sub, State::kRemoved);
      }
    }
  }
  deferred_.clear();
  // Release: pairs with the acquire load in read_begin().
  seq_.store(seq + 1, std::memory_order_release);
  wq_.notify_all();
}

std::uint64_t NotifierDomain::wait_for_seq_change(std::uint64_t seq) {
  MutexLock l(mu_);
  // Relaxed: seq_ is written only under mu_, which we hold.
  if (seq_.load(std::memory_order_relaxed) == seq) ++stats_.read_begin_waits;
  while (seq_.load(std::memory_order_relaxed) == seq) wq_.wait(mu_);
  return seq;
}

void NotifierDomain::synchronize() {
  ITN_CHECK_MAY_WAIT(this, "NotifierDomain::synchronize");
  srcu_.barrier();
}

NotifierDomainStats NotifierDomain::stats() const {
  MutexLock l(mu_);
  return stats_;
}

std::uint64_t NotifierDomain::active_for_testing() const {
  MutexLock l(mu_);
  return active_;
}

IntervalNotifier::~IntervalNotifier() {
  ITN_CHECK(!grab_ && domain_ == nullptr,
            "I24: IntervalNotifier destroyed while inserted (its domain still uses it)");
}

std::uint64_t IntervalNotifier::read_begin() {
  ITN_CHECK(domain_ != nullptr, "IntervalNotifier::read_begin() on a notifier not inserted");
  ITN_CHECK_MAY_WAIT(domain_, "IntervalNotifier::read_begin");
  // Acquire: pairs with the release store in set_seq() (or the insert's publication).
  const std::uint64_t seq = invalidate_seq_.load(std::memory_order_acquire);
  // Acquire: pairs with the release stores of seq_ in the domain. If an invalidation
  // reached us (set_seq happened before this call), its odd seq_ store happened before that.
  if (seq != domain_->seq_.load(std::memory_order_acquire)) return seq;  // fast path (I7)
  return domain_->wait_for_seq_change(seq);
}

}  // namespace itn
