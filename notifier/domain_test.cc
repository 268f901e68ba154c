#include "notifier/domain.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

#include "notifier/domain_test_peer.h"
#include "notifier/test_support.h"
#include "sync/test_util.h"

namespace itn {

namespace {

using testing::start_ok;
using testing::wait_until;

constexpr std::uint64_t kPage = 4096;

// A driver-side notifier: takes its driver lock, records the call, calls set_seq().
class RecordingNotifier : public IntervalNotifier {
 public:
  explicit RecordingNotifier(std::atomic<int>* destroyed = nullptr) : destroyed_(destroyed) {}
  ~RecordingNotifier() override {
    if (destroyed_) destroyed_->fetch_add(1);
  }

  bool invalidate(const Range& range, std::uint64_t cur_seq) override {
    if (!range.blockable && refuse_nonblocking.load()) return false;
    MutexLock l(driver_mu);
    set_seq(cur_seq);
    calls.fetch_add(1);
    last_seq.store(cur_seq);
    if (on_invalidate) on_invalidate();
    return true;
  }

  Mutex driver_mu;
  std::atomic<int> calls{0};
  std::atomic<std::uint64_t> last_seq{0};
  std::atomic<bool> refuse_nonblocking{false};
  std::function<void()> on_invalidate;

 private:
  std::atomic<int>* destroyed_;
};

Range range(std::uint64_t start, std::uint64_t end, bool blockable = true) {
  return Range{.start = start, .end = end, .blockable = blockable};
}

// A domain and the notifiers a test added to it. Inserted notifiers and the domain keep
// each other alive until remove(): the destructor takes out whatever a test left in.
struct DomainWithNotifiers {
  ~DomainWithNotifiers() {
    for (auto& n : added) (void)domain->remove(*n);
  }

  Ref<RecordingNotifier> add(std::uint64_t start, std::uint64_t length, const void* key = nullptr) {
    Ref<RecordingNotifier> n = make_ref<RecordingNotifier>();
    EXPECT_TRUE(domain->insert(n, Interval::sized(start, length), key).ok());
    added.push_back(n);
    return n;
  }
  void invalidate(const Range& r) { testing::invalidate(*domain, r); }

