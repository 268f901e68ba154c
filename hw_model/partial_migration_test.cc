// Per-page results of migrations and exclusive access (Moves::kWhatItCan, the kernel's
// migrate_vma): pages that cannot move are skipped and reported, the rest move; with
// kAllOrNothing the same range fails and nothing changes. Whole-call errors (a hole,
// PROT_NONE, hugetlb memory) fail both modes alike.
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "testing/coherence.h"
#include "hw_model/mirror_device.h"

namespace itn::hw {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;

constexpr std::uint64_t kPage = kPageSize;
constexpr std::uint64_t kHugePages = kHugePageSize / kPageSize;
constexpr PageSnapshot kOnThisDevice = PageSnapshot::kDevicePrivateLocal | PageSnapshot::kWrite;
constexpr PageSnapshot kInRam = PageSnapshot::kWrite;
constexpr PageSnapshot kFilePage = PageSnapshot::kRead;  // a private mapping's, read-only
using enum PageOutcome;

struct PartialMigrationTest : ::testing::Test {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);

  // Four pages of a private file mapping: 0 and 3 written (anonymous copies, words 10 and
  // 13), 1 read (still the file's), 2 written and then moved to `other` (word 12).
  std::uint64_t mixed_range() {
    const std::uint64_t buf =
        *mm.mmap(4 * kPage, Prot::kReadWrite, MapKind::kFilePrivate, make_ref<File>());
    for (std::uint64_t p : {0, 2, 3}) EXPECT_TRUE(mm.cpu_write(buf + p * kPage, 10 + p).ok());
    EXPECT_TRUE(mm.cpu_read(buf + kPage).ok());
    EXPECT_TRUE(other->migrate_to_device(buf + 2 * kPage, kPage).ok());
    return buf;
  }
  std::vector<std::uint64_t> words(std::uint64_t buf, std::uint64_t pages) {
    std::vector<std::uint64_t> out;
    for (std::uint64_t p = 0; p < pages; ++p) out.push_back(*mm.cpu_read(buf + p * kPage));
    return out;
  }
  void TearDown() override {
    for (const Ref<MirrorDevice>& d : {device, other}) {
      EXPECT_TRUE(check_coherence(*d).ok()) << check_coherence(*d);
    }
  }
};

TEST_F(PartialMigrationTest, WhatItCanMovesTheAnonymousPagesAndReportsTheOthers) {
  const std::uint64_t buf = mixed_range();
  absl::StatusOr<MirrorDevice::Outcomes> moved =
      device->migrate_to_device(buf, 4 * kPage, Moves::kWhatItCan);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, ElementsAre(kMoved, kNotAnonymous, kOnAnotherDevice, kMoved));
  EXPECT_THAT(device->snapshot(buf, 4),
              ElementsAre(kOnThisDevice, kFilePage, PageSnapshot::kNone, kOnThisDevice))
      << "the skipped pages stay where they were";
  EXPECT_EQ(mm.lookup(buf + 2 * kPage)->device, other.get());
  // Again: the moved pages are there already, the others still cannot move.
  moved = device->migrate_to_device(buf, 4 * kPage, Moves::kWhatItCan);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, ElementsAre(kUnchanged, kNotAnonymous, kOnAnotherDevice, kUnchanged));
  EXPECT_THAT(words(buf, 4), ElementsAre(10, 0, 12, 13));
}

