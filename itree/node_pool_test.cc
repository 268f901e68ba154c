// NodePool: slots reused, chunks given back above the watermark (I26).
#include "itree/internal/node_pool.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

#include "itree/internal/node.h"

namespace itn::itree_internal {
namespace {

using TestNode = Node<int>;
using Pool = NodePool<TestNode>;
constexpr std::size_t kChunk = Pool::kSlotsPerChunk;

TestNode node() { return TestNode{0, 0, 0, nullptr, nullptr, 1, 1, 0}; }

// Four chunks, each with one slot in use and the rest free: more than half the pool is
// free, but nothing can go back. Returns the slots still in use.
std::vector<TestNode*> fill_four_chunks_and_pin_one_slot_each(Pool& pool) {
  std::vector<TestNode*> pinned;
  std::vector<TestNode*> slots;
  for (std::size_t i = 0; i < 4 * kChunk; ++i) slots.push_back(pool.allocate(node()));
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (i % kChunk == 0) {
      pinned.push_back(slots[i]);
    } else {
      pool.release(slots[i]);
    }
  }
  return pinned;
}

TEST(NodePoolTest, TrimGivesChunksBackOnceEnoughSlotsCameFreeAfterAScanThatFoundNone) {
  Pool pool;
  std::vector<TestNode*> pinned = fill_four_chunks_and_pin_one_slot_each(pool);
  pool.trim();
  ASSERT_EQ(pool.reserved_bytes(), 4 * kChunk * Pool::kSlotBytes);
  for (TestNode* n : pinned) pool.release(n);
  // The chunks are empty now, but only four slots came free since the scan: trim() waits
  // for twice the free list's worth, so that its scans stay amortised.
  pool.trim();
  EXPECT_EQ(pool.reserved_bytes(), 4 * kChunk * Pool::kSlotBytes) << "trim() rescanned at once";
  for (std::size_t i = 0; i < 7 * kChunk; ++i) pool.release(pool.allocate(node()));
  pool.trim();
  EXPECT_EQ(pool.reserved_bytes(), 4 * kChunk * Pool::kSlotBytes)
      << "trim() rescanned before twice the free list's worth came free";
  for (std::size_t i = 0; i < kChunk; ++i) pool.release(pool.allocate(node()));
  pool.trim();
  EXPECT_LE(pool.reserved_bytes(), kChunk * Pool::kSlotBytes) << "empty chunks were kept";
}

TEST(NodePoolTest, TrimFullyGivesEveryEmptyChunkBackAtOnce) {
  Pool pool;
  std::vector<TestNode*> pinned = fill_four_chunks_and_pin_one_slot_each(pool);
  pool.trim_fully();
  ASSERT_EQ(pool.reserved_bytes(), 4 * kChunk * Pool::kSlotBytes);
  for (TestNode* n : pinned) pool.release(n);
  pool.trim_fully();
  EXPECT_EQ(pool.reserved_bytes(), 0u) << "empty chunks were kept";
  pool.release(pool.allocate(node()));  // a new chunk is carved after they all went
  EXPECT_EQ(pool.reserved_bytes(), kChunk * Pool::kSlotBytes);
}

// A pool that never carved most of its only chunk: once its few slots are free, the
// chunk is empty and goes back (the slots never carved count as free).
TEST(NodePoolTest, TrimFullyGivesBackALightlyUsedLastChunk) {
  Pool pool;
  std::vector<TestNode*> slots;
  for (int i = 0; i < 3; ++i) slots.push_back(pool.allocate(node()));
  for (TestNode* n : slots) pool.release(n);
  pool.trim_fully();
  EXPECT_EQ(pool.reserved_bytes(), 0u) << "an empty, barely carved chunk was kept";
}

TEST(NodePoolTest, GivenBackSlotsAreReusedBeforeANewChunk) {
  Pool pool;
  std::vector<TestNode*> nodes;
  for (std::size_t i = 0; i < kChunk; ++i) nodes.push_back(pool.allocate(node()));
  pool.give_back(std::move(nodes));
  TestNode* again = pool.allocate(node());
  EXPECT_EQ(pool.reserved_bytes(), kChunk * Pool::kSlotBytes);
  pool.release(again);
}

}  // namespace
}  // namespace itn::itree_internal
