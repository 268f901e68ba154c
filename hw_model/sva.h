// hw_model/sva.h
//
// itn::hw::SvaDevice and itn::hw::SvaBond: shared virtual addressing, where a device uses
// a process's page tables directly under a PASID (seeds 000, 001, 003).
//
//   Iommu iommu;                         // the system's PASID space
//   SvaDevice accel(iommu);
//   Ref<SvaBond> bond = *accel.bind(process);   // get_notifier(): one IoMm per mm
//   bond->dma_write(addr, 42);
//   bond->unbind();                      // put_notifier(): the last put frees the IoMm
//                                        // (and its PASID) after a grace period
//
// One IoMm per address space, shared by every bond of every device: it is the domain's
// get_notifier() instance for the SVA ops, built complete (PASID included) by
// alloc_notifier(domain, priv) before anything can see it (I12, R4).
//
// Process exit (R6): exit_mm runs before exit_files, so the IoMm hears release()
// while bonds still exist. release() only fences the device: from then on DMA through any
// bond of that address space fails with kFailedPrecondition; no memory is freed and the
// bonds stay until unbind (typically from the device file's release). The PASID stays
// allocated until free_notifier runs after the last put: it cannot be reused while a bond
// or the IoMm names it (I20, R6). release() is delivered once (R7) and is idempotent.
//
// Thread safety: every method may be called from any thread; a bond's DMA and its unbind
// are serialised (unbind waits for DMA in flight).
// Lifetime: bind() returns a Ref; the bond holds a grab on the address space, never a
// user. The Iommu must outlive the IoMms (see iommu.h).
// Memory ordering: IoMm::release() (release store) pairs with the acquire load by which
// DMA sees the fence.
#ifndef ITN_HW_MODEL_SVA_H_
#define ITN_HW_MODEL_SVA_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/iommu.h"
#include "hw_model/process.h"
#include "notifier/notifier.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::hw {

class IoMm;

class SvaBond : public RefCounted {
 public:
  ~SvaBond() override;

  std::uint32_t pasid() const { return pasid_; }

  // SvaBond::dma_read() / dma_write()
  //
  // A device access through the process's page tables (faults like the CPU's).
  // Errors: kFailedPrecondition after the address space exited (release fenced the
  // device) or after unbind; otherwise as AddressSpace::cpu_read()/cpu_write().
  [[nodiscard]] absl::StatusOr<std::uint64_t> dma_read(std::uint64_t addr) ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::Status dma_write(std::uint64_t addr, std::uint64_t value)
      ABSL_LOCKS_EXCLUDED(mu_);

  // SvaBond::unbind()
  //
  // Waits for DMA in flight, then drops the bond's use of the IoMm (put_notifier). The
  // last unbind of an address space frees its IoMm and PASID after a grace period.
  // Errors: kFailedPrecondition if already unbound.
  [[nodiscard]] absl::Status unbind() ABSL_LOCKS_EXCLUDED(mu_);

  // True once the address space exited and release() fenced the device.
  // Context: before unbind() (dies otherwise: the IoMm may be gone).
  bool mm_released() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class SvaDevice;
  template <class U, class... Args>
  friend Ref<U> itn::make_ref(Args&&... args);
  SvaBond(Ref<AddressSpace> mm, IoMm& io_mm, Iommu& iommu, std::uint32_t pasid)
      : mm_(std::move(mm)), io_mm_(io_mm), iommu_(iommu), pasid_(pasid) {}
  [[nodiscard]] absl::Status check_dma_locked(const char* what) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Ref<AddressSpace> mm_;
  IoMm& io_mm_;  // valid until unbind()'s put
  Iommu& iommu_;
  const std::uint32_t pasid_;
  mutable Mutex mu_;
  bool bound_ ABSL_GUARDED_BY(mu_) = true;
};

class SvaDevice {
 public:
  explicit SvaDevice(Iommu& iommu) : iommu_(iommu) {}
  SvaDevice(const SvaDevice&) = delete;
  SvaDevice& operator=(const SvaDevice&) = delete;

  // SvaDevice::bind()
  //
  // Binds the device to `process`'s address space, sharing its IoMm and PASID with every
  // other bond of that address space.
  // Errors: kFailedPrecondition if the address space has exited; kResourceExhausted if no
  // PASID is free.
  [[nodiscard]] absl::StatusOr<Ref<SvaBond>> bind(Process& process);

 private:
  Iommu& iommu_;
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_SVA_H_
