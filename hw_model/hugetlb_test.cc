// hugetlb mappings (AddressSpace::mmap_hugetlb): huge pages only, at huge page
// boundaries, that nothing splits, moves to a device or frees early; and, for each rule,
// that the call breaking it fails and changes nothing.
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

#include "hw_model/address_space.h"
#include "testing/coherence.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"

namespace itn::hw {
namespace {

constexpr std::uint64_t kHugePages = kHugePageSize / kPageSize;
constexpr std::uint64_t kPage = kPageSize;

class HugetlbTest : public ::testing::Test {
 protected:
  // Every page of `pages` huge pages from `buf` holds `word + i` for page i, in huge
  // entries.
  void expect_filled(std::uint64_t buf, std::uint64_t huge_pages, std::uint64_t word = 0) {
    for (std::uint64_t i = 0; i < huge_pages * kHugePages; ++i) {
      absl::StatusOr<PageEntry> e = mm.lookup(buf + i * kPage);
      ASSERT_TRUE(e.ok()) << "page " << i << ": " << e.status();
      EXPECT_TRUE(e->huge) << "page " << i;
      EXPECT_EQ(e->frame->read(), word + i) << "page " << i;
    }
  }
  void fill(std::uint64_t buf, std::uint64_t huge_pages, std::uint64_t word = 0) {
    for (std::uint64_t i = 0; i < huge_pages * kHugePages; ++i) {
      ASSERT_TRUE(mm.cpu_write(buf + i * kPage, word + i).ok());
    }
  }

  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
};

TEST_F(HugetlbTest, MapsWholeAlignedHugePagesAndAReadFaultNeedsNoZeroPage) {
  ASSERT_TRUE(mm.mmap(kPage, Prot::kRead, MapKind::kAnonPrivate).ok());  // unaligns next_addr
  const std::uint64_t buf = *mm.mmap_hugetlb(kHugePageSize + kPage, Prot::kReadWrite);
  EXPECT_EQ(buf, huge_page_of(buf));
  // Rounded up to two huge pages.
  EXPECT_TRUE(mm.cpu_read(buf + 2 * kHugePageSize - kPage).ok());
  EXPECT_EQ(mm.cpu_read(buf + 2 * kHugePageSize).status().code(), absl::StatusCode::kNotFound);
  // Even advised otherwise, a read fault maps the whole huge page, fresh and read-only.
  ASSERT_TRUE(mm.madvise(buf, kHugePageSize, Advice::kNoHugePage).ok());
  EXPECT_EQ(*mm.cpu_read(buf + 5 * kPage), 0u);
  for (std::uint64_t i = 0; i < kHugePages; ++i) {
    const PageEntry e = *mm.lookup(buf + i * kPage);
    EXPECT_TRUE(e.huge && !e.zero_page && !e.writable) << "page " << i;
  }
  fill(buf, 2);
  expect_filled(buf, 2);
}

TEST_F(HugetlbTest, CutsInsideAHugePageFailAndChangeNothing) {
  const std::uint64_t buf = *mm.mmap_hugetlb(2 * kHugePageSize, Prot::kReadWrite);
  fill(buf, 2);
  const std::uint64_t mid = buf + 3 * kPage;
  const std::uint64_t elsewhere = *mm.mmap_hugetlb(2 * kHugePageSize, Prot::kReadWrite);
  const auto refused = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(refused(mm.munmap(mid, kPage)));
  EXPECT_TRUE(refused(mm.munmap(buf, kHugePageSize + kPage)));
  EXPECT_TRUE(refused(mm.mprotect(mid, kHugePageSize, Prot::kRead)));
  EXPECT_TRUE(refused(mm.madvise(buf, kPage, Advice::kHugePage)));
  EXPECT_TRUE(refused(mm.mremap(buf, kPage, elsewhere)));
  EXPECT_TRUE(refused(mm.mremap(buf, kHugePageSize, elsewhere + kPage)));
  // Another mapping's range that would cut this one where it lands.
  const std::uint64_t small = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  EXPECT_TRUE(refused(mm.mremap(small, kPage, buf + kPage)));
  expect_filled(buf, 2);
  EXPECT_EQ(mm.lookup(buf).value().writable, true) << "mprotect changed nothing";
}

TEST_F(HugetlbTest, CutsAtHugePageBoundariesWork) {
  const std::uint64_t buf = *mm.mmap_hugetlb(3 * kHugePageSize, Prot::kReadWrite);
  fill(buf, 3);
  ASSERT_TRUE(mm.mprotect(buf, kHugePageSize, Prot::kRead).ok());
  EXPECT_FALSE(mm.lookup(buf)->writable);
  EXPECT_EQ(mm.cpu_write(buf, 1).code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(mm.munmap(buf + kHugePageSize, kHugePageSize).ok());
  EXPECT_EQ(mm.cpu_read(buf + kHugePageSize).status().code(), absl::StatusCode::kNotFound);
  const std::uint64_t elsewhere = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  ASSERT_TRUE(mm.mremap(buf + 2 * kHugePageSize, kHugePageSize, elsewhere).ok());
  expect_filled(elsewhere, 1, 2 * kHugePages);
  expect_filled(buf, 1);
}

TEST_F(HugetlbTest, ItsPagesStayInSystemRamAndAreNotFreedEarly) {
  const std::uint64_t buf = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  fill(buf, 1);
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
  EXPECT_EQ(device->migrate_to_device(buf, kHugePageSize).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(device->make_exclusive(buf, kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mm.madvise(buf, kHugePageSize, Advice::kFree).code(),
            absl::StatusCode::kInvalidArgument);
  const std::uint64_t elsewhere = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  EXPECT_EQ(mm.mremap(buf, kHugePageSize, elsewhere, /*keep_old=*/true).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*mm.reap(), 0u);  // the reaper leaves it alone
  expect_filled(buf, 1);
  // The device reaches it in place, as one huge page.
  EXPECT_EQ(*device->read(buf + kPage, 1), std::vector<std::uint64_t>{1});
  EXPECT_EQ(device->snapshot(buf, 1)[0], PageSnapshot::kWrite | PageSnapshot::kPmd);
  EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  device->close();
}

TEST_F(HugetlbTest, ForkCopiesAWrittenHugePageWhole) {
  const std::uint64_t buf = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  fill(buf, 1);
  Ref<Process> child = *process->fork();
  ASSERT_TRUE(child->mm().cpu_write(buf + kPage, 99).ok());
  for (std::uint64_t i = 0; i < kHugePages; ++i) {
    const PageEntry e = *child->mm().lookup(buf + i * kPage);
    EXPECT_TRUE(e.huge && e.writable) << "page " << i;
    EXPECT_EQ(e.frame->read(), i == 1 ? 99 : i) << "page " << i;
  }
  expect_filled(buf, 1);
  child->exit();
}

}  // namespace
}  // namespace itn::hw
