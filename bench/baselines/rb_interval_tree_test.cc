// bench/baselines/rb_interval_tree_test.cc
//
// Tests of the intrusive red-black interval tree baseline: fixed cases for the edges (empty
// tree, a single node, erasing the root until empty, the top of the key space), a check that
// valid() does reject broken trees, and randomized runs against a brute-force model (the
// vector of linked nodes) that check every invariant and a query after each operation.
#include "bench/baselines/rb_interval_tree.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace itn::bench {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

RbIntervalNode make(std::uint64_t start, std::uint64_t last) {
  RbIntervalNode n;
  n.start = start;
  n.last = last;
  return n;
}

// The whole answer of one query, in the order the iterator gives it. Stops after `limit` + 1
// nodes, enough to show an excess, so that an iterator that cycles fails instead of hanging.
std::vector<RbIntervalNode*> query(const RbIntervalTree& tree, std::uint64_t start,
                                   std::uint64_t last, std::size_t limit) {
  std::vector<RbIntervalNode*> out;
  for (RbIntervalNode* n = tree.first_overlap(start, last); n != nullptr && out.size() <= limit;
       n = RbIntervalTree::next_overlap(*n, start, last)) {
    out.push_back(n);
  }
  return out;
}

std::vector<RbIntervalNode*> brute_force(const std::vector<RbIntervalNode*>& linked,
                                         std::uint64_t start, std::uint64_t last) {
  std::vector<RbIntervalNode*> out;
  for (RbIntervalNode* n : linked) {
    if (n->start <= last && start <= n->last) out.push_back(n);
  }
  return out;
}

RbIntervalNode* root_of(RbIntervalNode* n) {
  while (n->parent != nullptr) n = n->parent;
  return n;
}