TEST_F(PartialMigrationTest, AllOrNothingFailsTheSameRangeAndMovesNothing) {
  const std::uint64_t buf = mixed_range();
  const std::vector<PageSnapshot> before = device->snapshot(buf, 4);
  EXPECT_EQ(device->migrate_to_device(buf, 4 * kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(device->snapshot(buf, 4), before);
  // Until a page cannot move, all of them do: without the file's page and the other
  // device's, the default mode moves the range.
  absl::StatusOr<MirrorDevice::Outcomes> moved = device->migrate_to_device(buf, kPage);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, ElementsAre(kMoved));
}

TEST_F(PartialMigrationTest, BackToSystemReportsOnlyThisDevicesPagesAsMoved) {
  const std::uint64_t buf = mixed_range();
  ASSERT_TRUE(device->migrate_to_device(buf, kPage).ok());
  for (Moves moves : {Moves::kAllOrNothing, Moves::kWhatItCan}) {
    SCOPED_TRACE(static_cast<int>(moves));
    ASSERT_TRUE(device->migrate_to_device(buf, kPage).ok());
    absl::StatusOr<MirrorDevice::Outcomes> back = device->migrate_to_system(buf, 4 * kPage, moves);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_THAT(*back, ElementsAre(kMoved, kUnchanged, kUnchanged, kUnchanged));
    EXPECT_THAT(device->snapshot(buf, 4),
                ElementsAre(kInRam, kFilePage, PageSnapshot::kNone, kInRam));
  }
  EXPECT_THAT(words(buf, 4), ElementsAre(10, 0, 12, 13));
}

TEST_F(PartialMigrationTest, SharedMemoryIsSkippedWholeOrRefusedWhatever) {
  const std::uint64_t shared = *mm.mmap(2 * kPage, Prot::kReadWrite, MapKind::kAnonShared);
  ASSERT_TRUE(mm.cpu_write(shared, 5).ok());
  absl::StatusOr<MirrorDevice::Outcomes> moved =
      device->migrate_to_device(shared, 2 * kPage, Moves::kWhatItCan);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, Each(kNotAnonymous));
  moved = device->make_exclusive(shared, 2 * kPage, Moves::kWhatItCan);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_THAT(*moved, Each(kNotAnonymous));
  EXPECT_EQ(mm.lookup(shared)->exclusive, nullptr);
  EXPECT_EQ(device->make_exclusive(shared, 2 * kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*mm.cpu_read(shared), 5u);
}

TEST_F(PartialMigrationTest, ExclusiveAccessTakesAFilesPageAfterCopyingIt) {
  const std::uint64_t buf = mixed_range();
  absl::StatusOr<MirrorDevice::Outcomes> taken =
      device->make_exclusive(buf, 4 * kPage, Moves::kWhatItCan);
  ASSERT_TRUE(taken.ok()) << taken.status();
  // Exclusive access faults every page in for write first: the file's page is copied,
  // the other device's comes back.
  EXPECT_THAT(*taken, Each(kMoved));
  for (std::uint64_t p = 0; p < 4; ++p)
    EXPECT_EQ(mm.lookup(buf + p * kPage)->exclusive, device.get());
  EXPECT_THAT(words(buf, 4), ElementsAre(10, 0, 12, 13));
}

TEST_F(PartialMigrationTest, WholeCallErrorsFailEitherModeAndMoveNothing) {
  const std::uint64_t buf = *mm.mmap(2 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
  const std::uint64_t none = *mm.mmap(kPage, Prot::kNone, MapKind::kAnonPrivate);
  const std::uint64_t hugetlb = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  for (Moves moves : {Moves::kAllOrNothing, Moves::kWhatItCan}) {
    SCOPED_TRACE(static_cast<int>(moves));
    // Past the end of the mapping: the guard page after it is a hole.
    EXPECT_EQ(device->migrate_to_device(buf, 3 * kPage, moves).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(device->migrate_to_device(none, kPage, moves).status().code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(device->migrate_to_device(hugetlb, kPage, moves).status().code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(device->make_exclusive(buf, kPage * 3, moves).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(mm.lookup(buf)->device, nullptr) << "nothing moved";
    EXPECT_EQ(mm.lookup(buf)->exclusive, nullptr) << "nothing taken";
  }
}

// A device with chunk notifiers cannot cover a range with a PROT_NONE page, yet a
// migration of what it can skips a shared one and moves the rest: the device must not
// keep its old entries of the moved pages (write-protected by its own kMigrate), which no
// hook replaces and the CPU's next write in place would leave stale.
TEST_F(PartialMigrationTest, AMoveTheDeviceCannotCoverLeavesNoStaleEntry) {
  for (DeviceMemory memory : {DeviceMemory::kPrivate, DeviceMemory::kCoherent}) {
    SCOPED_TRACE(static_cast<int>(memory));
    Ref<MirrorDevice> chunked =
        *MirrorDevice::open(*process, {.memory = memory, .notifier_chunk_pages = 1});
    const std::uint64_t a = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
    const std::uint64_t s = *mm.mmap(kPage, Prot::kNone, MapKind::kAnonShared);
    ASSERT_TRUE(mm.mremap(s, kPage, a + kPage).ok());  // onto a's guard page: no hole
    ASSERT_TRUE(mm.cpu_write(a, 1).ok());
    ASSERT_EQ(chunked->read(a, 1)->at(0), 1u);  // a device entry of the RAM frame
    ASSERT_TRUE(chunked->migrate_to_device(a, kPage).ok());
    for (bool in : {false, true}) {
      absl::StatusOr<MirrorDevice::Outcomes> moved =
          in ? chunked->migrate_to_device(a, 2 * kPage, Moves::kWhatItCan)
             : chunked->migrate_to_system(a, 2 * kPage, Moves::kWhatItCan);
      ASSERT_TRUE(moved.ok()) << moved.status();
      EXPECT_THAT(*moved, ElementsAre(kMoved, kNotAnonymous));
      ASSERT_TRUE(check_coherence(*chunked).ok()) << check_coherence(*chunked);
      ASSERT_TRUE(mm.cpu_write(a, in ? 3 : 2).ok());
      EXPECT_EQ(chunked->read(a, 1)->at(0), in ? 3u : 2u) << "the device read a stale frame";
    }
    chunked->close();
  }
}

TEST_F(PartialMigrationTest, AnotherDevicesHugePageIsSkippedWholeAndNotSplit) {
  Ref<MirrorDevice> coherent = *MirrorDevice::open(*process, {.memory = DeviceMemory::kCoherent});
  const std::uint64_t addr = *mm.mmap(2 * kHugePageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  const std::uint64_t block = huge_page_of(addr + kHugePageSize - 1);
  ASSERT_TRUE(mm.madvise(block, kHugePageSize, Advice::kHugePage).ok());
  ASSERT_TRUE(mm.cpu_write(block, 7).ok());
  ASSERT_TRUE(coherent->migrate_to_device(block, kHugePageSize).ok());
  const PageSnapshot remote_huge =
      PageSnapshot::kDeviceCoherentRemote | PageSnapshot::kWrite | PageSnapshot::kPmd;
  ASSERT_THAT(device->snapshot(block, kHugePages), Each(remote_huge));
  // Half of the block, and the page before it.
  absl::StatusOr<MirrorDevice::Outcomes> moved =
      device->migrate_to_device(block - kPage, (1 + kHugePages / 2) * kPage, Moves::kWhatItCan);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->front(), kMoved);
  EXPECT_THAT(std::vector<PageOutcome>(moved->begin() + 1, moved->end()), Each(kOnAnotherDevice));
  EXPECT_THAT(device->snapshot(block, kHugePages), Each(remote_huge)) << "still one huge page";
  EXPECT_EQ(*mm.cpu_read(block), 7u);
  coherent->close();
}

}  // namespace
}  // namespace itn::hw
