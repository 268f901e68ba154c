// NotifierDomain::stats(): each counter counts exactly its events, and a waiting
// operation is counted before it blocks.
#include <atomic>
#include <cstdint>
#include <thread>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/notifier.h"
#include "notifier/test_support.h"
#include "sync/test_util.h"

namespace itn {
namespace {

using testing::wait_until;

constexpr std::uint64_t kPage = 4096;

class Sub : public IntervalNotifier {
 public:
  bool invalidate(const Range& range, std::uint64_t cur_seq) override {
    if (!range.blockable && refuse) return false;
    set_seq(cur_seq);
    return true;
  }
  bool refuse = false;
};

Range pages(std::uint64_t first, std::uint64_t count, bool blockable = true) {
  return Range{.start = first * kPage, .end = (first + count) * kPage, .blockable = blockable};
}

TEST(NotifierDomainTest, CountsStartsCallsAndRefusals) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Sub> a = make_ref<Sub>(), b = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(a, Interval::sized(0, kPage), nullptr).ok());
  ASSERT_TRUE(domain->insert(b, Interval::sized(kPage, kPage), nullptr).ok());
  testing::invalidate(*domain, pages(0, 2));   // calls both
  testing::invalidate(*domain, pages(10, 1));  // calls none
  b->refuse = true;
  EXPECT_EQ(domain->invalidate_range_start(pages(0, 2, /*blockable=*/false)).status().code(),
            absl::StatusCode::kUnavailable);  // calls a, then b refuses
  const NotifierDomainStats s = domain->stats();
  EXPECT_EQ(s.starts, 3u);
  EXPECT_EQ(s.interval_calls, 4u);
  EXPECT_EQ(s.refusals, 1u);
  EXPECT_EQ(s.deferred_inserts, 0u);
  EXPECT_EQ(s.deferred_removes, 0u);
  EXPECT_EQ(s.read_begin_waits, 0u);
  EXPECT_EQ(s.reclaim_waits, 0u) << "far below the default cap";
  ASSERT_TRUE(domain->remove(*a).ok());
  ASSERT_TRUE(domain->remove(*b).ok());
}

TEST(NotifierDomainTest, CountsEachWaitBeforeItBlocks) {
  auto domain = testing::domain_freeing_each_node();
  Ref<Sub> live = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(live, Interval::sized(0, kPage), nullptr).ok());
  InvalidationToken token = testing::start_ok(*domain, pages(0, 1));
  Ref<Sub> late = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(late, Interval::sized(kPage, kPage), nullptr).ok());  // deferred
  std::thread reader([&] { (void)late->read_begin(); });  // deferred: waits (I7)
  std::thread remover([&] { EXPECT_TRUE(domain->remove(*live).ok()); });
  // Both are counted under the mutex before they wait for the end, which only this
  // thread can do: seeing the counts proves they were taken first.
  wait_until([&] {
    const NotifierDomainStats s = domain->stats();
    return s.read_begin_waits == 1 && s.deferred_removes == 1;
  });
  domain->invalidate_range_end(std::move(token));
  reader.join();
  remover.join();
  const NotifierDomainStats s = domain->stats();
  EXPECT_EQ(s.deferred_inserts, 1u);
  EXPECT_EQ(s.read_begin_waits, 1u);
  EXPECT_EQ(s.deferred_removes, 1u);
  ASSERT_TRUE(domain->remove(*late).ok());
}

TEST(NotifierDomainTest, CountsUnregisterFencesAndReclaimWaits) {
  auto domain = make_ref<NotifierDomain>(NotifierDomainOptions{.max_retired_bytes = 0});
  Notifier whole;
  ASSERT_TRUE(domain->register_notifier(whole).ok());
  ASSERT_TRUE(domain->unregister_notifier(whole).ok());
  EXPECT_EQ(domain->stats().unregister_fences, 1u);
  Ref<Sub> n = make_ref<Sub>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  ASSERT_TRUE(domain->remove(*n).ok());  // retires nodes and pins `n`: past a cap of 0
  EXPECT_GE(domain->stats().reclaim_waits, 1u);
}

}  // namespace
}  // namespace itn
