// MirrorDevice scenarios (the kernel's hmm-tests, in user space): faults, device reads and
// writes, protections, fork, migration, exclusive access, two devices, collisions and the
// retry bound. Every test ends with the I17 coherence check where the device is still
// mirroring.
#include "hw_model/mirror_device.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "testing/coherence.h"
#include "sync/test_util.h"

namespace itn::hw {
namespace {

using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr std::uint64_t kPage = kPageSize;
constexpr PageSnapshot kZeroPage = PageSnapshot::kZero | PageSnapshot::kRead;
constexpr PageSnapshot kOnThisDevice = PageSnapshot::kDevicePrivateLocal | PageSnapshot::kWrite;

std::uint64_t invalidations(const MirrorDevice& d, Event e) {
  return d.counters().invalidations[static_cast<int>(e)];
}

struct Fixture : ::testing::Test {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);

  std::uint64_t map(std::uint64_t pages, Prot prot = Prot::kReadWrite,
                    MapKind kind = MapKind::kAnonPrivate) {
    return *mm.mmap(pages * kPage, prot, kind);
  }
  void TearDown() override {
    if (!mm.exited()) {
      EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
    }
  }
};

using MirrorDeviceTest = Fixture;

TEST_F(MirrorDeviceTest, UntouchedAnonymousMemoryReadsZeroWithOneFault) {
  const std::uint64_t buf = map(4);
  absl::StatusOr<std::vector<std::uint64_t>> words = device->read(buf, 4);
  ASSERT_TRUE(words.ok()) << words.status();
  EXPECT_THAT(*words, Each(0u));
  EXPECT_EQ(device->counters().faults, 1u);
  EXPECT_EQ(device->counters().retries, 0u);
  EXPECT_THAT(device->snapshot(buf, 2), ElementsAre(kZeroPage, kZeroPage));
}

TEST_F(MirrorDeviceTest, ProtNoneAndHolesFailAndLeaveTheDeviceUntouched) {
  const std::uint64_t buf = map(2);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{7, 8}).ok());
  const auto before = device->entries_for_testing();
  ASSERT_TRUE(mm.mprotect(buf + kPage, kPage, Prot::kNone).ok());
  EXPECT_EQ(device->read(buf, 2).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(device->write(buf, std::vector<std::uint64_t>{1, 1}).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(device->read(buf + 2 * kPage, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*mm.cpu_read(buf), 7u) << "a failed device write must not write any page";
  EXPECT_EQ(device->entries_for_testing().count(buf + kPage), 0u);
  EXPECT_EQ(before.size(), 2u);
  EXPECT_THAT(device->snapshot(buf, 3),
              ElementsAre(PageSnapshot::kWrite, PageSnapshot::kError, PageSnapshot::kError));
}

TEST_F(MirrorDeviceTest, DeviceWriteThenCpuReadSeesIt) {
  const std::uint64_t buf = map(3);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2, 3}).ok());
  EXPECT_EQ(*mm.cpu_read(buf + 2 * kPage), 3u);
  ASSERT_TRUE(mm.cpu_write(buf, 10).ok());
  EXPECT_THAT(*device->read(buf, 3), ElementsAre(10u, 2u, 3u));
}

TEST_F(MirrorDeviceTest, WriteToReadOnlyFailsUntilMprotectAllowsIt) {
  const std::uint64_t buf = map(2, Prot::kRead);
  EXPECT_THAT(*device->read(buf, 2), Each(0u));
  EXPECT_EQ(device->write(buf, std::vector<std::uint64_t>{5, 6}).code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(mm.mprotect(buf, 2 * kPage, Prot::kReadWrite).ok());
  EXPECT_EQ(invalidations(*device, Event::kProtectionVma), 1u);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{5, 6}).ok());
  EXPECT_EQ(*mm.cpu_read(buf + kPage), 6u);
  // Downgrade again: the device loses write access with the CPU (I17).
  ASSERT_TRUE(mm.mprotect(buf, 2 * kPage, Prot::kRead).ok());
  for (const auto& [page, entry] : device->entries_for_testing()) EXPECT_FALSE(entry.writable);
}

