// AddressSpace::pin_user_pages(): what each kind of pin faults in and returns, that the
// caller's frames outlive the mapping, its errors, and pins racing migrations and faults.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "hw_model/address_space.h"
#include "testing/coherence.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "sync/test_util.h"

namespace itn::hw {
namespace {

constexpr std::uint64_t kPage = kPageSize;
using Pin = AddressSpace::Pin;

class PinUserPagesTest : public ::testing::Test {
 protected:
  std::uint64_t map(std::uint64_t pages, Prot prot = Prot::kReadWrite) {
    return *mm.mmap(pages * kPage, prot, MapKind::kAnonPrivate);
  }

  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
};

// A pin walks on the read side of the mmap lock: a CPU fault may map the next page while
// the pin stands between two pages. The pin must find that entry (and copy the zero page
// it maps), not take the page for absent and return the zero page for a write.
TEST_F(PinUserPagesTest, APageMappedByACpuFaultDuringTheWalkIsFound) {
  if (!ITN_SCHED_SEAM) {
    GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to pause the pin between pages";
  }
  const std::uint64_t buf = map(2);
  ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
  // One page table lock hold per page: stop before the second page's.
  testing::PauseAt hooks(SchedPoint::kLock, mm.page_table_lock_for_testing(), 2);
  absl::StatusOr<std::vector<Ref<Frame>>> frames;
  std::thread pin([&] {
    set_thread_hooks(&hooks);
    frames = mm.pin_user_pages(buf, 2 * kPage, /*write=*/true, Pin::kShortTerm);
    set_thread_hooks(nullptr);
  });
  testing::wait_until([&] { return hooks.paused.load(); });
  ASSERT_EQ(*mm.cpu_read(buf + kPage), 0u);  // maps the zero page there
  hooks.may_go.store(true);
  pin.join();
  ASSERT_TRUE(frames.ok()) << frames.status();
  const PageEntry second = *mm.lookup(buf + kPage);
  EXPECT_FALSE(second.zero_page) << "the write pin left the zero page mapped";
  EXPECT_TRUE(second.writable);
  EXPECT_EQ((*frames)[1].get(), second.frame.get()) << "the pin returned another frame";
}

// A free runs on the read side too: it may erase the entry the pin's walk would look at
// next. The pin must fault that page afresh (the zero page, for a read).
TEST_F(PinUserPagesTest, APageFreedDuringTheWalkIsFaultedAfresh) {
  if (!ITN_SCHED_SEAM) {
    GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to pause the pin between pages";
  }
  const std::uint64_t buf = map(2);
  ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
  ASSERT_TRUE(mm.cpu_write(buf + kPage, 2).ok());
  testing::PauseAt hooks(SchedPoint::kLock, mm.page_table_lock_for_testing(), 2);
  absl::StatusOr<std::vector<Ref<Frame>>> frames;
  std::thread pin([&] {
    set_thread_hooks(&hooks);
    frames = mm.pin_user_pages(buf, 2 * kPage, /*write=*/false, Pin::kShortTerm);
    set_thread_hooks(nullptr);
  });
  testing::wait_until([&] { return hooks.paused.load(); });
  ASSERT_TRUE(mm.madvise(buf + kPage, kPage, Advice::kFree).ok());
  hooks.may_go.store(true);
  pin.join();
  ASSERT_TRUE(frames.ok()) << frames.status();
  const PageEntry second = *mm.lookup(buf + kPage);
  EXPECT_TRUE(second.zero_page) << "the pin did not fault the freed page in again";
  EXPECT_EQ((*frames)[1].get(), second.frame.get()) << "the pin returned the freed frame";
  EXPECT_EQ((*frames)[0]->read(), 1u);
}

TEST_F(PinUserPagesTest, ReturnsTheMappedFramesAndAWritePinBreaksCopyOnWrite) {
  const std::uint64_t buf = map(3);
  ASSERT_TRUE(mm.cpu_write(buf + kPage, 7).ok());
  absl::StatusOr<std::vector<Ref<Frame>>> read =
      mm.pin_user_pages(buf, 3 * kPage, false, Pin::kShortTerm);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 3u);
  EXPECT_TRUE(mm.lookup(buf)->zero_page) << "a read pin of untouched memory maps the zero page";
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*read)[i].get(), mm.lookup(buf + i * kPage)->frame.get()) << "page " << i;
  }
  absl::StatusOr<std::vector<Ref<Frame>>> write =
      mm.pin_user_pages(buf, 3 * kPage, true, Pin::kShortTerm);
  ASSERT_TRUE(write.ok()) << write.status();
  EXPECT_NE((*write)[0].get(), (*read)[0].get()) << "the zero page was copied";
  EXPECT_EQ((*write)[1].get(), (*read)[1].get()) << "a written private page is reused";
  for (std::uint64_t i = 0; i < 3; ++i) {
    const PageEntry e = *mm.lookup(buf + i * kPage);
    EXPECT_TRUE(e.writable) << "page " << i;
    EXPECT_EQ((*write)[i].get(), e.frame.get()) << "page " << i;
  }
  (*write)[2]->write(9);  // a write through the pin reaches the mapping
  EXPECT_EQ(*mm.cpu_read(buf + 2 * kPage), 9u);
}

