// notifier/domain.h
//
// itn::NotifierDomain: the notifier subscriptions of one address space (the kernel's
// mmu_notifier_subscriptions). It holds interval notifiers in a lock-free-read interval
// tree and runs the sequence protocol that lets a device fault path and CPU invalidations
// meet without sharing a lock (see notifier/interval_notifier.h for the driver's side).
//
// The protocol, as the domain sees it:
// - An invalidation (invalidate_range_start .. invalidate_range_end, joined by the token
//   the start returns) counts itself active; any number may be active at once.
//   If its range overlaps a walked notifier, the domain sequence becomes odd; every such
//   notifier's invalidate() is called with that odd sequence. Walks take no lock. (The
//   overlap is seen by a lock-free look before the start takes the mutex; a notifier
//   removed in between leaves the sequence odd with nobody called, which only makes
//   waiters of this busy period wait for its end.)
// - The fast path: an invalidation that reaches no notifier, with no whole-space notifier
//   registered, takes no lock (its end takes the mutex only while a drain is pending). It
//   counts itself in a per-thread shard instead of under the mutex, and never makes the
//   sequence odd. An insert that would let a notifier be walked first closes the fast path and
//   reads the shards (a handshake: either it sees the count, or the invalidation sees the
//   closure and takes the locked path); if a fast invalidation is in flight, the notifier
//   waits in the deferred tree, like an insert behind any active invalidation, until the
//   last of them ends (a "drain", counted as one active invalidation).
// - While the sequence is odd the walked tree does not change at all: remove() is queued
//   on a deferred list, and insert() puts the notifier in a second tree of deferred
//   inserts, which find() reads but walks do not. The invalidate_range_end() that brings
//   the active count to zero applies the deferred list in FIFO order (one publish of the
//   walked tree, then the deferred tree is emptied), makes the sequence even and wakes
//   waiters. So a walk never checks a node's state: whatever its snapshot holds, it calls.
// - remove() waits for that under the domain mutex, evaluating "has my erase been
//   applied" under the same mutex as the deferred processing (the 2022 kernel fix, R3).
//
// find() is safe, unlike the 2020 proposal rejected upstream (R2): it takes no lock,
// returns a counted reference, never returns a notifier whose remove() has begun, and
// always returns a matching one whose insert() has returned, deferred or not.
//
// Thread safety: every method may be called from any thread. From inside a callback of
// this domain only find() and the driver-side IntervalNotifier methods other than
// read_begin() may be used (debug builds check those that wait, I9).
// Lifetime: created with make_ref<NotifierDomain>(). Every inserted notifier holds a
// reference (a "grab": the domain's memory) until its remove() returns; that is distinct
// from the address space's users, which end with release(). The domain holds a reference
// to every inserted notifier, so the caller may drop its own right after insert() and
// remove() through a plain reference: the memory stays valid until remove() returned and
// every read section that could see the notifier ended (I24). That last reference may
// then be dropped on the domain's worker thread, so a notifier's destructor must not
// drop the last reference to its domain (dies, I24).
// Failure: insert(), remove() and invalidate_range_end() are noexcept (running out of
// memory terminates rather than leaving a change half made); bad input gets a Status.
// Memory ordering: an insert() that returned happens-before every invalidation start that
// follows it under the domain mutex; an invalidation's callbacks happen-before the
// invalidate_range_end() that follows; remove()'s return happens-after the last callback
// of the removed notifier.
#ifndef ITN_NOTIFIER_DOMAIN_H_
#define ITN_NOTIFIER_DOMAIN_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "itree/interval_tree.h"
#include "notifier/interval_notifier.h"
#include "notifier/invalidation_token.h"
#include "notifier/leak_check.h"
#include "notifier/notifier.h"
#include "notifier/range.h"
#include "sync/atomic.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"
#include "sync/ref.h"
#include "sync/srcu.h"

