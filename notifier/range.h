// notifier/range.h
//
// itn::Range and itn::Event: what an invalidation covers and why.
//
// A Range names its addresses by two fields, half-open [start, end) as the kernel's
// mmu_notifier_range does; build it with designated initialisers so that neither can be
// mistaken for a length: Range{.start = a, .end = b, .event = Event::kClear}. The half-open
// form cannot name the top byte of the address space, so an `end` of kRangeEndMax is taken
// to include it: Range::whole_space() covers every address, and a notifier over
// [X, UINT64_MAX] is reached by it. interval() gives the same addresses as an Interval.
//
// Thread safety: a value type. Lifetime: no references. Memory ordering: none.
#ifndef ITN_NOTIFIER_RANGE_H_
#define ITN_NOTIFIER_RANGE_H_

#include <cstdint>
#include <iosfwd>
#include <string_view>

#include "notifier/interval.h"

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

  // The addresses covered; not valid() when end <= start (other than kRangeEndMax).
  constexpr Interval interval() const { return Interval::half_open(start, end); }

  static Range whole_space(Event event) {
    return Range{.start = 0, .end = kRangeEndMax, .event = event};
  }
};

// The enumerator's name without its k, e.g. "unmap", "protection_page"; "unknown" for a
// value outside the enumeration.
std::string_view to_string(Event event);

// Prints e.g. "[0x1000, 0x3000) unmap", then " non-blockable" and " owner=0x..." when set.
std::ostream& operator<<(std::ostream& os, const Range& range);

}  // namespace itn

#endif  // ITN_NOTIFIER_RANGE_H_
