// hw_model/hmm.h
//
// itn::hw::HmmDevice and itn::hw::HmmMirror: the 2015 HMM mirror API (R1: its unregister raced
// teardown), built so that its race cannot happen.
//
//   HmmDevice gpu(on_release);                 // on_release(mirror): stop using the mm
//   Ref<HmmMirror> m = *gpu.register_mirror(process);
//   ...                                        // process exits: on_release(*m) runs once
//   m->unregister();                           // fence: no callback runs after this
//   gpu.unregister();                          // OK once no mirror is registered
//   // the driver may now free gpu (I21)
//
// The 2015 code let mirror unregister return while an mm-exit release still ran inside
// the device mutex; the driver then freed the device under it (R1). Here a mirror is a
// whole-space notifier, and unregister() is NotifierDomain::unregister_notifier(): a
// synchronous fence that returns only after a concurrent teardown release() finished
// (I15). The device mutex therefore never protects the device's own lifetime.
//
// Thread safety: every method may be called from any thread. on_release runs on the
// thread that tears the address space down (or unregisters first), under the device
// mutex, exactly once per mirror.
// Lifetime: the HmmDevice must outlive the unregister() of each of its mirrors; after the
// last one returns and HmmDevice::unregister() returned OK, no thread touches the device.
// A mirror holds a grab on the address space (never a user), and is unregistered by its
// destructor if the driver did not.
// Memory ordering: on_release happens-before the unregister() of its mirror returns.
#ifndef ITN_HW_MODEL_HMM_H_
#define ITN_HW_MODEL_HMM_H_

#include <functional>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/process.h"
#include "notifier/notifier.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::hw {

class HmmMirror;

class HmmDevice {
 public:
  using ReleaseFn = std::function<void(HmmMirror& mirror)>;
  explicit HmmDevice(ReleaseFn on_release) : on_release_(std::move(on_release)) {}
  HmmDevice(const HmmDevice&) = delete;
  HmmDevice& operator=(const HmmDevice&) = delete;

  // HmmDevice::register_mirror()
  //
  // Mirrors `process`'s address space; the mirror hears on_release when it dies.
  // Errors: kFailedPrecondition if the address space has exited or the device was
  // unregistered.
  [[nodiscard]] absl::StatusOr<Ref<HmmMirror>> register_mirror(Process& process)
      ABSL_LOCKS_EXCLUDED(mu_);

  // HmmDevice::unregister()
  //
  // Errors (nothing changes): kFailedPrecondition while a mirror is registered.
  [[nodiscard]] absl::Status unregister() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class HmmMirror;
  const ReleaseFn on_release_;
  Mutex mu_;  // the device mutex of the 2015 code
  std::set<HmmMirror*> mirrors_ ABSL_GUARDED_BY(mu_);
  bool unregistered_ ABSL_GUARDED_BY(mu_) = false;
};

class HmmMirror : public RefCounted {
 public:
  ~HmmMirror() override;

  // HmmMirror::unregister()
  //
  // Detaches the mirror. Delivers on_release first if the address space has not, then
  // waits until no on_release of this mirror runs on any thread (I15, I21).
  // Context: may block; not from on_release.
  // Errors: kFailedPrecondition if already unregistered.
  [[nodiscard]] absl::Status unregister();

  // True once on_release ran (the address space died, or unregister()).
  bool released() const;
  AddressSpace& mm() const { return *mm_; }

 private:
  friend class HmmDevice;
  template <class U, class... Args>
  friend Ref<U> itn::make_ref(Args&&... args);
  class Subscription : public Notifier {
   public:
    explicit Subscription(HmmMirror& mirror) : mirror_(mirror) {}
    void release(NotifierDomain& domain) override;

   private:
    HmmMirror& mirror_;
  };
  HmmMirror(HmmDevice& device, Ref<AddressSpace> mm) : device_(device), mm_(std::move(mm)) {}

  HmmDevice& device_;
  const Ref<AddressSpace> mm_;
  Subscription subscription_{*this};
  Atomic<bool> released_{false};
  Atomic<bool> registered_{false};
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_HMM_H_
