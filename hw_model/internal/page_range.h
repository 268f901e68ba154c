// hw_model/internal/page_range.h
//
// Argument checks shared by the address space and the devices.
//
// Thread safety: pure functions. Lifetime: no references kept. Memory ordering: none.
#ifndef ITN_HW_MODEL_INTERNAL_PAGE_RANGE_H_
#define ITN_HW_MODEL_INTERNAL_PAGE_RANGE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "hw_model/memory.h"

namespace itn::hw::internal {

inline bool page_aligned(std::uint64_t x) { return x % kPageSize == 0; }

// OK if [addr, addr + length) is a non-empty range of whole pages that does not wrap.
inline absl::Status check_page_range(const char* what, std::uint64_t addr, std::uint64_t length) {
  if (length == 0 || !page_aligned(addr) || !page_aligned(length) || addr + length < addr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": [", addr, ", +", length, ") is not a non-empty range of pages"));
  }
  return absl::OkStatus();
}

}  // namespace itn::hw::internal

#endif  // ITN_HW_MODEL_INTERNAL_PAGE_RANGE_H_
