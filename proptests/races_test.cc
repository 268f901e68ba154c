// The historical races R1-R7 (docs/DESIGN.md section 4), each a scenario explored by the
// deterministic scheduler under PCT: the threads run the real library, one at a time,
// and the property the race broke is checked inside the threads (as soon as it could
// fail) and after them. A failure prints its schedule; ITN_SCHEDULE replays it.
//
// How many executions: PCT finds a bug of depth d in an execution of k scheduling
// decisions with n threads with probability p >= 1/(n k^(d-1)) per execution, so
// ln(1/0.01)/p executions find it with probability 99%. Every race here has depth 2 (one
// ordering constraint: "B runs between these two steps of A"); kBudget in races.h sizes
// the run from the k measured on the first execution and says when the budget falls short
// of that worst-case bound (docs/TESTING.md has the measured detection times, which are
// far below it).
#include "proptests/races.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "hw_model/process.h"
#include "hw_model/sva.h"
#include "notifier/domain.h"
#include "notifier/test_support.h"
#include "sync/atomic.h"

namespace itn::races {
namespace {

using sched::Execution;

constexpr std::uint64_t kPage = 4096;

Range range(std::uint64_t start, std::uint64_t end, bool blockable = true) {
  return Range{.start = start, .end = end, .event = Event::kClear, .blockable = blockable};
}

// An interval notifier that counts its calls and flags any made after it was removed.
class Sub : public IntervalNotifier {
 public:
  explicit Sub(bool refuses = false) : refuses_(refuses) {}
  ~Sub() override { alive = 0; }
  bool invalidate(const Range& r, std::uint64_t seq) override {
    if (!r.blockable && refuses_) return false;
    if (removed.load(std::memory_order_relaxed)) called_after_remove = true;
    set_seq(seq);
    ++calls;
    return true;
  }
  Atomic<bool> removed{false};  // set by the test when remove() returned
  bool called_after_remove = false;
  int calls = 0;
  int alive = 0x5eed;  // the destructor clears it: a freed notifier reads as dead

