#include "notifier/domain.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

#include "notifier/internal/may_wait.h"
#include "notifier/internal/trace_args.h"
#include "notifier/invalidation_batcher.h"
#include "sync/trace.h"

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
using notifier_internal::kTrace;
using notifier_internal::range_args;

bool is_odd(std::uint64_t seq) { return (seq & 1) != 0; }

// One notifier's invalidate(), as an "invalidate" span.
bool call_invalidate(IntervalNotifier& n, const Range& range, std::uint64_t cur_seq) {
  trace::Span span(kTrace, "invalidate", [&] {
    return trace::Args{{"notifier", trace::hex(&n)}, {"seq", cur_seq}};
  });
  const bool ok = n.invalidate(range, cur_seq);
  if (!ok) span.end_arg("refused", 1);
  return ok;
}

// A batched notifier a walk reached, with its batcher. Up to a group's worth without a
// heap allocation.
using Batched = std::pair<InvalidationBatcher*, IntervalNotifier*>;
using BatchedHits = absl::InlinedVector<Batched, 16>;

// Calls each batcher once with its notifiers (kept in key order: a stable sort). False if
// one refused; `calls` counts the notifiers of the batches called.
bool call_batchers(const Range& range, std::uint64_t cur_seq, BatchedHits& batched,
                   std::uint64_t& calls) {
  std::stable_sort(batched.begin(), batched.end(), [](const Batched& a, const Batched& b) {
    return std::less<>()(a.first, b.first);
  });
  absl::InlinedVector<IntervalNotifier*, 16> hits;
  hits.reserve(batched.size());
  for (const Batched& b : batched) hits.push_back(b.second);
  for (std::size_t begin = 0; begin < batched.size();) {
    std::size_t end = begin + 1;
    while (end < batched.size() && batched[end].first == batched[begin].first) ++end;
    calls += end - begin;
    const std::span<IntervalNotifier* const> group(hits.data() + begin, end - begin);
    trace::Span span(kTrace, "invalidate batch", [&] {
      return trace::Args{{"batcher", trace::hex(batched[begin].first)},
                         {"notifiers", group.size()},
                         {"seq", cur_seq}};
    });
    if (!batched[begin].first->invalidate(range, cur_seq, group)) {
      span.end_arg("refused", 1);
      ITN_CHECK(!range.blockable,
                "InvalidationBatcher::invalidate() returned false for a blockable invalidation");
      return false;
    }
    begin = end;
  }
  return true;
}

// The lock that serialises inserts of one notifier (into any domain). Striped: inserts
// of different notifiers rarely share one, and never wait long when they do.
Mutex& claim_lock(const IntervalNotifier& n) {
  static Mutex locks[16];
  return locks[(reinterpret_cast<std::uintptr_t>(&n) / 64) % 16];
}

}  // namespace

NotifierDomain::~NotifierDomain() {
  notifier_internal::untrack_domain(this);
  ITN_CHECK(!srcu_.on_worker_thread(),
            "I24: NotifierDomain destroyed on its own SRCU worker (a notifier's destructor "
            "dropped the last reference to its domain)");
  // Inserted and registered notifiers hold a reference to the domain, so none are left.
  ITN_CHECK(inserted_count() == 0, "NotifierDomain destroyed with notifiers inserted");
  ITN_CHECK(notifier_list() == nullptr, "NotifierDomain destroyed with notifiers registered");
  {
    MutexLock l(mu_);
    ITN_CHECK(active_ == 0 && fast_in_flight() == 0,
              "I25: NotifierDomain destroyed with an invalidation not ended (its token lives)");
  }
  // The callbacks still queued (removed notifiers' last references, old lists) run while
  // every member they touch is alive.
  srcu_.barrier();
}

void NotifierDomain::set_state(IntervalNotifier& sub, State state) {
  // Relaxed load: after the claim only the domain's mutex holder writes the word.
  const std::uint64_t word = sub.claim_.load(std::memory_order_relaxed);
  // Release: pairs with the acquire loads in find() and state_of(); the notifier's fields
  // of this insertion are complete.
  sub.claim_.store(IntervalNotifier::claim_word(IntervalNotifier::generation_in(word), state),
                   std::memory_order_release);
}

