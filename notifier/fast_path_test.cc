// The invalidation fast path (notifier/domain.h): an invalidation that reaches no
// notifier takes no lock, and an insert never lets a notifier be read while such an
// invalidation, which did not call it, is still running. Each test would fail against a
// fast path without the handshake (an insert that publishes at once, or a last end that
// applies deferred inserts while fast invalidations run).
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/domain_test_peer.h"
#include "notifier/test_support.h"
#include "sync/mutex.h"
#include "sync/test_util.h"

namespace itn {
namespace {

using testing::start_ok;
using testing::wait_until;
using Peer = NotifierDomainTestPeer;

constexpr std::uint64_t kPage = 4096;

Range page(std::uint64_t p) { return Range{.start = p * kPage, .end = (p + 1) * kPage}; }

using Counting = testing::CountedNotifier;

// A driver's notifier: set_seq() under the driver lock, as read_retry() is.
class Driver : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    MutexLock l(mu);
    set_seq(cur_seq);
    return true;
  }
  Mutex mu;
};

class Whole : public Notifier {};

TEST(NotifierDomainTest, AnInvalidationThatReachesNoNotifierTakesNoLock) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Counting> n = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  {
    // Held by this thread: a start that took the domain mutex would die (not recursive)
    // in debug builds, or deadlock.
    MutexLock l(Peer::mu(*domain));
    InvalidationToken token = start_ok(*domain, page(1));
    domain->invalidate_range_end(std::move(token));
  }
  NotifierDomainStats stats = domain->stats();
  EXPECT_EQ(stats.fast_starts, 1u);
  EXPECT_EQ(stats.starts, 1u);
  testing::invalidate(*domain, page(0));  // reaches n: the locked path
  stats = domain->stats();
  EXPECT_EQ(stats.fast_starts, 1u);
  EXPECT_EQ(stats.starts, 2u);
  EXPECT_EQ(n->calls.load(), 1);
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  ASSERT_TRUE(domain->remove(*n).ok());
}

TEST(NotifierDomainTest, WithAWholeSpaceNotifierEveryStartTakesTheLockedPath) {
  auto domain = testing::domain_freeing_each_node();
  Whole whole;
  ASSERT_TRUE(domain->register_notifier(whole).ok());
  testing::invalidate(*domain, page(0));
  EXPECT_EQ(domain->stats().fast_starts, 0u);
  ASSERT_TRUE(domain->unregister_notifier(whole).ok());
}

// A fast invalidation of page 0 is running when a notifier of page 0 is inserted: it did
// not call the notifier, so the notifier's first read_begin() waits until it ends.
TEST(NotifierDomainTest, AnInsertDuringAFastInvalidationIsReadOnlyAfterItsEnd) {
  auto domain = testing::domain_freeing_each_node();
  InvalidationToken token = start_ok(*domain, page(0));
  ASSERT_EQ(domain->stats().fast_starts, 1u);
  Ref<Counting> n = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  EXPECT_EQ(domain->stats().drains, 1u);
  EXPECT_EQ(domain->find(nullptr, Interval::sized(0, kPage)).get(), n.get());
  testing::ReadBeginCall reader(*domain, *n);
  EXPECT_FALSE(reader.returned()) << "read_begin() returned while an invalidation that missed the "
                                     "notifier was still running";
  domain->invalidate_range_end(std::move(token));
  reader.join();
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  EXPECT_EQ(domain->active_for_testing(), 0u);
  testing::invalidate(*domain, page(0));
  EXPECT_EQ(n->calls.load(), 1) << "the drained insert is walked";
  ASSERT_TRUE(domain->remove(*n).ok());
}

