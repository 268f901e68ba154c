// Whole-space notifiers: register/unregister, get/put with NotifierOps, release().
#include <atomic>
#include <cstdint>
#include <thread>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "sync/test_util.h"

namespace itn {
namespace {

using testing::wait_until;

constexpr std::uint64_t kPage = 4096;

class CountingNotifier : public Notifier {
 public:
  void release(NotifierDomain&) override { releases.fetch_add(1); }
  bool invalidate_range_start(const Range& r) override {
    if (!r.blockable && refuse.load()) return false;
    starts.fetch_add(1);
    return true;
  }
  void invalidate_range_end(const Range&) override { ends.fetch_add(1); }

  std::atomic<int> releases{0}, starts{0}, ends{0};
  std::atomic<bool> refuse{false};
};

class RecordingInterval : public IntervalNotifier {
 public:
  bool invalidate(const Range& r, std::uint64_t seq) override {
    set_seq(seq);
    last_event.store(r.event);
    calls.fetch_add(1);
    return true;
  }
  std::atomic<int> calls{0};
  std::atomic<Event> last_event{Event::kUnmap};
};

Range range(std::uint64_t start, std::uint64_t end, bool blockable = true) {
  return Range{.start = start, .end = end, .event = Event::kClear, .blockable = blockable};
}

TEST(NotifierTest, StartAndEndBracketEveryInvalidation) {
  auto domain = make_ref<NotifierDomain>();
  CountingNotifier n;
  ASSERT_TRUE(domain->register_notifier(n).ok());
  EXPECT_EQ(domain->register_notifier(n).code(), absl::StatusCode::kFailedPrecondition);
  InvalidationToken token = testing::start_ok(*domain, range(0, kPage));
  EXPECT_EQ(n.starts.load(), 1);
  EXPECT_EQ(n.ends.load(), 0);
  domain->invalidate_range_end(std::move(token));
  EXPECT_EQ(n.ends.load(), 1);
  ASSERT_TRUE(domain->unregister_notifier(n).ok());
  EXPECT_EQ(n.releases.load(), 1) << "unregister delivers release() when teardown has not";
  EXPECT_EQ(domain->unregister_notifier(n).code(), absl::StatusCode::kInvalidArgument);
}

TEST(NotifierTest, RegisteredDuringAnInvalidationItGetsEveryLaterOneButNotThatEnd) {
  auto domain = make_ref<NotifierDomain>();
  CountingNotifier late;
  InvalidationToken active = testing::start_ok(*domain, range(0, kPage));
  ASSERT_TRUE(domain->register_notifier(late).ok());
  // Starts after the registration returned, while the first is still active: reaches it.
  InvalidationToken later = testing::start_ok(*domain, range(kPage, 2 * kPage));
  EXPECT_EQ(late.starts.load(), 1) << "I28: an invalidation that started after register missed it";
  domain->invalidate_range_end(std::move(later));
  EXPECT_EQ(late.ends.load(), 1);
  domain->invalidate_range_end(std::move(active));
  EXPECT_EQ(late.ends.load(), 1) << "I25: an end without its start";
  testing::invalidate(*domain, range(0, kPage));
  EXPECT_EQ(late.starts.load(), 2);
  EXPECT_EQ(late.ends.load(), 2);
  ASSERT_TRUE(domain->unregister_notifier(late).ok());
}

TEST(NotifierTest, UnregisterDuringAnInvalidationWaitsForItsEnd) {
  auto domain = make_ref<NotifierDomain>();
  CountingNotifier n;
  ASSERT_TRUE(domain->register_notifier(n).ok());
  InvalidationToken active = testing::start_ok(*domain, range(0, kPage));
  ASSERT_EQ(n.starts.load(), 1);
  std::atomic<bool> unregistered{false};
  std::thread unregister([&] {
    EXPECT_TRUE(domain->unregister_notifier(n).ok());
    unregistered.store(true);
  });
  wait_until([&] { return unregistered.load() || domain->stats().unregister_fences > 0; });
  EXPECT_FALSE(unregistered.load()) << "I15: unregister returned while an invalidation that "
                                       "reached the notifier could still call it";
  domain->invalidate_range_end(std::move(active));
  unregister.join();
  EXPECT_EQ(n.ends.load(), 1) << "I25: the notifier got the start but not the end";
}

TEST(NotifierTest, RegisteredAgainAfterUnregisterItGetsReleaseAgain) {
  CountingNotifier n;
  auto first = make_ref<NotifierDomain>();
  ASSERT_TRUE(first->register_notifier(n).ok());
  ASSERT_TRUE(first->unregister_notifier(n).ok());
  EXPECT_EQ(n.releases.load(), 1);
  ASSERT_TRUE(first->register_notifier(n).ok()) << "again, in the same domain";
  first->release();
  EXPECT_EQ(n.releases.load(), 2) << "I14: a new registration gets its own release()";
  ASSERT_TRUE(first->unregister_notifier(n).ok());
  EXPECT_EQ(n.releases.load(), 2) << "delivered once per registration";
  auto second = make_ref<NotifierDomain>();
  ASSERT_TRUE(second->register_notifier(n).ok()) << "again, in another domain";
  testing::invalidate(*second, range(0, kPage));
  EXPECT_EQ(n.starts.load(), 1);
  ASSERT_TRUE(second->unregister_notifier(n).ok());
  EXPECT_EQ(n.releases.load(), 3);
}

TEST(NotifierTest, OfConcurrentRegistrationsInManyDomainsExactlyOneWins) {
  for (int round = 0; round < 50; ++round) {
    CountingNotifier n;
    std::vector<Ref<NotifierDomain>> domains;
    for (int i = 0; i < 4; ++i) domains.push_back(make_ref<NotifierDomain>());
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        if (domains[i]->register_notifier(n).ok()) won.fetch_add(1);
      });
    }
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(won.load(), 1) << "round " << round;
    for (const Ref<NotifierDomain>& d : domains) (void)d->unregister_notifier(n);
  }
}

