// The cap on retired memory (I26): a reader that stays in its read section does not let
// a writer's replaced nodes and removed notifiers pile up; the node pool gives memory back.
#include <atomic>
#include <cstdint>
#include <thread>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "sync/test_util.h"

namespace itn {
namespace {

using testing::wait_until;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kCap = 64 << 10;
// What one change may retire beyond the cap before its writer waits: a path of the tree
// (a few dozen 64-byte nodes) and one notifier.
constexpr std::uint64_t kOneChange = 128 * 64 + sizeof(IntervalNotifier);

class Sub : public IntervalNotifier {
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    return true;
  }
};

// A whole-space notifier whose start waits until the test lets it go: the invalidating
// thread then sits in a read section of the domain for as long as the test likes.
class Holding : public Notifier {
 public:
  bool invalidate_range_start(const Range&) override {
    inside.store(true);
    wait_until([&] { return may_leave.load(); });
    return true;
  }
  std::atomic<bool> inside{false}, may_leave{false};
};

TEST(NotifierDomainTest, AWriterWaitsForALongReaderInsteadOfPassingTheCap) {
  auto domain = make_ref<NotifierDomain>(
      NotifierDomainOptions{.max_retired_bytes = kCap, .free_batch_nodes = 1024});
  std::vector<Ref<Sub>> resident;  // a tree deep enough that every change copies a path
  for (int i = 0; i < 1000; ++i) {
    resident.push_back(make_ref<Sub>());
    ASSERT_TRUE(
        domain->insert(resident.back(), Interval::sized((100 + i) * kPage, kPage), nullptr).ok());
  }
  Holding holder;
  ASSERT_TRUE(domain->register_notifier(holder).ok());
  // Reaches no interval notifier, so the sequence stays even and writes apply at once.
  std::thread reader([&] { testing::invalidate(*domain, Range{.start = 0, .end = kPage}); });
  wait_until([&] { return holder.inside.load(); });

  const std::uint64_t waits_before = domain->stats().reclaim_waits;  // the set-up's own
  std::atomic<int> churned{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load()) {
      Ref<Sub> s = make_ref<Sub>();
      Sub* raw = s.get();
      EXPECT_TRUE(domain->insert(std::move(s), Interval::sized(10 * kPage, kPage), nullptr).ok());
      EXPECT_TRUE(domain->remove(*raw).ok());  // the domain held the only reference
      churned.fetch_add(1);
    }
  });
  // Until the reader leaves, the writer must stop at the cap rather than go past it.
  wait_until([&] {
    return domain->stats().reclaim_waits > waits_before ||
           domain->memory().retired_bytes > kCap + kOneChange;
  });
  for (int i = 0; i < 1000; ++i) {
    ASSERT_LE(domain->memory().retired_bytes, kCap + kOneChange) << "I26: past the cap";
  }
  const int before = churned.load();
  for (int i = 0; i < 1000; ++i) std::this_thread::yield();
  EXPECT_LE(churned.load(), before + 1) << "the writer went on while the reader held it";
  stop.store(true);
  holder.may_leave.store(true);
  reader.join();
  writer.join();
  EXPECT_GT(churned.load(), before) << "the writer resumed once the reader left";
  for (const Ref<Sub>& s : resident) ASSERT_TRUE(domain->remove(*s).ok());
  ASSERT_TRUE(domain->unregister_notifier(holder).ok());
}

TEST(NotifierDomainTest, AThreadInsideItsOwnInvalidationIsNotHeldAtTheCap) {
  // Every change passes a cap of 0; the inserting thread holds an invalidation, whose read
  // section the grace period would wait for.
  auto domain = make_ref<NotifierDomain>(
      NotifierDomainOptions{.max_retired_bytes = 0, .free_batch_nodes = 1024});
  std::vector<Ref<Sub>> subs;
  for (int i = 0; i < 3; ++i) {
    subs.push_back(make_ref<Sub>());
    ASSERT_TRUE(
        domain->insert(subs.back(), Interval::sized((10 + i) * kPage, kPage), nullptr).ok());
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    InvalidationToken token =
        testing::start_ok(*domain, Range{.start = 0, .end = kPage});  // reaches no one
    Ref<Sub> n = make_ref<Sub>();
    EXPECT_TRUE(
        domain->insert(n, Interval::sized(20 * kPage, kPage), nullptr).ok());  // hangs if it waits
    EXPECT_TRUE(domain->remove(*n).ok());
    domain->invalidate_range_end(std::move(token));
    done.store(true);
  });
  writer.join();
  EXPECT_TRUE(done.load());
  Ref<Sub> later = make_ref<Sub>();
  ASSERT_TRUE(
      domain->insert(later, Interval::sized(30 * kPage, kPage), nullptr).ok());  // waits, and may
  EXPECT_GT(domain->stats().reclaim_waits, 0u);
  ASSERT_TRUE(domain->remove(*later).ok());
  for (const Ref<Sub>& s : subs) ASSERT_TRUE(domain->remove(*s).ok());
}