namespace itn {

// NotifierDomainStats: what a domain has done, counted under its mutex. Each waiting
// operation is counted before it blocks, so a monitor or a test can poll stats() to learn
// that another thread has reached its wait (in every build, seam or not).
struct NotifierDomainStats {
  std::uint64_t starts = 0;             // invalidate_range_start() calls that began
  std::uint64_t interval_calls = 0;     // invalidate() calls, counted when their start ends
  std::uint64_t refusals = 0;           // non-blockable starts a notifier refused
  std::uint64_t deferred_inserts = 0;   // inserts queued behind an active invalidation
  std::uint64_t deferred_removes = 0;   // removes that waited for the last end to apply them
  std::uint64_t read_begin_waits = 0;   // read_begin() calls that waited for an invalidation
  std::uint64_t unregister_fences = 0;  // unregister_notifier() calls that reached their fence
  std::uint64_t reclaim_waits = 0;      // writers that waited for a grace period (the cap)
  std::uint64_t fast_starts = 0;        // starts that took no lock (counted in `starts` too)
  std::uint64_t drains = 0;  // times inserts were held back for fast invalidations in flight
};

// NotifierDomainOptions: limits and tuning of one domain.
struct NotifierDomainOptions {
  // The cap on memory retired but not yet freed: replaced tree nodes and removed
  // notifiers whose grace period has not ended, counted as in memory() (I26). insert()
  // and remove() that find it exceeded after their change wait for a grace period and
  // free it all before they return, so it is passed by at most one change per writer
  // thread, or by one invalidate_range_end()'s deferred batch until the next writer.
  // Replaced whole-space notifier lists and put notifiers are not counted.
  std::uint64_t max_retired_bytes = std::uint64_t{64} << 20;
  // Replaced tree nodes are handed to the grace-period machinery in groups of this many
  // (IntervalTreeOptions::free_batch_nodes). 1 frees after every change: tests use it so
  // that AddressSanitizer sees every free.
  std::size_t free_batch_nodes = 1024;
};

class NotifierDomain : public RefCounted {
 public:
  explicit NotifierDomain(NotifierDomainOptions options = {})
      : options_(options),
        tree_(srcu_, IntervalTreeOptions{options.free_batch_nodes}),
        deferred_inserts_(srcu_, IntervalTreeOptions{options.free_batch_nodes}) {
    notifier_internal::track_domain(this);  // debug builds: the exit-time leak check
  }
  ~NotifierDomain() override;

  // NotifierDomain::insert()
  //
  // Subscribes `sub` to invalidations of `interval`; `key` is what find() matches (any
  // address the caller chooses, compared and never dereferenced). If an invalidation is active the
  // insert is deferred: `sub` is not called by invalidations until the active ones end, and its
  // first read_begin() waits for them. `sub` may have been inserted before (here or in another
  // domain) if that remove() returned. Of concurrent inserts of one notifier, into any domains,
  // exactly one succeeds (I27). Context: may wait for a grace period when the retired memory is
  // past the cap (I26;
  //   not if this thread started an invalidation of this domain that is still open).
  //   Not from a callback of this domain or while holding a lock that callbacks take
  //   (debug: dies, I9), nor while holding a token of this domain that another thread
  //   started (see invalidate_range_start()).
  // Errors (nothing changes): kInvalidArgument for a null `sub` or an `interval` that is
  // not valid() (empty, or past the end of the address space); kFailedPrecondition if `sub` is
  // inserted (here or in another domain, or its remove() is not done with it) or the domain was
  // released.
  [[nodiscard]] absl::Status insert(Ref<IntervalNotifier> sub, Interval interval,
                                    const void* key) noexcept ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::remove()
  //
  // Unsubscribes `sub`, which must have been inserted into this domain.
  // Context: may block until every active invalidation ends (unless `sub` is a deferred
  //   insert), and for a grace period when the retired memory is past the cap (I26; not
  //   if this thread started an invalidation of this domain that is still open). Must
  //   not be called from a callback of this domain or while holding a lock that
  //   callbacks take (debug: dies, I9), nor while holding a token of this domain that
  //   another thread started (see invalidate_range_start()).
  // Deferral: while the sequence is odd the tree erase is queued; the last
  //   invalidate_range_end() applies it; remove() waits for that under the domain mutex.
  //   Removing a notifier whose insert is still deferred cancels it without waiting for
  //   the invalidations.
  // Lifetime: on return no invalidate() for `sub` runs or will run (I8), and `sub` no
  //   longer keeps the domain alive. References from find() keep `sub` alive after that.
  // Errors (nothing changes): kInvalidArgument if `sub` is not inserted in this domain.
  [[nodiscard]] absl::Status remove(IntervalNotifier& sub) noexcept ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::find()
  //
  // A reference to the notifier inserted with `key` that overlaps `interval` and has the
  // lowest start (then last), or null (also for an `interval` that is not valid()). Takes no lock;
  // callable from any thread, also inside callbacks (I10).
  [[nodiscard]] Ref<IntervalNotifier> find(const void* key, Interval interval) const;

