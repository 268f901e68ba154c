// Lifetime of interval notifiers whose only reference is the domain's (the documented
// usage: insert, drop the Ref, later remove through a raw pointer), and of the domain
// itself (I24).
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/domain_test_peer.h"
#include "notifier/test_support.h"
#include "sync/test_util.h"

namespace itn {
namespace {

using testing::PauseAt;
using testing::wait_until;
using Peer = NotifierDomainTestPeer;

constexpr std::uint64_t kPage = 4096;

using testing::CountedNotifier;

// Inserts a notifier over the first page and keeps no reference to it.
IntervalNotifier* insert_sole_owned(NotifierDomain& domain, std::atomic<int>* destroyed) {
  Ref<CountedNotifier> n = make_ref<CountedNotifier>(destroyed);
  EXPECT_TRUE(domain.insert(n, Interval::sized(0, kPage), nullptr).ok());
  return n.get();
}

const Range kFirstPage{0, kPage, Event::kUnmap, true, nullptr};

TEST(NotifierDomainTest, ANotifierIsNotFreedBeforeItsDeferredEraseIsPublishedR2) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to hold a publish";
  // Before the domain: the SRCU worker a hooked thread starts inherits the hooks.
  std::optional<PauseAt> hooks;
  auto domain = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  IntervalNotifier* raw = insert_sole_owned(*domain, &destroyed);
  InvalidationToken token = testing::start_ok(*domain, kFirstPage);
  std::thread remover([&] { EXPECT_TRUE(domain->remove(*raw).ok()); });
  wait_until([&] { return domain->stats().deferred_removes > 0; });

  // The last end builds the erase and is held just before it publishes the new root.
  hooks.emplace(SchedPoint::kStore, Peer::tree_root(*domain), 1);
  std::thread ender([&] {
    set_thread_hooks(&*hooks);
    domain->invalidate_range_end(std::move(token));
    set_thread_hooks(nullptr);
  });
  wait_until([&] { return hooks->paused.load(); });
  // Readers that start now still load the old root, which holds the notifier.
  Peer::run_queued_frees(*domain);  // not barrier(): that waits for the tree's writer
  EXPECT_EQ(destroyed.load(), 0)
      << "I24: the notifier was freed while the published tree still held it";
  EXPECT_FALSE(domain->find(nullptr, Interval::closed(0, 0)))
      << "find() returned a notifier whose remove() began";
  hooks->may_go.store(true);
  ender.join();
  remover.join();
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 1) << "freed a grace period after remove() returned";
}

TEST(NotifierDomainTest, RemoveNeverTouchesASoleOwnedNotifierAfterItWasFreed) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to hold remove()";
  std::optional<PauseAt> hooks;  // before the domain, as above
  auto domain = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  IntervalNotifier* raw = insert_sole_owned(*domain, &destroyed);
  InvalidationToken token = testing::start_ok(*domain, kFirstPage);
  // remove() locks the domain mutex on entry and again when its wait returns: hold it
  // there, woken but not yet back inside.
  hooks.emplace(SchedPoint::kLock, &Peer::mu(*domain), 2);
  std::thread remover([&] {
    set_thread_hooks(&*hooks);
    EXPECT_TRUE(domain->remove(*raw).ok());
    set_thread_hooks(nullptr);
  });
  wait_until([&] { return hooks->paused.load(); });
  domain->invalidate_range_end(std::move(token));  // applies the erase
  domain->barrier();                               // runs every deferred free queued so far
  EXPECT_EQ(destroyed.load(), 0) << "I24: the notifier was freed while remove() still used it";
  hooks->may_go.store(true);
  remover.join();
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 1) << "freed a grace period after remove() returned";
}

TEST(NotifierDomainTest, ASoleOwnedNotifierIsFreedAGracePeriodAfterAnImmediateRemove) {
  auto domain = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  IntervalNotifier* raw = insert_sole_owned(*domain, &destroyed);
  Ref<IntervalNotifier> found = domain->find(nullptr, Interval::closed(0, 0));
  ASSERT_TRUE(found);
  ASSERT_TRUE(domain->remove(*raw).ok());
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 0) << "a find() reference keeps it alive";
  found.reset();
  EXPECT_EQ(destroyed.load(), 1);
}

