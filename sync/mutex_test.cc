#include "sync/mutex.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "sync/cond_var.h"
#include "sync/test_util.h"
#include "sync/thread.h"

namespace itn {
namespace {

using testing::wait_until;

class Counter {
 public:
  void add() {
    MutexLock l(mu_);
    ++value_;
  }
  int value() {
    MutexLock l(mu_);
    return value_;
  }

 private:
  Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(MutexTest, ExcludesConcurrentWriters) {
  Counter counter;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) counter.add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), 80000);
}

TEST(MutexTest, TryLockFailsWhileHeldElsewhere) {
  Mutex mu;
  mu.lock();
  EXPECT_TRUE(mu.held_by_caller());
  bool got = true;
  std::thread other([&] {
    got = mu.try_lock();
    EXPECT_FALSE(mu.held_by_caller());
  });
  other.join();
  EXPECT_FALSE(got);
  mu.unlock();
  EXPECT_FALSE(mu.held_by_caller());
  if (mu.try_lock()) {
    mu.unlock();
  } else {
    ADD_FAILURE() << "try_lock() failed on a free mutex";
  }
}

TEST(CondVarTest, WakesWaiterAfterStateChange) {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu (a local: the analysis cannot attach it)
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    MutexLock l(mu);
    waiting.store(true);
    while (!ready) cv.wait(mu);
    EXPECT_TRUE(mu.held_by_caller());
  });
  wait_until([&] { return waiting.load(); });
  {
    MutexLock l(mu);
    ready = true;
    cv.notify_one();
  }
  waiter.join();
}

TEST(ThreadTest, JoinOrdersTheBodyBeforeTheCaller) {
  int value = 0;  // plain int: join() must order the write before our read (TSan checks)
  Thread t([&] { value = 42; });
  t.join();
  EXPECT_EQ(value, 42);
}

// Deliberately breaks the locking rules, so the static analysis is off for it.
void lock_twice(Mutex& mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock();
  mu.lock();
}

TEST(MutexDeathTest, RecursiveLockDies) {
  if (!ITN_DEBUG_CHECKS)
    GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS: a build without NDEBUG)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Mutex mu;
  EXPECT_DEATH(lock_twice(mu), "not recursive");
}

TEST(MutexDeathTest, AssertHeldDiesWhenNotHeld) {
  if (!ITN_DEBUG_CHECKS)
    GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS: a build without NDEBUG)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Mutex mu;
  EXPECT_DEATH(mu.assert_held(), "the caller must hold this mutex");
}

TEST(ThreadDeathTest, DestroyedWithoutJoinDies) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH({ Thread t([] {}); }, "destroyed without join");
}

}  // namespace
}  // namespace itn