TEST_F(MirrorDeviceTest, AfterForkTheChildsDeviceWriteCopiesOnWrite) {
  const std::uint64_t buf = map(2);
  ASSERT_TRUE(mm.cpu_write(buf, 41).ok());
  ASSERT_TRUE(device->write(buf + kPage, std::vector<std::uint64_t>{42}).ok());
  Ref<Process> child = *process->fork();
  EXPECT_EQ(invalidations(*device, Event::kProtectionPage), 1u)
      << "the parent's entries became read-only";
  Ref<MirrorDevice> child_device = *MirrorDevice::open(*child);
  ASSERT_TRUE(child_device->write(buf, std::vector<std::uint64_t>{100, 200}).ok());
  EXPECT_THAT(*device->read(buf, 2), ElementsAre(41u, 42u)) << "the parent is unchanged";
  EXPECT_EQ(*mm.cpu_read(buf), 41u);
  EXPECT_EQ(*child->mm().cpu_read(buf + kPage), 200u);
  // And the other way round: the parent's write does not reach the child.
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{7}).ok());
  EXPECT_THAT(*child_device->read(buf, 2), ElementsAre(100u, 200u));
  EXPECT_TRUE(check_coherence(*child_device).ok()) << check_coherence(*child_device);
}

TEST_F(MirrorDeviceTest, SharedMappingsStaySharedAcrossFork) {
  const std::uint64_t buf = map(1, Prot::kReadWrite, MapKind::kAnonShared);
  Ref<Process> child = *process->fork();
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{9}).ok());
  EXPECT_EQ(*child->mm().cpu_read(buf), 9u);
}

TEST_F(MirrorDeviceTest, MigrateToDeviceAndBackPreservesDataAndACpuTouchMigratesBack) {
  const std::uint64_t buf = map(3);
  ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
  ASSERT_TRUE(mm.cpu_write(buf + kPage, 2).ok());  // the third page was never touched
  ASSERT_TRUE(device->migrate_to_device(buf, 3 * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, 3), Each(kOnThisDevice));
  EXPECT_EQ(device->counters().faults, 0u) << "the migration installed the device entries";
  EXPECT_THAT(*device->read(buf, 3), ElementsAre(1u, 2u, 0u));
  EXPECT_EQ(device->counters().faults, 0u);
  ASSERT_TRUE(device->write(buf + 2 * kPage, std::vector<std::uint64_t>{3}).ok());
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);

  // A CPU touch brings one page back; every device drops it (owner null).
  EXPECT_EQ(*mm.cpu_read(buf + 2 * kPage), 3u);
  EXPECT_THAT(device->snapshot(buf, 3),
              ElementsAre(kOnThisDevice, kOnThisDevice, PageSnapshot::kWrite));
  EXPECT_EQ(device->entries_for_testing().count(buf + 2 * kPage), 0u);

  ASSERT_TRUE(device->migrate_to_system(buf, 3 * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, 3), Each(PageSnapshot::kWrite));
  EXPECT_EQ(*mm.cpu_read(buf), 1u);
  EXPECT_EQ(*mm.cpu_read(buf + kPage), 2u);
}

TEST_F(MirrorDeviceTest, OwnMigrationInstallsTheNewFramesThroughTheHook) {
  const std::uint64_t buf = map(1);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{5}).ok());
  ASSERT_TRUE(device->migrate_to_device(buf, kPage).ok());
  EXPECT_EQ(invalidations(*device, Event::kMigrate), 1u);
  const auto entries = device->entries_for_testing();
  ASSERT_EQ(entries.count(buf), 1u) << "the hook installed the device page";
  EXPECT_EQ(entries.at(buf).frame->device(), device.get());
  EXPECT_EQ(entries.at(buf).frame->read(), 5u);
  EXPECT_TRUE(entries.at(buf).writable);
  EXPECT_EQ(device->counters().faults, 1u) << "only the first write faulted";
}

// Coherent device memory: the CPU and other devices use the pages where they are; fork
// gives the child copies in system RAM and write-protects the parent's pages, so a write
// by the owning device too copies the page to system RAM, and each process keeps its own
// word.
TEST(MirrorDeviceCoherentTest, CoherentPagesAreUsedInPlaceAndCopiedOnWriteAfterFork) {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process, {.memory = DeviceMemory::kCoherent});
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);
  const std::uint64_t buf = *mm.mmap(2 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2}).ok());
  ASSERT_TRUE(device->migrate_to_device(buf, 2 * kPage).ok());
  ASSERT_TRUE(mm.cpu_write(buf, 10).ok());  // in place: no migration back
  EXPECT_THAT(*other->read(buf, 2), ElementsAre(10u, 2u));
  const PageSnapshot coherent_local = PageSnapshot::kDeviceCoherentLocal | PageSnapshot::kWrite;
  EXPECT_THAT(device->snapshot(buf, 2), Each(coherent_local));
  EXPECT_THAT(other->snapshot(buf, 2),
              Each(PageSnapshot::kDeviceCoherentRemote | PageSnapshot::kWrite));
  EXPECT_EQ(invalidations(*device, Event::kMigrate), 1u) << "only its own migration";

  Ref<Process> child = *process->fork();
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{20, 21}).ok());
  EXPECT_EQ(*child->mm().cpu_read(buf), 10u) << "the parent's device wrote the child's page";
  EXPECT_EQ(*child->mm().cpu_read(buf + kPage), 2u);
  EXPECT_THAT(device->snapshot(buf, 2), Each(PageSnapshot::kWrite)) << "copied to system RAM";
  EXPECT_EQ(*mm.cpu_read(buf), 20u);
  EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  EXPECT_TRUE(check_coherence(*other).ok()) << check_coherence(*other);
  child->exit();
}