IntervalNotifier::State NotifierDomain::state_of(const IntervalNotifier& sub) {
  // Acquire: pairs with the release store in set_state().
  return IntervalNotifier::state_in(sub.claim_.load(std::memory_order_acquire));
}

const void* NotifierDomain::thread_key() {
  static thread_local char key;
  return &key;
}

NotifierDomain::TreeEntry NotifierDomain::entry_of(IntervalNotifier& sub) {
  // Relaxed: called under the domain's mutex, which orders every write after the claim.
  return {&sub, IntervalNotifier::generation_in(sub.claim_.load(std::memory_order_relaxed))};
}

template <class Tree>
absl::Status NotifierDomain::insert_entry(Tree& tree, IntervalNotifier& sub) {
  return tree.insert(sub.interval_.start(), sub.interval_.last(), entry_of(sub));
}

template <class Tree>
absl::Status NotifierDomain::erase_entry(Tree& tree, IntervalNotifier& sub) {
  return tree.erase(sub.interval_.start(), sub.interval_.last(), entry_of(sub));
}

absl::Status NotifierDomain::insert(Ref<IntervalNotifier> sub, Interval interval,
                                    const void* key) noexcept {
  // Checked on every call, not only at the cap, so that a misplaced insert() fails at once.
  ITN_CHECK_MAY_WAIT(this, "NotifierDomain::insert");
  if (!sub) return absl::InvalidArgumentError("NotifierDomain::insert: null notifier");
  if (!interval.valid()) {
    return absl::InvalidArgumentError(
        "NotifierDomain::insert: the interval is not valid (empty, or past the end of the "
        "address space)");
  }
  {
    // I27: of concurrent inserts of one notifier, into any domains, one wins. They are
    // serialised by its claim lock, so that a refusal comes after the winner's insert
    // took effect (as find() sees it).
    MutexLock claim(claim_lock(*sub));
    // Acquire: pairs with the release store of kFree at the end of remove(), after which
    // nothing of the last insertion touches the notifier.
    const std::uint64_t free_word = sub->claim_.load(std::memory_order_acquire);
    if (IntervalNotifier::state_in(free_word) != State::kFree) {
      return absl::FailedPreconditionError(
          "NotifierDomain::insert: notifier is inserted (here or in another domain, or its "
          "remove() has not returned)");
    }
    MutexLock l(mu_);
    if (released_) return absl::FailedPreconditionError("NotifierDomain: the domain was released");
    insert_locked(std::move(sub), interval, key, IntervalNotifier::generation_in(free_word) + 1);
  }
  bound_retired_memory();
  return absl::OkStatus();
}

void NotifierDomain::insert_locked(Ref<IntervalNotifier> sub, Interval interval, const void* key,
                                   std::uint64_t generation) {
  IntervalNotifier& n = *sub;
  // A new generation before any field changes: find() re-checks it after reading the
  // key. Relaxed: the release store of the key below publishes it.
  n.claim_.store(IntervalNotifier::claim_word(generation, State::kClaimed),
                 std::memory_order_relaxed);
  // Release: pairs with the acquire load in read_begin().
  n.domain_.store(this, std::memory_order_release);
  n.interval_ = interval;
  // Release: pairs with find()'s acquire load of the key; a find() that reads this value
  // through an old snapshot then sees the claim above and skips the entry.
  n.key_.store(key, std::memory_order_release);
  n.grab_ = Ref<RefCounted>::from_this(this);
  n.domain_ref_ = std::move(sub);
  // Walked at once only if no fast invalidation may have missed it either.
  if (active_ == 0 && !close_fast_path_locked()) start_drain_locked();
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
    ++stats_.deferred_inserts;
    deferred_.push_back({true, &n});
  } else {
    n.invalidate_seq_.store(seq - 1, std::memory_order_relaxed);  // published by set_state()
  }
  // Walked at once only if no invalidation is active: walks meet only notifiers they
  // must call (I5). find() skips it until the state below is published.
  IntervalTree<TreeEntry, TreeEntryLess>& tree = active_ > 0 ? deferred_inserts_ : tree_;
  ITN_CHECK_OK(insert_entry(tree, n), "interval checked above");
  // The insert takes effect here, for find(), walks and concurrent claimers alike.
  set_state(n, active_ > 0 ? State::kDeferredInsert : State::kLive);
  if (active_ == 0) open_fast_path_locked();  // after the publish, which fast starts then see
}

