// The exit-time leak check (debug builds): a domain kept alive only by notifiers that were
// never removed dies naming the rule; one the caller still holds, or one emptied, does not.
#include <cstdint>
#include <cstdlib>

#include "gtest/gtest.h"

#include "notifier/domain.h"
#include "notifier/notifier.h"

namespace itn {
namespace {

constexpr std::uint64_t kPage = 4096;

class Sub : public IntervalNotifier {
 public:
  bool invalidate(const Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    return true;
  }
};

TEST(NotifierDomainDeathTest, AForgottenRemoveDiesAtExitNamingTheRule) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto domain = make_ref<NotifierDomain>();
        (void)domain->insert(make_ref<Sub>(), Interval::sized(0, kPage), nullptr);
        domain.reset();  // the notifier and the domain now only reference each other
        std::exit(0);
      },
      "leak: a NotifierDomain is alive at exit only because 1 notifier\\(s\\) are still "
      "inserted or registered");
}

TEST(NotifierDomainDeathTest, AForgottenUnregisterDiesToo) {
  if (!ITN_DEBUG_CHECKS) GTEST_SKIP() << "needs debug checks (ITN_DEBUG_CHECKS)";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        static Notifier whole;  // outlives the check
        auto domain = make_ref<NotifierDomain>();
        (void)domain->register_notifier(whole);
        domain.reset();
        std::exit(0);
      },
      "a remove\\(\\) or unregister_notifier\\(\\) was forgotten");
}

TEST(NotifierDomainDeathTest, ADomainTheCallerStillHoldsOrThatWasEmptiedIsNoLeak) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        // A reference of the caller's, never dropped (and reachable, for LeakSanitizer).
        static Ref<NotifierDomain>* const held =
            new Ref<NotifierDomain>(make_ref<NotifierDomain>());
        (void)(*held)->insert(make_ref<Sub>(), Interval::sized(0, kPage), nullptr);
        auto emptied = make_ref<NotifierDomain>();
        Ref<Sub> sub = make_ref<Sub>();
        (void)emptied->insert(sub, Interval::sized(0, kPage), nullptr);
        (void)emptied->remove(*sub);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace itn