TEST_F(MirrorDeviceTest, ClosingADeviceBringsItsPagesBack) {
  const std::uint64_t buf = map(2);
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);
  ASSERT_TRUE(other->write(buf, std::vector<std::uint64_t>{4, 5}).ok());
  ASSERT_TRUE(other->migrate_to_device(buf, kPage).ok());
  ASSERT_TRUE(other->make_exclusive(buf + kPage, kPage).ok());
  other->close();
  EXPECT_THAT(device->snapshot(buf, 2), Each(PageSnapshot::kWrite));
  const PageEntry second = *mm.lookup(buf + kPage);
  EXPECT_EQ(second.exclusive, nullptr) << "no exclusive access outlives its device";
  ASSERT_TRUE(device->migrate_to_device(buf, 2 * kPage).ok()) << "nothing is another's now";
  EXPECT_THAT(*device->read(buf, 2), ElementsAre(4u, 5u));
}

TEST_F(MirrorDeviceTest, MigrationRefusesSharedMemoryProtNoneHolesAndOtherDevicesPages) {
  const std::uint64_t shared = map(1, Prot::kReadWrite, MapKind::kAnonShared);
  const std::uint64_t none = map(1, Prot::kNone);
  const std::uint64_t buf = map(2);
  EXPECT_EQ(device->migrate_to_device(shared, kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(device->migrate_to_device(none, kPage).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(device->migrate_to_device(buf, 3 * kPage).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(device->snapshot(buf, 2), Each(PageSnapshot::kNone)) << "nothing moved";
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);
  ASSERT_TRUE(other->migrate_to_device(buf + kPage, kPage).ok());
  EXPECT_EQ(device->migrate_to_device(buf, 2 * kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(device->snapshot(buf, 2), ElementsAre(PageSnapshot::kNone, PageSnapshot::kNone))
      << "another device's private page is not present for this one";
  EXPECT_TRUE(check_coherence(*other).ok());
}

TEST_F(MirrorDeviceTest, TwoDevicesMirrorOneProcessAndAFaultPullsAPageFromTheOther) {
  const std::uint64_t buf = map(1);
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);
  ASSERT_TRUE(other->write(buf, std::vector<std::uint64_t>{11}).ok());
  ASSERT_TRUE(other->migrate_to_device(buf, kPage).ok());
  EXPECT_EQ(*device->read(buf, 1), std::vector<std::uint64_t>{11});
  EXPECT_THAT(device->snapshot(buf, 1), ElementsAre(PageSnapshot::kWrite));
  EXPECT_TRUE(other->entries_for_testing().empty()) << "the other device lost the page";
  EXPECT_TRUE(check_coherence(*other).ok());
}

TEST_F(MirrorDeviceTest, ExclusiveAccessIsRevokedByACpuAccess) {
  const std::uint64_t buf = map(1);
  ASSERT_TRUE(device->make_exclusive(buf, kPage).ok());
  EXPECT_EQ(invalidations(*device, Event::kExclusive), 1u);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{3}).ok());
  EXPECT_EQ(device->counters().faults, 0u) << "the exclusive entry is already the device's";
  EXPECT_EQ(*mm.cpu_read(buf), 3u);
  EXPECT_EQ(invalidations(*device, Event::kExclusive), 2u) << "revoked, owner null";
  EXPECT_TRUE(device->entries_for_testing().empty());
  EXPECT_EQ(device->make_exclusive(map(1, Prot::kRead), kPage).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(MirrorDeviceTest, AFaultWhoseOwnWalkInvalidatesRetriesOnce) {
  const std::uint64_t buf = map(8);
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);
  ASSERT_TRUE(other->migrate_to_device(buf, kPage).ok());
  // Faulting page 0 pulls it back from `other`: a kMigrate invalidation reaches this
  // device during its own walk, which faults the rest in; the retry finds all 8 ready.
  ASSERT_TRUE(device->range_fault(buf, 8 * kPage, /*write=*/false).ok());
  EXPECT_EQ(device->counters().retries, 1u);
  EXPECT_EQ(device->counters().faults, 1u);
  EXPECT_EQ(device->entries_for_testing().size(), 8u);
}

// Bug: a device access over 64 or more pages that each needed their own invalidating
// fault restarted after every page and gave up with kAborted at the 64th.
TEST_F(MirrorDeviceTest, ADeviceWriteOverManyZeroPagesNeedsOneRetry) {
  for (const std::uint64_t pages : {64u, 1024u}) {
    SCOPED_TRACE(pages);
    const std::uint64_t buf = map(pages);
    for (std::uint64_t i = 0; i < pages; ++i) ASSERT_TRUE(mm.cpu_read(buf + i * kPage).ok());
    EXPECT_THAT(device->snapshot(buf, pages), Each(kZeroPage));
    const std::uint64_t retries = device->counters().retries;
    std::vector<std::uint64_t> words(pages);
    for (std::uint64_t i = 0; i < pages; ++i) words[i] = i + 1;
    const absl::Status s = device->write(buf, words);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(device->counters().retries - retries, 1u) << "one walk breaks every copy-on-write";
    for (std::uint64_t i = 0; i < pages; ++i) EXPECT_EQ(*mm.cpu_read(buf + i * kPage), i + 1);
  }
}

// The walk finds each page's entry next to the previous page's: a page it has to fault
// in fresh must not be taken for the written page after it, nor the other way round.
TEST_F(MirrorDeviceTest, ADeviceWriteOverTouchedAndUntouchedPagesReachesEveryPage) {
  constexpr std::uint64_t kPages = 12;
  const std::uint64_t buf = map(kPages);
  // Runs of untouched, read (zero page) and written pages.
  for (const std::uint64_t i : {2u, 3u, 7u}) ASSERT_TRUE(mm.cpu_read(buf + i * kPage).ok());
  for (const std::uint64_t i : {4u, 8u, 9u}) ASSERT_TRUE(mm.cpu_write(buf + i * kPage, 50).ok());
  std::vector<std::uint64_t> words(kPages);
  for (std::uint64_t i = 0; i < kPages; ++i) words[i] = 100 + i;
  const absl::Status s = device->write(buf, words);
  ASSERT_TRUE(s.ok()) << s;
  for (std::uint64_t i = 0; i < kPages; ++i) {
    EXPECT_EQ(*mm.cpu_read(buf + i * kPage), 100 + i) << "page " << i;
  }
  EXPECT_THAT(*device->read(buf, kPages), ElementsAreArray(words));
}

TEST_F(MirrorDeviceTest, AChildsDeviceWriteAfterForkOverManyPagesSucceeds) {
  constexpr std::uint64_t kPages = 100;
  const std::uint64_t buf = map(kPages);
  for (std::uint64_t i = 0; i < kPages; ++i) ASSERT_TRUE(mm.cpu_write(buf + i * kPage, i).ok());
  Ref<Process> child = *process->fork();
  Ref<MirrorDevice> child_device = *MirrorDevice::open(*child);
  const absl::Status s = child_device->write(buf, std::vector<std::uint64_t>(kPages, 7));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(child_device->counters().retries, 1u);
  for (std::uint64_t i = 0; i < kPages; ++i) {
    EXPECT_EQ(*child->mm().cpu_read(buf + i * kPage), 7u);
    EXPECT_EQ(*mm.cpu_read(buf + i * kPage), i) << "the parent keeps its pages";
  }
  EXPECT_TRUE(check_coherence(*child_device).ok()) << check_coherence(*child_device);
}

TEST_F(MirrorDeviceTest, AReadOfManyPagesOnAnotherDeviceSucceeds) {
  constexpr std::uint64_t kPages = 100;
  const std::uint64_t buf = map(kPages);
  Ref<MirrorDevice> other = *MirrorDevice::open(*process);
  std::vector<std::uint64_t> words(kPages);
  for (std::uint64_t i = 0; i < kPages; ++i) words[i] = 3 * i;
  ASSERT_TRUE(other->write(buf, words).ok());
  ASSERT_TRUE(other->migrate_to_device(buf, kPages * kPage).ok());
  absl::StatusOr<std::vector<std::uint64_t>> read = device->read(buf, kPages);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, words);
  EXPECT_EQ(device->counters().retries, 1u);
  EXPECT_THAT(device->snapshot(buf, kPages), Each(PageSnapshot::kWrite)) << "pulled back";
  EXPECT_TRUE(check_coherence(*other).ok()) << check_coherence(*other);
}

// The fault path is linear: a walk that faults N pages in costs one retry, whatever N.
TEST_F(MirrorDeviceTest, RetriesDoNotGrowWithTheRangeLength) {
  for (const std::uint64_t pages : {1u, 16u, 256u}) {
    SCOPED_TRACE(pages);
    Ref<Process> p = make_ref<Process>();
    Ref<MirrorDevice> d = *MirrorDevice::open(*p);
    const std::uint64_t buf = *p->mm().mmap(pages * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
    ASSERT_TRUE(d->read(buf, pages).ok());  // zero pages: no invalidation
    ASSERT_TRUE(d->write(buf, std::vector<std::uint64_t>(pages, 1)).ok());
    EXPECT_EQ(d->counters().retries, 1u);
    EXPECT_EQ(d->counters().faults, 2u);
  }
}

// Bug: re-migrating a range write-protected the device's entries of pages that never
// left its memory, so the next device write faulted for nothing.
TEST_F(MirrorDeviceTest, ReMigratingARangeKeepsThePagesAlreadyThereWritable) {
  const std::uint64_t buf = map(4);
  ASSERT_TRUE(device->migrate_to_device(buf, 2 * kPage).ok());
  ASSERT_TRUE(device->migrate_to_device(buf, 4 * kPage).ok());  // two there, two new
  EXPECT_THAT(device->snapshot(buf, 4), Each(kOnThisDevice));
  const auto entries = device->entries_for_testing();
  ASSERT_EQ(entries.size(), 4u);
  for (const auto& [page, entry] : entries) EXPECT_TRUE(entry.writable) << page;
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2, 3, 4}).ok());
  EXPECT_EQ(device->counters().faults, 0u) << "every page was ready for a device write";
  EXPECT_EQ(device->counters().retries, 0u);
}