absl::Status NotifierDomain::remove(IntervalNotifier& sub) noexcept {
  ITN_CHECK_MAY_WAIT(this, "NotifierDomain::remove");
  // Taken out of `sub` under the mutex, so that nothing else ever hands them off: the
  // domain's reference keeps `sub` alive until this call is done with it (the caller may
  // hold none), and the grab is dropped on this thread, possibly destroying the domain.
  Ref<IntervalNotifier> reference;
  Ref<RefCounted> grab;
  {
    MutexLock l(mu_);
    const State state = state_of(sub);
    // Relaxed: only this domain's mutex holder stores `this` there.
    if (sub.domain_.load(std::memory_order_relaxed) != this || !inserted(state)) {
      return absl::InvalidArgumentError(
          "NotifierDomain::remove: notifier is not inserted in this domain");
    }
    // Relaxed: seq_ is written only under mu_, which we hold.
    if (state == State::kDeferredInsert) {
      // Never walked: cancel the insert, no need to wait (I8).
      std::erase_if(deferred_, [&](const DeferredOp& op) { return op.sub == &sub; });
      ITN_CHECK_OK(erase_entry(deferred_inserts_, sub),
                   "a deferred notifier is in the deferred tree");
      set_state(sub, State::kErased);
    } else if (!is_odd(seq_.load(std::memory_order_relaxed))) {
      // No invalidation is calling notifiers: erase now (published on return).
      ITN_CHECK_OK(erase_entry(tree_, sub), "a live notifier is in the tree");
      set_state(sub, State::kErased);
    } else {
      set_state(sub, State::kRemoving);
      deferred_.push_back({false, &sub});
      ++stats_.deferred_removes;
      // R3: "has my erase been applied" is decided under mu_, the mutex under which
      // end_locked() applies it, never from a lock-free look at the sequence. end_locked()
      // publishes the erase before it releases mu_.
      while (state_of(sub) != State::kErased) wq_.wait(mu_);
    }
    reference = std::move(sub.domain_ref_);
    grab = std::move(sub.grab_);
    sub.domain_.store(nullptr, std::memory_order_relaxed);  // read_begin() races are bugs
    // The last access to `sub` here: from this store on another insert() may claim it (I27).
    set_state(sub, State::kFree);
  }
  // I24: the erase is published and this call no longer touches `sub`. A find() or walk
  // that loaded an older root may still hold `sub` without a count; the grace period
  // covers it. The reference may be the last: `sub` is then destroyed on the worker, in
  // this domain's context, so that locks its destructor takes are known to the I9 checks.
  // Relaxed: a count for the cap; the barrier in bound_retired_memory() orders the rest.
  pinned_notifiers_.fetch_add(1, std::memory_order_relaxed);
  srcu_.call([this, reference = std::move(reference)]() mutable {
    ContextScope scope(this);
    reference.reset();
    pinned_notifiers_.fetch_sub(1, std::memory_order_relaxed);
  });
  bound_retired_memory();
  return absl::OkStatus();
}

std::uint64_t NotifierDomain::subscriber_count() const {
  auto guard = srcu_.read_lock();  // keeps the list alive
  const NotifierList* list = notifier_list();
  return inserted_count() + (list != nullptr ? list->size() : 0);
}

IntervalTreeMemory NotifierDomain::memory() const {
  IntervalTreeMemory m = tree_.memory();
  const IntervalTreeMemory deferred = deferred_inserts_.memory();
  m.live_bytes += deferred.live_bytes;
  m.retired_bytes += deferred.retired_bytes;
  m.pool_bytes += deferred.pool_bytes;
  // Relaxed: a statistic.
  m.retired_bytes += pinned_notifiers_.load(std::memory_order_relaxed) * sizeof(IntervalNotifier);
  return m;
}

