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

TEST(NodePool, GivesChunksBackOnceTheyAreFreeEvenAfterAScanThatFoundNone) {
  Pool pool;
  std::vector<TestNode*> slots;
  for (std::size_t i = 0; i < 4 * kChunk; ++i) slots.push_back(pool.allocate(node()));
  ASSERT_EQ(pool.reserved_bytes(), 4 * kChunk * Pool::kSlotBytes);
  // Every chunk keeps one slot in use: more than half the pool is free, nothing can go.
  std::vector<TestNode*> pinned;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    if (i % kChunk == 0) {
      pinned.push_back(slots[i]);
    } else {
      pool.release(slots[i]);
    }
  }
  pool.trim();
  EXPECT_EQ(pool.reserved_bytes(), 4 * kChunk * Pool::kSlotBytes);
  for (TestNode* n : pinned) pool.release(n);
  // Only four more slots came free; the chunks are empty now and must still go back.
  for (std::size_t i = 0; i < kChunk; ++i) pool.release(pool.allocate(node()));
  pool.trim();
  EXPECT_LE(pool.reserved_bytes(), kChunk * Pool::kSlotBytes) << "empty chunks were kept";
}

TEST(NodePool, GivenBackSlotsAreReusedBeforeANewChunk) {
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
