// notifier/interval.h
//
// itn::Interval: a non-empty set of consecutive addresses, the one shape every interval
// argument of the library takes (NotifierDomain::insert() and find(),
// IntervalNotifier::interval(), Range::interval()).
//
// Three adjacent integers (a start and a length, a first and a last, a start and an end)
// swap silently; an Interval is only built by a named constructor that says which two it
// is given:
//
//   Interval::sized(0x1000, 0x2000)       // [0x1000, 0x2fff], from a start and a length
//   Interval::closed(0x1000, 0x2fff)      // the same, from the first and last addresses
//   Interval::half_open(0x1000, 0x3000)   // the same, from a start and an exclusive end
//
// A constructor given a description of no addresses (length 0, last before first, end not
// after start) or of addresses past the top of the address space returns an interval that
// is not valid(); the calls that take one reject it with kInvalidArgument. As in Range, a
// half-open end of kRangeEndMax includes the top byte, so half_open(x, kRangeEndMax) and
// whole_space() reach address UINT64_MAX.
//
// Thread safety: a value type. Lifetime: no references. Memory ordering: none.
#ifndef ITN_NOTIFIER_INTERVAL_H_
#define ITN_NOTIFIER_INTERVAL_H_

#include <cstdint>
#include <iosfwd>
#include <limits>

namespace itn {

inline constexpr std::uint64_t kRangeEndMax = std::numeric_limits<std::uint64_t>::max();

class Interval {
 public:
  // Not valid(): for a default-constructed member that is assigned later.
  constexpr Interval() = default;

  // [start, start + length - 1]. Not valid for length 0 or when the last address would
  // pass UINT64_MAX.
  static constexpr Interval sized(std::uint64_t start, std::uint64_t length) noexcept {
    if (length == 0 || length - 1 > kRangeEndMax - start) return Interval();
    return Interval(start, start + (length - 1));
  }

  // [first, last], both included. Not valid when last < first.
  static constexpr Interval closed(std::uint64_t first, std::uint64_t last) noexcept {
    return first <= last ? Interval(first, last) : Interval();
  }

  // [start, end), where an end of kRangeEndMax includes the top byte. Not valid when
  // end <= start (other than that end).
  static constexpr Interval half_open(std::uint64_t start, std::uint64_t end) noexcept {
    if (end == kRangeEndMax) return Interval(start, kRangeEndMax);
    return start < end ? Interval(start, end - 1) : Interval();
  }

  static constexpr Interval whole_space() noexcept { return Interval(0, kRangeEndMax); }

  constexpr bool valid() const noexcept { return valid_; }
  // The first and the last address, both included; 0 when not valid().
  constexpr std::uint64_t start() const noexcept { return start_; }
  constexpr std::uint64_t last() const noexcept { return last_; }
  // The exclusive end, or kRangeEndMax when the interval includes the top byte (the two
  // cannot be told apart there, as in Range); 0 when not valid().
  constexpr std::uint64_t end() const noexcept {
    if (!valid_) return 0;
    return last_ == kRangeEndMax ? kRangeEndMax : last_ + 1;
  }

  // Whether the two share an address; never for an interval that is not valid().
  constexpr bool overlaps(const Interval& other) const noexcept {
    return valid_ && other.valid_ && start_ <= other.last_ && other.start_ <= last_;
  }

  friend constexpr bool operator==(const Interval&, const Interval&) = default;

 private:
  constexpr Interval(std::uint64_t start, std::uint64_t last)
      : start_(start), last_(last), valid_(true) {}

  std::uint64_t start_ = 0;
  std::uint64_t last_ = 0;
  bool valid_ = false;
};

// Prints e.g. "[0x1000, 0x2fff]" (both bounds included), or "[invalid]".
std::ostream& operator<<(std::ostream& os, const Interval& interval);

}  // namespace itn

#endif  // ITN_NOTIFIER_INTERVAL_H_