// A driver notifier whose destructor takes the driver lock.
class LockingDestructor : public CountedNotifier {
 public:
  LockingDestructor(std::atomic<int>* destroyed, Mutex* driver_mu)
      : CountedNotifier(destroyed), driver_mu_(driver_mu) {}
  ~LockingDestructor() override { MutexLock l(*driver_mu_); }

 private:
  Mutex* driver_mu_;
};

TEST(NotifierDomainDeathTest, BarrierHoldingALockANotifierDestructorTakesDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto domain = make_ref<NotifierDomain>();
        Mutex driver_mu;
        std::atomic<int> destroyed{0};
        for (int i = 0; i < 2; ++i) {
          Ref<LockingDestructor> n = make_ref<LockingDestructor>(&destroyed, &driver_mu);
          (void)domain->insert(n, Interval::sized(0, kPage), nullptr);
          IntervalNotifier* raw = n.get();
          n.reset();
          (void)domain->remove(*raw);
          if (i == 0) {
            domain->barrier();  // the first destructor runs: its lock is learned
          } else {
            // The second destructor waits for driver_mu on the worker: without the check
            // this would never return.
            MutexLock l(driver_mu);
            domain->barrier();
          }
        }
      },
      "I9: NotifierDomain::barrier\\(\\) called while holding an itn::Mutex");
}

// A notifier that keeps its domain alive (as a driver object holding its mm might). Its
// destructor waits for `may_finish`, so that the test decides whose reference is last.
class DomainOwningNotifier : public CountedNotifier {
 public:
  DomainOwningNotifier(std::atomic<int>* destroyed, Ref<NotifierDomain> domain)
      : CountedNotifier(destroyed), domain_(std::move(domain)) {}
  ~DomainOwningNotifier() override {
    wait_until([] { return may_finish.load(); });
  }  // then drops domain_
  static inline std::atomic<bool> may_finish{false};

 private:
  Ref<NotifierDomain> domain_;
};

TEST(NotifierDomainDeathTest, ADomainDestroyedOnItsOwnWorkerDiesNamingTheRule) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::atomic<int> destroyed{0};
        auto domain = make_ref<NotifierDomain>();
        Ref<DomainOwningNotifier> n = make_ref<DomainOwningNotifier>(&destroyed, domain);
        (void)domain->insert(n, Interval::sized(0, kPage), nullptr);
        NotifierDomain* d = domain.get();
        IntervalNotifier* raw = n.get();
        domain.reset();
        n.reset();
        (void)d->remove(*raw);  // the notifier's reference now keeps the domain alive
        DomainOwningNotifier::may_finish.store(true);  // remove() let go of its grab
        d->barrier();  // the worker drops the notifier, and so the domain
      },
      "I24: NotifierDomain destroyed on its own SRCU worker");
}