  Ref<NotifierDomain> domain = make_ref<NotifierDomain>();
  std::vector<Ref<RecordingNotifier>> added;
};

TEST(NotifierDomainTest, SequenceIsOddOnlyWhileAnInvalidationReachesANotifier) {
  DomainWithNotifiers f;
  auto n = f.add(10 * kPage, kPage);
  const std::uint64_t idle = f.domain->seq_for_testing();
  EXPECT_EQ(idle % 2, 0u);
  InvalidationToken miss = start_ok(*f.domain, range(0, kPage));  // misses n
  EXPECT_EQ(f.domain->seq_for_testing(), idle) << "a range that reached nobody made it odd";
  InvalidationToken hit = start_ok(*f.domain, range(10 * kPage, 11 * kPage));
  EXPECT_EQ(f.domain->seq_for_testing(), idle + 1);
  InvalidationToken second_hit = start_ok(*f.domain, range(10 * kPage, 11 * kPage));
  f.domain->invalidate_range_end(std::move(hit));
  EXPECT_EQ(f.domain->seq_for_testing(), idle + 1) << "even before the last end";
  f.domain->invalidate_range_end(std::move(second_hit));
  // The miss took the fast path: it calls nobody, so nobody waits for it.
  EXPECT_EQ(f.domain->seq_for_testing(), idle + 2) << "the fast miss kept the sequence odd";
  f.domain->invalidate_range_end(std::move(miss));
  EXPECT_EQ(f.domain->seq_for_testing(), idle + 2);
}

TEST(NotifierDomainTest, CallsEachOverlappingNotifierOnceWithTheOddSequence) {
  DomainWithNotifiers f;
  auto inside = f.add(10 * kPage, 2 * kPage);
  auto edge = f.add(12 * kPage, kPage);   // starts exactly at the range's exclusive end
  auto before = f.add(9 * kPage, kPage);  // last byte is just below the range's start
  const Range r = range(10 * kPage, 12 * kPage);
  InvalidationToken token = start_ok(*f.domain, r);
  const std::uint64_t seq = f.domain->seq_for_testing();
  EXPECT_EQ(inside->calls.load(), 1);
  EXPECT_EQ(inside->last_seq.load(), seq);
  EXPECT_EQ(seq % 2, 1u);
  EXPECT_EQ(edge->calls.load(), 0);
  EXPECT_EQ(before->calls.load(), 0);
  f.domain->invalidate_range_end(std::move(token));
  EXPECT_EQ(inside->calls.load(), 1);
}

TEST(NotifierDomainTest, WholeSpaceRangeReachesTheTopOfTheAddressSpace) {
  DomainWithNotifiers f;
  auto top = f.add(kRangeEndMax - kPage + 1, kPage);  // [2^64 - 4096, 2^64 - 1]
  f.invalidate(Range::whole_space(Event::kClear));
  EXPECT_EQ(top->calls.load(), 1);
}

// The top byte alone: a Range ending at kRangeEndMax includes it, so {max, max} is the
// one-byte interval Range::interval() says it is, not an empty range.
TEST(NotifierDomainTest, ARangeOfOnlyTheTopByteReachesItsNotifier) {
  DomainWithNotifiers f;
  auto top = f.add(kRangeEndMax, 1);
  auto below = f.add(kRangeEndMax - 1, 1);
  const Range r{.start = kRangeEndMax, .end = kRangeEndMax};
  ASSERT_TRUE(r.interval().valid());
  f.invalidate(r);
  EXPECT_EQ(top->calls.load(), 1);
  EXPECT_EQ(below->calls.load(), 0);
}

TEST(NotifierDomainTest, InsertDuringInvalidationIsDeferredAndReadBeginWaits) {
  DomainWithNotifiers f;
  const Range r = range(0, 100 * kPage);
  auto live = f.add(0, kPage);
  InvalidationToken first = start_ok(*f.domain, r);
  auto late = f.add(kPage, kPage);  // deferred
  EXPECT_EQ(late->last_seq.load(), 0u);
  // A second invalidation while the first is active does not call the deferred notifier.
  InvalidationToken second = start_ok(*f.domain, r);
  EXPECT_EQ(late->calls.load(), 0);
  EXPECT_EQ(live->calls.load(), 2);
  EXPECT_TRUE(f.domain->find(nullptr, Interval::closed(kPage, kPage)))
      << "find() must see a deferred insert";

  std::atomic<bool> returned{false};
  std::thread reader([&] {
    (void)late->read_begin();
    returned.store(true);
  });
  f.domain->invalidate_range_end(std::move(second));
  EXPECT_EQ(f.domain->active_for_testing(), 1u);
  f.domain->invalidate_range_end(std::move(first));  // applies the deferred insert
  reader.join();
  EXPECT_TRUE(returned.load());
  f.invalidate(r);
  EXPECT_EQ(late->calls.load(), 1) << "applied insert is walked";
}

TEST(NotifierDomainTest, ReadBeginWaitsForAnInvalidationThatReachedIt) {
  DomainWithNotifiers f;
  auto n = f.add(0, kPage);
  InvalidationToken token = testing::start_ok(*f.domain, range(0, kPage));
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    (void)n->read_begin();
    returned.store(true);
  });
  // Counted under the domain mutex before the reader blocks.
  wait_until([&] { return returned.load() || f.domain->stats().read_begin_waits > 0; });
  EXPECT_FALSE(returned.load()) << "read_begin() returned during the invalidation";
  f.domain->invalidate_range_end(std::move(token));
  reader.join();
  EXPECT_TRUE(returned.load());
}

TEST(NotifierDomainTest, ReadRetryIsTrueIffAnInvalidationReachedTheNotifier) {
  DomainWithNotifiers f;
  auto n = f.add(0, kPage);
  const std::uint64_t seq = n->read_begin();
  f.invalidate(range(kPage, 2 * kPage));  // does not reach n
  {
    MutexLock l(n->driver_mu);
    EXPECT_FALSE(n->read_retry(seq));
  }
  EXPECT_FALSE(n->check_retry(seq));
  f.invalidate(range(0, kPage));
  {
    MutexLock l(n->driver_mu);
    EXPECT_TRUE(n->read_retry(seq));
  }
  EXPECT_TRUE(n->check_retry(seq));
  const std::uint64_t again = n->read_begin();
  MutexLock l(n->driver_mu);
  EXPECT_FALSE(n->read_retry(again));
}

TEST(NotifierDomainTest, RemoveDuringInvalidationWaitsForTheEndR3) {
  DomainWithNotifiers f;
  auto n = f.add(0, kPage);
  InvalidationToken token = testing::start_ok(*f.domain, range(0, kPage));
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    EXPECT_TRUE(f.domain->remove(*n).ok());
    removed.store(true);
  });
  // Counted under the domain mutex when the erase is queued, before the remover blocks.
  wait_until([&] { return removed.load() || f.domain->stats().deferred_removes > 0; });
  EXPECT_FALSE(removed.load()) << "remove() returned while its notifier was on the deferred list";
  EXPECT_FALSE(f.domain->find(nullptr, Interval::closed(0, 0)))
      << "find() returned a notifier whose remove() began";
  EXPECT_EQ(f.domain->inserted_count(), 1u);
  f.domain->invalidate_range_end(std::move(token));
  remover.join();
  EXPECT_TRUE(removed.load());
  EXPECT_EQ(f.domain->inserted_count(), 0u);
  f.invalidate(range(0, kPage));
  EXPECT_EQ(n->calls.load(), 1) << "called after remove() returned";
}