// The last locked end applies a deferred insert while a fast invalidation of the
// notifier's page (which the deferred notifier was invisible to) still runs.
TEST(NotifierDomainTest, ADeferredInsertAppliedDuringAFastInvalidationIsReadOnlyAfterItsEnd) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Counting> live = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(live, Interval::sized(0, kPage), nullptr).ok());
  InvalidationToken locked = start_ok(*domain, page(0));
  Ref<Counting> late = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(late, Interval::sized(kPage, kPage), nullptr).ok());  // deferred
  InvalidationToken fast = start_ok(*domain, page(1));
  ASSERT_EQ(domain->stats().fast_starts, 1u);
  domain->invalidate_range_end(std::move(locked));
  EXPECT_EQ(domain->stats().drains, 1u);
  EXPECT_EQ(domain->seq_for_testing() % 2, 1u) << "the drain keeps the sequence odd";
  testing::ReadBeginCall reader(*domain, *late);
  EXPECT_FALSE(reader.returned());
  domain->invalidate_range_end(std::move(fast));
  reader.join();
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  testing::invalidate(*domain, page(1));
  EXPECT_EQ(late->calls.load(), 1);
  ASSERT_TRUE(domain->remove(*late).ok());
  ASSERT_TRUE(domain->remove(*live).ok());
}

// A start whose lock-free look found a notifier goes on from that look's cursor only if
// the walked tree has not changed since: here a notifier is inserted between the look and
// the start's lock, and the walk must reach it too.
TEST(NotifierDomainTest, AStartWhoseLookWasOvertakenByAnInsertWalksTheNewTree) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to hold a start";
  std::optional<testing::PauseAt> hooks;  // before the domain: its worker inherits the hooks
  auto domain = testing::domain_freeing_each_node();
  Ref<Counting> first = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(first, Interval::sized(0, kPage), nullptr).ok());
  hooks.emplace(SchedPoint::kLock, &Peer::mu(*domain), 1);
  std::thread invalidator([&] {
    set_thread_hooks(&*hooks);
    testing::invalidate(*domain, Range{.start = 0, .end = 2 * kPage});
    set_thread_hooks(nullptr);
  });
  wait_until([&] { return hooks->paused.load(); });  // looked, found `first`, not locked yet
  Ref<Counting> late = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(late, Interval::sized(kPage, kPage), nullptr).ok());
  hooks->may_go.store(true);
  invalidator.join();
  EXPECT_EQ(first->calls.load(), 1);
  EXPECT_EQ(late->calls.load(), 1) << "the walk went on in the tree the look saw";
  ASSERT_TRUE(domain->remove(*late).ok());
  ASSERT_TRUE(domain->remove(*first).ok());
}

// A fast token may be ended on another thread, after its starting thread has ended.
TEST(NotifierDomainTest, AFastTokenEndsOnAnotherThread) {
  auto domain = testing::domain_freeing_each_node();
  InvalidationToken token = start_ok(*domain, page(0));
  Ref<Counting> n = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());  // drains
  std::thread ender([&] { domain->invalidate_range_end(std::move(token)); });
  ender.join();
  EXPECT_EQ(domain->active_for_testing(), 0u);
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  ASSERT_TRUE(domain->remove(*n).ok());
}

// The caller drops its reference at insert(); another thread's find() holds the only
// other one. Removing the drained (deferred) insert cancels it without waiting for the fast
// invalidation; the object is then inserted again while another one runs.
TEST(NotifierDomainTest, ANotifierOwnedOnlyByTheDomainIsRemovedAndReusedAroundFastInvalidations) {
  auto domain = testing::domain_freeing_each_node();
  static const int kKey = 0;
  std::atomic<int> destroyed{0};
  InvalidationToken fast = start_ok(*domain, page(0));
  ASSERT_TRUE(
      domain->insert(make_ref<Counting>(&destroyed), Interval::sized(0, kPage), &kKey).ok());
  Ref<IntervalNotifier> found;
  std::thread finder([&] { found = domain->find(&kKey, Interval::sized(0, kPage)); });
  finder.join();
  ASSERT_NE(found, nullptr);
  auto* counting = static_cast<Counting*>(found.get());
  ASSERT_TRUE(domain->remove(*found).ok()) << "a deferred insert's remove does not wait";
  EXPECT_EQ(domain->stats().deferred_removes, 0u);
  domain->invalidate_range_end(std::move(fast));
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  EXPECT_EQ(domain->active_for_testing(), 0u);

  InvalidationToken again = start_ok(*domain, page(0));
  ASSERT_TRUE(domain->insert(found, Interval::sized(0, kPage), &kKey).ok());
  EXPECT_EQ(domain->stats().drains, 2u);
  testing::ReadBeginCall reader(*domain, *found);
  EXPECT_FALSE(reader.returned()) << "the reused notifier was read during a fast invalidation";
  domain->invalidate_range_end(std::move(again));
  reader.join();
  testing::invalidate(*domain, page(0));
  EXPECT_EQ(counting->calls.load(), 1);
  ASSERT_TRUE(domain->remove(*found).ok());
  found.reset();
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 1);
}