TEST(NotifierDomainTest, RemovedNotifiersCountUntilTheirGracePeriodEnds) {
  auto domain = make_ref<NotifierDomain>(NotifierDomainOptions{.free_batch_nodes = 1});
  Ref<Sub> n = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  // A thread inside a whole-space callback sits in a read section: the grace period of the
  // removal waits for it. (An invalidation that reaches no notifier holds none.)
  Holding holder;
  ASSERT_TRUE(domain->register_notifier(holder).ok());
  std::thread reader(
      [&] { testing::invalidate(*domain, Range{.start = 100 * kPage, .end = 101 * kPage}); });
  wait_until([&] { return holder.inside.load(); });
  const std::uint64_t before = domain->memory().retired_bytes;
  ASSERT_TRUE(domain->remove(*n).ok());
  n.reset();  // the domain's pin is now the only one
  // The erase also retires the tree nodes it copied (two 64-byte nodes here): without the
  // pinned notifier the growth stays below this bound.
  EXPECT_GE(domain->memory().retired_bytes - before, sizeof(IntervalNotifier) + 64)
      << "a removed notifier the domain still pins is retired memory";
  holder.may_leave.store(true);
  reader.join();
  domain->barrier();
  EXPECT_EQ(domain->memory().retired_bytes, 0u);
  ASSERT_TRUE(domain->unregister_notifier(holder).ok());
}

TEST(NotifierDomainTest, ThePoolGivesChunksBackAfterAChurnEnds) {
  auto domain = make_ref<NotifierDomain>(NotifierDomainOptions{.free_batch_nodes = 1});
  std::vector<Ref<Sub>> subs;
  for (int i = 0; i < 20000; ++i) {
    subs.push_back(make_ref<Sub>());
    ASSERT_TRUE(domain->insert(subs.back(), Interval::sized(i * kPage, kPage), nullptr).ok());
  }
  const std::uint64_t peak = domain->memory().pool_bytes;
  for (const Ref<Sub>& s : subs) ASSERT_TRUE(domain->remove(*s).ok());
  domain->barrier();  // frees every retired node and trims the pool
  EXPECT_LT(domain->memory().pool_bytes, peak / 4) << "the pool kept what the churn used";
  EXPECT_EQ(domain->memory().retired_bytes, 0u) << "barrier() left retired nodes";
}

// A driver notifier whose invalidate() takes the driver lock.
class Locking : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    MutexLock l(driver_mu);
    set_seq(cur_seq);
    return true;
  }
  Mutex driver_mu;
};

// insert() may wait at the cap, so it is checked on every call: a caller that holds a lock
// callbacks take learns it below the cap already, not on the day the cap is reached.
TEST(NotifierDomainDeathTest, InsertHoldingALockCallbacksTakeDiesEvenBelowTheCap) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto domain = make_ref<NotifierDomain>();
        Ref<Locking> driver = make_ref<Locking>();
        (void)domain->insert(driver, Interval::sized(0, kPage), nullptr);
        testing::invalidate(*domain,
                            Range{.start = 0, .end = kPage});  // the callback took driver_mu
        MutexLock l(driver->driver_mu);
        Ref<Sub> n = make_ref<Sub>();
        (void)domain->insert(n, Interval::sized(10 * kPage, kPage), nullptr);  // far below the cap
      },
      "I9: NotifierDomain::insert\\(\\) called while holding an itn::Mutex");
}

}  // namespace
}  // namespace itn
