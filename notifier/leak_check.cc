#include "notifier/leak_check.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"

#include "notifier/domain.h"
#include "sync/check.h"
#include "sync/mutex.h"

namespace itn::notifier_internal {
namespace {

class Registry {
 public:
  void add(const NotifierDomain* domain) {
    MutexLock l(mu_);
    live_.push_back(domain);
  }
  void remove(const NotifierDomain* domain) {
    MutexLock l(mu_);
    live_.erase(std::find(live_.begin(), live_.end(), domain));
  }
  // A domain whose only references are its own notifiers' grabs was leaked.
  void check_at_exit() {
    MutexLock l(mu_);
    for (const NotifierDomain* domain : live_) {
      const std::uint64_t subscribers = domain->subscriber_count();
      if (subscribers == 0 || domain->ref_count_for_testing() != subscribers) continue;
      const std::string rule = absl::StrCat(
          "leak: a NotifierDomain is alive at exit only because ", subscribers,
          " notifier(s) are still inserted or registered in it and reference it: a remove() "
          "or unregister_notifier() was forgotten (a Subscription removes for you)");
      ITN_CHECK(false, rule.c_str());
    }
  }

 private:
  Mutex mu_;
  std::vector<const NotifierDomain*> live_ ABSL_GUARDED_BY(mu_);
};

// Runs the check when static objects are destroyed at exit.
struct ExitCheck {
  explicit ExitCheck(Registry& live) : registry(live) {}
  ~ExitCheck() { registry.check_at_exit(); }
  Registry& registry;
};

Registry& registry() {
  // Never destroyed: domains that static objects hold may go after the check ran.
  static Registry* const registry = new Registry;
  static ExitCheck check(*registry);
  return *registry;
}

}  // namespace

void track_domain(const NotifierDomain* domain) {
  if (ITN_DEBUG_CHECKS) registry().add(domain);
}

void untrack_domain(const NotifierDomain* domain) {
  if (ITN_DEBUG_CHECKS) registry().remove(domain);
}

}  // namespace itn::notifier_internal
