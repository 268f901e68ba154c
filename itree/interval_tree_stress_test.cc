// Real-thread stress of IntervalTree, for the ASan and TSan builds: writers change the tree
// in batches that keep an invariant (every id is present as a pair of entries or not at
// all); readers walk the whole tree and must never see half a batch or a freed node.
#include <atomic>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gtest/gtest.h"

#include "itree/interval_tree.h"

namespace itn {
namespace {

TEST(IntervalTreeStressTest, ReadersNeverSeeHalfABatch) {
  constexpr int kWriters = 2, kReaders = 2, kBatchesPerWriter = 3000, kIdsPerWriter = 64;
  SrcuDomain srcu;
  IntervalTree<int> tree(srcu);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> torn{0}, walks{0};

  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      std::unordered_map<int, int> count;
      do {  // at least once, however late this thread starts
        count.clear();
        auto guard = srcu.read_lock();
        tree.for_each_overlap(0, std::numeric_limits<std::uint64_t>::max(),
                              [&](std::uint64_t, std::uint64_t, int id) { ++count[id]; });
        for (const auto& [id, n] : count) {
          if (n != 2) torn.fetch_add(1);
        }
        walks.fetch_add(1, std::memory_order_relaxed);
      } while (!stop.load(std::memory_order_relaxed));
    });
  }

  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      std::vector<std::pair<std::uint64_t, std::uint64_t>> where(kIdsPerWriter);  // starts
      std::vector<bool> present(kIdsPerWriter, false);
      for (int b = 0; b < kBatchesPerWriter; ++b) {
        const int id = static_cast<int>(rng() % kIdsPerWriter);
        const int tag = w * kIdsPerWriter + id;
        IntervalTree<int>::Batch batch(tree);
        if (present[id]) {  // erase both halves of the pair
          EXPECT_TRUE(batch.erase(where[id].first, where[id].first + 5, tag).ok());
          EXPECT_TRUE(batch.erase(where[id].second, where[id].second + 5, tag).ok());
        } else {  // insert both halves, far apart so rotations separate them
          where[id] = {rng() % 1000000, rng() % 1000000};
          EXPECT_TRUE(batch.insert(where[id].first, where[id].first + 5, tag).ok());
          EXPECT_TRUE(batch.insert(where[id].second, where[id].second + 5, tag).ok());
        }
        present[id] = !present[id];
      }
    });
  }
  for (auto& t : writers) t.join();
  stop.store(true);
  for (auto& t : readers) t.join();

  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(walks.load(), 0u);
  auto guard = srcu.read_lock();
  EXPECT_TRUE(tree.check_invariants().ok());
}

}  // namespace
}  // namespace itn