void NotifierDomain::bound_retired_memory() {
  if (memory().retired_bytes <= options_.max_retired_bytes) return;
  {
    MutexLock l(mu_);
    // An invalidation this thread started and has not ended holds a read section: the
    // grace period would wait for it, and so for this thread. Skipped: the next writer
    // waits instead.
    if (std::find(starters_.begin(), starters_.end(), thread_key()) != starters_.end()) {
      return;
    }
    ++stats_.reclaim_waits;
  }
  // Every retired node and pinned notifier was queued (or is queued now) before this
  // grace period, so it is freed when reclaim() returns (I26).
  deferred_inserts_.reclaim();
  tree_.reclaim();
}

Ref<IntervalNotifier> NotifierDomain::find(const void* key, Interval interval) const {
  if (!interval.valid()) return nullptr;
  auto guard = srcu_.read_lock();
  // The deferred tree first: the end that applies an insert publishes it in the walked
  // tree before it empties the deferred one, so a find() that no longer sees it there
  // (acquire, pairing with that later publish) sees it in the walked tree.
  Found deferred = find_in(deferred_inserts_, key, interval);
  Found walked = find_in(tree_, key, interval);
  if (!deferred.sub) return std::move(walked.sub);
  if (!walked.sub) return std::move(deferred.sub);
  return std::move(found_before(deferred, walked) ? deferred.sub : walked.sub);
}

bool NotifierDomain::found_before(const Found& a, const Found& b) {
  if (a.start != b.start) return a.start < b.start;
  if (a.last != b.last) return a.last < b.last;
  return TreeEntryLess()(a.entry, b.entry);
}

NotifierDomain::Found NotifierDomain::find_in(const IntervalTree<TreeEntry, TreeEntryLess>& tree,
                                              const void* key, Interval interval) {
  Found found;
  tree.for_each_overlap(interval.start(), interval.last(),
                        [&](std::uint64_t s, std::uint64_t l, const TreeEntry& e) {
                          IntervalNotifier* n = e.sub;
                          // Acquire: pairs with the release stores in set_state(); this insertion's
                          // key is visible if the word still names it.
                          const std::uint64_t word = n->claim_.load(std::memory_order_acquire);
                          if (IntervalNotifier::generation_in(word) != e.generation)
                            return true;  // a later insertion
                          if (!inserted(IntervalNotifier::state_in(word)))
                            return true;  // remove() has begun
                          // Acquire: pairs with the release store in insert(). If this reads a
                          // later insertion's key, the load below sees that insertion's claim.
                          const void* found_key = n->key_.load(std::memory_order_acquire);
                          // Only the generation matters here: the state may move on within this
                          // insertion (deferred to live, live to removing) without touching the
                          // key.
                          const std::uint64_t again = n->claim_.load(std::memory_order_acquire);
                          if (IntervalNotifier::generation_in(again) != e.generation)
                            return true;  // reinserted
                          if (found_key != key) return true;
                          // Cannot fail: the domain's reference for this insertion outlives every
                          // snapshot that holds the entry (remove() hands it to a grace period
                          // after the erase is published).
                          found = {Ref<IntervalNotifier>::try_get(n), s, l, e};
                          return !found.sub;
                        });
  return found;
}

bool NotifierDomain::any_walked_overlap(const Range& range) const {
  auto guard = srcu_.read_lock();
  // Stops at the first entry: every one is walked.
  return !tree_.for_each_overlap(
      range.start, range.interval().last(),
      [](std::uint64_t, std::uint64_t, const TreeEntry&) { return false; });
}

absl::StatusOr<InvalidationToken> NotifierDomain::invalidate_range_start(const Range& range) {
  if (!trace::enabled()) [[likely]]
    return start_any(range);
  // Two spans: "invalidate_range_start" for this call, on this thread, and the async
  // "invalidation" that the token carries to invalidate_range_end() (on any thread).
  trace::Span span(kTrace, "invalidate_range_start", [&] { return range_args(range); });
  const std::uint64_t handle =
      trace::async_begin(kTrace, "invalidation", [&] { return range_args(range); });
  absl::StatusOr<InvalidationToken> token = start_any(range);
  if (!token.ok()) {
    const std::string code = absl::StatusCodeToString(token.status().code());
    trace::async_end(handle, kTrace, "invalidation", {{"status", code}});
    span.end_arg("status", code);
    return token;
  }
  token->trace_handle_ = handle;
  span.end_arg("fast", token->fast_shard_ >= 0 ? 1 : 0);
  span.end_arg("calls", token->interval_calls_);
  return token;
}