// The caller's Refs keep the frames: an unmap or exit does not free them under it.
TEST_F(PinUserPagesTest, PinnedFramesOutliveTheMappingAndTheProcess) {
  const std::uint64_t buf = map(2);
  ASSERT_TRUE(mm.cpu_write(buf, 5).ok());
  std::vector<Ref<Frame>> frames = *mm.pin_user_pages(buf, 2 * kPage, true, Pin::kLongTerm);
  ASSERT_TRUE(mm.munmap(buf, 2 * kPage).ok());
  process->exit();
  process = nullptr;
  EXPECT_EQ(frames[0]->read(), 5u);
  frames[1]->write(6);
  EXPECT_EQ(frames[1]->read(), 6u);
}

TEST_F(PinUserPagesTest, ExclusiveAccessIsRevokedByAPin) {
  const std::uint64_t buf = map(2);
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
  ASSERT_TRUE(device->make_exclusive(buf, 2 * kPage).ok());
  ASSERT_EQ(mm.lookup(buf)->exclusive, device.get());
  ASSERT_TRUE(mm.pin_user_pages(buf, kPage, false, Pin::kShortTerm).ok());
  EXPECT_EQ(mm.lookup(buf)->exclusive, nullptr);
  EXPECT_EQ(mm.lookup(buf + kPage)->exclusive, device.get()) << "outside the pin";
  EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  device->close();
}

TEST_F(PinUserPagesTest, ErrorsReturnNothingAndKeepTheFaultsBefore) {
  const std::uint64_t buf = map(3);
  ASSERT_TRUE(mm.munmap(buf + 2 * kPage, kPage).ok());
  EXPECT_EQ(mm.pin_user_pages(buf + 1, kPage, false, Pin::kShortTerm).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm.pin_user_pages(buf, 0, false, Pin::kShortTerm).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm.pin_user_pages(buf, 3 * kPage, true, Pin::kLongTerm).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(mm.lookup(buf + kPage)->writable) << "the pages before the hole were faulted";
  const std::uint64_t ro = map(1, Prot::kRead);
  EXPECT_EQ(mm.pin_user_pages(ro, kPage, true, Pin::kShortTerm).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(mm.pin_user_pages(ro, kPage, false, Pin::kShortTerm).ok());
  process->exit();
  EXPECT_EQ(mm.pin_user_pages(buf, kPage, false, Pin::kShortTerm).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Review finding: a long-term pin brought a device page back to system RAM before it
// found that the protection forbids the access, so it failed having changed the page.
TEST_F(PinUserPagesTest, AForbiddenLongTermPinFailsAndLeavesTheDevicePageWhereItIs) {
  const std::uint64_t buf = map(1, Prot::kRead);
  Ref<MirrorDevice> device = *MirrorDevice::open(*process, {.memory = DeviceMemory::kCoherent});
  ASSERT_TRUE(device->migrate_to_device(buf, kPage).ok());
  const Ref<Frame> on_device = mm.lookup(buf)->frame;
  EXPECT_EQ(mm.pin_user_pages(buf, kPage, /*write=*/true, Pin::kLongTerm).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(mm.lookup(buf)->frame.get(), on_device.get()) << "the page moved";
  ASSERT_TRUE(mm.mprotect(buf, kPage, Prot::kNone).ok());
  EXPECT_EQ(mm.pin_user_pages(buf, kPage, /*write=*/false, Pin::kLongTerm).status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(mm.mprotect(buf, kPage, Prot::kRead).ok());
  EXPECT_EQ(mm.lookup(buf)->frame.get(), on_device.get()) << "the page moved";
  device->close();
}

// Long-term pins against migrations of the same pages, with coherent memory so that the
// pins have pages to bring back: every pin returns the page's current word, and the CPU
// and device stay coherent.
TEST_F(PinUserPagesTest, PinsRacingMigrationsSeeEveryWordAndStayCoherent) {
  constexpr std::uint64_t kPages = 8;
  const std::uint64_t buf = map(kPages);
  for (std::uint64_t i = 0; i < kPages; ++i) ASSERT_TRUE(mm.cpu_write(buf + i * kPage, i).ok());
  Ref<MirrorDevice> device = *MirrorDevice::open(*process, {.memory = DeviceMemory::kCoherent});
  std::atomic<bool> stop{false};
  std::thread migrator([&] {
    while (!stop.load()) {
      EXPECT_TRUE(device->migrate_to_device(buf, kPages * kPage).ok());
      EXPECT_TRUE(device->migrate_to_system(buf, kPages * kPage).ok());
    }
  });
  for (int round = 0; round < 200; ++round) {
    absl::StatusOr<std::vector<Ref<Frame>>> frames =
        mm.pin_user_pages(buf, kPages * kPage, round % 2 == 0, Pin::kLongTerm);
    ASSERT_TRUE(frames.ok()) << frames.status();
    for (std::uint64_t i = 0; i < kPages; ++i) {
      EXPECT_EQ((*frames)[i]->read(), i) << "page " << i;
      EXPECT_EQ((*frames)[i]->device(), nullptr) << "a long-term pin returns system RAM";
    }
  }
  stop = true;
  migrator.join();
  EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  for (std::uint64_t i = 0; i < kPages; ++i) EXPECT_EQ(*mm.cpu_read(buf + i * kPage), i);
  device->close();
}

}  // namespace
}  // namespace itn::hw
