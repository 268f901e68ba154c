// notifier/range.h
//
// itn::Range and itn::Event: what an invalidation covers and why.
//
// Ranges are half-open [start, end). The half-open form cannot name the top byte of the
// address space, so an `end` of kRangeEndMax is taken to include it: Range::whole_space()
// covers every address, and a notifier over [X, UINT64_MAX] is reached by it.
//
// Thread safety: a value type. Lifetime: no references. Memory ordering: none.
#ifndef ITN_NOTIFIER_RANGE_H_
#define ITN_NOTIFIER_RANGE_H_

#include <cstdint>
#include <iosfwd>
#include <limits>
#include <string_view>

namespace itn {

// Why an address range is being invalidated (the kernel's mmu_notifier_event).
enum class Event : std::uint8_t {
  kUnmap,           // the range is being unmapped
  kClear,           // page table entries are cleared (e.g. madvise, truncate)
  kProtectionVma,   // protection of the whole VMA changes
  kProtectionPage,  // protection of pages changes
  kSoftDirty,       // soft-dirty tracking write-protects pages
  kRelease,         // the address space is being torn down
  kMigrate,         // pages migrate; `owner` names the device that started it
  kExclusive,       // a device takes exclusive access; `owner` names it
};

inline constexpr std::uint64_t kRangeEndMax = std::numeric_limits<std::uint64_t>::max();

struct Range {
  std::uint64_t start = 0;
  std::uint64_t end = 0;  // exclusive; kRangeEndMax includes the top byte
  Event event = Event::kUnmap;
  // False when the caller cannot sleep: callbacks may then refuse (return false) instead of
  // blocking, and invalidate_range_start() fails with kUnavailable.
  bool blockable = true;
  // Who started the invalidation (kMigrate, kExclusive), so that its own notifier can
  // ignore it. Compared, never dereferenced.
  const void* owner = nullptr;

  // The inclusive last address covered.
  std::uint64_t last() const { return end == kRangeEndMax ? kRangeEndMax : end - 1; }

  static Range whole_space(Event event) { return Range{0, kRangeEndMax, event, true, nullptr}; }
};

// The enumerator's name without its k, e.g. "unmap", "protection_page"; "unknown" for a
// value outside the enumeration.
std::string_view to_string(Event event);

// Prints e.g. "[0x1000, 0x3000) unmap", then " non-blockable" and " owner=0x..." when set.
std::ostream& operator<<(std::ostream& os, const Range& range);

}  // namespace itn

#endif  // ITN_NOTIFIER_RANGE_H_