  // NotifierDomain::invalidate_range_start()
  //
  // Announces that `range` is about to change and calls the overlapping interval
  // notifiers and every whole-space notifier. The returned token must be passed to
  // invalidate_range_end() exactly once (I3, I25; see notifier/invalidation_token.h).
  // Several invalidations may be active at once, on any threads.
  // Context: while it holds the token the caller must not call unregister_notifier()
  //   or barrier() of this domain, nor remove() a notifier that is not a deferred
  //   insert: they may wait for this end (remove() does once the sequence is odd, which
  //   an insert() on any thread makes it while an invalidation is active). insert() and
  //   remove() skip the retired-memory wait on the thread that started the token; a
  //   thread that holds a token another thread started must not call them either (at
  //   the cap they would wait for a grace period, which waits for the token: a hang).
  //   Only a token whose start found a whole-space notifier registered holds a read
  //   section (without one, no hang), but a caller cannot tell which kind it holds.
  // Errors: kInvalidArgument for an empty range (nothing happened); kUnavailable when
  //   !range.blockable and a callback refused: the start has undone its own bookkeeping,
  //   the whole-space notifiers whose start ran got their end (R5), and there is no token.
  [[nodiscard]] absl::StatusOr<InvalidationToken> invalidate_range_start(const Range& range)
      ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::invalidate_range_end()
  //
  // Ends the invalidation `token` stands for: the whole-space notifiers its start called
  // get their end, and the last active end applies the deferred inserts and removes and
  // wakes read_begin() and remove() waiters. Never waits for readers (the retired memory
  // the applied removes leave is bounded by the next insert() or remove()). A token that
  // another domain issued, or that was already ended (moved from), is a contract
  // violation (dies).
  void invalidate_range_end(InvalidationToken token) noexcept ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::register_notifier()
  //
  // Subscribes the whole-space notifier `n` (owned by the caller). Every invalidation that
  // starts after this returns calls it, start and end (I28). One already active calls it
  // for both or for neither: each invalidation ends the notifiers of the one list its
  // start called, loaded after its interval part (I25); a fast start found no list before
  // its interval part and calls none. A notifier may be
  // registered again after unregister_notifier() returned, and then gets release() again
  // (I27).
  // Errors (nothing changes): kFailedPrecondition if `n` is registered somewhere or the
  // domain was released.
  [[nodiscard]] absl::Status register_notifier(Notifier& n) ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::unregister_notifier()
  //
  // Unsubscribes `n`, delivering release() first if the teardown has not (I14), then
  // waits until no callback of `n` runs on any thread (I15): every invalidation active at
  // the call whose start could have reached `n` (every one but the fast ones, which call
  // no whole-space notifier) ends first, so one whose start reached `n` also reaches it
  // with its end (I25).
  // Context: may block; not from a callback of this domain (debug: dies, I9).
  // Errors (nothing changes): kInvalidArgument if `n` is not registered here by
  // register_notifier().
  [[nodiscard]] absl::Status unregister_notifier(Notifier& n) ABSL_LOCKS_EXCLUDED(mu_, get_mu_);