using testing::PauseAt;

constexpr const char* kNeedsTheSeam =
    "needs the sync seam (ITN_SCHED_SEAM) to pause the device thread at its driver lock";

// A range_fault on a thread of its own, held after its walk and before its install (the
// second time it takes the driver lock) until finish().
class HeldFault {
 public:
  HeldFault(MirrorDevice& device, std::uint64_t addr, std::uint64_t length, bool write)
      : hooks_(SchedPoint::kLock, device.driver_lock_for_testing(), 2),
        thread_([this, &device, addr, length, write] {
          set_thread_hooks(&hooks_);
          status_ = device.range_fault(addr, length, write);
          set_thread_hooks(nullptr);
        }) {
    testing::wait_until([&] { return hooks_.paused.load(); });
  }
  ~HeldFault() {
    if (thread_.joinable()) finish().IgnoreError();  // a test that failed while it was held
  }
  // Lets the fault go on and returns its status.
  absl::Status finish() {
    hooks_.may_go.store(true);
    thread_.join();
    return status_;
  }

 private:
  PauseAt hooks_;
  absl::Status status_;  // written by thread_ before the join in finish()
  std::thread thread_;
};

TEST_F(MirrorDeviceTest, AnInvalidationBetweenWalkAndLockIsCaughtByReadRetry) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << kNeedsTheSeam;
  const std::uint64_t buf = map(1);
  ASSERT_EQ(*mm.cpu_read(buf), 0u);  // the zero page: the walk of a read maps it
  // range_fault locks the driver lock twice: to check the device is open, then to
  // install. Held before the second, after the walk (the mmap lock held for reading).
  HeldFault fault(*device, buf, kPage, /*write=*/false);
  // A CPU fault runs on the read side too: its copy-on-write break makes the walk stale.
  ASSERT_TRUE(mm.cpu_write(buf, 5).ok());
  const absl::Status status = fault.finish();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(device->counters().retries, 1u) << "the stale walk must be thrown away";
  EXPECT_EQ(device->read(buf, 1)->at(0), 5u) << "the retry maps the copy, not the zero page";
}

