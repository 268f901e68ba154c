// notifier/interval_notifier.h
//
// itn::IntervalNotifier: a subscription to invalidations of one address interval (the
// kernel's mmu_interval_notifier). Subclass it, implement invalidate(), create it with
// make_ref and insert it into a NotifierDomain.
//
// The sequence protocol, as a driver uses it to fill a device page table:
//
//   again:
//     seq = sub->read_begin();                 // waits out an invalidation in progress
//     walk the CPU page table, no driver lock  // may fault, sleep, be slow
//     lock(driver_lock);
//     if (sub->read_retry(seq)) { unlock; goto again; }  // an invalidation intervened
//     install device PTEs;
//     unlock(driver_lock);
//
//   bool invalidate(const Range& r, uint64_t cur_seq) override {
//     lock(driver_lock);          // or try_lock and return false if !r.blockable
//     set_seq(cur_seq);           // makes every read_retry() of an older seq true
//     clear device PTEs in r;
//     unlock(driver_lock);
//     return true;
//   }
//
// Sequence numbers: the domain's sequence is odd while an invalidation that reached at
// least one notifier is active. A notifier's sequence is the cur_seq of the last
// invalidation that reached it (set_seq), or, at insert, one below the domain's (so the
// first read_begin() does not wait) or equal to it if an invalidation is active (so it
// does).
//
// Thread safety: invalidate() may run on any thread, concurrently with every method here
// except that the driver lock serialises it with read_retry() and set_seq(). read_begin()
// and check_retry() need no lock.
// Lifetime: owned through Ref. Inserting gives the domain a reference until remove()
// returns (and a grace period after), so the caller may drop its own at once; the
// notifier keeps the domain's memory alive (a "grab") while inserted. Once remove()
// returned the notifier may be inserted again, into the same or another domain (I27).
// Memory ordering: set_seq() (release) pairs with read_begin() and read_retry() (acquire).
#ifndef ITN_NOTIFIER_INTERVAL_NOTIFIER_H_
#define ITN_NOTIFIER_INTERVAL_NOTIFIER_H_

#include <cstdint>

#include "notifier/range.h"
#include "sync/atomic.h"
#include "sync/ref.h"
#include "sync/trace.h"

namespace itn {

class InvalidationBatcher;
class NotifierDomain;

class IntervalNotifier : public RefCounted {
 public:
  // IntervalNotifier::invalidate()
  //
  // Called once for every invalidation overlapping interval() that began after this
  // notifier's insert was applied and before its remove() returned; cur_seq is the odd
  // domain sequence of that invalidation. Return false only when !range.blockable and the
  // callback would have to sleep: the invalidation then fails (kUnavailable). Returning
  // false from a blockable invalidation is a contract violation (dies).
  // Context: must not call remove(), read_begin() or NotifierDomain::barrier() of this
  // domain (debug: dies, I9).
  virtual bool invalidate(const Range& range, std::uint64_t cur_seq) = 0;

  // The interval and find() key of the last insert() (for the notifier's own user, whose
  // insert() call ordered the stores).
  Interval interval() const { return interval_; }
  // Relaxed: see above.
  const void* key() const { return key_.load(std::memory_order_relaxed); }

  // IntervalNotifier::read_begin()
  //
  // Begins a read of the interval. Returns at once (two atomic loads) unless an
  // invalidation that reached this notifier, or that was active when it was inserted, is
  // still active; then it waits for it to end.
  // Context: the notifier must be inserted, and stay inserted until this returns (a
  // remove() returning meanwhile is a caller bug). May block; must not be called from a callback
  // of the domain or with a lock that callbacks take (debug: dies, I9).
  [[nodiscard]] std::uint64_t read_begin();

  // IntervalNotifier::read_retry()
  //
  // True if an invalidation reached this notifier since read_begin() returned `seq`: the
  // data read since then may be stale and must not be installed.
  // Context: MUST be called under the driver lock that invalidate() takes around set_seq().
  [[nodiscard]] bool read_retry(std::uint64_t seq) const {
    // Relaxed: the driver lock, held here and around set_seq(), orders the two.
    const std::uint64_t now = invalidate_seq_.load(std::memory_order_relaxed);
    if (now == seq) return false;
    trace_retry("read_retry", seq, now);
    return true;
  }