TEST(NotifierDomainTest, RemovingADeferredInsertCancelsItWithoutWaiting) {
  DomainWithNotifiers f;
  InvalidationToken token = testing::start_ok(*f.domain, range(0, kPage));
  auto n = f.add(0, kPage);
  EXPECT_TRUE(f.domain->remove(*n).ok());  // would hang if it waited for the end
  f.domain->invalidate_range_end(std::move(token));
  f.invalidate(range(0, kPage));
  EXPECT_EQ(n->calls.load(), 0);
  EXPECT_EQ(f.domain->inserted_count(), 0u);
}

TEST(NotifierDomainTest, MemoryCountsTreeNodesLiveAndRetired) {
  DomainWithNotifiers f;
  constexpr std::uint64_t kNode = IntervalTree<IntervalNotifier*>::kNodeBytes;
  EXPECT_EQ(f.domain->memory().live_bytes, 0u);
  for (std::uint64_t i = 0; i < 10; ++i) f.add(i * kPage, kPage);
  EXPECT_EQ(f.domain->memory().live_bytes, 10 * kNode);
  EXPECT_GE(f.domain->memory().pool_bytes, 10 * kNode);
  const std::uint64_t retired = f.domain->memory().retired_bytes;
  ASSERT_TRUE(f.domain->remove(*f.added.back()).ok());
  f.added.pop_back();
  EXPECT_EQ(f.domain->memory().live_bytes, 9 * kNode);
  EXPECT_GT(f.domain->memory().retired_bytes, retired) << "the erase replaced a path of nodes";
}

