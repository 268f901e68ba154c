// Interval: each named constructor, the bounds it rejects, and the top byte.
#include "notifier/interval.h"

#include <sstream>
#include <string>

#include "gtest/gtest.h"

#include "notifier/range.h"

namespace itn {
namespace {

constexpr std::uint64_t kMax = kRangeEndMax;

TEST(IntervalTest, TheThreeConstructorsDescribeTheSameAddresses) {
  const Interval sized = Interval::sized(0x1000, 0x2000);
  EXPECT_TRUE(sized.valid());
  EXPECT_EQ(sized.start(), 0x1000u);
  EXPECT_EQ(sized.last(), 0x2fffu);
  EXPECT_EQ(sized.end(), 0x3000u);
  EXPECT_EQ(Interval::closed(0x1000, 0x2fff), sized);
  EXPECT_EQ(Interval::half_open(0x1000, 0x3000), sized);
  EXPECT_EQ(Interval::sized(7, 1), Interval::closed(7, 7)) << "one address";
}

TEST(IntervalTest, DescriptionsOfNoAddressesAreNotValid) {
  EXPECT_FALSE(Interval().valid());
  EXPECT_FALSE(Interval::sized(0x1000, 0).valid());
  EXPECT_FALSE(Interval::sized(0, 0).valid()) << "length 0 must not wrap to the whole space";
  EXPECT_FALSE(Interval::closed(0x2000, 0x1fff).valid());
  EXPECT_FALSE(Interval::half_open(0x2000, 0x2000).valid());
  EXPECT_FALSE(Interval::half_open(0x2000, 0x1000).valid());
  EXPECT_EQ(Interval::sized(5, 0), Interval()) << "invalid intervals compare equal";
  EXPECT_EQ(Interval().end(), 0u);
}

TEST(IntervalTest, TheTopOfTheAddressSpace) {
  EXPECT_EQ(Interval::sized(kMax, 1), Interval::closed(kMax, kMax));
  EXPECT_EQ(Interval::sized(kMax - 9, 10).last(), kMax);
  EXPECT_FALSE(Interval::sized(kMax - 9, 11).valid()) << "one byte past the top";
  EXPECT_EQ(Interval::sized(1, kMax).last(), kMax);
  EXPECT_FALSE(Interval::sized(2, kMax).valid());
  EXPECT_EQ(Interval::sized(0, kMax).last(), kMax - 1);
  EXPECT_EQ(Interval::half_open(kMax - 1, kMax).last(), kMax) << "kRangeEndMax includes it";
  EXPECT_EQ(Interval::whole_space(), Interval::closed(0, kMax));
  EXPECT_EQ(Interval::whole_space().end(), kRangeEndMax);
}

TEST(IntervalTest, OverlapsSharesAnAddress) {
  const Interval a = Interval::closed(10, 20);
  EXPECT_TRUE(a.overlaps(Interval::closed(20, 30)));
  EXPECT_TRUE(a.overlaps(Interval::closed(0, 10)));
  EXPECT_TRUE(a.overlaps(Interval::closed(12, 13)));
  EXPECT_FALSE(a.overlaps(Interval::closed(21, 30)));
  EXPECT_FALSE(a.overlaps(Interval::half_open(0, 10)));
  EXPECT_FALSE(a.overlaps(Interval())) << "an invalid interval overlaps nothing";
  EXPECT_FALSE(Interval().overlaps(Interval::whole_space()));
}

TEST(IntervalTest, RangeGivesItsAddressesAsAnInterval) {
  EXPECT_EQ((Range{.start = 0x1000, .end = 0x3000}).interval(), Interval::closed(0x1000, 0x2fff));
  EXPECT_EQ(Range::whole_space(Event::kRelease).interval(), Interval::whole_space());
  EXPECT_FALSE((Range{.start = 0x1000, .end = 0x1000}).interval().valid());
}

TEST(IntervalTest, PrintsBothIncludedBounds) {
  std::ostringstream os;
  os << Interval::sized(0x1000, 0x2000) << ' ' << Interval() << ' ' << 255;
  EXPECT_EQ(os.str(), "[0x1000, 0x2fff] [invalid] 255") << "and the stream's base is restored";
}

}  // namespace
}  // namespace itn