absl::StatusOr<InvalidationToken> NotifierDomain::start_any(const Range& range) {
  if (!range.interval().valid()) {
    return absl::InvalidArgumentError(
        absl::StrCat("NotifierDomain::invalidate_range_start: empty range [", range.start, ", ",
                     range.end, ")"));
  }
  const std::uint64_t last = range.interval().last();
  // Acquire: pairs with the release store in publish_list_locked(); only compared with null.
  if (notifiers_.load(std::memory_order_acquire) == nullptr) {
    const int shard = fast_shard_index();
    if (fast_enter(shard)) {
      // Most misses never touch a node: past every notifier, no read section is needed.
      if (!tree_.may_overlap(range.start, last)) return InvalidationToken(this, range, shard);
      auto guard = srcu_.read_lock();  // the cursor's snapshot, until the walk is done
      WalkedTree::Cursor cursor = tree_.overlaps(range.start, last);
      const TreeEntry* first = cursor.next();
      if (first == nullptr) return InvalidationToken(this, range, shard);
      fast_leave(shard);
      return start_locked(range, &cursor, first);  // one descent: the walk goes on from here
    }
    fast_leave(shard);
  }
  return start_locked(range, nullptr, nullptr);
}

absl::StatusOr<InvalidationToken> NotifierDomain::start_locked(const Range& range,
                                                               WalkedTree::Cursor* cursor,
                                                               const TreeEntry* first) {
  std::uint64_t calls = 0;
  absl::Status status = start_interval_part(range, calls, cursor, first);
  if (!status.ok()) return status;  // undone already
  // I25, I28: the whole-space list as of now, kept alive (and unregister_notifier()
  // fenced) by a section that the token carries to the end. No list, no section: a
  // register_notifier() that has not returned yet need not reach this invalidation.
  SrcuDomain::Section section;
  const NotifierList* list = nullptr;
  // Acquire: pairs with the release store in publish_list_locked(); only compared with null.
  if (notifiers_.load(std::memory_order_acquire) != nullptr) {
    section = srcu_.hold();
    list = notifier_list();
  }
  status = call_start_notifiers(range, list);
  if (!status.ok()) {  // R5: undo the interval part too; there is no token to end
    MutexLock l(mu_);
    end_locked(thread_key(), calls);
    return status;
  }
  return InvalidationToken(this, range, std::move(section), list, thread_key(), calls);
}

int NotifierDomain::fast_shard_index() {
  static Atomic<unsigned> next{0};
  // Relaxed: only spreads threads over the shards.
  static thread_local const int shard =
      static_cast<int>(next.fetch_add(1, std::memory_order_relaxed) % kFastShards);
  return shard;
}

bool NotifierDomain::fast_enter(int shard) {
  // Seq_cst, as are the accesses it pairs with: fast_closed_'s store and the shard loads
  // in close_fast_path_locked(). Either that closure's loads see this count, or the load
  // of fast_closed_ below sees the closure (or the reopening after its publish). Counts
  // the start too, in the same RMW.
  const std::uint64_t before =
      fast_[shard].word.fetch_add(kFastStart | kFastActive, std::memory_order_seq_cst);
  ITN_DCHECK((before & (kFastStart - 1)) != kFastStart - 1,
             "more than 2^24 - 1 fast invalidations in flight on one thread shard");
  return !fast_closed_.load(std::memory_order_seq_cst);
}

void NotifierDomain::fast_leave(int shard) {
  // Not fast after all: uncounted before the locked start, which finishes a drain this
  // count may have held up. Seq_cst: pairs with the shard loads in fast_in_flight().
  fast_[shard].word.fetch_sub(kFastStart | kFastActive, std::memory_order_seq_cst);
}

void NotifierDomain::fast_end(int shard) {
  // Seq_cst: pairs with the closure's store and loads (see fast_start()). A drain that
  // saw this count sees, in its closure, this end's load of fast_closed_ return true.
  fast_[shard].word.fetch_sub(kFastActive, std::memory_order_seq_cst);
  if (!fast_closed_.load(std::memory_order_seq_cst)) return;
  MutexLock l(mu_);
  finish_drain_locked();
}

