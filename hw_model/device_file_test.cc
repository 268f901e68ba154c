// MirrorDevice::open_file(): the device as a file of the process that opened it, shared
// across fork() and pass_file(), closed by the last close of it anywhere (exit()'s
// included, after the address space's teardown); until then, and while a handle from
// from_file() is held, it stays open.
#include <atomic>
#include <cstdint>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "hw_model/mirror_device.h"

namespace itn::hw {
namespace {

constexpr std::uint64_t kPage = kPageSize;
using FileHandle = MirrorDevice::FileHandle;

bool is_closed(MirrorDevice& device, std::uint64_t addr) {
  const absl::Status s = device.range_fault(addr, kPage, /*write=*/false);
  return absl::IsFailedPrecondition(s) && s.message() == "the device was closed";
}

struct DeviceFileTest : ::testing::Test {
  Ref<Process> parent = make_ref<Process>();
  AddressSpace& mm = parent->mm();
  const std::uint64_t buf = *mm.mmap(2 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);

  // The device behind `fd`, through a handle dropped at once.
  Ref<MirrorDevice> device_of(const Process& p, int fd) {
    absl::StatusOr<FileHandle> h = MirrorDevice::from_file(p, fd);
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? h->device() : nullptr;
  }
};

TEST_F(DeviceFileTest, TheLastCloseOfTheFileClosesTheDevice) {
  absl::StatusOr<int> fd = MirrorDevice::open_file(*parent);
  ASSERT_TRUE(fd.ok()) << fd.status();
  const Ref<MirrorDevice> device = device_of(*parent, *fd);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{4}).ok());
  ASSERT_TRUE(device->migrate_to_device(buf, kPage).ok());
  // A second descriptor of the same file (SCM_RIGHTS to oneself): closing one leaves the
  // device open.
  absl::StatusOr<int> second = parent->pass_file(*fd, *parent);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(device_of(*parent, *second).get(), device.get());
  ASSERT_TRUE(parent->close(*fd).ok());
  EXPECT_FALSE(is_closed(*device, buf)) << "a descriptor still names the file";
  EXPECT_EQ(mm.lookup(buf)->device, device.get()) << "its memory still holds the page";
  ASSERT_TRUE(parent->close(*second).ok());
  EXPECT_TRUE(is_closed(*device, buf));
  EXPECT_EQ(mm.lookup(buf)->device, nullptr) << "closing gave the page back to the CPU";
  EXPECT_EQ(*mm.cpu_read(buf), 4u);
  EXPECT_EQ(MirrorDevice::from_file(*parent, *second).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DeviceFileTest, AHandleKeepsTheFileOpenPastItsLastClose) {
  const int fd = *MirrorDevice::open_file(*parent);
  std::optional<FileHandle> handle(*MirrorDevice::from_file(*parent, fd));
  const Ref<MirrorDevice> device = handle->device();
  ASSERT_TRUE(parent->close(fd).ok());
  EXPECT_TRUE((*handle)->write(buf, std::vector<std::uint64_t>{3}).ok())
      << "a call through a handle runs before the release";
  EXPECT_FALSE(is_closed(*device, buf));
  handle.reset();  // the last use of the file: its release runs here
  EXPECT_TRUE(is_closed(*device, buf));
}

TEST_F(DeviceFileTest, AForkedChildSharesTheDeviceWhichStillMirrorsTheParent) {
  const int fd = *MirrorDevice::open_file(*parent);
  ASSERT_TRUE(mm.cpu_write(buf, 1).ok());
  Ref<Process> child = *parent->fork();
  const Ref<MirrorDevice> device = device_of(*parent, fd);
  EXPECT_EQ(device_of(*child, fd).get(), device.get()) << "the child's descriptor names one device";
  ASSERT_TRUE(child->mm().cpu_write(buf, 2).ok());  // the child's own copy
  EXPECT_EQ(device->read(buf, 1)->at(0), 1u) << "the device mirrors the opener's memory";
  // The parent exits: its address space has no other user, so the device sees the
  // teardown first, then the parent's descriptor closes; the child's keeps it open.
  parent->exit();
  EXPECT_FALSE(is_closed(*device, buf));
  EXPECT_EQ(device->read(buf, 1).status().code(), absl::StatusCode::kFailedPrecondition)
      << "the mirrored address space has exited (I20)";
  child->exit();
  EXPECT_TRUE(is_closed(*device, buf)) << "the child's exit closed the last descriptor";
}

TEST_F(DeviceFileTest, ExitClosesTheDeviceAfterTheAddressSpaceIsTornDown) {
  const int fd = *MirrorDevice::open_file(*parent);
  const Ref<MirrorDevice> device = device_of(*parent, fd);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{9, 9}).ok());
  ASSERT_TRUE(device->migrate_to_device(buf, 2 * kPage).ok());
  const auto releases = [&] {
    return device->counters().invalidations[static_cast<int>(Event::kRelease)];
  };
  const std::uint64_t before = releases();
  parent->exit();
  EXPECT_EQ(releases(), before + 1) << "the teardown reached the device before its file closed";
  EXPECT_TRUE(is_closed(*device, buf));
  EXPECT_TRUE(device->entries_for_testing().empty());
}

// Threads use the device through handles while another closes its descriptor: every call
// that got a handle succeeds (the release waits for it), and once the descriptor is gone
// no handle can be had.
TEST_F(DeviceFileTest, CallsThroughHandlesNeverRaceTheLastClose) {
  for (int round = 0; round < 20; ++round) {
    const int fd = *MirrorDevice::open_file(*parent);
    const Ref<MirrorDevice> device = device_of(*parent, fd);
    std::atomic<int> calls{0}, failures{0};
    std::vector<std::thread> users;
    for (int t = 0; t < 2; ++t) {
      users.emplace_back([&, t] {
        for (std::uint64_t i = 0;; ++i) {
          absl::StatusOr<FileHandle> h = MirrorDevice::from_file(*parent, fd);
          if (!h.ok()) return;  // closed: no descriptor any more
          const std::uint64_t page = buf + (i % 2) * kPage;
          const absl::Status s = t == 0 ? (*h)->write(page, std::vector<std::uint64_t>{i})
                                        : (*h)->migrate_to_device(page, kPage).status();
          if (!s.ok()) failures.fetch_add(1);
          calls.fetch_add(1);
        }
      });
    }
    while (calls.load() < 10) std::this_thread::yield();
    ASSERT_TRUE(parent->close(fd).ok());
    for (std::thread& u : users) u.join();
    EXPECT_EQ(failures.load(), 0) << "a call through a handle met a closed device";
    EXPECT_TRUE(is_closed(*device, buf));
    EXPECT_EQ(mm.lookup(buf)->device, nullptr);
  }
}

TEST_F(DeviceFileTest, BadCallsFailClearlyAndOpenNothing) {
  const int other = *parent->install(make_ref<OpenFile>("other", nullptr));
  EXPECT_EQ(MirrorDevice::from_file(*parent, other).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MirrorDevice::from_file(*parent, other + 100).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(MirrorDevice::open_file(*parent, {.max_fault_attempts = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // An exited process whose address space another user keeps alive: the device opens,
  // but no descriptor can name it, so it closes again at once.
  Ref<Process> gone = make_ref<Process>();
  gone->mm().mmget();
  gone->exit();
  EXPECT_EQ(MirrorDevice::open_file(*gone).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gone->mm().notifiers().subscriber_count(), 0u) << "the device's notifier stayed";
  gone->mm().mmput();
  EXPECT_EQ(MirrorDevice::open_file(*gone).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace itn::hw