// Two fast invalidations on two threads are in flight when an insert drains: the notifier
// is read only after both ended, whichever ends first.
TEST(NotifierDomainTest, ADrainWaitsForEveryFastInvalidationInFlight) {
  for (const bool first_ends_first : {true, false}) {
    SCOPED_TRACE(first_ends_first ? "the first ends first" : "the second ends first");
    auto domain = testing::domain_freeing_each_node();
    std::optional<InvalidationToken> tokens[2];
    for (int t = 0; t < 2; ++t) {
      std::thread starter([&, t] { tokens[t].emplace(start_ok(*domain, page(t))); });
      starter.join();
    }
    ASSERT_EQ(domain->stats().fast_starts, 2u);
    Ref<Counting> n = make_ref<Counting>();
    ASSERT_TRUE(domain->insert(n, Interval::sized(0, 2 * kPage), nullptr).ok());
    testing::ReadBeginCall reader(*domain, *n);
    const int first = first_ends_first ? 0 : 1;
    domain->invalidate_range_end(*std::move(tokens[first]));
    EXPECT_FALSE(reader.returned()) << "read during the other fast invalidation";
    EXPECT_EQ(domain->seq_for_testing() % 2, 1u);
    domain->invalidate_range_end(*std::move(tokens[1 - first]));
    reader.join();
    EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
    EXPECT_EQ(domain->active_for_testing(), 0u);
    testing::invalidate(*domain, page(1));
    EXPECT_EQ(n->calls.load(), 1);
    ASSERT_TRUE(domain->remove(*n).ok());
  }
}

// A notifier whose invalidate() lasts until the test lets it go.
class Slow : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    entered.store(true);
    wait_until([&] { return may_return.load(); });
    return true;
  }
  std::atomic<bool> entered{false};
  std::atomic<bool> may_return{false};
};

// A locked invalidation starts during a drain and its callback outlasts the fast
// invalidation: the drained insert is applied by the locked one's end, not before.
TEST(NotifierDomainTest, ALongCallbackStartedDuringADrainHoldsTheInsertBackUntilItsEnd) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Slow> slow = make_ref<Slow>();
  ASSERT_TRUE(domain->insert(slow, Interval::sized(5 * kPage, kPage), nullptr).ok());
  InvalidationToken fast = start_ok(*domain, page(0));
  ASSERT_EQ(domain->stats().fast_starts, 1u);
  Ref<Counting> n = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());  // drains
  std::atomic<bool> locked_ended{false};
  std::thread locked([&] {
    testing::invalidate(*domain, page(5));
    locked_ended.store(true);
  });
  wait_until([&] { return slow->entered.load(); });
  domain->invalidate_range_end(std::move(fast));
  EXPECT_EQ(domain->seq_for_testing() % 2, 1u) << "the locked invalidation is still active";
  testing::ReadBeginCall reader(*domain, *n);
  EXPECT_FALSE(reader.returned()) << "read while a callback of an active invalidation runs";
  testing::invalidate(*domain, page(0));
  EXPECT_EQ(n->calls.load(), 0) << "a deferred insert was walked before the last end";
  slow->may_return.store(true);
  locked.join();
  reader.join();
  EXPECT_TRUE(locked_ended.load());
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  testing::invalidate(*domain, page(0));
  EXPECT_EQ(n->calls.load(), 1);
  ASSERT_TRUE(domain->remove(*n).ok());
  ASSERT_TRUE(domain->remove(*slow).ok());
}

