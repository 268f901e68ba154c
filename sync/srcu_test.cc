#include "sync/srcu.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "sync/test_util.h"

namespace itn {
namespace {

using testing::wait_until;

// How many polls a blocked grace period must be seen making before a test concludes that
// it is really waiting (rather than not having started yet).
constexpr std::uint64_t kStalledPolls = 3;

// A reader thread that enters a read section of `domain` and stays in it until leave().
class HeldReader {
 public:
  explicit HeldReader(SrcuDomain& domain)
      : thread_([this, &domain] {
          auto guard = domain.read_lock();
          inside_.store(true);
          wait_until([this] { return leave_.load(); });
        }) {
    wait_until([this] { return inside_.load(); });
  }
  ~HeldReader() { leave(); }

  void leave() {
    leave_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> inside_{false};
  std::atomic<bool> leave_{false};
  std::thread thread_;
};

// Runs `fn` on a thread and records when it returned.
class Returning {
 public:
  template <class Fn>
  explicit Returning(Fn fn)
      : thread_([this, fn] {
          fn();
          returned_.store(true);
        }) {}
  ~Returning() { join(); }
  bool returned() const { return returned_.load(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> returned_{false};
  std::thread thread_;
};

// Waits until `domain` has polled a present reader kStalledPolls times more than
// `before`, or until `op` returned (which the caller then reports as a failure).
void wait_until_stalled(const SrcuDomain& domain, const Returning& op, std::uint64_t before) {
  wait_until(
      [&] { return op.returned() || domain.stats().reader_waits >= before + kStalledPolls; });
}

TEST(SrcuDomainTest, SynchronizeWithoutReadersReturns) {
  SrcuDomain domain;
  domain.synchronize();
  domain.synchronize();
  EXPECT_EQ(domain.stats().grace_periods, 2u);
  EXPECT_EQ(domain.stats().reader_waits, 0u);
}

TEST(SrcuDomainTest, SynchronizeWaitsForEarlierReaderAndReturnsAfterItLeaves) {
  SrcuDomain domain;
  HeldReader reader(domain);
  Returning sync([&] { domain.synchronize(); });
  wait_until_stalled(domain, sync, 0);
  EXPECT_FALSE(sync.returned()) << "synchronize() returned while an earlier reader was inside";
  reader.leave();
  sync.join();
  EXPECT_TRUE(sync.returned());
  EXPECT_EQ(domain.stats().grace_periods, 1u);
}

TEST(SrcuDomainTest, NestedSectionHoldsGracePeriodUntilOutermostEnds) {
  SrcuDomain domain;
  std::atomic<bool> inner_done{false}, leave{false};
  std::thread reader([&] {
    auto outer = domain.read_lock();
    {
      auto inner = domain.read_lock();
      EXPECT_TRUE(domain.in_read_section());
    }
    EXPECT_TRUE(domain.in_read_section());
    inner_done.store(true);
    wait_until([&] { return leave.load(); });
  });
  wait_until([&] { return inner_done.load(); });
  Returning sync([&] { domain.synchronize(); });
  wait_until_stalled(domain, sync, 0);
  EXPECT_FALSE(sync.returned()) << "the inner guard's end released the outer section";
  leave.store(true);
  reader.join();
  sync.join();
  EXPECT_FALSE(domain.in_read_section());
}

TEST(SrcuDomainTest, SectionOfOneDomainDoesNotHoldAnother) {
  SrcuDomain a, b;
  auto guard = a.read_lock();
  EXPECT_TRUE(a.in_read_section());
  EXPECT_FALSE(b.in_read_section());
  b.synchronize();  // neither dies (I23 is per domain) nor waits for us
  b.barrier();
  EXPECT_EQ(b.stats().grace_periods, 1u);
}

TEST(SrcuDomainTest, CallRunsOnlyAfterGracePeriod) {
  SrcuDomain domain;
  HeldReader reader(domain);
  std::atomic<bool> ran{false};
  domain.call([&] { ran.store(true); });
  Returning barrier([&] { domain.barrier(); });
  wait_until_stalled(domain, barrier, 0);
  EXPECT_FALSE(ran.load()) << "callback ran while an earlier reader was inside";
  EXPECT_FALSE(barrier.returned()) << "barrier() returned before its callback ran";
  reader.leave();
  barrier.join();
  EXPECT_TRUE(ran.load());
}

TEST(SrcuDomainTest, CallInsideReadSectionDoesNotBlock) {
  SrcuDomain domain;
  std::atomic<int> ran{0};
  {
    auto guard = domain.read_lock();
    domain.call([&] { ran.fetch_add(1); });
    EXPECT_EQ(ran.load(), 0);
  }
  domain.barrier();
  EXPECT_EQ(ran.load(), 1);
}

TEST(SrcuDomainTest, BarrierDrainsCallbacksFromManyThreads) {
  SrcuDomain domain;
  constexpr int kThreads = 3, kEach = 2000;
  std::atomic<int> ran{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) domain.call([&] { ran.fetch_add(1); });
    });
  }
  for (auto& t : threads) t.join();
  domain.barrier();
  EXPECT_EQ(ran.load(), kThreads * kEach);
  EXPECT_EQ(domain.stats().callbacks_run, static_cast<std::uint64_t>(kThreads * kEach));
}

TEST(SrcuDomainTest, CallbacksFromOneThreadRunInOrder) {
  SrcuDomain domain;
  std::vector<int> order;  // touched only by the worker, then read after barrier()
  for (int i = 0; i < 500; ++i) domain.call([&order, i] { order.push_back(i); });
  domain.barrier();
  ASSERT_EQ(order.size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(order[i], i);
}

TEST(SrcuDomainTest, DestructorRunsQueuedCallbacksIncludingOnesTheyQueue) {
  std::atomic<int> ran{0};
  {
    SrcuDomain domain;
    domain.call([&] {
      ran.fetch_add(1);
      domain.call([&] { ran.fetch_add(1); });
    });
  }
  EXPECT_EQ(ran.load(), 2);
}

TEST(SrcuDomainTest, CallbackMaySynchronize) {
  SrcuDomain domain;
  std::atomic<bool> ran{false};
  domain.call([&] {
    domain.synchronize();
    ran.store(true);
  });
  domain.barrier();
  EXPECT_TRUE(ran.load());
}

TEST(SrcuDomainDeathTest, SynchronizeInsideReadSectionDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SrcuDomain domain;
  EXPECT_DEATH(
      {
        auto guard = domain.read_lock();
        domain.synchronize();
      },
      "I23: SrcuDomain::synchronize\\(\\) called inside a read section");
}

TEST(SrcuDomainDeathTest, SynchronizeInsideNestedSectionDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SrcuDomain a, b;
  EXPECT_DEATH(
      {
        auto outer = a.read_lock();
        auto inner = b.read_lock();
        a.synchronize();
      },
      "I23");
}

TEST(SrcuDomainDeathTest, BarrierInsideReadSectionDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SrcuDomain domain;
  EXPECT_DEATH(
      {
        auto guard = domain.read_lock();
        domain.barrier();
      },
      "I23: SrcuDomain::barrier\\(\\) called inside a read section");
}

TEST(SrcuDomainDeathTest, BarrierFromOwnCallbackDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SrcuDomain domain;
        domain.call([&] { domain.barrier(); });
        domain.barrier();
      },
      "barrier\\(\\) called from a callback of the same domain");
}

TEST(SrcuDomainDeathTest, DestroyedWithActiveReaderDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* domain = new SrcuDomain;
        auto guard = domain->read_lock();
        delete domain;
      },
      "destroyed while a read section is active");
}

}  // namespace
}  // namespace itn