 private:
  const bool refuses_;
};

// R1 (2015 HMM mirror review): unregister returned while the teardown's release() still ran; the
// driver then freed what release() was using.
TEST(RaceTest, R1UnregisterWaitsForAConcurrentTeardownRelease) {
  expect_no_race("R1", [](Execution& ex) -> absl::Status {
    struct Mirror : Notifier {
      void release(NotifierDomain&) override {
        inside.store(true, std::memory_order_relaxed);
        steps.fetch_add(1, std::memory_order_relaxed);  // a window of scheduling points
        steps.fetch_add(1, std::memory_order_relaxed);
        inside.store(false, std::memory_order_relaxed);
      }
      Atomic<bool> inside{false};
      Atomic<int> steps{0};
    } mirror;
    auto domain = testing::domain_freeing_each_node();
    if (!domain->register_notifier(mirror).ok()) return absl::InternalError("register");
    bool freed_while_inside = false;
    ex.run({[&] { domain->release(); },  // the process exits
            [&] {                        // the driver closes its file
              (void)domain->unregister_notifier(mirror);
              freed_while_inside = mirror.inside.load(std::memory_order_relaxed);
            }});
    if (freed_while_inside) return absl::InternalError("unregister returned inside release()");
    return absl::OkStatus();
  });
}

// R2 (the 2020 find() proposal): a find() result freed by a concurrent remove and its deferred
// free.
TEST(RaceTest, R2FindResultOutlivesAConcurrentRemove) {
  expect_no_race("R2", [](Execution& ex) -> absl::Status {
    auto domain = testing::domain_freeing_each_node();
    const int owner = 0;
    auto sub = make_ref<Sub>();
    if (!domain->insert(sub, Interval::sized(0, kPage), &owner).ok())
      return absl::InternalError("insert");
    Sub* raw = sub.get();
    bool saw_dead = false;
    ex.run({[&] {
              Ref<IntervalNotifier> found = domain->find(&owner, Interval::closed(0, kPage - 1));
              if (found) saw_dead = static_cast<Sub*>(found.get())->alive != 0x5eed;
            },
            [&] {
              (void)domain->remove(*raw);
              sub.reset();        // the test's own reference
              domain->barrier();  // let deferred frees run
            }});
    return saw_dead ? absl::InternalError("find() returned a freed notifier") : absl::OkStatus();
  });
}

// R3 (the 2022 kernel fix): remove() returned while its erase was still deferred, so a
// later invalidation still called the notifier.
TEST(RaceTest, R3RemoveReturnsOnlyAfterItsDeferredEraseIsApplied) {
  expect_no_race("R3", [](Execution& ex) -> absl::Status {
    auto domain = testing::domain_freeing_each_node();
    auto sub = make_ref<Sub>();
    if (!domain->insert(sub, Interval::sized(0, kPage), nullptr).ok())
      return absl::InternalError("insert");
    auto invalidate = [&] { testing::invalidate(*domain, range(0, kPage)); };
    ex.run({invalidate, invalidate, [&] {
              (void)domain->remove(*sub);
              sub->removed.store(true, std::memory_order_relaxed);
            }});
    if (sub->called_after_remove) return absl::InternalError("invalidate() after remove()");
    return absl::OkStatus();
  });
}

// R4 (the 2020 alloc_notifier priv patch): a get_notifier() instance seen half-built by a
// concurrent invalidation.
struct Shared : Notifier {
  explicit Shared(const int* c) : context(c) {}
  bool invalidate_range_start(const Range&) override {
    if (context == nullptr) half_built = true;
    return true;
  }
  const int* context;
  static inline bool half_built = false;
};
constexpr NotifierOps kSharedOps{[](NotifierDomain&, void* priv) -> absl::StatusOr<Notifier*> {
                                   return new Shared(static_cast<int*>(priv));
                                 },
                                 [](Notifier* n) { delete n; }};

TEST(RaceTest, R4GetNotifierPublishesOnlyCompleteNotifiers) {
  expect_no_race("R4", [](Execution& ex) -> absl::Status {
    Shared::half_built = false;
    auto domain = testing::domain_freeing_each_node();
    int context = 1;
    ex.run({[&] {
              absl::StatusOr<Notifier*> n = domain->get_notifier(&kSharedOps, &context);
              if (n.ok()) (void)domain->put_notifier(**n);
            },
            [&] { testing::invalidate(*domain, range(0, kPage)); }});
    domain->barrier();
    return Shared::half_built ? absl::InternalError("a half-built notifier was called")
                              : absl::OkStatus();
  });
}

// R5 (the 2021 kernel fix): a non-blocking start refused part-way must end the notifiers
// whose start succeeded, undo its own count, and not be ended by the caller.
TEST(RaceTest, R5RefusedNonBlockingStartLeavesNothingBehind) {
  expect_no_race("R5", [](Execution& ex) -> absl::Status {
    struct Whole : Notifier {
      bool invalidate_range_start(const Range&) override {
        ++starts;
        return true;
      }
      void invalidate_range_end(const Range&) override { ++ends; }
      int starts = 0, ends = 0;
    } whole;
    auto domain = testing::domain_freeing_each_node();
    auto ok = make_ref<Sub>(), refusing = make_ref<Sub>(/*refuses=*/true);
    if (!domain->register_notifier(whole).ok() ||
        !domain->insert(ok, Interval::sized(0, kPage), nullptr).ok() ||
        !domain->insert(refusing, Interval::sized(kPage, kPage), nullptr).ok()) {
      return absl::InternalError("setup");
    }
    ex.run({[&] {
              const Range r = range(0, 2 * kPage, /*blockable=*/false);
              absl::StatusOr<InvalidationToken> token = domain->invalidate_range_start(r);
              if (token.ok()) domain->invalidate_range_end(*std::move(token));
            },
            [&] { testing::invalidate(*domain, range(0, kPage)); },
            [&] { (void)ok->read_begin(); }});  // hangs (a deadlock report) if left odd
    std::string problems;
    if (domain->active_for_testing() != 0) absl::StrAppend(&problems, "active count left; ");
    if (domain->seq_for_testing() % 2 != 0) absl::StrAppend(&problems, "sequence left odd; ");
    if (whole.starts != whole.ends) {
      absl::StrAppend(&problems, whole.starts, " starts but ", whole.ends, " ends; ");
    }
    if (!problems.empty()) return absl::InternalError(problems);  // (cleanup would hang)
    (void)domain->remove(*ok);
    (void)domain->remove(*refusing);
    (void)domain->unregister_notifier(whole);
    return absl::OkStatus();
  });
}

// R6 (2020 SVA exit ordering): process exit releases the mm before the device file closes; the
// PASID must stay allocated until the last unbind and a grace period, whatever runs between.
TEST(RaceTest, R6PasidIsNotReusedWhileABondHoldsIt) {
  expect_no_race("R6", [](Execution& ex) -> absl::Status {
    PasidTrace trace;
    hw::Iommu iommu(/*max_pasids=*/8, trace.callback());
    hw::SvaDevice accel(iommu);
    Ref<hw::Process> p = make_ref<hw::Process>(), q = make_ref<hw::Process>();
    Ref<hw::SvaBond> bond = *accel.bind(*p);
    const std::uint32_t pasid = bond->pasid();
    Atomic<bool> unbinding{false};  // from here on the bond may let go of the PASID
    auto on_close = [&] {
      unbinding.store(true, std::memory_order_relaxed);
      (void)bond->unbind();
    };
    if (!p->install(make_ref<hw::OpenFile>("accel", on_close)).ok()) {
      return absl::InternalError("install");
    }
    bool reused_while_held = false;
    Ref<hw::SvaBond> other;
    ex.run({[&] { p->exit(); },  // exit_mm (release), then exit_files (unbind)
            [&] {
              absl::StatusOr<Ref<hw::SvaBond>> b = accel.bind(*q);
              if (!b.ok()) return;
              other = *b;
              // The same id is correct only once the bond is going (and then only after
              // the free that follows its last put and a grace period).
              if (other->pasid() == pasid && !unbinding.load(std::memory_order_relaxed)) {
                reused_while_held = true;
              }
            }});
    p->mm().notifiers().barrier();
    if (other) (void)other->unbind();
    q->mm().notifiers().barrier();
    if (reused_while_held) return absl::InternalError("PASID reused while a bond held it");
    if (!trace.freed(pasid)) return absl::InternalError("PASID never freed");
    return absl::OkStatus();
  });
}

// R7 (2020 SVA io_mm review): release() delivered twice (teardown racing unregister, or two
// teardowns).
TEST(RaceTest, R7ReleaseIsDeliveredOnce) {
  expect_no_race("R7", [](Execution& ex) -> absl::Status {
    struct Counting : Notifier {
      void release(NotifierDomain&) override { releases.fetch_add(1, std::memory_order_relaxed); }
      Atomic<int> releases{0};
    } n;
    auto domain = testing::domain_freeing_each_node();
    if (!domain->register_notifier(n).ok()) return absl::InternalError("register");
    ex.run({[&] { domain->release(); }, [&] { (void)domain->unregister_notifier(n); },
            [&] { domain->release(); }});
    const int releases = n.releases.load(std::memory_order_relaxed);
    return releases == 1
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat("release() delivered ", releases, " times"));
  });
}

}  // namespace
}  // namespace itn::races