// A live notifier's remove() during a drain waits, as for any active invalidation (the
// sequence is odd); invalidations still call the notifier until it returns, and the end of
// the fast invalidation, which finishes the drain, applies the erase and wakes it.
TEST(NotifierDomainTest, ARemoveDuringADrainIsWokenByTheFastInvalidationsEnd) {
  auto domain = testing::domain_freeing_each_node();
  std::atomic<int> destroyed{0};
  Counting* live = nullptr;
  {
    Ref<Counting> n = make_ref<Counting>(&destroyed);
    live = n.get();
    ASSERT_TRUE(domain->insert(std::move(n), Interval::sized(0, kPage), nullptr).ok());
  }
  InvalidationToken fast = start_ok(*domain, page(1));
  ASSERT_EQ(domain->stats().fast_starts, 1u);
  Ref<Counting> late = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(late, Interval::sized(kPage, kPage), nullptr).ok());  // drains
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    EXPECT_TRUE(domain->remove(*live).ok());
    removed.store(true);
  });
  wait_until([&] { return domain->stats().deferred_removes == 1; });
  EXPECT_FALSE(removed.load()) << "remove() returned during the drain";
  testing::invalidate(*domain, page(0));
  EXPECT_EQ(live->calls.load(), 1) << "called until its remove() returns";
  EXPECT_FALSE(removed.load());
  EXPECT_EQ(destroyed.load(), 0);
  domain->invalidate_range_end(std::move(fast));
  remover.join();
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 1) << "the domain held the only reference";
  ASSERT_TRUE(domain->remove(*late).ok());
}

// Coherence with the fast path under load: invalidators bump a page's version on both
// sides of their page-table change (odd while it changes); a driver inserts a notifier of
// the page, faults, and whenever read_retry() says its walk was good, the version it read
// after read_begin() must be even and unchanged. Another notifier, always inserted, makes
// some invalidations take the locked path, so deferred inserts and drains mix in.
TEST(NotifierDomainStressTest, ReadersNeverSeeAPageAFastInvalidationIsChanging) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Counting> anchor = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(anchor, Interval::sized(kPage, kPage), nullptr).ok());
  std::atomic<std::uint64_t> version{0};
  std::atomic<bool> stop{false};
  std::atomic<int> invalidations{0};
  std::vector<std::thread> invalidators;
  for (int t = 0; t < 2; ++t) {
    invalidators.emplace_back([&, t] {
      // Thread 0 changes page 0 alone (fast while no notifier covers it); thread 1 also
      // covers the anchor's page (locked).
      const Range range{.start = 0, .end = (t == 0 ? 1 : 2) * kPage};
      while (!stop.load()) {
        InvalidationToken token = start_ok(*domain, range);
        version.fetch_add(1);  // odd: changing
        std::this_thread::yield();
        version.fetch_add(1);
        domain->invalidate_range_end(std::move(token));
        invalidations.fetch_add(1);
      }
    });
  }
  // Rounds until the invalidators have run a while beside them (they may start late) and
  // an insert has met a fast invalidation in flight (a drain), within a bound.
  constexpr int kMinRounds = 500;
  constexpr int kMaxRounds = 200000;
  constexpr int kMinInvalidations = 20000;
  int rounds = 0;
  int good_walks = 0;
  for (; rounds < kMaxRounds && (rounds < kMinRounds || invalidations.load() < kMinInvalidations ||
                                 domain->stats().drains == 0);
       ++rounds) {
    Ref<Driver> n = make_ref<Driver>();
    ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
    for (bool retry = true; retry;) {
      const std::uint64_t seq = n->read_begin();
      const std::uint64_t seen = version.load();
      MutexLock l(n->mu);
      retry = n->read_retry(seq);
      if (!retry) {
        ASSERT_EQ(seen % 2, 0u) << "read_begin() let a walk run during a page change";
        ++good_walks;
      }
    }
    ASSERT_TRUE(domain->remove(*n).ok());
  }
  stop.store(true);
  for (std::thread& t : invalidators) t.join();
  EXPECT_EQ(good_walks, rounds);
  const NotifierDomainStats stats = domain->stats();
  EXPECT_GT(stats.fast_starts, 0u);
  EXPECT_GT(stats.drains, 0u) << "the load never exercised a drain";
  ASSERT_TRUE(domain->remove(*anchor).ok());
}

}  // namespace
}  // namespace itn
