// MirrorDevice::mmap(): a private mapping of the device file, present before anything
// touches it.
#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "hw_model/mirror_device.h"
#include "hw_model/process.h"

namespace itn::hw {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;

constexpr std::uint64_t kPage = kPageSize;

class DeviceMmapTest : public ::testing::Test {
 protected:
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
};

TEST_F(DeviceMmapTest, PagesArePresentReadOnlyAndAWriteCopiesOnlyThatMappingsPage) {
  const std::uint64_t a = *device->mmap(2 * kPage + 1, Prot::kReadWrite);  // rounded up: 3
  const std::uint64_t b = *device->mmap(kPage, Prot::kReadWrite);
  EXPECT_THAT(device->snapshot(a, 3), Each(PageSnapshot::kRead));
  EXPECT_THAT(device->snapshot(b, 1), ElementsAre(PageSnapshot::kRead));
  EXPECT_EQ(*device->read(a, 3), (std::vector<std::uint64_t>{0, 0, 0}));
  ASSERT_TRUE(mm.cpu_write(a, 4).ok());
  ASSERT_TRUE(device->write(a + kPage, std::vector<std::uint64_t>{5}).ok());
  EXPECT_EQ(*device->read(a, 3), (std::vector<std::uint64_t>{4, 5, 0}));
  EXPECT_EQ(*mm.cpu_read(b), 0u) << "each mapping has its own pages";
  EXPECT_THAT(device->snapshot(a, 3),
              ElementsAre(PageSnapshot::kWrite, PageSnapshot::kWrite, PageSnapshot::kRead));
}

TEST_F(DeviceMmapTest, InaccessibleMappingsHoldNothingAndBadCallsFail) {
  const std::uint64_t none = *device->mmap(kPage, Prot::kNone);
  EXPECT_THAT(device->snapshot(none, 1), ElementsAre(PageSnapshot::kError));
  ASSERT_TRUE(mm.mprotect(none, kPage, Prot::kRead).ok());
  EXPECT_THAT(device->snapshot(none, 1), ElementsAre(PageSnapshot::kNone));
  EXPECT_EQ(device->mmap(0, Prot::kRead).status().code(), absl::StatusCode::kInvalidArgument);
  device->close();
  EXPECT_EQ(device->mmap(kPage, Prot::kRead).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace itn::hw
