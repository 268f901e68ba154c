// Range and Event: how they print.
#include "notifier/range.h"

#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace itn {
namespace {

std::string printed(const Range& range) {
  std::ostringstream os;
  os << range;
  return os.str();
}

TEST(RangeTest, PrintsItsBoundsEventAndFlags) {
  EXPECT_EQ(printed(Range{.start = 0x1000, .end = 0x3000}), "[0x1000, 0x3000) unmap");
  const int device = 0;
  const std::string migrate = printed(Range{
      .start = 0, .end = 0x1000, .event = Event::kMigrate, .blockable = false, .owner = &device});
  EXPECT_EQ(migrate.rfind("[0x0, 0x1000) migrate non-blockable owner=0x", 0), 0u) << migrate;
  std::ostringstream os;
  os << Range{.start = 0x10, .end = 0x20} << ' ' << 255;
  EXPECT_EQ(os.str(), "[0x10, 0x20) unmap 255") << "the stream's base was restored";
}

TEST(RangeTest, EveryEventHasItsOwnName) {
  const Event all[] = {Event::kUnmap,          Event::kClear,     Event::kProtectionVma,
                       Event::kProtectionPage, Event::kSoftDirty, Event::kRelease,
                       Event::kMigrate,        Event::kExclusive};
  const char* names[] = {"unmap",      "clear",   "protection_vma", "protection_page",
                         "soft_dirty", "release", "migrate",        "exclusive"};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(to_string(all[i]), names[i]);
  EXPECT_EQ(to_string(static_cast<Event>(200)), "unknown");
}

}  // namespace
}  // namespace itn
