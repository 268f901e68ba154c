// Proves that the library's synchronisation reaches the scheduling seam: a hooks object
// that counts every point is installed, the primitives and an SrcuDomain are exercised,
// and every kind of point must have been seen (on the calling thread and on the threads
// the library starts, which inherit the hooks).
#include "sync/sched_hooks.h"

#include <atomic>

#include "gtest/gtest.h"

#include "sync/atomic.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"
#include "sync/srcu.h"
#include "sync/test_util.h"
#include "sync/thread.h"

namespace itn {
namespace {

class SchedHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!set_thread_hooks(&hooks_)) GTEST_SKIP() << "seam compiled out (ITN_SCHED_SEAM=0)";
  }
  void TearDown() override { set_thread_hooks(nullptr); }

  testing::CountingHooks hooks_;
};

TEST_F(SchedHooksTest, AtomicsReportEveryOperation) {
  Atomic<int> a{0};
  a.store(1, std::memory_order_relaxed);
  EXPECT_EQ(a.load(std::memory_order_relaxed), 1);
  a.fetch_add(1, std::memory_order_relaxed);
  int expected = 2;
  EXPECT_TRUE(
      a.compare_exchange_strong(expected, 3, std::memory_order_relaxed, std::memory_order_relaxed));
  a.exchange(4, std::memory_order_relaxed);
  EXPECT_EQ(hooks_.count(SchedPoint::kStore), 1u);
  EXPECT_EQ(hooks_.count(SchedPoint::kLoad), 1u);
  EXPECT_EQ(hooks_.count(SchedPoint::kRmw), 3u);
}

TEST_F(SchedHooksTest, MutexAndCondVarReportLockUnlockWaitNotify) {
  Mutex mu;
  CondVar cv;
  {
    MutexLock l(mu);
    cv.wait(mu);  // under hooks a wait may return spuriously; ours yields once
  }
  cv.notify_all();
  EXPECT_EQ(hooks_.count(SchedPoint::kLock), 2u);  // MutexLock + re-lock after the wait
  EXPECT_EQ(hooks_.count(SchedPoint::kUnlock), 2u);
  EXPECT_EQ(hooks_.count(SchedPoint::kWait), 1u);
  EXPECT_EQ(hooks_.count(SchedPoint::kNotify), 1u);
  EXPECT_GE(hooks_.wakes.load(), 2u);  // each unlock wakes blocked lockers
}

TEST_F(SchedHooksTest, ThreadsStartedByManagedThreadInheritHooks) {
  Atomic<int> touched{0};
  Thread t([&] { touched.store(1, std::memory_order_relaxed); });
  t.join();
  EXPECT_EQ(hooks_.count(SchedPoint::kSpawn), 1u);
  EXPECT_EQ(hooks_.count(SchedPoint::kJoin), 1u);
  EXPECT_EQ(hooks_.count(SchedPoint::kStore), 1u) << "the child's store was not seen";
  EXPECT_EQ(hooks_.starts.load(), 1u);
  EXPECT_EQ(hooks_.exits.load(), 1u);
}

TEST_F(SchedHooksTest, SrcuDomainGoesThroughTheSeam) {
  {
    SrcuDomain domain;
    { auto guard = domain.read_lock(); }
    const auto rmw_after_read = hooks_.count(SchedPoint::kRmw);
    EXPECT_GE(rmw_after_read, 2u);  // enter and leave
    domain.synchronize();
    EXPECT_GT(hooks_.count(SchedPoint::kRmw), rmw_after_read);  // the drains
    domain.call([] {});
    domain.barrier();
  }
  EXPECT_EQ(hooks_.count(SchedPoint::kSpawn), 1u);  // the callback worker
  EXPECT_GE(hooks_.count(SchedPoint::kWait), 1u);
  EXPECT_EQ(hooks_.starts.load(), 1u);
}

TEST_F(SchedHooksTest, GracePeriodPollIsASchedulingPoint) {
  SrcuDomain domain;
  std::atomic<bool> inside{false}, leave{false};
  std::thread reader([&] {  // unmanaged: holds the section while we poll
    auto guard = domain.read_lock();
    inside.store(true);
    while (!leave.load()) std::this_thread::yield();
  });
  while (!inside.load()) std::this_thread::yield();
  std::atomic<bool> synchronized{false};
  Thread releaser([&] {
    while (hooks_.count(SchedPoint::kPoll) < 3 && !synchronized.load()) std::this_thread::yield();
    leave.store(true);
  });
  domain.synchronize();  // polls, as kPoll points, until the reader leaves
  synchronized.store(true);
  EXPECT_GE(hooks_.count(SchedPoint::kPoll), 3u);
  releaser.join();
  reader.join();
}

}  // namespace
}  // namespace itn