TEST(NotifierDomainTest, NonBlockingRefusalUndoesItsBookkeepingR5) {
  DomainWithNotifiers f;
  auto a = f.add(0, kPage);
  auto b = f.add(kPage, kPage);
  b->refuse_nonblocking.store(true);
  const std::uint64_t idle = f.domain->seq_for_testing();
  const Range r = range(0, 2 * kPage, /*blockable=*/false);
  EXPECT_EQ(f.domain->invalidate_range_start(r).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(a->calls.load(), 1) << "a was called before b refused";
  EXPECT_EQ(f.domain->active_for_testing(), 0u);
  EXPECT_EQ(f.domain->seq_for_testing(), idle + 2) << "sequence must end even";
  // The domain works normally afterwards, and a's reader sees the refused invalidation.
  f.invalidate(range(0, kPage));
  EXPECT_EQ(a->calls.load(), 2);
}

// A change that fails half-way (out of memory while copying a path) must not unwind into
// a batch that publishes what it built: the changes terminate instead.
static_assert(noexcept(std::declval<NotifierDomain&>().insert(std::declval<Ref<IntervalNotifier>>(),
                                                              Interval::sized(0, 1), nullptr)));
static_assert(noexcept(std::declval<NotifierDomain&>().remove(std::declval<IntervalNotifier&>())));
static_assert(noexcept(std::declval<IntervalTree<int>&>().insert(0, 0, 0)));
static_assert(noexcept(std::declval<IntervalTree<int>&>().erase(0, 0, 0)));

TEST(NotifierDomainTest, BadArgumentsAreRejectedAndChangeNothing) {
  DomainWithNotifiers f;
  auto n = make_ref<RecordingNotifier>();
  EXPECT_EQ(f.domain->insert(nullptr, Interval::sized(0, kPage), nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.domain->insert(n, Interval::sized(0, 0), nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.domain->insert(n, Interval::sized(kRangeEndMax, 2), nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.domain->remove(*n).code(), absl::StatusCode::kInvalidArgument) << "a stranger";
  EXPECT_EQ(f.domain->invalidate_range_start(range(5, 5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.domain->inserted_count(), 0u);
  ASSERT_TRUE(f.domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  EXPECT_EQ(f.domain->insert(n, Interval::sized(0, kPage), nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  auto other = make_ref<NotifierDomain>();
  EXPECT_EQ(other->insert(n, Interval::sized(0, kPage), nullptr).code(),
            absl::StatusCode::kFailedPrecondition)
      << "inserted in another domain (I27)";
  EXPECT_EQ(other->remove(*n).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(f.domain->remove(*n).ok());
  EXPECT_EQ(f.domain->remove(*n).code(), absl::StatusCode::kInvalidArgument);
  other->release();
  EXPECT_EQ(other->insert(n, Interval::sized(0, kPage), nullptr).code(),
            absl::StatusCode::kFailedPrecondition)
      << "the domain was released";
  EXPECT_EQ(f.domain->inserted_count(), 0u);
  // The refused inserts left the notifier as it was: free to be inserted again.
  ASSERT_TRUE(f.domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  ASSERT_TRUE(f.domain->remove(*n).ok());
}

TEST(NotifierDomainTest, FindReturnsLowestMatchingOwnerAndKeepsItAlive) {
  DomainWithNotifiers f;
  int owner_a = 0, owner_b = 0;
  std::atomic<int> destroyed{0};
  auto low = make_ref<RecordingNotifier>(&destroyed);  // removed below
  ASSERT_TRUE(f.domain->insert(low, Interval::sized(2 * kPage, 4 * kPage), &owner_a).ok());
  auto high = f.add(3 * kPage, kPage, &owner_a);
  auto other = f.add(0, 10 * kPage, &owner_b);
  EXPECT_EQ(f.domain->find(&owner_a, Interval::closed(3 * kPage, 3 * kPage)).get(), low.get());
  EXPECT_EQ(f.domain->find(&owner_b, Interval::closed(3 * kPage, 3 * kPage)).get(), other.get());
  EXPECT_FALSE(f.domain->find(&owner_a, Interval::closed(0, kPage)));
  Ref<IntervalNotifier> held = f.domain->find(&owner_a, Interval::closed(2 * kPage, 2 * kPage));
  RecordingNotifier* raw = low.get();
  low.reset();
  ASSERT_TRUE(f.domain->remove(*raw).ok());
  EXPECT_EQ(f.domain->find(&owner_a, Interval::closed(2 * kPage, 3 * kPage)).get(), high.get())
      << "find() returned a removed notifier";
  f.domain->barrier();  // the domain's reference is gone now
  EXPECT_EQ(destroyed.load(), 0) << "freed while find()'s reference is held";
  EXPECT_EQ(held->interval().start(), 2 * kPage);
  held.reset();
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(NotifierDomainTest, FindWorksInsideACallback) {
  DomainWithNotifiers f;
  int owner = 0;
  auto n = f.add(0, kPage, &owner);
  Ref<IntervalNotifier> seen;
  n->on_invalidate = [&] { seen = f.domain->find(&owner, Interval::closed(0, 0)); };
  f.invalidate(range(0, kPage));
  EXPECT_EQ(seen.get(), n.get());
}

TEST(NotifierDomainTest, ReadBeginAndFindReturnWhileAnotherThreadHoldsTheDomainLock) {
  DomainWithNotifiers f;
  auto n = f.add(0, kPage);
  std::atomic<bool> held{false}, done{false};
  std::thread holder([&] {
    MutexLock l(NotifierDomainTestPeer::mu(*f.domain));
    held.store(true);
    wait_until([&] { return done.load(); });
  });
  wait_until([&] { return held.load(); });
  (void)n->read_begin();
  EXPECT_TRUE(f.domain->find(nullptr, Interval::closed(0, 0)));
  done.store(true);
  holder.join();
}

TEST(NotifierDomainTest, NotifierKeepsTheDomainAliveUntilRemoved) {
  Ref<NotifierDomain> domain = make_ref<NotifierDomain>();
  auto n = make_ref<RecordingNotifier>();
  ASSERT_TRUE(domain->insert(n, Interval::sized(0, kPage), nullptr).ok());
  NotifierDomain* raw = domain.get();
  domain.reset();  // the address space lets go; the notifier's grab keeps the memory
  EXPECT_EQ(raw->ref_count_for_testing(), 1u);
  testing::invalidate(*raw, range(0, kPage));
  EXPECT_EQ(n->calls.load(), 1);
  ASSERT_TRUE(raw->remove(*n).ok());  // drops the last grab: the domain is freed here
}

TEST(NotifierDomainDeathTest, BlockableRefusalIsAContractViolation) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto domain = make_ref<NotifierDomain>();
  class Refuser : public IntervalNotifier {
    bool invalidate(const Range&, std::uint64_t) override { return false; }
  };
  auto refuser = make_ref<Refuser>();
  ASSERT_TRUE(domain->insert(refuser, Interval::sized(0, kPage), nullptr).ok());
  EXPECT_DEATH((void)domain->invalidate_range_start(range(0, kPage)),
               "returned false for a blockable invalidation");
  ASSERT_TRUE(domain->remove(*refuser).ok());
}

}  // namespace
}  // namespace itn
