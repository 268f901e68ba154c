#include "notifier/range.h"

#include <ostream>

namespace itn {

std::string_view to_string(Event event) {
  switch (event) {
    case Event::kUnmap:
      return "unmap";
    case Event::kClear:
      return "clear";
    case Event::kProtectionVma:
      return "protection_vma";
    case Event::kProtectionPage:
      return "protection_page";
    case Event::kSoftDirty:
      return "soft_dirty";
    case Event::kRelease:
      return "release";
    case Event::kMigrate:
      return "migrate";
    case Event::kExclusive:
      return "exclusive";
  }
  return "unknown";
}

std::ostream& operator<<(std::ostream& os, const Range& range) {
  const std::ios_base::fmtflags flags = os.flags();
  os << "[0x" << std::hex << range.start << ", 0x" << range.end << ") ";
  os.flags(flags);
  os << to_string(range.event);
  if (!range.blockable) os << " non-blockable";
  if (range.owner != nullptr) os << " owner=" << range.owner;
  return os;
}

}  // namespace itn
