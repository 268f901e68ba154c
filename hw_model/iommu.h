// hw_model/iommu.h
//
// itn::hw::Iommu: the system IOMMU as SVA devices see it: the PASID space (one allocator
// for the whole system, lowest free id first, so an id freed too early would be handed out
// again at once and a test would see it) and an optional trace of SVA lifetime events
// ("bind", "release", "unbind", "free") for tests and examples.
//
// Thread safety: every method may be called from any thread; the trace callback is
// called without the allocator's lock held, possibly concurrently.
// Lifetime: must outlive every SvaDevice using it and every IoMm they created (call
// NotifierDomain::barrier() on the address spaces, or let them die, before
// destroying it: PASIDs are freed after a grace period).
// Memory ordering: free_pasid() happens-before an alloc_pasid() that returns the same id.
#ifndef ITN_HW_MODEL_IOMMU_H_
#define ITN_HW_MODEL_IOMMU_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

#include "sync/mutex.h"

namespace itn::hw {

class Iommu {
 public:
  using Trace = std::function<void(std::string_view event, std::uint32_t pasid)>;
  explicit Iommu(std::uint32_t max_pasids = 1u << 20, Trace trace = nullptr)
      : max_pasids_(max_pasids), trace_(std::move(trace)) {}
  Iommu(const Iommu&) = delete;
  Iommu& operator=(const Iommu&) = delete;

  // Iommu::alloc_pasid() / free_pasid()
  //
  // PASIDs start at 1 (0 means "none"). Errors: kResourceExhausted when all are in use.
  [[nodiscard]] absl::StatusOr<std::uint32_t> alloc_pasid() ABSL_LOCKS_EXCLUDED(mu_);
  void free_pasid(std::uint32_t pasid) ABSL_LOCKS_EXCLUDED(mu_);
  bool pasid_in_use(std::uint32_t pasid) const ABSL_LOCKS_EXCLUDED(mu_);

  void trace(std::string_view event, std::uint32_t pasid) const {
    if (trace_) trace_(event, pasid);
  }

 private:
  const std::uint32_t max_pasids_;
  const Trace trace_;
  mutable Mutex mu_;
  std::set<std::uint32_t> in_use_ ABSL_GUARDED_BY(mu_);
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_IOMMU_H_
