#include "sync/rw_mutex.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "sync/test_util.h"

namespace itn {
namespace {

using testing::wait_until;

TEST(RwMutexTest, ReadersHoldItTogether) {
  RwMutex mu;
  std::atomic<int> inside{0};
  std::atomic<bool> leave{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      ReadLock l(mu);
      inside.fetch_add(1);
      wait_until([&] { return leave.load(); });
    });
  }
  // Both readers get in while the other still holds the read side; an exclusive lock
  // would keep the second out forever (the test would hang, not pass).
  wait_until([&] { return inside.load() == 2; });
  leave.store(true);
  for (auto& t : readers) t.join();
}

TEST(RwMutexTest, AWriterWaitsUntilTheLastReaderLeaves) {
  RwMutex mu;
  std::atomic<bool> reader_in{false}, leave{false}, writer_in{false};
  std::thread reader([&] {
    ReadLock l(mu);
    reader_in.store(true);
    wait_until([&] { return leave.load(); });
  });
  wait_until([&] { return reader_in.load(); });
  std::thread writer([&] {
    WriteLock l(mu);
    EXPECT_TRUE(mu.held_by_caller());
    writer_in.store(true);
  });
  // Until the reader leaves, the writer is still out.
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(writer_in.load());
    std::this_thread::yield();
  }
  leave.store(true);
  reader.join();
  writer.join();
  EXPECT_TRUE(writer_in.load());
  EXPECT_FALSE(mu.held_by_caller());
}

TEST(RwMutexTest, AWriterExcludesReadersAndOtherWriters) {
  RwMutex mu;
  long value = 0;  // guarded by mu (a local: the analysis cannot attach it); TSan checks
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        if ((i + t) % 2 == 0) {
          WriteLock l(mu);
          value += 2;
        } else {
          ReadLock l(mu);
          EXPECT_EQ(value % 2, 0);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(value, 4 * 2500 * 2);
}

// Deliberately break the locking rules, so the static analysis is off for them.
void read_twice(RwMutex& mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock_shared();
  mu.lock_shared();
}
void write_while_reading(RwMutex& mu) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  mu.lock_shared();
  mu.lock();
}

TEST(RwMutexDeathTest, RecursiveReadOrUpgradeDies) {
  if (!ITN_DEBUG_CHECKS)
    GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS: a build without NDEBUG)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  RwMutex mu;
  EXPECT_DEATH(read_twice(mu), "not recursive");
  EXPECT_DEATH(write_while_reading(mu), "not recursive");
}

TEST(RwMutexDeathTest, AssertHeldDiesForAReader) {
  if (!ITN_DEBUG_CHECKS)
    GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS: a build without NDEBUG)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  RwMutex mu;
  EXPECT_DEATH(
      {
        ReadLock l(mu);
        mu.assert_held();
      },
      "must hold it to write");
}

}  // namespace
}  // namespace itn
