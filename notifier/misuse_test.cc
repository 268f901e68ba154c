// I9: calls that may wait for callbacks, made from a callback or while holding a mutex
// that callbacks take, die in debug builds with a message naming the rule.
#include <cstdint>
#include <functional>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/test_support.h"

namespace itn {
namespace {

constexpr std::uint64_t kPage = 4096;

class DriverNotifier : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t seq) override {
    MutexLock l(driver_mu);
    set_seq(seq);
    if (inside) inside();
    return true;
  }
  Mutex driver_mu;
  std::function<void()> inside;  // runs in the callback, under driver_mu
};

// A domain with one driver notifier inserted over the first page.
struct InsertedDriver {
  InsertedDriver() {
    ITN_CHECK_OK(domain->insert(sub, Interval::sized(0, kPage), nullptr), "a fresh domain");
  }
  ~InsertedDriver() { (void)domain->remove(*sub); }
  void invalidate() { testing::invalidate(*domain, Range{.start = 0, .end = kPage}); }

  Ref<NotifierDomain> domain = make_ref<NotifierDomain>();
  Ref<DriverNotifier> sub = make_ref<DriverNotifier>();
};

TEST(NotifierDomainDeathTest, RemoveFromACallbackDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  InsertedDriver f;
  f.sub->inside = [&] { (void)f.domain->remove(*f.sub); };
  EXPECT_DEATH(f.invalidate(), "I9: NotifierDomain::remove\\(\\) called from a callback");
}

TEST(NotifierDomainDeathTest, ReadBeginFromACallbackDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  InsertedDriver f;
  f.sub->inside = [&] { (void)f.sub->read_begin(); };
  EXPECT_DEATH(f.invalidate(), "I9: IntervalNotifier::read_begin\\(\\) called from a callback");
}

TEST(NotifierDomainDeathTest, BarrierFromACallbackDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  InsertedDriver f;
  f.sub->inside = [&] { f.domain->barrier(); };
  EXPECT_DEATH(f.invalidate(), "I9: NotifierDomain::barrier\\(\\) called from a callback");
}

TEST(NotifierDomainDeathTest, UnregisterFromAWholeSpaceCallbackDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  InsertedDriver f;
  struct SelfUnregistering : Notifier {
    bool invalidate_range_start(const Range&) override {
      (void)domain->unregister_notifier(*this);
      return true;
    }
    NotifierDomain* domain = nullptr;
  } n;
  n.domain = f.domain.get();
  ASSERT_TRUE(f.domain->register_notifier(n).ok());
  EXPECT_DEATH(f.invalidate(),
               "I9: NotifierDomain::unregister_notifier\\(\\) called from a callback");
  ASSERT_TRUE(f.domain->unregister_notifier(n).ok());
}

TEST(NotifierDomainDeathTest, RemoveWhileHoldingALockCallbacksTakeDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  InsertedDriver f;
  f.invalidate();  // the callback takes driver_mu: the domain learns it
  EXPECT_DEATH(
      {
        MutexLock l(f.sub->driver_mu);
        (void)f.domain->remove(*f.sub);
      },
      "I9: NotifierDomain::remove\\(\\) called while holding an itn::Mutex that callbacks");
}

TEST(NotifierDomainDeathTest, ReadBeginWhileHoldingALockCallbacksTakeDies) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS) for I9";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  InsertedDriver f;
  f.invalidate();
  EXPECT_DEATH(
      {
        MutexLock l(f.sub->driver_mu);
        (void)f.sub->read_begin();
      },
      "I9: IntervalNotifier::read_begin\\(\\) called while holding an itn::Mutex");
}

TEST(NotifierDomainTest, UnrelatedLocksAreFine) {
  InsertedDriver f;
  f.invalidate();
  Mutex other;
  MutexLock l(other);
  (void)f.sub->read_begin();  // `other` was never taken by a callback
  SUCCEED();
}

}  // namespace
}  // namespace itn