TEST(NotifierTest, RefusedStartEndsTheNotifiersThatStartedR5) {
  auto domain = make_ref<NotifierDomain>();
  CountingNotifier first, second;
  second.refuse.store(true);
  ASSERT_TRUE(domain->register_notifier(first).ok());
  ASSERT_TRUE(domain->register_notifier(second).ok());
  EXPECT_EQ(domain->invalidate_range_start(range(0, kPage, /*blockable=*/false)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(first.starts.load(), 1);
  EXPECT_EQ(first.ends.load(), 1) << "a notifier whose start succeeded missed its end";
  EXPECT_EQ(second.ends.load(), 0) << "the refusing notifier must not get an end";
  EXPECT_EQ(domain->active_for_testing(), 0u);
  ASSERT_TRUE(domain->unregister_notifier(first).ok());
  ASSERT_TRUE(domain->unregister_notifier(second).ok());
}

TEST(NotifierTest, ReleaseIsDeliveredExactlyOnceR7) {
  auto domain = make_ref<NotifierDomain>();
  CountingNotifier n;
  ASSERT_TRUE(domain->register_notifier(n).ok());
  domain->release();
  domain->release();  // a second teardown attempt is harmless
  EXPECT_EQ(n.releases.load(), 1);
  ASSERT_TRUE(domain->unregister_notifier(n).ok());  // does not deliver it again
  EXPECT_EQ(n.releases.load(), 1);
}

TEST(NotifierTest, UnregisterWaitsForAConcurrentTeardownReleaseR1) {
  auto domain = make_ref<NotifierDomain>();
  struct SlowRelease : CountingNotifier {
    void release(NotifierDomain& d) override {
      inside.store(true);
      wait_until([&] { return may_finish.load(); });
      CountingNotifier::release(d);
      finished.store(true);
    }
    std::atomic<bool> inside{false}, may_finish{false}, finished{false};
  } n;
  ASSERT_TRUE(domain->register_notifier(n).ok());
  std::thread exiting([&] { domain->release(); });
  wait_until([&] { return n.inside.load(); });
  std::atomic<bool> unregistered{false};
  std::thread unregister([&] {
    EXPECT_TRUE(domain->unregister_notifier(n).ok());
    unregistered.store(true);
    // I15: nothing of `n` may run after this point; the driver could free it now.
    EXPECT_TRUE(n.finished.load()) << "unregister returned while release() still ran";
  });
  // Counted under the domain mutex just before unregister waits for the grace period.
  wait_until([&] { return unregistered.load() || domain->stats().unregister_fences > 0; });
  EXPECT_FALSE(unregistered.load()) << "unregister returned while release() still ran";
  n.may_finish.store(true);
  unregister.join();
  exiting.join();
  EXPECT_EQ(n.releases.load(), 1);
}

TEST(NotifierDomainTest, ReleaseSendsOneWholeSpaceReleaseInvalidationAndRefusesNewUsers) {
  auto domain = make_ref<NotifierDomain>();
  auto sub = make_ref<RecordingInterval>();
  ASSERT_TRUE(domain->insert(sub, Interval::sized(10 * kPage, kPage), nullptr).ok());
  domain->release();
  EXPECT_EQ(sub->calls.load(), 1);
  EXPECT_EQ(sub->last_event.load(), Event::kRelease);
  EXPECT_TRUE(domain->released());
  EXPECT_EQ(domain->inserted_count(), 1u) << "notifiers stay inserted until removed";
  auto late = make_ref<RecordingInterval>();
  EXPECT_EQ(domain->insert(late, Interval::sized(0, kPage), nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  CountingNotifier n;
  EXPECT_EQ(domain->register_notifier(n).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(domain->remove(*sub).ok());
}

// get/put: one notifier per (domain, ops), built complete, freed after a grace period.
struct Shared : Notifier {
  explicit Shared(int* ctx) : context(ctx) {}
  bool invalidate_range_start(const Range&) override {
    // R4: a half-built notifier would show a null context here.
    if (context == nullptr) half_built_seen.fetch_add(1);
    return true;
  }
  int* context;
  static inline std::atomic<int> allocs{0}, frees{0}, half_built_seen{0};
};

absl::StatusOr<Notifier*> alloc_shared(NotifierDomain&, void* priv) {
  Shared::allocs.fetch_add(1);
  return new Shared(static_cast<int*>(priv));
}
void free_shared(Notifier* n) {
  Shared::frees.fetch_add(1);
  delete n;
}
const NotifierOps kSharedOps{alloc_shared, free_shared};

TEST(NotifierTest, OneInstancePerOpsBuiltOnceAndFreedAfterTheLastPut) {
  Shared::allocs = 0;
  Shared::frees = 0;
  auto domain = make_ref<NotifierDomain>();
  int context = 0;
  absl::StatusOr<Notifier*> a = domain->get_notifier(&kSharedOps, &context);
  absl::StatusOr<Notifier*> b = domain->get_notifier(&kSharedOps, &context);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(Shared::allocs.load(), 1);
  EXPECT_EQ(static_cast<Shared*>(*a)->context, &context) << "priv reached alloc_notifier";
  ASSERT_TRUE(domain->put_notifier(**a).ok());
  EXPECT_EQ(Shared::frees.load(), 0);
  ASSERT_TRUE(domain->put_notifier(**b).ok());
  domain->barrier();
  EXPECT_EQ(Shared::frees.load(), 1);
}

// A got notifier whose start callback blocks until told, to catch a free that does not
// wait for callbacks in progress.
struct Blocking : Notifier {
  bool invalidate_range_start(const Range&) override {
    inside.store(true);
    wait_until([&] { return may_finish.load(); });
    finished.store(true);
    return true;
  }
  static inline std::atomic<bool> inside{false}, may_finish{false}, finished{false}, freed{false};
};
const NotifierOps kBlockingOps{
    [](NotifierDomain&, void*) -> absl::StatusOr<Notifier*> { return new Blocking; },
    [](Notifier* n) {
      EXPECT_TRUE(Blocking::finished.load()) << "freed while its callback still ran";
      Blocking::freed.store(true);
      delete n;
    }};

TEST(NotifierTest, FreeNeverRunsConcurrentlyWithACallback) {
  auto domain = make_ref<NotifierDomain>();
  Notifier* n = *domain->get_notifier(&kBlockingOps, nullptr);
  std::thread invalidator([&] { testing::invalidate(*domain, range(0, kPage)); });
  wait_until([] { return Blocking::inside.load(); });
  ASSERT_TRUE(domain->put_notifier(*n).ok());  // the last put: never blocks on readers
  EXPECT_FALSE(Blocking::freed.load()) << "freed without a grace period";
  Blocking::may_finish.store(true);
  invalidator.join();
  domain->barrier();  // returns only after the pending free ran
  EXPECT_TRUE(Blocking::freed.load());
}

TEST(NotifierTest, ConcurrentInvalidationsNeverSeeAHalfBuiltNotifierR4) {
  Shared::half_built_seen = 0;
  auto domain = make_ref<NotifierDomain>();
  std::atomic<bool> stop{false};
  std::thread invalidator([&] {
    while (!stop.load()) {
      absl::StatusOr<InvalidationToken> token = domain->invalidate_range_start(range(0, kPage));
      if (token.ok()) domain->invalidate_range_end(*std::move(token));
    }
  });
  int context = 0;
  for (int i = 0; i < 300; ++i) {
    Notifier* n = *domain->get_notifier(&kSharedOps, &context);
    ASSERT_TRUE(domain->put_notifier(*n).ok());
  }
  stop.store(true);
  invalidator.join();
  domain->barrier();
  EXPECT_EQ(Shared::half_built_seen.load(), 0);
}

TEST(NotifierTest, GetAfterReleaseFails) {
  auto domain = make_ref<NotifierDomain>();
  domain->release();
  int context = 0;
  EXPECT_EQ(domain->get_notifier(&kSharedOps, &context).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

const NotifierOps kRefusingOps{[](NotifierDomain&, void*) -> absl::StatusOr<Notifier*> {
                                 return absl::ResourceExhaustedError("no PASID left");
                               },
                               [](Notifier* n) { delete n; }};
const NotifierOps kNullOps{
    [](NotifierDomain&, void*) -> absl::StatusOr<Notifier*> { return nullptr; },
    [](Notifier* n) { delete n; }};

TEST(NotifierTest, AnAllocatorsErrorReachesTheCallerUnchangedAndNothingIsPublished) {
  auto domain = make_ref<NotifierDomain>();
  absl::StatusOr<Notifier*> refused = domain->get_notifier(&kRefusingOps, nullptr);
  EXPECT_EQ(refused.status(), absl::ResourceExhaustedError("no PASID left"));
  EXPECT_EQ(domain->get_notifier(&kNullOps, nullptr).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(domain->get_notifier(nullptr, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Nothing was registered: a later get of working ops builds the only instance.
  Shared::allocs = 0;
  int context = 0;
  absl::StatusOr<Notifier*> n = domain->get_notifier(&kSharedOps, &context);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Shared::allocs.load(), 1);
  EXPECT_TRUE(domain->put_notifier(**n).ok());
  domain->barrier();
}

}  // namespace
}  // namespace itn