// Intervals drawn to stress the tree: few distinct starts (many duplicates), nesting, a
// few huge intervals, and values at the very top of the key space.
class IntervalSource {
 public:
  explicit IntervalSource(std::uint64_t seed) : rng_(seed) {}

  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }

  // A start and a last with start <= last.
  std::pair<std::uint64_t, std::uint64_t> next() {
    switch (between(0, 7)) {
      case 0:  // huge: from near 0 to near or at the top
        return {between(0, 3), kMax - between(0, 3)};
      case 1: {  // near the top of the key space
        const std::uint64_t s = kMax - between(0, 15);
        return {s, between(s, kMax)};
      }
      case 2: {  // anywhere, with a length of any order of magnitude
        const std::uint64_t s = rng_();
        const std::uint64_t len = rng_() >> between(0, 63);
        return {s, s + std::min(len, kMax - s)};
      }
      default: {  // small keys: many equal starts, short and nested intervals
        const std::uint64_t s = between(0, 63);
        return {s, s + between(0, between(0, 1) == 0 ? 3 : 63)};
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

void expect_query_matches(const RbIntervalTree& tree, const std::vector<RbIntervalNode*>& linked,
                          std::uint64_t start, std::uint64_t last) {
  SCOPED_TRACE(::testing::Message() << "query [" << start << ", " << last << "]");
  std::vector<RbIntervalNode*> got = query(tree, start, last, linked.size());
  for (std::size_t i = 1; i < got.size(); ++i) {
    ASSERT_LE(got[i - 1]->start, got[i]->start) << "iterator out of start order at " << i;
  }
  std::vector<RbIntervalNode*> want = brute_force(linked, start, last);
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  ASSERT_EQ(got, want);
}

// `ops` random inserts and erases over a pool of `pool` nodes; inserts are favoured while
// the tree is small, so it grows towards about `pool` / 2 and then churns.
void run_random(std::uint64_t seed, std::size_t pool, int ops) {
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", pool " << pool);
  IntervalSource src(seed);
  std::vector<RbIntervalNode> nodes(pool);  // never resized: the tree points into it
  std::vector<RbIntervalNode*> linked;      // the model
  std::vector<RbIntervalNode*> free_nodes;
  for (RbIntervalNode& n : nodes) free_nodes.push_back(&n);
  RbIntervalTree tree;

  for (int op = 0; op < ops; ++op) {
    SCOPED_TRACE(::testing::Message() << "op " << op);
    const bool do_insert =
        linked.empty() || (!free_nodes.empty() && src.between(0, pool - 1) >= linked.size());
    if (do_insert) {
      const std::size_t i = static_cast<std::size_t>(src.between(0, free_nodes.size() - 1));
      RbIntervalNode* n = free_nodes[i];
      free_nodes[i] = free_nodes.back();
      free_nodes.pop_back();
      const auto [s, l] = src.next();
      n->start = s;
      n->last = l;
      tree.insert(*n);
      linked.push_back(n);
    } else {
      const std::size_t i = static_cast<std::size_t>(src.between(0, linked.size() - 1));
      RbIntervalNode* n = linked[i];
      linked[i] = linked.back();
      linked.pop_back();
      tree.erase(*n);
      free_nodes.push_back(n);
    }
    ASSERT_TRUE(tree.valid());
    ASSERT_EQ(tree.size(), linked.size());
    ASSERT_EQ(tree.empty(), linked.empty());
    const auto [qs, ql] = src.next();
    ASSERT_NO_FATAL_FAILURE(expect_query_matches(tree, linked, qs, ql));
    if (op % 64 == 0) {
      ASSERT_NO_FATAL_FAILURE(expect_query_matches(tree, linked, 0, kMax));
      ASSERT_NO_FATAL_FAILURE(expect_query_matches(tree, linked, kMax, kMax));
      const std::uint64_t p = src.between(0, 63);
      ASSERT_NO_FATAL_FAILURE(expect_query_matches(tree, linked, p, p));
    }
  }
  for (RbIntervalNode* n : linked) tree.erase(*n);
  ASSERT_TRUE(tree.valid());
  ASSERT_TRUE(tree.empty());
}

TEST(RbIntervalTreeTest, EmptyTreeQueriesReturnNull) {
  RbIntervalTree tree;
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_TRUE(tree.valid());
  EXPECT_EQ(tree.first_overlap(0, kMax), nullptr);
  EXPECT_EQ(tree.first_overlap(5, 5), nullptr);
  EXPECT_EQ(tree.first_overlap(kMax, kMax), nullptr);
}

TEST(RbIntervalTreeTest, EraseOnlyNode) {
  RbIntervalTree tree;
  RbIntervalNode n = make(10, 20);
  tree.insert(n);
  EXPECT_TRUE(tree.valid());
  EXPECT_EQ(tree.size(), 1u);
  EXPECT_EQ(tree.first_overlap(20, 30), &n);
  EXPECT_EQ(RbIntervalTree::next_overlap(n, 20, 30), nullptr);
  EXPECT_EQ(tree.first_overlap(21, 30), nullptr);
  EXPECT_EQ(tree.first_overlap(0, 9), nullptr);
  tree.erase(n);
  EXPECT_TRUE(tree.valid());
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.first_overlap(0, kMax), nullptr);
  // An erased node can be linked again.
  tree.insert(n);
  EXPECT_TRUE(tree.valid());
  EXPECT_EQ(tree.first_overlap(15, 15), &n);
}

TEST(RbIntervalTreeTest, EraseRootRepeatedlyDownToEmpty) {
  std::vector<RbIntervalNode> nodes;
  for (std::uint64_t i = 0; i < 300; ++i) nodes.push_back(make(i % 37, i % 37 + i % 5));
  RbIntervalTree tree;
  for (RbIntervalNode& n : nodes) tree.insert(n);
  ASSERT_TRUE(tree.valid());
  std::vector<RbIntervalNode*> linked;
  for (RbIntervalNode& n : nodes) linked.push_back(&n);
  while (!linked.empty()) {
    RbIntervalNode* root = root_of(linked.front());
    tree.erase(*root);
    linked.erase(std::find(linked.begin(), linked.end(), root));
    ASSERT_TRUE(tree.valid());
    ASSERT_EQ(tree.size(), linked.size());
    ASSERT_NO_FATAL_FAILURE(expect_query_matches(tree, linked, 0, kMax));
    ASSERT_NO_FATAL_FAILURE(expect_query_matches(tree, linked, 20, 21));
  }
  EXPECT_TRUE(tree.empty());
}

TEST(RbIntervalTreeTest, TopOfKeySpace) {
  RbIntervalTree tree;
  RbIntervalNode all = make(0, kMax);
  RbIntervalNode top = make(kMax, kMax);
  RbIntervalNode low = make(0, 0);
  tree.insert(top);
  tree.insert(all);
  tree.insert(low);
  ASSERT_TRUE(tree.valid());
  EXPECT_EQ(query(tree, kMax, kMax, 3), (std::vector<RbIntervalNode*>{&all, &top}));
  EXPECT_EQ(query(tree, 0, 0, 3), (std::vector<RbIntervalNode*>{&all, &low}));
  EXPECT_EQ(query(tree, 1, kMax - 1, 3), (std::vector<RbIntervalNode*>{&all}));
}

// The promise that equal starts go after the existing ones: in-order, and so in a query's
// answer, equal starts come in insertion order, and rotations and erases keep that.
TEST(RbIntervalTreeTest, EqualStartsKeepInsertionOrder) {
  std::mt19937_64 rng(7);
  std::vector<RbIntervalNode> nodes(400);
  std::vector<std::size_t> stamp(nodes.size());  // when each node was last inserted
  std::size_t clock = 0;
  RbIntervalTree tree;
  auto insert = [&](std::size_t i) {
    stamp[i] = clock++;
    tree.insert(nodes[i]);
  };
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    nodes[i] = make(rng() % 8, 100 + rng() % 8);
    insert(i);
  }
  for (std::size_t i = 0; i < nodes.size(); i += 3) tree.erase(nodes[i]);
  for (std::size_t i = 0; i < nodes.size(); i += 3) insert(i);  // now after their equals
  ASSERT_TRUE(tree.valid());
  std::vector<RbIntervalNode*> got = query(tree, 0, kMax, nodes.size());
  ASSERT_EQ(got.size(), nodes.size());
  auto stamp_of = [&](const RbIntervalNode* n) {
    return stamp[static_cast<std::size_t>(n - nodes.data())];
  };
  for (std::size_t i = 1; i < got.size(); ++i) {
    const RbIntervalNode* a = got[i - 1];
    const RbIntervalNode* b = got[i];
    ASSERT_TRUE(a->start < b->start || (a->start == b->start && stamp_of(a) < stamp_of(b)))
        << "position " << i;
  }
}

