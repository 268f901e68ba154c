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

class MisuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ITN_DEBUG_CHECKS)
      GTEST_SKIP()
          << "needs debug checks (ITN_DEBUG_CHECKS: a build without NDEBUG) for the I9 checks";
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    ASSERT_TRUE(domain_->insert(sub_, Interval::sized(0, kPage), nullptr).ok());
  }
  void TearDown() override { (void)domain_->remove(*sub_); }
  void invalidate() { testing::invalidate(*domain_, Range{0, kPage}); }

  Ref<NotifierDomain> domain_ = make_ref<NotifierDomain>();
  Ref<DriverNotifier> sub_ = make_ref<DriverNotifier>();
};

TEST_F(MisuseTest, RemoveFromACallbackDies) {
  sub_->inside = [&] { (void)domain_->remove(*sub_); };
  EXPECT_DEATH(invalidate(), "I9: NotifierDomain::remove\\(\\) called from a callback");
}

TEST_F(MisuseTest, ReadBeginFromACallbackDies) {
  sub_->inside = [&] { (void)sub_->read_begin(); };
  EXPECT_DEATH(invalidate(), "I9: IntervalNotifier::read_begin\\(\\) called from a callback");
}

TEST_F(MisuseTest, SynchronizeFromACallbackDies) {
  sub_->inside = [&] { domain_->barrier(); };
  EXPECT_DEATH(invalidate(), "I9: NotifierDomain::barrier\\(\\) called from a callback");
}

TEST_F(MisuseTest, UnregisterFromAWholeSpaceCallbackDies) {
  struct SelfUnregistering : Notifier {
    bool invalidate_range_start(const Range&) override {
      (void)domain->unregister_notifier(*this);
      return true;
    }
    NotifierDomain* domain = nullptr;
  } n;
  n.domain = domain_.get();
  ASSERT_TRUE(domain_->register_notifier(n).ok());
  EXPECT_DEATH(invalidate(),
               "I9: NotifierDomain::unregister_notifier\\(\\) called from a callback");
  ASSERT_TRUE(domain_->unregister_notifier(n).ok());
}

TEST_F(MisuseTest, RemoveWhileHoldingALockCallbacksTakeDies) {
  invalidate();  // the callback takes driver_mu: the domain learns it
  EXPECT_DEATH(
      {
        MutexLock l(sub_->driver_mu);
        (void)domain_->remove(*sub_);
      },
      "I9: NotifierDomain::remove\\(\\) called while holding an itn::Mutex that callbacks");
}

TEST_F(MisuseTest, ReadBeginWhileHoldingALockCallbacksTakeDies) {
  invalidate();
  EXPECT_DEATH(
      {
        MutexLock l(sub_->driver_mu);
        (void)sub_->read_begin();
      },
      "I9: IntervalNotifier::read_begin\\(\\) called while holding an itn::Mutex");
}

TEST_F(MisuseTest, UnrelatedLocksAreFine) {
  invalidate();
  Mutex other;
  MutexLock l(other);
  (void)sub_->read_begin();  // `other` was never taken by a callback
  SUCCEED();
}

}  // namespace
}  // namespace itn
