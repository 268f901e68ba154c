#include "hw_model/iommu.h"

#include "absl/strings/str_cat.h"

#include "sync/check.h"

namespace itn::hw {

absl::StatusOr<std::uint32_t> Iommu::alloc_pasid() {
  MutexLock l(mu_);
  std::uint32_t pasid = 1;
  for (std::uint32_t used : in_use_) {  // ascending: stop at the first gap
    if (used != pasid) break;
    ++pasid;
  }
  if (pasid > max_pasids_) {
    return absl::ResourceExhaustedError(absl::StrCat("all ", max_pasids_, " PASIDs are in use"));
  }
  in_use_.insert(pasid);
  return pasid;
}

void Iommu::free_pasid(std::uint32_t pasid) {
  MutexLock l(mu_);
  ITN_CHECK(in_use_.erase(pasid) == 1, "free_pasid() of a PASID that is not allocated");
}

bool Iommu::pasid_in_use(std::uint32_t pasid) const {
  MutexLock l(mu_);
  return in_use_.count(pasid) != 0;
}

}  // namespace itn::hw