// valid() must be able to fail, or the randomized tests below prove nothing.
TEST(RbIntervalTreeTest, ValidRejectsBrokenTrees) {
  std::vector<RbIntervalNode> nodes;
  for (std::uint64_t i = 0; i < 64; ++i) nodes.push_back(make(i * 10, i * 10 + i % 7));
  RbIntervalTree tree;
  for (RbIntervalNode& n : nodes) tree.insert(n);
  ASSERT_TRUE(tree.valid());

  // A leaf whose augmentation is off by one.
  RbIntervalNode* leaf = &*std::find_if(nodes.begin(), nodes.end(), [](const RbIntervalNode& n) {
    return n.left == nullptr && n.right == nullptr;
  });
  ++leaf->subtree_last;
  EXPECT_FALSE(tree.valid());
  --leaf->subtree_last;
  ASSERT_TRUE(tree.valid());

  // The root's augmentation too low (it must be the maximum last of the whole tree).
  RbIntervalNode* root = root_of(leaf);
  --root->subtree_last;
  EXPECT_FALSE(tree.valid());
  ++root->subtree_last;
  ASSERT_TRUE(tree.valid());

  // A red root; alone in its tree too, where no red-red or black-height check can see it.
  root->red = true;
  EXPECT_FALSE(tree.valid());
  root->red = false;
  ASSERT_TRUE(tree.valid());
  RbIntervalTree single;
  RbIntervalNode only = make(1, 2);
  single.insert(only);
  ASSERT_TRUE(single.valid());
  only.red = true;
  EXPECT_FALSE(single.valid());
  only.red = false;

  // Out of start order (the last key, which is the rightmost node, made the smallest).
  RbIntervalNode* rightmost = &nodes.back();
  const std::uint64_t s = rightmost->start;
  rightmost->start = 1;
  EXPECT_FALSE(tree.valid());
  rightmost->start = s;
  ASSERT_TRUE(tree.valid());

  // A leaf that names itself as its parent.
  RbIntervalNode* const leaf_parent = leaf->parent;
  leaf->parent = leaf;
  EXPECT_FALSE(tree.valid());
  leaf->parent = leaf_parent;
  ASSERT_TRUE(tree.valid());

  // A leaf of the other colour: its black height no longer matches its sibling subtree's.
  const bool was_red = leaf->red;
  leaf->red = !was_red;
  EXPECT_FALSE(tree.valid());
  leaf->red = was_red;
  ASSERT_TRUE(tree.valid());
}

TEST(RbIntervalTreeTest, RandomAgainstBruteForceSmallPool) { run_random(1, 16, 20000); }

TEST(RbIntervalTreeTest, RandomAgainstBruteForceMediumPool) { run_random(2, 256, 30000); }

TEST(RbIntervalTreeTest, RandomAgainstBruteForceLargePool) { run_random(3, 2048, 20000); }

}  // namespace
}  // namespace itn::bench
