#include "hw_model/hmm.h"

#include "absl/strings/str_cat.h"

namespace itn::hw {

absl::StatusOr<Ref<HmmMirror>> HmmDevice::register_mirror(Process& process) {
  Ref<HmmMirror> mirror = make_ref<HmmMirror>(*this, process.mm_ref());
  MutexLock l(mu_);
  if (unregistered_) return absl::FailedPreconditionError("register_mirror: device unregistered");
  // Registered under the device mutex, so unregister() cannot slip in between; the
  // domain never calls back synchronously from register_notifier().
  if (absl::Status s = mirror->mm_->notifiers().register_notifier(mirror->subscription_); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("register_mirror: ", s.message()));
  }
  mirror->registered_.store(true, std::memory_order_relaxed);  // read by its own owner only
  mirrors_.insert(mirror.get());
  return mirror;
}

absl::Status HmmDevice::unregister() {
  MutexLock l(mu_);
  if (!mirrors_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("HmmDevice::unregister: ", mirrors_.size(), " mirror(s) still registered"));
  }
  unregistered_ = true;
  return absl::OkStatus();
}

void HmmMirror::Subscription::release(NotifierDomain&) {
  // Delivered once per registration (I14), by the teardown or by unregister().
  MutexLock l(mirror_.device_.mu_);
  // Release: pairs with the acquire in released().
  mirror_.released_.store(true, std::memory_order_release);
  mirror_.device_.on_release_(mirror_);
}

absl::Status HmmMirror::unregister() {
  // Relaxed: only the mirror's owner calls unregister(); no other thread writes it.
  if (!registered_.exchange(false, std::memory_order_relaxed)) {
    return absl::FailedPreconditionError("HmmMirror::unregister: not registered");
  }
  // The fence: on return no release() of the subscription runs anywhere (I15).
  ITN_CHECK_OK(mm_->notifiers().unregister_notifier(subscription_),
               "registered by register_mirror()");
  MutexLock l(device_.mu_);
  device_.mirrors_.erase(this);
  return absl::OkStatus();
}

bool HmmMirror::released() const {
  return released_.load(std::memory_order_acquire);  // pairs with the store in release()
}

HmmMirror::~HmmMirror() {
  if (registered_.load(std::memory_order_relaxed)) (void)unregister();
}

}  // namespace itn::hw