std::uint64_t NotifierDomain::fast_in_flight() const {
  std::uint64_t total = 0;
  // Seq_cst: pairs with the RMWs in fast_start() and fast_end().
  for (const FastShard& s : fast_) {
    total += s.word.load(std::memory_order_seq_cst) & (kFastStart - 1);
  }
  return total;
}

bool NotifierDomain::close_fast_path_locked() {
  // Seq_cst: pairs with the loads in fast_start() and fast_end().
  fast_closed_.store(true, std::memory_order_seq_cst);
  return fast_in_flight() == 0;
}

void NotifierDomain::open_fast_path_locked() {
  // Seq_cst: pairs with the loads in fast_start(); one that reads false from here sees
  // the publish that came before.
  fast_closed_.store(false, std::memory_order_seq_cst);
}

void NotifierDomain::start_drain_locked() {
  draining_ = true;
  ++active_;
  ++stats_.drains;
  trace::instant(kTrace, "drain", [&] { return trace::Args{{"domain", trace::hex(this)}}; });
}

void NotifierDomain::finish_drain_locked() {
  if (!draining_ || fast_in_flight() != 0) return;
  draining_ = false;
  // The walked tree gains no notifier without closing the fast path again (as the apply
  // in end_locked() may do at once).
  open_fast_path_locked();
  end_locked(nullptr, 0);
}

absl::Status NotifierDomain::start_interval_part(const Range& range, std::uint64_t& calls,
                                                 WalkedTree::Cursor* cursor,
                                                 const TreeEntry* first) {
  std::uint64_t cur_seq = 0;
  {
    MutexLock l(mu_);
    finish_drain_locked();
    ++active_;
    starters_.push_back(thread_key());  // removed by end_locked()
    ++stats_.starts;
    // A hit seen by the cursor may be gone now; then no notifier is called and the odd
    // sequence only makes read_begin() callers of this busy period wait for its end.
    if (first != nullptr || any_walked_overlap(range)) {
      // Relaxed load: seq_ is written only under mu_, which we hold.
      cur_seq = seq_.load(std::memory_order_relaxed) | 1;
      // Release: pairs with the acquire load in read_begin().
      seq_.store(cur_seq, std::memory_order_release);
    }
  }
  if (cur_seq == 0) return absl::OkStatus();
  if (cursor != nullptr) return call_interval_notifiers(range, cur_seq, calls, cursor, first);
  auto guard = srcu_.read_lock();  // a cursor comes with its caller's
  return call_interval_notifiers(range, cur_seq, calls, nullptr, nullptr);
}

absl::Status NotifierDomain::call_interval_notifiers(const Range& range, std::uint64_t cur_seq,
                                                     std::uint64_t& calls,
                                                     WalkedTree::Cursor* cursor,
                                                     const TreeEntry* first) {
  ITN_DCHECK(srcu_.in_read_section(), "call_interval_notifiers() runs in a read section");
  bool refused = false;
  {
    ContextScope scope(this);  // callbacks run in this domain's context (I9)
    // The walked tree cannot change under us: the sequence is odd since our start, so
    // erases wait for the last end and inserts go to the deferred tree (I5). Every entry
    // of this snapshot is a notifier we must call. A cursor the start already moved to its
    // first entry goes on if its snapshot is that tree; else the walk starts afresh.
    std::optional<WalkedTree::Cursor> fresh;
    if (cursor == nullptr || !cursor->current(tree_)) {
      fresh.emplace(tree_.overlaps(range.start, range.interval().last()));
      cursor = &*fresh;
      first = cursor->next();
    }
    // Notifiers are called in groups: the walk gathers a group, prefetching each, then
    // calls it in key order, so that the walk's and the callbacks' cache misses overlap.
    constexpr int kGroup = 16;
    IntervalNotifier* group[kGroup];
    int grouped = 0;
    // Batched notifiers wait for the end of the walk, to be handed to their batchers
    // together (notifier/invalidation_batcher.h).
    BatchedHits batched;
    // Looked at once per walk, not per notifier: a recording that begins mid-walk starts
    // with the next one.
    const bool tracing = trace::enabled();
    auto call_group = [&] {
      for (int i = 0; i < grouped; ++i) {
        IntervalNotifier* n = group[i];
        if (n->batcher_ != nullptr) {
          batched.emplace_back(n->batcher_, n);
          continue;
        }
        ++calls;
        if (tracing ? call_invalidate(*n, range, cur_seq) : n->invalidate(range, cur_seq)) continue;
        ITN_CHECK(!range.blockable,
                  "IntervalNotifier::invalidate() returned false for a blockable invalidation");
        refused = true;
        break;
      }
      grouped = 0;
      return !refused;
    };
    for (const TreeEntry* e = first; e != nullptr; e = cursor->next()) {
      __builtin_prefetch(e->sub);
      group[grouped++] = e->sub;
      if (grouped == kGroup && !call_group()) break;
    }
    if (!refused) call_group();
    if (!refused && !batched.empty()) refused = !call_batchers(range, cur_seq, batched, calls);
  }
  if (!refused) return absl::OkStatus();
  // R5: the notifiers already called hold cur_seq and will retry; undo our own count so
  // that the sequence and the deferred list end consistent. The caller must not end.
  MutexLock l(mu_);
  ++stats_.refusals;
  end_locked(thread_key(), calls);
  return absl::UnavailableError(
      "NotifierDomain::invalidate_range_start: a notifier refused a non-blockable "
      "invalidation; there is nothing to end");
}

