#include "hw_model/address_space.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

#include "hw_model/testing/invalidation_recorder.h"

namespace itn::hw {
namespace {

using Recorder = testing::InvalidationRecorder;

class AddressSpaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mm_->notifiers().insert(recorder_, Interval::whole_space(), nullptr).ok());
  }
  void TearDown() override { ASSERT_TRUE(mm_->notifiers().remove(*recorder_).ok()); }
  std::uint64_t map(std::uint64_t pages, Prot prot, MapKind kind = MapKind::kAnonPrivate) {
    absl::StatusOr<std::uint64_t> a = mm_->mmap(pages * kPageSize, prot, kind);
    EXPECT_TRUE(a.ok());
    return a.value_or(0);
  }

  Ref<AddressSpace> mm_ = make_ref<AddressSpace>();
  Ref<Recorder> recorder_ = make_ref<Recorder>();
};

TEST_F(AddressSpaceTest, UntouchedAnonymousMemoryReadsZeroWithoutInvalidating) {
  const std::uint64_t a = map(4, Prot::kReadWrite);
  EXPECT_EQ(*mm_->cpu_read(a + 3 * kPageSize + 8), 0u);
  EXPECT_TRUE(recorder_->take().empty());
}

TEST_F(AddressSpaceTest, WriteThenReadAndCopyOnWriteFromTheZeroPage) {
  const std::uint64_t a = map(3, Prot::kReadWrite);
  ASSERT_EQ(*mm_->cpu_read(a), 0u);  // maps the shared zero page read-only
  ASSERT_TRUE(mm_->cpu_write(a, 42).ok());
  EXPECT_EQ(recorder_->take(), (std::vector<Recorder::Call>{{Event::kClear, a, a + kPageSize}}))
      << "breaking copy-on-write must invalidate exactly that page";
  EXPECT_EQ(*mm_->cpu_read(a), 42u);
  EXPECT_EQ(*mm_->cpu_read(a + kPageSize), 0u) << "the zero page itself was written";
  ASSERT_TRUE(mm_->cpu_write(a + 2 * kPageSize, 7).ok());  // never read: no invalidation
  EXPECT_TRUE(recorder_->take().empty());
}