  // NotifierDomain::get_notifier()
  //
  // The domain's notifier for `ops` (the key is its address: static storage only), created
  // by ops->alloc_notifier(*this, priv) if there is none (I12), with one more user. Pair
  // with put_notifier().
  // Errors: kInvalidArgument for null ops; kFailedPrecondition if the domain was released;
  // whatever alloc_notifier returned, unchanged; kInternal if it returned a null notifier.
  [[nodiscard]] absl::StatusOr<Notifier*> get_notifier(const NotifierOps* ops, void* priv)
      ABSL_LOCKS_EXCLUDED(mu_, get_mu_);

  // NotifierDomain::put_notifier()
  //
  // Drops one user of a get_notifier() notifier. The last put unpublishes it; its
  // ops->free_notifier() runs after a grace period (I13; barrier() waits for it).
  // Never blocks on readers. Errors: kInvalidArgument if `n` has no users here.
  [[nodiscard]] absl::Status put_notifier(Notifier& n) ABSL_LOCKS_EXCLUDED(mu_, get_mu_);

  // NotifierDomain::release()
  //
  // The exit path (the last user of the address space is gone): one kRelease
  // invalidation over the whole space to every interval notifier, which stay inserted
  // until removed; then release() to every whole-space notifier that has not had it
  // (I14, I16). Afterwards inserts, registrations and gets fail with kFailedPrecondition.
  // A second call does nothing.
  void release() ABSL_LOCKS_EXCLUDED(mu_);

  bool released() const ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::barrier()
  //
  // Returns once every deferred free of a change made so far has run: removed notifiers'
  // last domain references, old whole-space lists, put notifiers, and every replaced tree
  // node (also those of a free batch not yet full). The node pool then holds no empty
  // chunk above its watermark: the memory of a finished churn is back with the system.
  // (The kernel's mmu_notifier_synchronize(). Named after SrcuDomain::barrier(), which it
  // uses, because in this library synchronize() means one grace period.)
  // Context: may block; not from a callback of this domain (debug: dies, I9).
  void barrier();

  // NotifierDomain::memory()
  //
  // Bytes the domain holds: the tree's live nodes and node pool, and as retired bytes the
  // replaced nodes not yet freed (waiting for a grace period or for their free batch to
  // fill) plus the removed notifiers it still pins until their grace period ends (counted
  // as sizeof(IntervalNotifier) each; a subclass's own fields are not known here).
  // Relaxed snapshots.
  IntervalTreeMemory memory() const;

  // NotifierDomain::stats()
  //
  // A snapshot of the counters, taken under the domain mutex: a count read here
  // happens-after the increment, which each waiting operation makes before it blocks.
  // fast_starts (and its share of starts) is a relaxed sum read before the mutex.
  NotifierDomainStats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // NotifierDomain::inserted_count()
  //
  // Inserted interval notifiers, walked ones and deferred inserts. A relaxed snapshot.
  std::size_t inserted_count() const { return tree_.size() + deferred_inserts_.size(); }

  // Diagnostics for tests: the domain sequence and the number of active invalidations
  // (locked and fast ones; a relaxed sum).
  std::uint64_t seq_for_testing() const { return seq_.load(std::memory_order_relaxed); }
  std::uint64_t active_for_testing() const ABSL_LOCKS_EXCLUDED(mu_);
  // Inserted interval notifiers plus registered whole-space ones: each holds a reference
  // to the domain. A relaxed snapshot.
  std::uint64_t subscriber_count() const;

