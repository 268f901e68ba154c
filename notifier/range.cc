#include "notifier/range.h"

namespace itn {

const char* event_name(Event event) {
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
  return "?";
}

}  // namespace itn