TEST_F(AddressSpaceTest, AccessErrorsLeaveEverythingAsItWas) {
  const std::uint64_t none = map(1, Prot::kNone);
  const std::uint64_t ro = map(1, Prot::kRead);
  EXPECT_EQ(mm_->cpu_read(none).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(mm_->cpu_write(ro, 1).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*mm_->cpu_read(ro), 0u);
  EXPECT_EQ(mm_->cpu_read(0x10).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mm_->munmap(ro + 1, kPageSize).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->munmap(ro, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->mprotect(ro, 4 * kPageSize, Prot::kReadWrite).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mm_->mmap(0, Prot::kRead, MapKind::kAnonPrivate).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->mmap(kPageSize, Prot::kRead, MapKind::kFileShared).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(recorder_->take().empty());
  EXPECT_EQ(mm_->cpu_write(ro, 1).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AddressSpaceTest, MunmapInvalidatesTheRangeAndSplitsTheMapping) {
  const std::uint64_t a = map(3, Prot::kReadWrite);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(mm_->cpu_write(a + i * kPageSize, 10 + i).ok());
  recorder_->take();
  ASSERT_TRUE(mm_->munmap(a + kPageSize, kPageSize).ok());
  EXPECT_EQ(recorder_->take(),
            (std::vector<Recorder::Call>{{Event::kUnmap, a + kPageSize, a + 2 * kPageSize}}));
  EXPECT_EQ(*mm_->cpu_read(a), 10u);
  EXPECT_EQ(mm_->cpu_read(a + kPageSize).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*mm_->cpu_read(a + 2 * kPageSize), 12u);
}

TEST_F(AddressSpaceTest, MremapMovesThePagesWithTheirFramesUnderTwoUnmaps) {
  const std::uint64_t a = map(4, Prot::kReadWrite);
  const std::uint64_t target = map(2, Prot::kRead);  // whatever is there goes first
  ASSERT_TRUE(mm_->cpu_write(a + kPageSize, 7).ok());
  const Ref<Frame> frame = mm_->lookup(a + kPageSize)->frame;
  recorder_->take();
  ASSERT_TRUE(mm_->mremap(a + kPageSize, 2 * kPageSize, target).ok());
  using Call = Recorder::Call;
  EXPECT_EQ(recorder_->take(),
            (std::vector<Call>{{Event::kUnmap, target, target + 2 * kPageSize},
                               {Event::kUnmap, a + kPageSize, a + 3 * kPageSize}}));
  EXPECT_EQ(mm_->lookup(target)->frame, frame) << "the page moved, not copied";
  EXPECT_EQ(*mm_->cpu_read(target), 7u);
  ASSERT_TRUE(mm_->cpu_write(target + kPageSize, 8).ok()) << "the mapping's protection moved";
  EXPECT_EQ(mm_->cpu_read(a + kPageSize).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(mm_->cpu_read(a).ok() && mm_->cpu_read(a + 3 * kPageSize).ok());
}

TEST_F(AddressSpaceTest, MremapKeepingTheOldRangeLeavesItEmpty) {
  const std::uint64_t a = map(2, Prot::kReadWrite);
  const std::uint64_t last = map(1, Prot::kReadWrite);
  const std::uint64_t target = last + 2 * kPageSize;  // where the next mmap would go
  ASSERT_TRUE(mm_->cpu_write(a, 7).ok());
  ASSERT_TRUE(mm_->mremap(a, 2 * kPageSize, target, /*keep_old=*/true).ok());
  EXPECT_EQ(*mm_->cpu_read(a), 0u);
  EXPECT_EQ(*mm_->cpu_read(target), 7u);
  const std::uint64_t later = map(1, Prot::kReadWrite);
  EXPECT_TRUE(later >= target + 2 * kPageSize || later + kPageSize <= target)
      << "mmap handed out a moved mapping's address";
}

// Downwards, onto a mapping that goes first: every page arrives (the move once reused
// an iterator to an entry it had just erased).
TEST_F(AddressSpaceTest, MremapMovesDownwardsOverAnotherMapping) {
  const std::uint64_t low = map(1, Prot::kReadWrite);
  const std::uint64_t high = map(2, Prot::kReadWrite);  // right after low's guard page
  for (std::uint64_t i = 0; i < 2; ++i)
    ASSERT_TRUE(mm_->cpu_write(high + i * kPageSize, i + 1).ok());
  ASSERT_TRUE(mm_->mremap(high, 2 * kPageSize, low).ok());
  for (std::uint64_t i = 0; i < 2; ++i) EXPECT_EQ(*mm_->cpu_read(low + i * kPageSize), i + 1);
  EXPECT_EQ(mm_->cpu_read(high + kPageSize).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AddressSpaceTest, MremapErrorsMoveNothing) {
  const std::uint64_t a = map(4, Prot::kReadWrite);
  const std::uint64_t b = map(2, Prot::kReadWrite);
  const std::uint64_t shared = map(1, Prot::kReadWrite, MapKind::kAnonShared);
  ASSERT_TRUE(mm_->cpu_write(a, 7).ok());
  recorder_->take();
  EXPECT_EQ(mm_->mremap(a, 2 * kPageSize, a + kPageSize).code(), absl::StatusCode::kInvalidArgument)
      << "overlapping ranges";
  EXPECT_EQ(mm_->mremap(a + 3 * kPageSize, 2 * kPageSize, b).code(),
            absl::StatusCode::kInvalidArgument)
      << "across the guard page";
  EXPECT_EQ(mm_->mremap(a + 4 * kPageSize, kPageSize, b).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(mm_->mremap(a + 1, kPageSize, b).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->mremap(shared, kPageSize, b, /*keep_old=*/true).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->mremap(a, kPageSize, kUserSpaceEnd - kPageSize + kPageSize).code(),
            absl::StatusCode::kInvalidArgument)
      << "past the end of the user address space";
  EXPECT_EQ(mm_->mremap(a, kPageSize, ~std::uint64_t{0} - 2 * kPageSize + 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(recorder_->take().empty());
  EXPECT_EQ(*mm_->cpu_read(a), 7u);
  EXPECT_TRUE(mm_->cpu_read(b).ok() && mm_->cpu_read(shared).ok());
}

// Review finding: after an mremap to the top of the user address space, mmap handed out
// addresses past kUserSpaceEnd (its room check wrapped around).
TEST_F(AddressSpaceTest, MmapAfterAMoveToTheTopOfTheAddressSpaceIsExhausted) {
  const std::uint64_t a = map(1, Prot::kReadWrite);
  ASSERT_TRUE(mm_->mremap(a, kPageSize, kUserSpaceEnd - kPageSize).ok());
  EXPECT_EQ(mm_->mmap(kPageSize, Prot::kRead, MapKind::kAnonPrivate).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(mm_->mmap_hugetlb(kPageSize, Prot::kRead).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(mm_->cpu_read(kUserSpaceEnd - kPageSize).ok());
}

TEST_F(AddressSpaceTest, MprotectInvalidatesAndRevokesWriteUntilRestored) {
  const std::uint64_t a = map(2, Prot::kReadWrite);
  ASSERT_TRUE(mm_->cpu_write(a, 5).ok());
  ASSERT_TRUE(mm_->mprotect(a, 2 * kPageSize, Prot::kRead).ok());
  EXPECT_EQ(recorder_->take(),
            (std::vector<Recorder::Call>{{Event::kProtectionVma, a, a + 2 * kPageSize}}));
  EXPECT_EQ(mm_->cpu_write(a, 6).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(*mm_->cpu_read(a), 5u);
  ASSERT_TRUE(mm_->mprotect(a, kPageSize, Prot::kReadWrite).ok());
  ASSERT_TRUE(mm_->cpu_write(a, 6).ok());
  EXPECT_EQ(*mm_->cpu_read(a), 6u) << "the private page kept its frame across mprotect";
  EXPECT_EQ(mm_->cpu_write(a + kPageSize, 1).code(), absl::StatusCode::kPermissionDenied)
      << "only the first page was made writable again";
}

TEST_F(AddressSpaceTest, FileWritesReachEveryMappingOfEveryProcess) {
  auto file = make_ref<File>();
  auto mm1 = make_ref<AddressSpace>();
  auto mm2 = make_ref<AddressSpace>();
  const std::uint64_t a = *mm1->mmap(2 * kPageSize, Prot::kReadWrite, MapKind::kFileShared, file);
  const std::uint64_t b = *mm2->mmap(kPageSize, Prot::kRead, MapKind::kFileShared, file, kPageSize);
  ASSERT_TRUE(mm1->cpu_write(a + kPageSize, 99).ok());
  EXPECT_EQ(*mm2->cpu_read(b), 99u) << "file offset kPageSize is b's first page";
  EXPECT_EQ(*mm1->cpu_read(a), 0u);
}

TEST_F(AddressSpaceTest, AnonymousSharedMappingHasItsOwnBacking) {
  auto mm = make_ref<AddressSpace>();
  const std::uint64_t a = *mm->mmap(kPageSize, Prot::kReadWrite, MapKind::kAnonShared);
  const std::uint64_t b = *mm->mmap(kPageSize, Prot::kReadWrite, MapKind::kAnonShared);
  ASSERT_TRUE(mm->cpu_write(a, 1).ok());
  EXPECT_EQ(*mm->cpu_read(b), 0u);
  EXPECT_EQ(*mm->cpu_read(a), 1u);
}

TEST_F(AddressSpaceTest, ForkWriteProtectsOnlyFaultedPrivateMappings) {
  const std::uint64_t touched = map(2, Prot::kReadWrite);
  map(2, Prot::kReadWrite);  // never faulted: nothing to protect
  const std::uint64_t shared = map(1, Prot::kReadWrite, MapKind::kAnonShared);
  ASSERT_TRUE(mm_->cpu_write(touched, 1).ok());
  ASSERT_TRUE(mm_->cpu_write(shared, 2).ok());
  recorder_->take();
  Ref<AddressSpace> child = *mm_->fork();
  EXPECT_EQ(
      recorder_->take(),
      (std::vector<Recorder::Call>{{Event::kProtectionPage, touched, touched + 2 * kPageSize}}));
  ASSERT_TRUE(mm_->cpu_write(touched, 3).ok());  // copy-on-write break in the parent
  EXPECT_EQ(recorder_->take(),
            (std::vector<Recorder::Call>{{Event::kClear, touched, touched + kPageSize}}));
  EXPECT_EQ(*child->cpu_read(touched), 1u);
  child->mmput();
}

TEST_F(AddressSpaceTest, DeviceChangesNameTheirDeviceAndCpuTouchesNameNobody) {
  const int device = 0;  // any address identifies a device
  const std::uint64_t a = map(2, Prot::kReadWrite);
  ASSERT_TRUE(mm_->cpu_write(a, 5).ok());
  recorder_->take();
  std::vector<std::uint64_t> hooked;
  auto hook = [&](std::uint64_t page, const PageEntry& e) {
    hooked.push_back(page);
    EXPECT_EQ(e.device == &device || e.exclusive == &device, true);
  };
  ASSERT_TRUE(mm_->migrate_to_device(a, 2 * kPageSize, &device, hook).ok());
  EXPECT_EQ(hooked, (std::vector<std::uint64_t>{a, a + kPageSize}));
  EXPECT_EQ(*mm_->cpu_read(a), 5u);  // back to system RAM, owner null
  EXPECT_EQ(recorder_->take(),
            (std::vector<Recorder::Call>{{Event::kMigrate, a, a + 2 * kPageSize, &device},
                                         {Event::kMigrate, a, a + kPageSize, nullptr}}));
  hooked.clear();
  ASSERT_TRUE(mm_->make_exclusive(a + kPageSize, kPageSize, &device, hook).ok());
  ASSERT_TRUE(mm_->cpu_write(a + kPageSize, 6).ok());
  EXPECT_EQ(recorder_->take(),
            (std::vector<Recorder::Call>{
                {Event::kMigrate, a + kPageSize, a + 2 * kPageSize, nullptr},  // write fault
                {Event::kExclusive, a + kPageSize, a + 2 * kPageSize, &device},
                {Event::kExclusive, a + kPageSize, a + 2 * kPageSize, nullptr}}));
}

TEST_F(AddressSpaceTest, TheLastUserTearsDownWithOneReleaseAndLaterCallsFail) {
  const std::uint64_t a = map(1, Prot::kReadWrite);
  ASSERT_TRUE(mm_->mmget_not_zero());
  mm_->mmput();
  EXPECT_TRUE(recorder_->take().empty());
  mm_->mmput();  // the creation's user
  EXPECT_EQ(recorder_->take(), (std::vector<Recorder::Call>{{Event::kRelease, 0, kRangeEndMax}}));
  EXPECT_EQ(mm_->cpu_write(a, 1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mm_->munmap(a, kPageSize).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mm_->fork().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mm_->lookup(a).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace itn::hw

namespace itn::hw {
namespace {

// A private file mapping reads the file's pages (and later writes to the file) until it
// writes a page, which copies it: the file and other mappings never see that write.
TEST(AddressSpaceFilePrivateTest, ReadsTheFileUntilItsFirstWriteCopiesThePage) {
  Ref<AddressSpace> mm = make_ref<AddressSpace>();
  Ref<File> file = make_ref<File>();
  file->write(0, 5);
  const std::uint64_t priv =
      *mm->mmap(2 * kPageSize, Prot::kReadWrite, MapKind::kFilePrivate, file);
  const std::uint64_t shared =
      *mm->mmap(2 * kPageSize, Prot::kReadWrite, MapKind::kFileShared, file);
  EXPECT_EQ(*mm->cpu_read(priv), 5u);
  EXPECT_TRUE(mm->lookup(priv)->page_cache);
  EXPECT_FALSE(mm->lookup(priv)->writable);
  file->write(0, 6);  // pwrite: the private mapping still shares the page
  EXPECT_EQ(*mm->cpu_read(priv), 6u);
  ASSERT_TRUE(mm->cpu_write(priv, 7).ok());
  EXPECT_FALSE(mm->lookup(priv)->page_cache);
  EXPECT_EQ(file->read(0), 6u) << "a private write reached the file";
  EXPECT_EQ(*mm->cpu_read(shared), 6u);
  ASSERT_TRUE(mm->cpu_write(shared, 8).ok());
  EXPECT_EQ(*mm->cpu_read(priv), 7u) << "the copy follows the file no more";
  // Only the copied page may move to a device.
  const int device = 0;
  auto hook = [](std::uint64_t, const PageEntry&) {};
  EXPECT_EQ(mm->migrate_to_device(priv + kPageSize, kPageSize, &device, hook).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(mm->migrate_to_device(priv, kPageSize, &device, hook).ok());
  EXPECT_EQ(mm->mmap(kPageSize, Prot::kRead, MapKind::kFilePrivate).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "a file mapping without a file";
}

}  // namespace
}  // namespace itn::hw
