// Unit tests of the per-notifier model (proptests/lin/notifier_model.h) through the
// checker: hand-written domain histories, split per notifier by PerNotifier, that the
// real domain can produce (linearizable) and that it must never produce (not).
#include "proptests/lin/notifier_model.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

#include "testing/lin/checker.h"
#include "testing/lin/history.h"

namespace itn::lin {
namespace {

static_assert(SequentialModel<NotifierModel>);

using K = DomainOp::Kind;
using absl::StatusCode;
using DomainHistory = History<DomainOp, NotifierResult>;

// Notifier 0 covers page 0, notifier 1 page 2; kElsewhere touches neither.
constexpr std::uint64_t kPage = 4096;
const std::vector<std::pair<std::uint64_t, std::uint64_t>> kIntervals = {
    {0, kPage - 1}, {2 * kPage, 3 * kPage - 1}};
constexpr std::pair<std::uint64_t, std::uint64_t> kOver0 = {0, kPage - 1};
constexpr std::pair<std::uint64_t, std::uint64_t> kOver1 = {2 * kPage, 2 * kPage};
constexpr std::pair<std::uint64_t, std::uint64_t> kElsewhere = {5 * kPage, 6 * kPage - 1};

DomainOp on(K kind, int sub = 0) { return DomainOp{kind, sub, 0, 0, 0}; }
DomainOp find(int sub) { return DomainOp{K::kFind, sub, 0, kPage * 4, 0}; }
DomainOp read_retry(std::uint64_t seq, int sub = 0) {
  return DomainOp{K::kReadRetry, sub, 0, 0, seq};
}
DomainOp start(std::pair<std::uint64_t, std::uint64_t> r) {
  return DomainOp{K::kStart, -1, r.first, r.second, 0};
}
DomainOp end(std::pair<std::uint64_t, std::uint64_t> r) {
  return DomainOp{K::kEnd, -1, r.first, r.second, 0};
}

const NotifierResult kOk = NotifierResult::ok();
NotifierResult status(StatusCode c) { return NotifierResult::status(c); }

void run(DomainHistory& h, int thread, DomainOp op, NotifierResult r) {
  h.ret(h.call(thread, op), r);
}

CheckResult check_domain(const DomainHistory& h) {
  return check_partitioned(NotifierModel{}, h.operations(), PerNotifier(kIntervals));
}

// A notifier's life on one thread, values as the real domain produces them.
TEST(NotifierModelTest, SerialLifecycleIsLinearizable) {
  DomainHistory h;
  run(h, 0, on(K::kInsert), kOk);
  run(h, 0, find(0), NotifierResult::found(true));
  run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
  run(h, 0, read_retry(1), NotifierResult::retry(false));
  run(h, 0, start(kOver0), kOk);
  run(h, 0, end(kOver0), kOk);
  run(h, 0, read_retry(1), NotifierResult::retry(true));
  run(h, 0, on(K::kReadBegin), NotifierResult::begun(3));
  run(h, 0, start(kElsewhere), kOk);
  run(h, 0, end(kElsewhere), kOk);
  run(h, 0, read_retry(3), NotifierResult::retry(false));
  run(h, 0, on(K::kRemove), kOk);
  run(h, 0, find(0), NotifierResult::found(false));
  run(h, 0, on(K::kRemove), status(StatusCode::kInvalidArgument));
  run(h, 0, on(K::kInsert), kOk);  // I27: inserted again once remove() returned
  run(h, 0, on(K::kInsert), status(StatusCode::kFailedPrecondition));
  run(h, 0, find(0), NotifierResult::found(true));
  run(h, 0, on(K::kRemove), kOk);
  const CheckResult r = check_domain(h);
  EXPECT_TRUE(r.ok()) << r;
  EXPECT_EQ(r.histories, 2u);  // the starts and ends reach notifier 1's part too
}

// read_begin -> 1, then a whole invalidation of the notifier, then read_retry(1): it
// must say true (I6).
TEST(NotifierModelTest, ReadRetryFalseAfterCompletedInvalidationIsNotLinearizable) {
  for (bool retry : {true, false}) {
    DomainHistory h;
    run(h, 0, on(K::kInsert), kOk);
    run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
    run(h, 1, start(kOver0), kOk);
    run(h, 1, end(kOver0), kOk);
    run(h, 0, read_retry(1), NotifierResult::retry(retry));
    const CheckResult r = check_domain(h);
    EXPECT_EQ(r.ok(), retry) << r;
  }
}

TEST(NotifierModelTest, ReadRetryDuringInvalidationStartMaySayEither) {
  for (bool retry : {true, false}) {
    DomainHistory h;
    run(h, 0, on(K::kInsert), kOk);
    run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
    const auto s = h.call(1, start(kOver0));
    run(h, 0, read_retry(1), NotifierResult::retry(retry));
    h.ret(s, kOk);
    run(h, 1, end(kOver0), kOk);
    EXPECT_TRUE(check_domain(h).ok()) << "retry " << retry;
  }
}

TEST(NotifierModelTest, InvalidationElsewhereDoesNotForceRetry) {
  for (bool retry : {true, false}) {
    DomainHistory h;
    run(h, 0, on(K::kInsert), kOk);
    run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
    run(h, 1, start(kOver1), kOk);
    run(h, 1, end(kOver1), kOk);
    run(h, 0, read_retry(1), NotifierResult::retry(retry));
    EXPECT_EQ(check_domain(h).ok(), !retry);
  }
}

// find() must not return a notifier whose remove() has returned; while remove() runs it
// may return it or not.
TEST(NotifierModelTest, FindAfterRemoveReturnedIsNotLinearizable) {
  for (bool overlapping : {false, true}) {
    for (bool found : {false, true}) {
      DomainHistory h;
      run(h, 0, on(K::kInsert), kOk);
      const auto rm = h.call(0, on(K::kRemove));
      if (overlapping) run(h, 1, find(0), NotifierResult::found(found));
      h.ret(rm, kOk);
      if (!overlapping) run(h, 1, find(0), NotifierResult::found(found));
      EXPECT_EQ(check_domain(h).ok(), overlapping || !found)
          << (overlapping ? "during" : "after") << " remove, found " << found;
    }
  }
}

// An insert during an active invalidation is deferred: its read_begin() waits for the
// end (I7), so it cannot return before end() is called.
TEST(NotifierModelTest, ReadBeginOfDeferredInsertWaitsForEnd) {
  for (bool returns_early : {true, false}) {
    DomainHistory h;
    run(h, 1, start(kElsewhere), kOk);
    run(h, 0, on(K::kInsert), kOk);
    const auto rb = h.call(0, on(K::kReadBegin));
    if (returns_early) h.ret(rb, NotifierResult::begun(3));
    run(h, 1, end(kElsewhere), kOk);
    if (!returns_early) h.ret(rb, NotifierResult::begun(3));
    EXPECT_EQ(check_domain(h).ok(), !returns_early);
  }
}

// The deferred notifier is not called by invalidations that start before the drain.
TEST(NotifierModelTest, DeferredInsertIsNotReachedBeforeTheDrain) {
  for (bool retry : {true, false}) {
    DomainHistory h;
    run(h, 1, start(kElsewhere), kOk);
    run(h, 0, on(K::kInsert), kOk);
    const auto rb = h.call(0, on(K::kReadBegin));
    run(h, 2, start(kOver0), kOk);  // before the drain: skips the deferred notifier
    run(h, 1, end(kElsewhere), kOk);
    run(h, 2, end(kOver0), kOk);          // the drain
    h.ret(rb, NotifierResult::begun(3));  // the value the deferred insert got
    run(h, 0, read_retry(3), NotifierResult::retry(retry));
    EXPECT_EQ(check_domain(h).ok(), !retry);
  }
}

// R3: a notifier reached by an active invalidation is erased only by the end that drains
// it, so remove() cannot return before that end is called.
TEST(NotifierModelTest, RemoveOfReachedNotifierWaitsForEndR3) {
  for (bool returns_early : {true, false}) {
    DomainHistory h;
    run(h, 0, on(K::kInsert), kOk);
    run(h, 1, start(kOver0), kOk);
    const auto rm = h.call(0, on(K::kRemove));
    if (returns_early) h.ret(rm, kOk);
    run(h, 1, end(kOver0), kOk);
    if (!returns_early) h.ret(rm, kOk);
    EXPECT_EQ(check_domain(h).ok(), !returns_early);
  }
}

// I8: after remove() returned no invalidation reaches the notifier.
TEST(NotifierModelTest, InvalidationAfterRemoveReturnedDoesNotReach) {
  for (bool retry : {true, false}) {
    DomainHistory h;
    run(h, 0, on(K::kInsert), kOk);
    run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
    run(h, 0, on(K::kRemove), kOk);
    run(h, 1, start(kOver0), kOk);
    run(h, 1, end(kOver0), kOk);
    run(h, 0, read_retry(1), NotifierResult::retry(retry));
    EXPECT_EQ(check_domain(h).ok(), !retry);
  }
}

// A remove() that waits (the domain sequence is odd because of another notifier) hides
// the notifier from find() at once, but invalidations still reach it until the drain.
TEST(NotifierModelTest, RemovingNotifierIsStillReached) {
  DomainHistory h;
  run(h, 0, on(K::kInsert), kOk);
  run(h, 2, on(K::kInsert, 1), kOk);
  run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
  run(h, 2, start(kOver1), kOk);  // reaches notifier 1: the domain sequence is odd
  const auto rm = h.call(0, on(K::kRemove));
  run(h, 1, find(0), NotifierResult::found(false));
  run(h, 1, start(kOver0), kOk);
  run(h, 1, read_retry(1), NotifierResult::retry(true));
  run(h, 1, end(kOver0), kOk);
  run(h, 2, end(kOver1), kOk);
  h.ret(rm, kOk);
  const CheckResult r = check_domain(h);
  EXPECT_TRUE(r.ok()) << r;
}

// After an invalidation reached it, the notifier's sequence value must change.
TEST(NotifierModelTest, SequenceValueChangesWhenReached) {
  for (std::uint64_t second : {1, 3}) {
    DomainHistory h;
    run(h, 0, on(K::kInsert), kOk);
    run(h, 0, on(K::kReadBegin), NotifierResult::begun(1));
    run(h, 1, start(kOver0), kOk);
    run(h, 1, end(kOver0), kOk);
    run(h, 0, on(K::kReadBegin), NotifierResult::begun(second));
    EXPECT_EQ(check_domain(h).ok(), second != 1);
  }
}

TEST(NotifierModelTest, ConcurrentInsertsOfOneNotifierOneSucceeds) {
  for (bool both_ok : {false, true}) {
    DomainHistory h;
    const auto a = h.call(0, on(K::kInsert));
    const auto b = h.call(1, on(K::kInsert));
    h.ret(a, kOk);
    h.ret(b, both_ok ? kOk : status(StatusCode::kFailedPrecondition));
    EXPECT_EQ(check_domain(h).ok(), !both_ok);
  }
}

// A remove blocked forever (its invalidation never ends) stays pending: fine.
TEST(NotifierModelTest, PendingRemoveIsLinearizable) {
  DomainHistory h;
  run(h, 0, on(K::kInsert), kOk);
  run(h, 1, start(kOver0), kOk);
  h.call(0, on(K::kRemove));
  run(h, 2, find(0), NotifierResult::found(false));
  EXPECT_TRUE(check_domain(h).ok());
}

// Two notifiers: the bad behaviour of notifier 1 is reported under its key, and the
// invalidation of notifier 0 leaves notifier 1's reads alone.
TEST(NotifierModelTest, PartitionPerNotifierNamesTheBadOne) {
  DomainHistory h;
  run(h, 0, on(K::kInsert, 0), kOk);
  run(h, 1, on(K::kInsert, 1), kOk);
  run(h, 0, on(K::kReadBegin, 0), NotifierResult::begun(1));
  run(h, 1, on(K::kReadBegin, 1), NotifierResult::begun(1));
  run(h, 2, start(kOver0), kOk);
  run(h, 2, end(kOver0), kOk);
  run(h, 0, read_retry(1, 0), NotifierResult::retry(true));
  run(h, 1, read_retry(1, 1), NotifierResult::retry(false));
  run(h, 1, on(K::kRemove, 1), kOk);
  run(h, 0, find(1), NotifierResult::found(true));  // after notifier 1's remove returned
  const CheckResult r = check_domain(h);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failed_key, "1");
  EXPECT_NE(r.explanation.find("find"), std::string::npos) << r;
}

}  // namespace
}  // namespace itn::lin