// A change that takes the mmap lock for writing cannot come between a walk and its
// install: the device installs before the walk drops the mmap lock. Until the install,
// mprotect waits; after it, mprotect's invalidation drops the fresh entry.
TEST_F(MirrorDeviceTest, AWriteSideChangeWaitsForTheWalksInstall) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << kNeedsTheSeam;
  const std::uint64_t buf = map(1);
  ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
  HeldFault fault(*device, buf, kPage, /*write=*/true);
  std::atomic<bool> protected_now{false};
  std::thread protect([&] {
    EXPECT_TRUE(mm.mprotect(buf, kPage, Prot::kRead).ok());
    protected_now.store(true);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(protected_now.load()) << "mprotect overtook a walk that held the mmap lock";
  EXPECT_TRUE(device->entries_for_testing().empty()) << "nothing installed before the pause";
  const absl::Status status = fault.finish();
  protect.join();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(device->counters().retries, 0u) << "nothing came between the walk and the install";
  EXPECT_TRUE(device->entries_for_testing().empty()) << "mprotect's invalidation came after";
}

// Only others' invalidations count against max_fault_attempts: here one arrives between
// the walk (which faulted nothing) and the install, with a bound of one.
TEST_F(MirrorDeviceTest, AFaultThatOthersKeepInvalidatingGivesUpWithAClearStatus) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << kNeedsTheSeam;
  Ref<MirrorDevice> once = *MirrorDevice::open(*process, MirrorOptions{.max_fault_attempts = 1});
  const std::uint64_t buf = map(8);
  for (std::uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(mm.cpu_write(buf + i * kPage, i).ok());
  HeldFault fault(*once, buf, 8 * kPage, /*write=*/false);
  // Someone else's invalidation that changes no page (the walk's result is stale anyway).
  const Range range{buf, buf + kPage, Event::kClear, /*blockable=*/true, nullptr};
  mm.notifiers().invalidate_range_end(*mm.notifiers().invalidate_range_start(range));
  const absl::Status status = fault.finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_TRUE(once->entries_for_testing().empty()) << "nothing installed from a stale walk";
  EXPECT_EQ(MirrorDevice::open(*process, MirrorOptions{.max_fault_attempts = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Bug: snapshot() looked each page up separately and could show half of a migration.
// The snapshot is held before its second look (if it takes one) while a migration runs.
TEST_F(MirrorDeviceTest, ASnapshotNeverShowsHalfAMigration) {
  if (!ITN_SCHED_SEAM) {
    GTEST_SKIP() << "needs the sync seam (ITN_SCHED_SEAM) to pause the snapshot";
  }
  const std::uint64_t buf = map(4);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2, 3, 4}).ok());
  PauseAt hooks(SchedPoint::kLock, mm.mmap_lock_for_testing(), 2);
  std::atomic<bool> done{false};
  std::vector<PageSnapshot> seen;
  std::thread snapshot([&] {
    set_thread_hooks(&hooks);
    seen = device->snapshot(buf, 4);
    set_thread_hooks(nullptr);
    done.store(true);
  });
  testing::wait_until([&] { return hooks.paused.load() || done.load(); });
  ASSERT_TRUE(device->migrate_to_device(buf, 4 * kPage).ok());
  hooks.may_go.store(true);
  snapshot.join();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_THAT(seen, Each(seen[0])) << "a snapshot mixed pages from before and after";
}

// Per-range notifiers: a fault held between its walk and its install while the CPU
// changes another buffer retries with one whole-space notifier and not with chunk ones.
TEST(MirrorDevicePerRangeTest, InvalidationsElsewhereDoNotMakeAFaultRetry) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << kNeedsTheSeam;
  for (const std::uint64_t chunk_pages : {0u, 1u}) {
    SCOPED_TRACE(chunk_pages);
    Ref<Process> process = make_ref<Process>();
    AddressSpace& mm = process->mm();
    Ref<MirrorDevice> device = *MirrorDevice::open(*process, {.notifier_chunk_pages = chunk_pages});
    const std::uint64_t buf = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
    const std::uint64_t other = *mm.mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
    ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
    ASSERT_EQ(*mm.cpu_read(other), 0u);  // the zero page: a write invalidates it
    HeldFault fault(*device, buf, kPage, /*write=*/false);
    // A CPU fault elsewhere, on the read side of the mmap lock as the walk is.
    ASSERT_TRUE(mm.cpu_write(other, 2).ok());
    EXPECT_TRUE(fault.finish().ok());
    EXPECT_EQ(device->counters().retries, chunk_pages == 0 ? 1u : 0u);
    EXPECT_EQ(invalidations(*device, Event::kClear), chunk_pages == 0 ? 1u : 0u);
    EXPECT_EQ(device->entries_for_testing().size(), 1u);
    EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  }
}

// A fault across chunks inserts one notifier per chunk; each chunk's invalidations reach
// it, migrations insert the notifiers of their range too, and close() removes them all.
TEST(MirrorDevicePerRangeTest, ChunkNotifiersCoverEveryPageTheDeviceMaps) {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process, {.notifier_chunk_pages = 2});
  EXPECT_EQ(mm.notifiers().subscriber_count(), 0u) << "nothing until the device touches memory";
  const std::uint64_t buf = *mm.mmap(8 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>(5, 7)).ok());
  const std::uint64_t touched = mm.notifiers().subscriber_count();
  EXPECT_GE(touched, 3u);
  EXPECT_LE(touched, 4u) << "five pages span three chunks, four if unaligned";
  ASSERT_TRUE(mm.mprotect(buf + 4 * kPage, kPage, Prot::kRead).ok());
  EXPECT_EQ(device->entries_for_testing().count(buf + 4 * kPage), 0u);
  EXPECT_EQ(device->entries_for_testing().size(), 4u);
  ASSERT_TRUE(device->migrate_to_device(buf + 6 * kPage, 2 * kPage).ok());
  EXPECT_GT(mm.notifiers().subscriber_count(), touched);
  EXPECT_EQ(*mm.cpu_read(buf + 7 * kPage), 0u);  // pulls the page back: the device drops it
  EXPECT_EQ(device->entries_for_testing().count(buf + 7 * kPage), 0u);
  EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  device->close();
  EXPECT_EQ(mm.notifiers().subscriber_count(), 0u);
  EXPECT_EQ(MirrorDevice::open(*process, {.notifier_chunk_pages = std::uint64_t{1} << 29})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// Review findings: a fault that fails part-way installs nothing in any mode, a range
// past the mapping costs neither memory nor notifiers, and closing a coherent device
// leaves no page of a forked child naming it.
TEST(MirrorDevicePerRangeTest, AFailedFaultAcrossChunksInstallsNothing) {
  for (const std::uint64_t chunk_pages : {0u, 1u}) {
    SCOPED_TRACE(chunk_pages);
    Ref<Process> p = make_ref<Process>();
    Ref<MirrorDevice> d = *MirrorDevice::open(*p, {.notifier_chunk_pages = chunk_pages});
    const std::uint64_t buf = *p->mm().mmap(2 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
    ASSERT_TRUE(p->mm().mprotect(buf + kPage, kPage, Prot::kNone).ok());
    EXPECT_EQ(d->range_fault(buf, 2 * kPage, /*write=*/false).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(d->range_fault(buf, 3 * kPage, /*write=*/false).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_TRUE(d->entries_for_testing().empty());
    const std::uint64_t before = p->mm().notifiers().subscriber_count();
    EXPECT_EQ(d->range_fault(buf, std::uint64_t{1} << 50, /*write=*/false).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(d->migrate_to_device(buf, std::uint64_t{1} << 32).status().code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(p->mm().notifiers().subscriber_count(), before) << "notifiers for unreachable memory";
    ASSERT_TRUE(d->range_fault(buf, kPage, /*write=*/false).ok());
    EXPECT_EQ(d->entries_for_testing().size(), 1u);
    EXPECT_TRUE(check_coherence(*d).ok()) << check_coherence(*d);
  }
}

TEST(MirrorDeviceCoherentTest, AForkedChildNeverNamesTheDeviceItsParentClosed) {
  Ref<Process> parent = make_ref<Process>();
  Ref<MirrorDevice> d = *MirrorDevice::open(*parent, {.memory = DeviceMemory::kCoherent});
  const std::uint64_t buf = *parent->mm().mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(parent->mm().cpu_write(buf, 7).ok());
  ASSERT_TRUE(d->migrate_to_device(buf, kPage).ok());
  Ref<Process> child = *parent->fork();
  EXPECT_EQ(child->mm().lookup(buf)->device, nullptr) << "the child's copy is in system RAM";
  EXPECT_EQ(parent->mm().lookup(buf)->device, d.get());
  d->close();
  EXPECT_EQ(parent->mm().lookup(buf)->device, nullptr);
  Ref<MirrorDevice> e = *MirrorDevice::open(*child);
  EXPECT_TRUE(e->migrate_to_device(buf, kPage).ok());
  EXPECT_EQ(*child->mm().cpu_read(buf), 7u);
  EXPECT_EQ(*parent->mm().cpu_read(buf), 7u);
  child->exit();
}

// The exit's kRelease reaches chunk notifiers too: later accesses fail, close() works.
TEST(MirrorDevicePerRangeTest, AfterExitAccessFailsAndCloseStillWorks) {
  Ref<Process> process = make_ref<Process>();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process, {.notifier_chunk_pages = 4});
  const std::uint64_t buf = *process->mm().mmap(2 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2}).ok());
  process->exit();
  EXPECT_TRUE(device->entries_for_testing().empty());
  EXPECT_EQ(invalidations(*device, Event::kRelease), 1u);
  EXPECT_EQ(device->read(buf, 2).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(device->read(buf + 8 * kPage, 1).status().code(), absl::StatusCode::kFailedPrecondition)
      << "no chunk notifier may be inserted after the exit";
  device->close();
  EXPECT_EQ(MirrorDevice::open(*process, {.notifier_chunk_pages = 4}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MirrorDeviceTest, ANonBlockableInvalidationIsRefusedWhileTheDriverLockIsBusy) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << kNeedsTheSeam;
  const std::uint64_t buf = map(1);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1}).ok());
  // The device thread's read holds the driver lock; stop it just before it lets go.
  PauseAt hooks(SchedPoint::kUnlock, device->driver_lock_for_testing(), 1);
  std::thread reader([&] {
    set_thread_hooks(&hooks);
    EXPECT_TRUE(device->read(buf, 1).ok());
    set_thread_hooks(nullptr);
  });
  testing::wait_until([&] { return hooks.paused.load(); });
  const Range range{buf, buf + kPage, Event::kClear, /*blockable=*/false, nullptr};
  EXPECT_EQ(mm.notifiers().invalidate_range_start(range).status().code(),
            absl::StatusCode::kUnavailable);
  hooks.may_go.store(true);
  reader.join();
  EXPECT_EQ(device->entries_for_testing().size(), 1u) << "a refused invalidation changes nothing";
  // With the lock free the same invalidation goes through.
  absl::StatusOr<InvalidationToken> token = mm.notifiers().invalidate_range_start(range);
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE(device->entries_for_testing().empty());
  mm.notifiers().invalidate_range_end(*std::move(token));
}

// The OOM reaper's invalidations cannot sleep: with nothing holding the driver lock it
// drops every private page (device copies and device pages included) and keeps shared
// ones and the mappings.
TEST_F(MirrorDeviceTest, TheReaperDropsPrivatePagesAndKeepsSharedOnes) {
  const std::uint64_t priv = map(2);
  const std::uint64_t shared = map(1, Prot::kReadWrite, MapKind::kAnonShared);
  ASSERT_TRUE(device->write(priv, std::vector<std::uint64_t>{1, 2}).ok());
  ASSERT_TRUE(device->write(shared, std::vector<std::uint64_t>{3}).ok());
  ASSERT_TRUE(device->migrate_to_device(priv + kPage, kPage).ok());
  absl::StatusOr<std::uint64_t> skipped = mm.reap();
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(*skipped, 0u);
  EXPECT_EQ(device->entries_for_testing().size(), 1u) << "only the shared page's entry stays";
  EXPECT_THAT(device->snapshot(priv, 2), Each(PageSnapshot::kNone));
  EXPECT_THAT(*device->read(priv, 2), ElementsAre(0u, 0u));
  EXPECT_EQ(*mm.cpu_read(shared), 3u);
  EXPECT_EQ(invalidations(*device, Event::kUnmap), 1u) << "one per private VMA";
}

// While a device thread holds its driver lock, the reaper's non-blockable invalidations
// are refused: it skips those VMAs, changes nothing there, and leaves the domain as it
// was (R5). Once the lock is free the same reap goes through.
TEST_F(MirrorDeviceTest, TheReaperSkipsWhatABusyDeviceRefuses) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << kNeedsTheSeam;
  const std::uint64_t a = map(1);
  const std::uint64_t b = map(1);
  ASSERT_TRUE(device->write(a, std::vector<std::uint64_t>{1}).ok());
  ASSERT_TRUE(mm.cpu_write(b, 2).ok());
  PauseAt hooks(SchedPoint::kUnlock, device->driver_lock_for_testing(), 1);
  std::thread reader([&] {
    set_thread_hooks(&hooks);
    EXPECT_TRUE(device->read(a, 1).ok());
    set_thread_hooks(nullptr);
  });
  testing::wait_until([&] { return hooks.paused.load(); });
  EXPECT_EQ(*mm.reap(), 2u) << "the whole-space notifier refuses both VMAs";
  EXPECT_EQ(mm.notifiers().active_for_testing(), 0u);
  EXPECT_EQ(mm.notifiers().seq_for_testing() % 2, 0u) << "R5: the refused starts undid themselves";
  hooks.may_go.store(true);
  reader.join();
  EXPECT_EQ(device->entries_for_testing().size(), 1u);
  EXPECT_EQ(*mm.cpu_read(b), 2u);
  EXPECT_EQ(*mm.reap(), 0u);
  EXPECT_EQ(*mm.cpu_read(a), 0u);
  EXPECT_TRUE(device->entries_for_testing().empty());
}

TEST_F(MirrorDeviceTest, MunmapDropsDeviceEntriesAndLaterAccessesFail) {
  const std::uint64_t buf = map(4);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2, 3, 4}).ok());
  ASSERT_TRUE(mm.munmap(buf + 2 * kPage, 2 * kPage).ok());
  EXPECT_EQ(device->entries_for_testing().size(), 2u);
  EXPECT_EQ(device->read(buf, 4).status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(*device->read(buf, 2), ElementsAre(1u, 2u));
}

TEST_F(MirrorDeviceTest, AfterExitDeviceAccessFailsAndCloseStillWorks) {
  const std::uint64_t buf = map(1);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1}).ok());
  process->exit();
  EXPECT_EQ(invalidations(*device, Event::kRelease), 1u);
  EXPECT_TRUE(device->entries_for_testing().empty());
  EXPECT_EQ(device->read(buf, 1).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(device->migrate_to_device(buf, kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MirrorDevice::open(*process).status().code(), absl::StatusCode::kFailedPrecondition);
  device->close();
  EXPECT_EQ(device->read(buf, 1).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MirrorDeviceTest, BadRangesAreRejected) {
  EXPECT_EQ(device->range_fault(1, kPage, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(device->range_fault(0, 0, false).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(device->migrate_to_device(kPage, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace itn::hw
