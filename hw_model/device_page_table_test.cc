// A MirrorDevice over a DevicePageTable of the test's own format (RadixPageTable): the
// device keeps it coherent through faults, fork, munmap, migrations and concurrent CPU
// and device traffic, and its failure injection reaches migrations.
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "testing/coherence.h"
#include "hw_model/mirror_device.h"
#include "hw_model/testing/radix_page_table.h"
#include "hw_model/testing/stress_outcome.h"
#include "hw_model/testing/tagged_word.h"

namespace itn::hw {
namespace {

using testing::RadixPageTable;

constexpr std::uint64_t kPage = kPageSize;

Ref<MirrorDevice> radix_device(Process& process, MirrorOptions options = {}, int refusals = 0,
                               int* asked = nullptr) {
  absl::StatusOr<Ref<MirrorDevice>> device =
      MirrorDevice::open(process, options, std::make_unique<RadixPageTable>(refusals, asked));
  EXPECT_TRUE(device.ok()) << device.status();
  return *device;
}

TEST(DevicePageTableTest, AnOwnFormatTableIsKeptCoherent) {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = radix_device(*process);
  const std::uint64_t buf = *mm.mmap(4 * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{1, 2, 3, 4}).ok());
  EXPECT_EQ(device->entries_for_testing().size(), 4u) << "the walk installed through the table";
  ASSERT_TRUE(mm.madvise(buf + kPage, kPage, Advice::kFree).ok());  // kClear of that page
  EXPECT_EQ(device->entries_for_testing().count(buf + kPage), 0u);
  ASSERT_TRUE(mm.cpu_write(buf + kPage, 20).ok());
  EXPECT_EQ(device->read(buf, 4).value(), (std::vector<std::uint64_t>{1, 20, 3, 4}));
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  // Fork write-protects; the device's next write faults and copies.
  Ref<Process> child = *process->fork();
  for (const auto& [page, entry] : device->entries_for_testing()) EXPECT_FALSE(entry.writable);
  ASSERT_TRUE(device->write(buf, std::vector<std::uint64_t>{5}).ok());
  EXPECT_EQ(*child->mm().cpu_read(buf), 1u) << "the child kept its copy";
  ASSERT_TRUE(device->migrate_to_device(buf, 4 * kPage).ok());
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  ASSERT_TRUE(mm.munmap(buf + 2 * kPage, 2 * kPage).ok());
  EXPECT_EQ(device->entries_for_testing().size(), 2u);
  EXPECT_EQ(device->read(buf, 2).value(), (std::vector<std::uint64_t>{5, 20}));
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  device->close();
  EXPECT_TRUE(device->entries_for_testing().empty());
}

TEST(DevicePageTableTest, TheTablesFailureInjectionSplitsAHugeMigration) {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  int asked = 0;
  Ref<MirrorDevice> device = radix_device(*process, {}, /*refusals=*/1, &asked);
  const std::uint64_t addr = *mm.mmap(2 * kHugePageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  const std::uint64_t block = huge_page_of(addr + kHugePageSize - 1);
  ASSERT_TRUE(mm.madvise(block, kHugePageSize, Advice::kHugePage).ok());
  ASSERT_TRUE(mm.cpu_write(block, 7).ok());
  ASSERT_TRUE(mm.lookup(block)->huge);
  ASSERT_TRUE(device->migrate_to_device(block, kHugePageSize).ok());
  EXPECT_EQ(asked, 1);
  EXPECT_FALSE(mm.lookup(block)->huge) << "the refused allocation split the block";
  EXPECT_EQ(mm.lookup(block)->device, device.get());
  // Small pages now: they move back one by one, without asking for a huge page.
  ASSERT_TRUE(device->migrate_to_system(block, kHugePageSize).ok());
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(*mm.cpu_read(block), 7u);
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
}

// Real threads: the CPU writes and flips protections, the device writes, reads and
// migrates, through the radix table (run under TSan and ASan in CI).
TEST(DevicePageTableTest, CpuAndDeviceTrafficKeepsAnOwnFormatTableCoherent) {
  constexpr std::uint64_t kPages = 8;
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = radix_device(*process, {.notifier_chunk_pages = 2});
  const std::uint64_t buf = *mm.mmap(kPages * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  std::atomic<int> wrong{0}, unexpected{0};
  std::thread cpu([&] {
    std::mt19937_64 rng(1);
    for (int i = 0; i < 3000; ++i) {
      const std::uint64_t p = rng() % kPages;
      if (rng() % 8 == 0) {
        ASSERT_TRUE(mm.mprotect(buf, kPages * kPage, Prot::kRead).ok());
        ASSERT_TRUE(mm.mprotect(buf, kPages * kPage, Prot::kReadWrite).ok());
      } else {
        (void)mm.cpu_write(buf + p * kPage, testing::tagged(p, rng()));
      }
    }
  });
  std::thread gpu([&] {
    std::mt19937_64 rng(2);
    for (int i = 0; i < 3000; ++i) {
      const std::uint64_t p = rng() % kPages;
      absl::Status s;
      switch (rng() % 4) {
        case 0:
          s = device->write(buf + p * kPage, std::vector<std::uint64_t>{testing::tagged(p, i)});
          break;
        case 1: {
          absl::StatusOr<std::vector<std::uint64_t>> w = device->read(buf + p * kPage, 1);
          s = w.status();
          if (w.ok() && !testing::belongs_to((*w)[0], p)) wrong.fetch_add(1);
          break;
        }
        case 2:
          s = device->migrate_to_device(buf + p * kPage, kPage).status();
          break;
        default:
          s = device->migrate_to_system(buf + p * kPage, kPage).status();
      }
      if (!testing::expected_outcome(s)) unexpected.fetch_add(1);
    }
  });
  cpu.join();
  gpu.join();
  EXPECT_EQ(wrong.load(), 0) << "the device read another page's word";
  EXPECT_EQ(unexpected.load(), 0);
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  for (std::uint64_t p = 0; p < kPages; ++p) {
    EXPECT_EQ(device->read(buf + p * kPage, 1)->at(0), *mm.cpu_read(buf + p * kPage));
  }
}

}  // namespace
}  // namespace itn::hw
