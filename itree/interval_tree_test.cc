#include "itree/interval_tree.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"

#include "sync/test_util.h"

namespace itn {
namespace {

using Entry = std::tuple<std::uint64_t, std::uint64_t, int>;
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

class IntervalTreeTest : public ::testing::Test {
 protected:
  std::vector<Entry> overlaps(std::uint64_t start, std::uint64_t last) {
    std::vector<Entry> out;
    auto guard = srcu_.read_lock();
    tree_.for_each_overlap(
        start, last, [&](std::uint64_t s, std::uint64_t l, int v) { out.emplace_back(s, l, v); });
    return out;
  }
  absl::Status invariants() {
    auto guard = srcu_.read_lock();
    return tree_.check_invariants();
  }

  SrcuDomain srcu_;
  IntervalTree<int> tree_{srcu_};
};

TEST_F(IntervalTreeTest, EmptyTreeHasNoOverlaps) {
  EXPECT_TRUE(overlaps(0, kMax).empty());
  EXPECT_EQ(tree_.size(), 0u);
  EXPECT_TRUE(invariants().ok());
}

TEST_F(IntervalTreeTest, ReportsOverlapsInKeyOrderWithInclusiveBounds) {
  ASSERT_TRUE(tree_.insert(10, 20, 1).ok());
  ASSERT_TRUE(tree_.insert(5, 9, 2).ok());
  ASSERT_TRUE(tree_.insert(21, 30, 3).ok());
  ASSERT_TRUE(tree_.insert(15, 15, 4).ok());
  EXPECT_EQ(overlaps(9, 10), (std::vector<Entry>{{5, 9, 2}, {10, 20, 1}}));
  EXPECT_EQ(overlaps(20, 21), (std::vector<Entry>{{10, 20, 1}, {21, 30, 3}}));
  EXPECT_EQ(overlaps(15, 15), (std::vector<Entry>{{10, 20, 1}, {15, 15, 4}}));
  EXPECT_TRUE(overlaps(31, 100).empty());
  EXPECT_TRUE(overlaps(0, 4).empty());
  EXPECT_TRUE(invariants().ok());
}

TEST_F(IntervalTreeTest, WholeRangeAndExtremeKeys) {
  ASSERT_TRUE(tree_.insert(0, kMax, 1).ok());
  ASSERT_TRUE(tree_.insert(kMax, kMax, 2).ok());
  ASSERT_TRUE(tree_.insert(0, 0, 3).ok());
  EXPECT_EQ(overlaps(kMax, kMax), (std::vector<Entry>{{0, kMax, 1}, {kMax, kMax, 2}}));
  EXPECT_EQ(overlaps(0, 0), (std::vector<Entry>{{0, 0, 3}, {0, kMax, 1}}));
  EXPECT_EQ(overlaps(0, kMax).size(), 3u);
}

TEST_F(IntervalTreeTest, DuplicatesAreKeptAndErasedOneAtATime) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(tree_.insert(7, 8, 5).ok());
  EXPECT_EQ(overlaps(8, 8).size(), 3u);
  ASSERT_TRUE(tree_.erase(7, 8, 5).ok());
  EXPECT_EQ(overlaps(0, kMax).size(), 2u);
  EXPECT_EQ(tree_.size(), 2u);
  EXPECT_TRUE(invariants().ok());
}

TEST_F(IntervalTreeTest, BadInputIsRejectedAndChangesNothing) {
  ASSERT_TRUE(tree_.insert(1, 2, 1).ok());
  EXPECT_EQ(tree_.insert(5, 4, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tree_.erase(5, 4, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tree_.erase(1, 2, 99).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(tree_.erase(1, 3, 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(overlaps(0, kMax), (std::vector<Entry>{{1, 2, 1}}));
  EXPECT_EQ(tree_.memory().retired_bytes, 0u) << "a failed change copied nodes";
}

TEST_F(IntervalTreeTest, StopsWhenCallbackReturnsFalse) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(tree_.insert(i, i + 100, i).ok());
  int seen = 0;
  auto guard = srcu_.read_lock();
  EXPECT_FALSE(tree_.for_each_overlap(
      0, kMax, [&](std::uint64_t, std::uint64_t, int) { return ++seen < 3; }));
  EXPECT_EQ(seen, 3);
}

TEST_F(IntervalTreeTest, MayOverlapIsFalseOnlyOutsideTheSpanOfEveryEntry) {
  EXPECT_FALSE(tree_.may_overlap(0, 100));
  ASSERT_TRUE(tree_.insert(10, 20, 1).ok());
  ASSERT_TRUE(tree_.insert(30, 40, 2).ok());
  ASSERT_TRUE(tree_.insert(5, 6, 3).ok());  // lowest start, not the root's leftmost by last
  EXPECT_FALSE(tree_.may_overlap(0, 4));
  EXPECT_TRUE(tree_.may_overlap(0, 5));
  EXPECT_TRUE(tree_.may_overlap(40, 50));
  EXPECT_FALSE(tree_.may_overlap(41, kMax));
  EXPECT_TRUE(tree_.may_overlap(21, 29)) << "a hole inside the span is only a hint";
  ASSERT_TRUE(tree_.erase(30, 40, 2).ok());
  EXPECT_FALSE(tree_.may_overlap(21, 29));
  ASSERT_TRUE(tree_.erase(10, 20, 1).ok());
  ASSERT_TRUE(tree_.erase(5, 6, 3).ok());
  EXPECT_FALSE(tree_.may_overlap(0, 100));
}

TEST_F(IntervalTreeTest, CursorPausesBetweenEntriesAndKnowsItsSnapshot) {
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(tree_.insert(10 * i, 10 * i + 15, i).ok());
  const std::vector<Entry> expected = overlaps(95, 305);
  auto guard = srcu_.read_lock();
  IntervalTree<int>::Cursor cursor = tree_.overlaps(95, 305);
  std::vector<int> seen;
  for (const int* v = cursor.next(); v != nullptr; v = cursor.next()) {
    seen.push_back(*v);
    EXPECT_TRUE(cursor.current(tree_));
  }
  EXPECT_EQ(cursor.next(), nullptr) << "an ended cursor stays ended";
  ASSERT_EQ(seen.size(), expected.size());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], std::get<2>(expected[i]));
  ASSERT_TRUE(tree_.insert(1000, 1001, 99).ok());
  EXPECT_FALSE(cursor.current(tree_)) << "a publish replaced the cursor's snapshot";
}

TEST_F(IntervalTreeTest, BatchPublishesAllChangesAtOnce) {
  ASSERT_TRUE(tree_.insert(1, 1, 1).ok());
  {
    IntervalTree<int>::Batch batch(tree_);
    ASSERT_TRUE(batch.insert(2, 2, 2).ok());
    ASSERT_TRUE(batch.erase(1, 1, 1).ok());
    EXPECT_EQ(batch.erase(9, 9, 9).code(), absl::StatusCode::kNotFound);
    ASSERT_TRUE(batch.insert(3, 3, 3).ok());
    EXPECT_EQ(overlaps(0, kMax), (std::vector<Entry>{{1, 1, 1}})) << "batch visible early";
  }
  EXPECT_EQ(overlaps(0, kMax), (std::vector<Entry>{{2, 2, 2}, {3, 3, 3}}));
  EXPECT_EQ(tree_.size(), 2u);
  EXPECT_TRUE(invariants().ok());
}

TEST_F(IntervalTreeTest, ReaderCompletesWhileWriterHoldsTheLock) {
  ASSERT_TRUE(tree_.insert(1, 5, 1).ok());
  std::atomic<bool> batch_open{false}, reader_done{false};
  std::thread writer([&] {
    IntervalTree<int>::Batch batch(tree_);
    ASSERT_TRUE(batch.insert(2, 6, 2).ok());
    batch_open.store(true);
    testing::wait_until([&] { return reader_done.load(); });  // lock held until the read ends
  });
  testing::wait_until([&] { return batch_open.load(); });
  EXPECT_EQ(overlaps(0, kMax), (std::vector<Entry>{{1, 5, 1}}));
  reader_done.store(true);
  writer.join();
  EXPECT_EQ(overlaps(0, kMax).size(), 2u);
}

TEST_F(IntervalTreeTest, ReadPathTakesNoLockAndDoesNotRetry) {
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(tree_.insert(i, i + 5, i).ok());
  { auto warm_up = srcu_.read_lock(); }  // a thread's first section picks its SRCU shard
  testing::CountingHooks hooks;
  if (!set_thread_hooks(&hooks)) GTEST_SKIP() << "seam compiled out (ITN_SCHED_SEAM=0)";
  std::uint64_t found = 0;
  {
    auto guard = srcu_.read_lock();
    tree_.for_each_overlap(100, 200, [&](std::uint64_t, std::uint64_t, int) { ++found; });
  }
  set_thread_hooks(nullptr);
  EXPECT_EQ(found, 106u);
  // Every synchronisation step of a read: the epoch and root loads, the section's enter and
  // leave. No lock, no wait, and no second load of the root (a retry would need one).
  EXPECT_EQ(hooks.count(SchedPoint::kLock), 0u);
  EXPECT_EQ(hooks.count(SchedPoint::kWait), 0u);
  EXPECT_EQ(hooks.count(SchedPoint::kPoll), 0u);
  EXPECT_EQ(hooks.count(SchedPoint::kLoad), 2u);
  EXPECT_EQ(hooks.count(SchedPoint::kRmw), 2u);
}

TEST_F(IntervalTreeTest, ReplacedNodesAreRetiredThenFreedAfterGracePeriod) {
  SrcuDomain srcu;
  IntervalTree<int> tree(srcu, {.free_batch_nodes = 1});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(tree.insert(i, i, i).ok());
  srcu.barrier();
  EXPECT_EQ(tree.memory().retired_bytes, 0u);
  EXPECT_EQ(tree.memory().live_bytes, 100 * IntervalTree<int>::kNodeBytes);
  EXPECT_GE(tree.memory().pool_bytes, tree.memory().live_bytes) << "live nodes come from the pool";
  {
    auto guard = srcu.read_lock();  // may hold the old snapshot's nodes
    ASSERT_TRUE(tree.erase(50, 50, 50).ok());
    EXPECT_GT(tree.memory().retired_bytes, 0u);
  }
  srcu.barrier();
  EXPECT_EQ(tree.memory().retired_bytes, 0u);
  EXPECT_EQ(tree.memory().live_bytes, 99 * IntervalTree<int>::kNodeBytes);
}

TEST_F(IntervalTreeTest, RetiredNodesAreQueuedInGroups) {
  SrcuDomain srcu;
  IntervalTree<int> tree(srcu, {.free_batch_nodes = 1000});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(tree.insert(i, i, i).ok());
  srcu.barrier();
  EXPECT_GT(tree.memory().retired_bytes, 0u) << "a group below the threshold was queued";
  EXPECT_EQ(srcu.stats().callbacks_queued, 0u);
}

TEST_F(IntervalTreeTest, StaysBalancedUnderSequentialInserts) {
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(tree_.insert(i, i + 10, i).ok());
  EXPECT_TRUE(invariants().ok());
  for (int i = 0; i < 4096; i += 2) ASSERT_TRUE(tree_.erase(i, i + 10, i).ok());
  EXPECT_TRUE(invariants().ok());
  EXPECT_EQ(overlaps(100, 100).size(), 5u);  // odd i in [90, 100]
}

}  // namespace
}  // namespace itn