void NotifierDomain::invalidate_range_end(InvalidationToken token) noexcept {
  ITN_CHECK(token.domain_ == this,
            "I25: invalidate_range_end() with a token this domain did not issue, or one that "
            "was already ended");
  token.domain_ = nullptr;
  trace::Span span(kTrace, "invalidate_range_end", [&] { return range_args(token.range_); });
  if (token.fast_shard_ >= 0) {
    fast_end(token.fast_shard_);
  } else {
    call_end_notifiers(token.range_, token.notifiers_);
    token.section_.end();  // unregister_notifier() of a notifier on the list may return now
    // Never waits at the retired-memory cap: the caller may hold a lock that another
    // invalidation, started meanwhile, waits for. The next insert() or remove() does.
    MutexLock l(mu_);
    end_locked(token.starter_, token.interval_calls_);
  }
  trace::async_end(token.trace_handle_, kTrace, "invalidation");
}

InvalidationToken::InvalidationToken(InvalidationToken&& other) noexcept
    : domain_(other.domain_),
      range_(other.range_),
      section_(std::move(other.section_)),
      notifiers_(other.notifiers_),
      starter_(other.starter_),
      interval_calls_(other.interval_calls_),
      fast_shard_(other.fast_shard_),
      trace_handle_(other.trace_handle_) {
  other.domain_ = nullptr;
}