TEST(NotifierDomainTest, ARemovedNotifierIsInsertedAgainHereOrElsewhere) {
  auto a = make_ref<NotifierDomain>();
  auto b = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  int owner_a = 0, owner_b = 0;
  Ref<CountedNotifier> n = make_ref<CountedNotifier>(&destroyed);
  ASSERT_TRUE(a->insert(n, Interval::sized(0, kPage), &owner_a).ok());
  ASSERT_TRUE(a->remove(*n).ok());
  ASSERT_TRUE(a->insert(n, Interval::sized(kPage, kPage), &owner_a).ok())
      << "again, in the same domain";
  EXPECT_FALSE(a->find(&owner_a, Interval::closed(0, 0))) << "the first insertion's interval";
  EXPECT_EQ(a->find(&owner_a, Interval::closed(kPage, kPage)).get(), n.get());
  ASSERT_TRUE(a->remove(*n).ok());
  ASSERT_TRUE(b->insert(n, Interval::sized(0, kPage), &owner_b).ok()) << "again, in another domain";
  EXPECT_FALSE(a->find(&owner_b, Interval::closed(0, 2 * kPage))) << "found in a domain it left";
  EXPECT_EQ(b->find(&owner_b, Interval::closed(0, 0)).get(), n.get());
  testing::invalidate(*a, kFirstPage);
  EXPECT_EQ(n->calls.load(), 0) << "reached by a domain it left";
  testing::invalidate(*b, kFirstPage);
  EXPECT_EQ(n->calls.load(), 1) << "missed by its new domain's invalidation";
  ASSERT_TRUE(b->remove(*n).ok());
  n.reset();
  b->barrier();
  a->barrier();
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(NotifierDomainTest, OfTwoConcurrentInsertsIntoTwoDomainsExactlyOneWins) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to hold an insert";
  std::optional<PauseAt> hooks;  // before the domains, as above
  testing::CountingHooks rival_hooks;
  auto a = make_ref<NotifierDomain>();
  auto b = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  Ref<CountedNotifier> n = make_ref<CountedNotifier>(&destroyed);
  // The first insert is held at its first store to the notifier's state, after it found
  // the notifier free; the second runs meanwhile.
  hooks.emplace(SchedPoint::kStore, Peer::claim_word(*n), 1);
  absl::Status first, second;
  std::thread inserter([&] {
    set_thread_hooks(&*hooks);
    first = a->insert(n, Interval::sized(0, kPage), nullptr);
    set_thread_hooks(nullptr);
  });
  wait_until([&] { return hooks->paused.load(); });
  std::atomic<bool> rival_done{false};
  std::thread rival([&] {
    set_thread_hooks(&rival_hooks);  // counts the rival blocking on a lock
    second = b->insert(n, Interval::sized(0, kPage), nullptr);
    set_thread_hooks(nullptr);
    rival_done.store(true);
  });
  // The rival either finishes while the first is held, or waits for it.
  wait_until([&] { return rival_done.load() || rival_hooks.blocks.load() > 0; });
  hooks->may_go.store(true);
  inserter.join();
  rival.join();
  EXPECT_NE(first.ok(), second.ok()) << "I27: " << first << " / " << second;
  if (first.ok()) {
    ASSERT_TRUE(a->remove(*n).ok());
  }
  if (second.ok()) {
    ASSERT_TRUE(b->remove(*n).ok());
  }
}

// Blocks in invalidate() while `block` is set, until `release` is.
class Latched : public CountedNotifier {
 public:
  using CountedNotifier::CountedNotifier;
  bool invalidate(const Range& r, std::uint64_t cur_seq) override {
    if (block.load()) {
      inside.store(true);
      wait_until([&] { return release.load(); });
    }
    return CountedNotifier::invalidate(r, cur_seq);
  }
  std::atomic<bool> block{false}, inside{false}, release{false};
};

TEST(NotifierDomainTest, AWalkNeverCallsANotifierThatMovedToAnotherDomain) {
  auto d1 = make_ref<NotifierDomain>();
  auto d2 = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  Ref<Latched> m = make_ref<Latched>(&destroyed);
  Ref<CountedNotifier> n = make_ref<CountedNotifier>(&destroyed);
  ASSERT_TRUE(d1->insert(m, Interval::sized(0, kPage), nullptr).ok());
  InvalidationToken first = testing::start_ok(*d1, kFirstPage);  // the sequence stays odd
  ASSERT_TRUE(
      d1->insert(n, Interval::sized(kPage, kPage), nullptr).ok());  // deferred, yet in the tree
  // A second invalidation over both walks m first and is held there.
  m->block.store(true);
  std::thread walker([&] { testing::invalidate(*d1, Range{.start = 0, .end = 2 * kPage}); });
  wait_until([&] { return m->inside.load(); });
  ASSERT_TRUE(d1->remove(*n).ok());  // cancels the deferred insert: returns at once
  ASSERT_TRUE(d2->insert(n, Interval::sized(0, kPage), nullptr).ok());
  m->block.store(false);
  m->release.store(true);
  walker.join();
  EXPECT_EQ(n->calls.load(), 0) << "I8: called by a domain after its remove() there returned";
  d1->invalidate_range_end(std::move(first));
  ASSERT_TRUE(d2->remove(*n).ok());
  ASSERT_TRUE(d1->remove(*m).ok());
}

}  // namespace
}  // namespace itn
