// Batched invalidations (notifier/invalidation_batcher.h): a batcher gets each
// invalidation's hits among its notifiers in one call, in key order, and the protocol
// (sequences, refusals, removal) holds for each of them as for an unbatched notifier.
#include "notifier/invalidation_batcher.h"

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "sync/mutex.h"

namespace itn {
namespace {

constexpr std::uint64_t kPage = 4096;

Range pages(std::uint64_t first, std::uint64_t count, bool blockable = true) {
  return Range{.start = first * kPage, .end = (first + count) * kPage, .blockable = blockable};
}

// Records every call: the hits it was handed, in order.
class Driver : public InvalidationBatcher {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq,
                  std::span<IntervalNotifier* const> hits) override {
    MutexLock l(mu);
    std::vector<IntervalNotifier*> call(hits.begin(), hits.end());
    for (IntervalNotifier* n : hits) n->set_seq(cur_seq);
    calls.push_back(call);
    return !refuse;
  }
  Mutex mu;
  std::vector<std::vector<IntervalNotifier*>> calls ABSL_GUARDED_BY(mu);
  bool refuse = false;
};

class Buffer : public BatchedNotifier {
 public:
  using BatchedNotifier::BatchedNotifier;
};

using Plain = testing::CountedNotifier;

TEST(InvalidationBatcherTest, OneCallPerInvalidationWithEveryHitInKeyOrder) {
  auto domain = testing::domain_freeing_each_node();
  Driver driver;
  std::vector<Ref<Buffer>> buffers;
  for (std::uint64_t p : {3, 0, 2}) {  // inserted out of order
    buffers.push_back(make_ref<Buffer>(driver));
    ASSERT_TRUE(domain->insert(buffers.back(), Interval::sized(p * kPage, kPage), nullptr).ok());
  }
  Ref<Buffer> outside = make_ref<Buffer>(driver);
  ASSERT_TRUE(domain->insert(outside, Interval::sized(9 * kPage, kPage), nullptr).ok());
  Ref<Plain> plain = make_ref<Plain>();
  ASSERT_TRUE(domain->insert(plain, Interval::sized(kPage, kPage), nullptr).ok());
  std::vector<std::uint64_t> seqs;
  for (const Ref<Buffer>& b : buffers) seqs.push_back(b->read_begin());

  testing::invalidate(*domain, pages(0, 4));
  {
    MutexLock l(driver.mu);
    ASSERT_EQ(driver.calls.size(), 1u) << "the driver's lock is taken once per invalidation";
    const std::vector<IntervalNotifier*> expected = {buffers[1].get(), buffers[2].get(),
                                                     buffers[0].get()};  // pages 0, 2, 3
    EXPECT_EQ(driver.calls[0], expected);
  }
  EXPECT_EQ(plain->calls.load(), 1) << "unbatched notifiers of the same range are called too";
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    MutexLock l(driver.mu);
    EXPECT_TRUE(buffers[i]->read_retry(seqs[i])) << "buffer " << i << " missed its set_seq";
  }
  EXPECT_EQ(domain->stats().interval_calls, 4u);
  testing::invalidate(*domain, pages(5, 1));  // reaches nobody: no call
  {
    MutexLock l(driver.mu);
    EXPECT_EQ(driver.calls.size(), 1u);
  }
  for (const Ref<Buffer>& b : buffers) ASSERT_TRUE(domain->remove(*b).ok());
  testing::invalidate(*domain, pages(0, 4));
  {
    MutexLock l(driver.mu);
    EXPECT_EQ(driver.calls.size(), 1u) << "a removed buffer was handed to its batcher";
  }
  ASSERT_TRUE(domain->remove(*outside).ok());
  ASSERT_TRUE(domain->remove(*plain).ok());
}

// Eight buffers, alternating between two drivers: each driver gets one call with its
// four, in key order, whatever order the buffers have in memory.
TEST(InvalidationBatcherTest, TwoBatchersEachGetTheirOwnHitsOnce) {
  auto domain = testing::domain_freeing_each_node();
  Driver drivers[2];
  std::vector<Ref<Buffer>> buffers;
  std::vector<IntervalNotifier*> expected[2];
  for (std::uint64_t p = 0; p < 8; ++p) {
    buffers.push_back(make_ref<Buffer>(drivers[p % 2]));
    expected[p % 2].push_back(buffers.back().get());
  }
  for (std::uint64_t p : {5, 2, 7, 0, 3, 6, 1, 4}) {  // inserted out of order
    ASSERT_TRUE(domain->insert(buffers[p], Interval::sized(p * kPage, kPage), nullptr).ok());
  }
  testing::invalidate(*domain, pages(0, 8));
  for (int d = 0; d < 2; ++d) {
    MutexLock l(drivers[d].mu);
    ASSERT_EQ(drivers[d].calls.size(), 1u) << "driver " << d;
    EXPECT_EQ(drivers[d].calls[0], expected[d]) << "driver " << d;
  }
  for (const Ref<Buffer>& b : buffers) ASSERT_TRUE(domain->remove(*b).ok());
}

TEST(InvalidationBatcherTest, ARefusedNonBlockingBatchFailsTheStartAndUndoesIt) {
  auto domain = testing::domain_freeing_each_node();
  Driver driver;
  driver.refuse = true;
  Ref<Buffer> buffer = make_ref<Buffer>(driver);
  ASSERT_TRUE(domain->insert(buffer, Interval::sized(0, kPage), nullptr).ok());
  absl::StatusOr<InvalidationToken> token =
      domain->invalidate_range_start(pages(0, 1, /*blockable=*/false));
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(domain->active_for_testing(), 0u);
  EXPECT_EQ(domain->seq_for_testing() % 2, 0u) << "the refused start left the sequence odd";
  EXPECT_EQ(domain->stats().refusals, 1u);
  ASSERT_TRUE(domain->remove(*buffer).ok());
}

TEST(InvalidationBatcherDeathTest, ARefusedBlockingBatchIsAContractViolation) {
  auto domain = testing::domain_freeing_each_node();
  Driver driver;
  driver.refuse = true;
  Ref<Buffer> buffer = make_ref<Buffer>(driver);
  ASSERT_TRUE(domain->insert(buffer, Interval::sized(0, kPage), nullptr).ok());
  EXPECT_DEATH(testing::invalidate(*domain, pages(0, 1)),
               "InvalidationBatcher::invalidate\\(\\) returned false for a blockable");
  driver.refuse = false;
  ASSERT_TRUE(domain->remove(*buffer).ok());
}

}  // namespace
}  // namespace itn