  // IntervalNotifier::check_retry()
  //
  // A lock-free hint for long walks: true means read_retry() will be true, so the walk
  // can stop early. False proves nothing.
  [[nodiscard]] bool check_retry(std::uint64_t seq) const {
    // Relaxed: a hint; may be stale in either direction except as documented.
    const std::uint64_t now = invalidate_seq_.load(std::memory_order_relaxed);
    if (now == seq) return false;
    trace_retry("check_retry", seq, now);
    return true;
  }

  // IntervalNotifier::set_seq()
  //
  // Records that the invalidation with `cur_seq` reached this notifier.
  // Context: from invalidate(), under the driver lock that read_retry() callers hold.
  void set_seq(std::uint64_t cur_seq) {
    // Release: pairs with the acquire load in read_begin().
    invalidate_seq_.store(cur_seq, std::memory_order_release);
  }

 protected:
  IntervalNotifier() = default;
  // For BatchedNotifier (notifier/invalidation_batcher.h).
  explicit IntervalNotifier(InvalidationBatcher* batcher) : batcher_(batcher) {}
  // Runs when the last reference is dropped, which can be on the domain's worker thread
  // (a grace period after remove()). Dies if the notifier is still inserted: that would
  // mean its memory was freed while the domain could still use it (I24). Must not drop
  // the last reference to the domain it was inserted in (dies, I24). A subclass's
  // destructor runs in the domain's callback context there: it must not call what a
  // callback must not (remove(), insert(), barrier(), unregister_notifier() of that
  // domain; debug: dies, I9), e.g. by destroying a Subscription of the same domain.
  ~IntervalNotifier() override;

 private:
  friend class NotifierDomain;
  friend class NotifierDomainTestPeer;  // tests: pause an insert at its claim

  // Where the notifier is in its domain, and which of its insertions that is: a notifier
  // can be inserted again (into any domain) once remove() returned (I27). One word,
  // generation << 8 | state, so that find(), meeting the notifier in an old snapshot, can
  // tell the insertion the snapshot holds from a later one. Claimed by insert() with a
  // CAS from kFree; changed afterwards only under the domain's mutex; read without it by
  // invalidation walks and find().
  enum class State : std::uint8_t {
    kFree,            // never inserted, or remove() returned: insert() may claim it
    kClaimed,         // an insert() won the claim and is entering it into its domain
    kDeferredInsert,  // inserted during an invalidation: in the tree find() reads, not walked
    kLive,            // in the walked tree
    kRemoving,        // remove() began; still walked until the deferred erase is applied
    kErased,          // out of the tree; remove() is finishing
  };
  static constexpr std::uint64_t claim_word(std::uint64_t generation, State state) {
    return generation << 8 | static_cast<std::uint64_t>(state);
  }
  static constexpr State state_in(std::uint64_t word) { return static_cast<State>(word & 0xff); }
  static constexpr std::uint64_t generation_in(std::uint64_t word) { return word >> 8; }

  // The "retry" instant (sync/trace.h): `by` found `seq` overtaken by `now`.
  void trace_retry(const char* by, std::uint64_t seq, std::uint64_t now) const {
    trace::instant("notifier", "retry", [&] {
      return trace::Args{{"notifier", trace::hex(this)}, {"by", by}, {"seq", seq}, {"now", now}};
    });
  }

  // First the fields of the hot paths (read_begin(), walks, find()), so that with the
  // vtable pointer and the reference count they share the object's first cache line.
  // The domain while inserted (its grab keeps it valid). Written under the domain's
  // mutex; read by read_begin() without it.
  Atomic<NotifierDomain*> domain_{nullptr};
  Atomic<std::uint64_t> invalidate_seq_{0};
  Atomic<std::uint64_t> claim_{claim_word(0, State::kFree)};
  // find() reads it without the domain's mutex, also while a later insertion writes it.
  Atomic<const void*> key_{nullptr};
  // Set at construction (BatchedNotifier): walks hand the notifier to it.
  InvalidationBatcher* const batcher_ = nullptr;
  // Written by the claiming insert() before it publishes the state; read by the domain
  // and by interval().
  Interval interval_;
  Ref<RefCounted> grab_;  // the domain, kept alive while inserted; guarded by its mutex
  // The domain's reference to this notifier while it is inserted, dropped a grace period
  // after its erase so that lock-free find() never meets a count of zero. Guarded by the
  // domain's mutex.
  Ref<IntervalNotifier> domain_ref_;
};

}  // namespace itn

#endif  // ITN_NOTIFIER_INTERVAL_NOTIFIER_H_