InvalidationToken& InvalidationToken::operator=(InvalidationToken&& other) noexcept {
  if (this == &other) return *this;
  end_dropped();
  domain_ = other.domain_;
  range_ = other.range_;
  section_ = std::move(other.section_);
  notifiers_ = other.notifiers_;
  starter_ = other.starter_;
  interval_calls_ = other.interval_calls_;
  fast_shard_ = other.fast_shard_;
  trace_handle_ = other.trace_handle_;
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

void NotifierDomain::end_locked(const void* starter, std::uint64_t calls) {
  stats_.interval_calls += calls;
  if (starter != nullptr) {
    const auto started = std::find(starters_.begin(), starters_.end(), starter);
    ITN_DCHECK(started != starters_.end(), "an invalidation's starter is recorded");
    starters_.erase(started);
  }
  if (--active_ > 0) return;
  // Relaxed: seq_ is written only under mu_, which we hold.
  const std::uint64_t seq = seq_.load(std::memory_order_relaxed);
  if (!is_odd(seq)) return;
  if (!deferred_.empty() && !apply_deferred_locked()) return;  // drained later
  // Release: pairs with the acquire load in read_begin().
  seq_.store(seq + 1, std::memory_order_release);
  wq_.notify_all();
}

bool NotifierDomain::apply_deferred_locked() {
  const bool inserts = std::any_of(deferred_.begin(), deferred_.end(),
                                   [](const DeferredOp& op) { return op.insert; });
  if (inserts && !close_fast_path_locked()) {
    start_drain_locked();  // the walked tree gains notifiers only once no fast walk misses them
    return false;
  }
  {
    // I2: in FIFO order, in one publish of the walked tree.
    IntervalTree<TreeEntry, TreeEntryLess>::Batch batch(tree_);
    for (const DeferredOp& op : deferred_) {
      if (op.insert) {
        ITN_CHECK_OK(insert_entry(batch, *op.sub), "a deferred insert has a valid interval");
        set_state(*op.sub, State::kLive);
      } else {
        // remove(), waiting for this, hands the notifier's reference off once the batch
        // is published.
        ITN_CHECK_OK(erase_entry(batch, *op.sub), "a removing notifier is in the tree");
        set_state(*op.sub, State::kErased);
      }
    }
  }
  {
    // After the walked tree's publish, so that find() sees every insert in one of them.
    IntervalTree<TreeEntry, TreeEntryLess>::Batch batch(deferred_inserts_);
    for (const DeferredOp& op : deferred_) {
      if (!op.insert) continue;
      ITN_CHECK_OK(erase_entry(batch, *op.sub), "a deferred insert is in the deferred tree");
    }
  }
  if (trace::enabled()) [[unlikely]] {
    const std::uint64_t count = deferred_.size();
    const auto inserted = static_cast<std::uint64_t>(std::count_if(
        deferred_.begin(), deferred_.end(), [](const DeferredOp& op) { return op.insert; }));
    trace::instant(kTrace, "deferred ops applied", [&] {
      return trace::Args{{"domain", trace::hex(this)},
                         {"count", count},
                         {"inserts", inserted},
                         {"removes", count - inserted}};
    });
  }
  deferred_.clear();
  if (inserts) open_fast_path_locked();
  return true;
}

std::uint64_t NotifierDomain::wait_for_seq_change(const IntervalNotifier& sub, std::uint64_t seq) {
  MutexLock l(mu_);
  // Relaxed: seq_ is written only under mu_, which we hold.
  if (seq_.load(std::memory_order_relaxed) != seq) return seq;
  ++stats_.read_begin_waits;
  trace::Span span(kTrace, "read_begin wait", [&] {
    return trace::Args{{"notifier", trace::hex(&sub)}, {"seq", seq}};
  });
  while (seq_.load(std::memory_order_relaxed) == seq) wq_.wait(mu_);
  return seq;
}

void NotifierDomain::barrier() {
  ITN_CHECK_MAY_WAIT(this, "NotifierDomain::barrier");
  // Queue the nodes of unfilled free batches too, wait for all and trim the pools.
  deferred_inserts_.reclaim();
  tree_.reclaim();
  srcu_.barrier();  // and for what remove() and the whole-space changes queued
}

NotifierDomainStats NotifierDomain::stats() const {
  std::uint64_t fast_starts = 0;
  // Relaxed: statistics.
  for (const FastShard& s : fast_) {
    fast_starts += s.word.load(std::memory_order_relaxed) / kFastStart;
  }
  MutexLock l(mu_);
  NotifierDomainStats stats = stats_;
  stats.fast_starts = fast_starts;
  stats.starts += fast_starts;
  return stats;
}

std::uint64_t NotifierDomain::active_for_testing() const {
  MutexLock l(mu_);
  return active_ - (draining_ ? 1 : 0) + fast_in_flight();
}

IntervalNotifier::~IntervalNotifier() {
  ITN_CHECK(!grab_ && domain_.load(std::memory_order_relaxed) == nullptr,
            "I24: IntervalNotifier destroyed while inserted (its domain still uses it)");
}

std::uint64_t IntervalNotifier::read_begin() {
  // Acquire: pairs with the release store in insert().
  NotifierDomain* const domain = domain_.load(std::memory_order_acquire);
  ITN_CHECK(domain != nullptr, "IntervalNotifier::read_begin() on a notifier not inserted");
  ITN_CHECK_MAY_WAIT(domain, "IntervalNotifier::read_begin");
  // Acquire: pairs with the release store in set_seq() (or the insert's publication).
  const std::uint64_t seq = invalidate_seq_.load(std::memory_order_acquire);
  // Acquire: pairs with the release stores of seq_ in the domain. If an invalidation
  // reached us (set_seq happened before this call), its odd seq_ store happened before that.
  if (seq != domain->seq_.load(std::memory_order_acquire)) return seq;  // fast path (I7)
  return domain->wait_for_seq_change(*this, seq);
}

}  // namespace itn