 private:
  friend class IntervalNotifier;
  friend class NotifierDomainTestPeer;  // tests: holds mu_ to show readers do not need it
  using State = IntervalNotifier::State;
  using NotifierList = std::vector<Notifier*>;
  // One insertion of a notifier: find() compares the generation with the notifier's own
  // to skip entries of earlier insertions that old snapshots still hold (I27).
  struct TreeEntry {
    IntervalNotifier* sub;
    std::uint64_t generation;
  };
  struct TreeEntryLess {
    bool operator()(const TreeEntry& a, const TreeEntry& b) const {
      if (a.sub != b.sub) return std::less<>()(a.sub, b.sub);
      return a.generation < b.generation;
    }
  };

  struct DeferredOp {
    bool insert;  // else remove
    IntervalNotifier* sub;
  };

  // Enters a claimed notifier under `generation`.
  void insert_locked(Ref<IntervalNotifier> sub, Interval interval, const void* key,
                     std::uint64_t generation) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::uint64_t wait_for_seq_change(const IntervalNotifier& sub, std::uint64_t seq)
      ABSL_LOCKS_EXCLUDED(mu_);
  const NotifierList* notifier_list() const;
  void publish_list_locked(NotifierList next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::Status register_locked(Notifier& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool unpublish_locked(Notifier& n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::Status call_start_notifiers(const Range& range, const NotifierList* list);
  void call_end_notifiers(const Range& range, const NotifierList* list);
  void deliver_release(Notifier& n);
  using WalkedTree = IntervalTree<TreeEntry, TreeEntryLess>;
  // invalidate_range_start() without its trace points: the fast path, or start_locked().
  absl::StatusOr<InvalidationToken> start_any(const Range& range) ABSL_LOCKS_EXCLUDED(mu_);
  // The start that takes the mutex. `cursor`, if not null, has found `first`, the first
  // notifier in range, in a snapshot that a read section of the caller keeps.
  absl::StatusOr<InvalidationToken> start_locked(const Range& range, WalkedTree::Cursor* cursor,
                                                 const TreeEntry* first) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts itself active and calls the interval notifiers; `calls` counts the calls.
  // With a cursor (as for start_locked()), the walk under mu_ is skipped and the calls go
  // on from the cursor if its snapshot is the walked tree.
  [[nodiscard]] absl::Status start_interval_part(const Range& range, std::uint64_t& calls,
                                                 WalkedTree::Cursor* cursor = nullptr,
                                                 const TreeEntry* first = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The fast path (see the top of this file): fast_enter() counts a start in `shard` and
  // says whether the path is open; the start then ends with fast_end(), or, if it is not
  // fast after all, is uncounted by fast_leave() before it takes the locked path.
  bool fast_enter(int shard);
  void fast_leave(int shard);
  void fast_end(int shard) ABSL_LOCKS_EXCLUDED(mu_);
  // The calling thread's shard.
  static int fast_shard_index();
  // Closes the fast path; true if no fast invalidation is in flight (then every later
  // fast start sees the closure, so the walked tree may gain notifiers).
  bool close_fast_path_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void open_fast_path_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::uint64_t fast_in_flight() const;
  // A drain counts as one active invalidation; it ends once no fast one is in flight.
  void start_drain_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void finish_drain_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool any_walked_overlap(const Range& range) const;
  // The first notifier of `tree` that find() may return for `key`, with its place in the
  // tree's order.
  struct Found {
    Ref<IntervalNotifier> sub;
    std::uint64_t start = 0;
    std::uint64_t last = 0;
    TreeEntry entry{nullptr, 0};
  };
  // The order of the trees' keys: start, last, then the entry (as within one tree).
  static bool found_before(const Found& a, const Found& b);
  static Found find_in(const IntervalTree<TreeEntry, TreeEntryLess>& tree, const void* key,
                       Interval interval);
  // Context: inside a read section (the cursor's, if there is one).
  [[nodiscard]] absl::Status call_interval_notifiers(const Range& range, std::uint64_t cur_seq,
                                                     std::uint64_t& calls,
                                                     WalkedTree::Cursor* cursor,
                                                     const TreeEntry* first)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Ends one invalidation that thread `starter` (its thread_key(); null for a drain)
  // started, which called `calls` interval notifiers; the last active end applies the
  // deferred changes.
  void end_locked(const void* starter, std::uint64_t calls) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the deferred list: the walked tree's publish, then the deferred tree emptied.
  // False if inserts must wait for fast invalidations in flight: a drain was started and
  // nothing changed.
  bool apply_deferred_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The calling thread, as recorded in starters_.
  static const void* thread_key();
  // I26: waits for a grace period if the retired bytes exceed the cap.
  void bound_retired_memory() ABSL_LOCKS_EXCLUDED(mu_);
  static void set_state(IntervalNotifier& sub, State state);
  static State state_of(const IntervalNotifier& sub);
  static TreeEntry entry_of(IntervalNotifier& sub);
  // Enters or takes out `sub`'s current insertion in `tree` (an IntervalTree or a Batch).
  template <class Tree>
  static absl::Status insert_entry(Tree& tree, IntervalNotifier& sub);
  template <class Tree>
  static absl::Status erase_entry(Tree& tree, IntervalNotifier& sub);
  // remove() may take it out, and find() returns it: inserts, applied or deferred.
  static bool inserted(State state) {
    return state == State::kLive || state == State::kDeferredInsert;
  }

  const NotifierDomainOptions options_;
  // Before the trees: destroyed after them, whose nodes it frees.
  mutable SrcuDomain srcu_;
  // The walked notifiers (kLive, kRemoving). Changes only while the sequence is even, and
  // under mu_.
  IntervalTree<TreeEntry, TreeEntryLess> tree_;
  // Inserts deferred behind active invalidations (kDeferredInsert): find() reads them,
  // walks never do. Changes only under mu_; emptied by the end that applies them.
  IntervalTree<TreeEntry, TreeEntryLess> deferred_inserts_;
  // Removed notifiers whose domain reference waits for its grace period (I26).
  Atomic<std::uint64_t> pinned_notifiers_{0};

  // Fast invalidations in flight, per shard of threads, each shard on its own cache line:
  // one word counts those in flight (low bits, kFastActive each) and those started (high
  // bits, kFastStart each), so that a fast start is one RMW.
  static constexpr int kFastShards = 16;
  static constexpr std::uint64_t kFastActive = 1;
  static constexpr std::uint64_t kFastStart = std::uint64_t{1} << 24;
  struct alignas(64) FastShard {
    Atomic<std::uint64_t> word{0};
  };
  FastShard fast_[kFastShards];
  // True while the walked tree may gain a notifier that fast invalidations in flight have
  // not seen: fast starts then take the locked path. Written under mu_.
  alignas(64) Atomic<bool> fast_closed_{false};

  alignas(64) mutable Mutex mu_;
  CondVar wq_;  // signalled when the sequence becomes even (deferred ops applied)
  // Even: idle; odd: an invalidation that reached a notifier (or a deferred insert, or a
  // drain; see start_interval_part() for the one more case) is active. Written under mu_,
  // read without it by read_begin(): its own cache line.
  alignas(64) Atomic<std::uint64_t> seq_{2};
  // Locked invalidations active, plus one while a drain waits for fast ones.
  alignas(64) std::uint64_t active_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  // The thread_key() of each active invalidation's starting thread (one entry each).
  std::vector<const void*> starters_ ABSL_GUARDED_BY(mu_);
  std::vector<DeferredOp> deferred_ ABSL_GUARDED_BY(mu_);
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  NotifierDomainStats stats_ ABSL_GUARDED_BY(mu_);

  // Whole-space notifiers: an immutable list replaced under mu_ and read by callbacks in
  // read sections; old lists are freed after a grace period.
  Atomic<const NotifierList*> notifiers_{nullptr};
  // Serialises get_notifier()/put_notifier(), so alloc_notifier() runs once per instance
  // without holding mu_ (it may call back into the domain).
  Mutex get_mu_ ABSL_ACQUIRED_BEFORE(mu_);
};

}  // namespace itn

#endif  // ITN_NOTIFIER_DOMAIN_H_
