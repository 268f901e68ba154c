#include "notifier/interval.h"

#include <ostream>

namespace itn {

std::ostream& operator<<(std::ostream& os, const Interval& interval) {
  if (!interval.valid()) return os << "[invalid]";
  const std::ios_base::fmtflags flags = os.flags();
  os << "[0x" << std::hex << interval.start() << ", 0x" << interval.last() << ']';
  os.flags(flags);
  return os;
}

}  // namespace itn
