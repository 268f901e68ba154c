// Subscription: the inserted notifier is removed when the handle goes (so the notifier
// and the domain no longer keep each other alive), moves transfer that duty, and insert
// errors reach the caller.
#include "notifier/subscription.h"

#include <atomic>
#include <cstdint>
#include <utility>

#include "gtest/gtest.h"

#include "notifier/test_support.h"

namespace itn {
namespace {

constexpr std::uint64_t kPage = 4096;

using Counted = testing::CountedNotifier;

Range page(std::uint64_t p) { return Range{.start = p * kPage, .end = (p + 1) * kPage}; }

TEST(SubscriptionTest, RemovesItsNotifierWhenItGoesAndNothingLeaks) {
  std::atomic<int> destroyed{0};
  auto domain = testing::domain_freeing_each_node();
  Counted* raw = nullptr;
  {
    absl::StatusOr<Subscription> s = Subscription::insert(domain, make_ref<Counted>(&destroyed),
                                                          Interval::sized(0, kPage), &kPage);
    ASSERT_TRUE(s.ok()) << s.status();
    raw = static_cast<Counted*>(s->notifier());
    testing::invalidate(*domain, page(0));
    EXPECT_EQ(raw->calls.load(), 1) << "inserted while the Subscription lives";
    EXPECT_EQ(domain->find(&kPage, Interval::closed(0, 0)).get(), raw);
  }
  EXPECT_FALSE(domain->find(&kPage, Interval::closed(0, 0)))
      << "removed when the Subscription went";
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 1) << "the notifier and the domain still kept each other alive";
  EXPECT_EQ(domain->inserted_count(), 0u);
}

TEST(SubscriptionTest, AMoveHandsTheRemovalOverAndAMoveAssignmentRemovesTheOldOne) {
  std::atomic<int> destroyed{0};
  auto domain = testing::domain_freeing_each_node();
  absl::StatusOr<Subscription> first = Subscription::insert(domain, make_ref<Counted>(&destroyed),
                                                            Interval::sized(0, kPage), nullptr);
  absl::StatusOr<Subscription> second = Subscription::insert(
      domain, make_ref<Counted>(&destroyed), Interval::sized(kPage, kPage), nullptr);
  ASSERT_TRUE(first.ok() && second.ok());
  Subscription moved = *std::move(first);
  EXPECT_EQ(first->notifier(), nullptr) << "a moved-from Subscription is empty";
  EXPECT_EQ(domain->inserted_count(), 2u);
  moved = *std::move(second);  // removes the first notifier, keeps the second
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(domain->inserted_count(), 1u);
  moved.reset();
  moved.reset();  // a second reset does nothing
  domain->barrier();
  EXPECT_EQ(destroyed.load(), 2);
  EXPECT_EQ(domain->inserted_count(), 0u);
}

TEST(SubscriptionTest, InsertErrorsReachTheCallerAndInsertNothing) {
  std::atomic<int> destroyed{0};
  auto domain = testing::domain_freeing_each_node();
  EXPECT_EQ(
      Subscription::insert(domain, make_ref<Counted>(&destroyed), Interval::sized(0, 0), nullptr)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Subscription::insert(nullptr, make_ref<Counted>(&destroyed), Interval::sized(0, kPage),
                                 nullptr)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(domain->inserted_count(), 0u);
  EXPECT_EQ(destroyed.load(), 2) << "the refused notifiers were not kept";
}

// The Subscription owns the insertion: a remove() behind its back is a caller bug, and
// its reset() dies naming the rule instead of failing silently (in every build).
TEST(SubscriptionDeathTest, ResetAfterAnotherRemoveDiesNamingTheRule) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto domain = make_ref<NotifierDomain>();
  std::atomic<int> destroyed{0};
  absl::StatusOr<Subscription> s = Subscription::insert(domain, make_ref<Counted>(&destroyed),
                                                        Interval::sized(0, kPage), &kPage);
  ASSERT_TRUE(s.ok());
  Ref<IntervalNotifier> found = domain->find(&kPage, Interval::closed(0, 0));
  ASSERT_TRUE(found);
  ASSERT_TRUE(domain->remove(*found).ok());
  EXPECT_DEATH(s->reset(), "a Subscription's notifier is removed only by the Subscription");
  // Inserted again, so that the Subscription's own remove() succeeds when it goes.
  ASSERT_TRUE(domain->insert(found, Interval::sized(0, kPage), &kPage).ok());
}

}  // namespace
}  // namespace itn
