// InvalidationToken: every start is ended exactly once, through its token (I3, I25).
#include "notifier/invalidation_token.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <utility>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "sync/test_util.h"

namespace itn {
namespace {

using testing::start_ok;
using testing::wait_until;

constexpr std::uint64_t kPage = 4096;
const Range kFirstPage{0, kPage, Event::kUnmap, true, nullptr};
const Range kFarPage{10 * kPage, 11 * kPage, Event::kUnmap, true, nullptr};

// An end without a start, or with a range instead of the start's token, does not compile.
static_assert(!std::is_invocable_v<decltype(&NotifierDomain::invalidate_range_end), NotifierDomain&,
                                   const Range&>);
static_assert(!std::is_copy_constructible_v<InvalidationToken>);

class Sub : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    return true;
  }
};

class Counting : public Notifier {
 public:
  bool invalidate_range_start(const Range&) override {
    starts.fetch_add(1);
    return true;
  }
  void invalidate_range_end(const Range&) override { ends.fetch_add(1); }
  std::atomic<int> starts{0}, ends{0};
};

TEST(InvalidationTokenTest, EndingAnotherInvalidationLeavesAStartedOneInForce) {
  auto domain = make_ref<NotifierDomain>();
  auto n = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  InvalidationToken hit = start_ok(*domain, kFirstPage);
  InvalidationToken other = start_ok(*domain, kFarPage);
  domain->invalidate_range_end(std::move(other));
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    (void)n->read_begin();
    returned.store(true);
  });
  wait_until([&] { return returned.load() || domain->stats().read_begin_waits > 0; });
  EXPECT_FALSE(returned.load()) << "read_begin() returned while the invalidation reaching it ran";
  domain->invalidate_range_end(std::move(hit));
  reader.join();
  ASSERT_TRUE(domain->remove(*n).ok());
}

TEST(InvalidationTokenTest, ATokenMovesToAndEndsOnAnotherThread) {
  auto domain = make_ref<NotifierDomain>();
  Counting whole;
  ASSERT_TRUE(domain->register_notifier(whole).ok());
  InvalidationToken token = start_ok(*domain, kFirstPage);
  std::thread ender(
      [&, t = std::move(token)]() mutable { domain->invalidate_range_end(std::move(t)); });
  ender.join();
  EXPECT_EQ(whole.starts.load(), 1);
  EXPECT_EQ(whole.ends.load(), 1);
  EXPECT_EQ(domain->active_for_testing(), 0u);
  ASSERT_TRUE(domain->unregister_notifier(whole).ok());  // would wait if the section leaked
}

TEST(InvalidationTokenTest, ConcurrentStartsAndEndsEachEndTheirOwn) {
  auto domain = make_ref<NotifierDomain>();
  Counting whole;
  ASSERT_TRUE(domain->register_notifier(whole).ok());
  auto n = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, 4 * kPage), nullptr).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        // Overlapping (all cover page 0..) and disjoint (the far pages) at once.
        const std::uint64_t page = (t % 2 == 0) ? 0 : 8 + t;
        testing::invalidate(*domain, Range{.start = page * kPage, .end = (page + 1) * kPage});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(whole.starts.load(), 2000);
  EXPECT_EQ(whole.ends.load(), 2000);
  EXPECT_EQ(domain->active_for_testing(), 0u);
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u);
  ASSERT_TRUE(domain->remove(*n).ok());
  ASSERT_TRUE(domain->unregister_notifier(whole).ok());
}

TEST(InvalidationTokenDeathTest, EndingATokenTwiceDiesNamingTheRule) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto domain = make_ref<NotifierDomain>();
  InvalidationToken token = start_ok(*domain, kFirstPage);
  InvalidationToken moved = std::move(token);
  domain->invalidate_range_end(std::move(moved));
  EXPECT_DEATH(domain->invalidate_range_end(std::move(token)),
               "I25: invalidate_range_end\\(\\) with a token this domain did not issue");
}

TEST(InvalidationTokenDeathTest, EndingAnotherDomainsTokenDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto a = make_ref<NotifierDomain>();
  auto b = make_ref<NotifierDomain>();
  InvalidationToken token = start_ok(*a, kFirstPage);
  EXPECT_DEATH(b->invalidate_range_end(std::move(token)), "did not issue");
  a->invalidate_range_end(std::move(token));
}

TEST(InvalidationTokenDeathTest, DroppingAnUnendedTokenDiesInDebugBuilds) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto domain = make_ref<NotifierDomain>();
  EXPECT_DEATH({ InvalidationToken dropped = start_ok(*domain, kFirstPage); },
               "I25: an InvalidationToken was dropped without invalidate_range_end");
}

TEST(InvalidationTokenTest, DroppingAnUnendedTokenEndsItInReleaseBuilds) {
  if (ITN_DEBUG_CHECKS) GTEST_SKIP() << "debug builds die instead (the test above)";
  auto domain = make_ref<NotifierDomain>();
  Counting whole;
  ASSERT_TRUE(domain->register_notifier(whole).ok());
  { InvalidationToken dropped = start_ok(*domain, kFirstPage); }
  EXPECT_EQ(whole.ends.load(), 1);
  EXPECT_EQ(domain->active_for_testing(), 0u);
  ASSERT_TRUE(domain->unregister_notifier(whole).ok());
}

}  // namespace
}  // namespace itn
