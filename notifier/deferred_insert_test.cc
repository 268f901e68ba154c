// Inserts deferred behind an active invalidation live in a tree of their own, which
// find() reads and walks do not (I5, I10): find() sees such a notifier at every step of
// the end that applies it, and no invalidation calls it before that end.
#include <atomic>
#include <cstdint>
#include <functional>
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
const int kOwner = 0;

using Counting = testing::CountedNotifier;

Range page(std::uint64_t p) { return Range{.start = p * kPage, .end = (p + 1) * kPage}; }

// The end that applies a deferred insert publishes two trees; it is held at each publish
// in turn while find() looks for the notifier, which the caller no longer references.
TEST(NotifierDomainTest, FindSeesItAtEveryStepOfTheEndThatAppliesIt) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to hold a publish";
  for (const bool hold_walked_publish : {true, false}) {
    SCOPED_TRACE(hold_walked_publish ? "held at the walked tree's publish"
                                     : "held at the deferred tree's publish");
    std::optional<PauseAt> hooks;  // before the domain: its worker inherits the hooks
    auto domain = testing::domain_freeing_each_node();
    Ref<Counting> live = make_ref<Counting>();
    ASSERT_TRUE(domain->insert(live, Interval::sized(0, kPage), nullptr).ok());
    InvalidationToken token = testing::start_ok(*domain, page(0));
    Ref<Counting> late = make_ref<Counting>();
    Counting* raw = late.get();
    ASSERT_TRUE(
        domain->insert(std::move(late), Interval::sized(kPage, kPage), &kOwner).ok());  // deferred
    ASSERT_EQ(domain->find(&kOwner, Interval::closed(kPage, kPage)).get(), raw);

    hooks.emplace(
        SchedPoint::kStore,
        hold_walked_publish ? Peer::tree_root(*domain) : Peer::deferred_tree_root(*domain), 1);
    std::thread ender([&] {
      set_thread_hooks(&*hooks);
      domain->invalidate_range_end(std::move(token));
      set_thread_hooks(nullptr);
    });
    wait_until([&] { return hooks->paused.load(); });
    EXPECT_EQ(domain->find(&kOwner, Interval::closed(kPage, kPage)).get(), raw)
        << "find() missed a notifier whose insert() returned";
    hooks->may_go.store(true);
    ender.join();
    EXPECT_EQ(domain->find(&kOwner, Interval::closed(kPage, kPage)).get(), raw);
    testing::invalidate(*domain, page(1));
    EXPECT_EQ(raw->calls.load(), 1) << "the applied insert is walked";
    ASSERT_TRUE(domain->remove(*raw).ok());
    ASSERT_TRUE(domain->remove(*live).ok());
  }
}

// Two invalidations overlap; the one that started second ends first. A notifier inserted
// between their starts is not called by either, nor by one that starts before the last
// end, and is called by the next one.
TEST(NotifierDomainTest, NoWalkCallsItUntilTheLastEnd) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Counting> live = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(live, Interval::sized(0, 2 * kPage), nullptr).ok());
  InvalidationToken first = testing::start_ok(*domain, page(0));
  Ref<Counting> late = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(late, Interval::sized(kPage, kPage), nullptr).ok());
  InvalidationToken second = testing::start_ok(*domain, page(1));
  domain->invalidate_range_end(std::move(second));
  testing::invalidate(*domain, page(1));  // starts and ends while `first` is active
  EXPECT_EQ(late->calls.load(), 0) << "I5: a deferred insert was walked";
  EXPECT_EQ(live->calls.load(), 3);
  domain->invalidate_range_end(std::move(first));  // the last end applies the insert
  testing::invalidate(*domain, page(1));
  EXPECT_EQ(late->calls.load(), 1);
  ASSERT_TRUE(domain->remove(*late).ok());
  ASSERT_TRUE(domain->remove(*live).ok());
}

// Two notifiers of one owner over the same interval, one walked and one a deferred insert:
// find() returns the same one a single tree would, the lower in the trees' key order
// (start, last, then the entry), whichever tree holds it. Found by the soak run.
TEST(NotifierDomainTest, FindBreaksTiesAcrossTheTwoTreesAsOneTreeWould) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Counting> a = make_ref<Counting>(), b = make_ref<Counting>();
  // The lower address goes to the deferred tree, the walked tree gets the higher one.
  Ref<Counting> low = std::less<>()(a.get(), b.get()) ? a : b;
  Ref<Counting> high = low == a ? b : a;
  ASSERT_TRUE(domain->insert(high, Interval::sized(0, kPage), &kOwner).ok());
  InvalidationToken token = testing::start_ok(*domain, page(0));
  ASSERT_TRUE(domain->insert(low, Interval::sized(0, kPage), &kOwner).ok());  // deferred
  EXPECT_EQ(domain->find(&kOwner, Interval::closed(0, 0)).get(), low.get())
      << "while one insert is deferred";
  domain->invalidate_range_end(std::move(token));
  EXPECT_EQ(domain->find(&kOwner, Interval::closed(0, 0)).get(), low.get())
      << "once both are walked";
  ASSERT_TRUE(domain->remove(*low).ok());
  ASSERT_TRUE(domain->remove(*high).ok());
}

// A deferred insert removed before it is applied is cancelled: the end that would have
// applied it publishes nothing for it, find() never returns it again, and it can be
// inserted again at once, into another domain.
TEST(NotifierDomainTest, ACancelledInsertLeavesNothingBehind) {
  auto domain = testing::domain_freeing_each_node();
  auto other = testing::domain_freeing_each_node();
  Ref<Counting> live = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(live, Interval::sized(0, kPage), nullptr).ok());
  InvalidationToken token = testing::start_ok(*domain, page(0));
  Ref<Counting> late = make_ref<Counting>();
  ASSERT_TRUE(domain->insert(late, Interval::sized(kPage, kPage), &kOwner).ok());
  ASSERT_TRUE(domain->remove(*late).ok()) << "cancelling a deferred insert does not wait";
  EXPECT_FALSE(domain->find(&kOwner, Interval::closed(kPage, kPage)));
  ASSERT_TRUE(other->insert(late, Interval::sized(kPage, kPage), &kOwner).ok());
  domain->invalidate_range_end(std::move(token));
  EXPECT_EQ(domain->inserted_count(), 1u);
  EXPECT_FALSE(domain->find(&kOwner, Interval::closed(kPage, kPage)));
  testing::invalidate(*domain, page(1));
  EXPECT_EQ(late->calls.load(), 0) << "a cancelled insert was walked";
  testing::invalidate(*other, page(1));
  EXPECT_EQ(late->calls.load(), 1);
  ASSERT_TRUE(other->remove(*late).ok());
  ASSERT_TRUE(domain->remove(*live).ok());
}

}  // namespace
}  // namespace itn
