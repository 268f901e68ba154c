// The kernel's HMM selftests (tools/testing/selftests/mm/hmm-tests.c, which drive
// lib/test_hmm.c's "dmirror" device), written against itn::hw as a user would write them:
// one test per kernel test, under the kernel's name, each run with private and with
// coherent device memory (the kernel's device_private and device_coherent variants), and
// asserting what the kernel test asserts. Where the two differ in form:
//   - A page holds one 64-bit word, so a buffer "filled with i" holds i in page i.
//   - The kernel's per-command `faults` is the change of MirrorDevice::counters().faults
//     over the call (faults_of()); its `cpages` is the number of pages an access or
//     migration reached: an access that succeeds returns every page, and the pages a
//     migration moved show in snapshot().
//   - Errors are absl::Status codes: -EFAULT for PROT_NONE is kPermissionDenied and for a
//     hole kNotFound, -EPERM is kPermissionDenied, migrating a PROT_NONE or unmapped range
//     (-EINVAL) is kPermissionDenied or kNotFound, and migrating shared memory or another
//     device's page (-ENOENT) is kFailedPrecondition (and then nothing moves at all, where
//     the kernel may have moved the pages before the one it refused).
//   - dmirror's RELEASE (evict the device's memory) is AddressSpace::evict_device(), and
//     CHECK_EXCLUSIVE is "no CPU entry of the range is held exclusively".
//   - fork() brings private device pages back to system RAM before it copies (the kernel
//     keeps them on the device, copy-on-write in both processes); coherent device pages
//     stay in the parent and the child gets copies in system RAM (the kernel shares
//     them copy-on-write).
//   - HMM_DMIRROR_FLAG_FAIL_ALLOC is MirrorDevice::fail_next_huge_allocation(); the
//     kernel's PMD-sized buffers are aligned with huge_page_of() (map_aligned()).
//   - MADV_COLLAPSE (migrate_anon_huge_fault) is a write fault of an advised block, which
//     maps it as one huge page in the first place.
//   - MAP_HUGETLB is AddressSpace::mmap_hugetlb(), of 2 MiB pages (the kernel's default
//     huge page size on x86-64, so `compound` sees PMD entries, never PUD ones).
//   - gup_test's get_user_pages and pins are AddressSpace::pin_user_pages().
//   - mmap() of the device's file is MirrorDevice::mmap().
#include <chrono>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "testing/coherence.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"

namespace itn::hw {

// How gtest names a variant in messages.
void PrintTo(DeviceMemory memory, std::ostream* os) {
  *os << (memory == DeviceMemory::kCoherent ? "coherent" : "private");
}

namespace {

using ::testing::Each;
using ::testing::ElementsAre;

constexpr std::uint64_t kPage = kPageSize;
constexpr std::uint64_t kNpages = 1024;                         // HMM_BUFFER_SIZE / 4 KiB
constexpr std::uint64_t kPmdPages = kHugePageSize / kPageSize;  // one 2 MiB PMD of 4 KiB pages
constexpr int kNtimes = 10;
constexpr PageSnapshot R = PageSnapshot::kRead;
constexpr PageSnapshot W = PageSnapshot::kWrite;

std::vector<std::uint64_t> pattern(std::uint64_t pages, std::uint64_t plus = 0) {
  std::vector<std::uint64_t> words(pages);
  for (std::uint64_t i = 0; i < pages; ++i) words[i] = i + plus;
  return words;
}

// The kernel's FIXTURE(hmm): one device of the variant's memory kind, mirroring this
// process.
class Hmm : public ::testing::TestWithParam<DeviceMemory> {
 protected:
  void TearDown() override {
    for (MirrorDevice* d : {device.get(), device1.get()}) {
      if (d == nullptr || mm.exited()) continue;
      EXPECT_TRUE(check_coherence(*d).ok()) << check_coherence(*d);
    }
  }

  bool coherent() const { return GetParam() == DeviceMemory::kCoherent; }
  Ref<MirrorDevice> open_device(Process& p) {
    absl::StatusOr<Ref<MirrorDevice>> d = MirrorDevice::open(p, {.memory = GetParam()});
    ITN_CHECK_OK(d, "opening a device of a live process");
    return *std::move(d);
  }
  std::uint64_t map(std::uint64_t pages, Prot prot = Prot::kReadWrite,
                    MapKind kind = MapKind::kAnonPrivate, Ref<File> file = nullptr) {
    absl::StatusOr<std::uint64_t> addr = mm.mmap(pages * kPage, prot, kind, std::move(file));
    ITN_CHECK_OK(addr, "mmap in a test");
    return *addr;
  }
  // As the kernel's THP tests do: twice `pages` mapped, and `pages` from the first huge
  // page boundary inside it advised with `advice`.
  std::uint64_t map_aligned(std::uint64_t pages = kPmdPages, Prot prot = Prot::kReadWrite,
                            Advice advice = Advice::kHugePage) {
    const std::uint64_t buf = map(2 * pages, prot);
    const std::uint64_t aligned = huge_page_of(buf + kHugePageSize - 1);
    ITN_CHECK_OK(mm.madvise(aligned, pages * kPage, advice), "madvise in a test");
    return aligned;
  }
  // The device page of a migrated huge page.
  PageSnapshot local_huge(PageSnapshot access = W) const {
    return local(access) | PageSnapshot::kPmd;
  }
  // The CPU writes word i + plus into page i of [buf, buf + pages).
  void cpu_fill(AddressSpace& space, std::uint64_t buf, std::uint64_t pages,
                std::uint64_t plus = 0) {
    for (std::uint64_t i = 0; i < pages; ++i) {
      ASSERT_TRUE(space.cpu_write(buf + i * kPage, i + plus).ok());
    }
  }
  std::vector<std::uint64_t> cpu_words(AddressSpace& space, std::uint64_t buf,
                                       std::uint64_t pages) {
    std::vector<std::uint64_t> words;
    for (std::uint64_t i = 0; i < pages; ++i) words.push_back(*space.cpu_read(buf + i * kPage));
    return words;
  }
  // The device page of a migrated page, as the variant reports it to its own device.
  PageSnapshot local(PageSnapshot access = W) const {
    return (coherent() ? PageSnapshot::kDeviceCoherentLocal : PageSnapshot::kDevicePrivateLocal) |
           access;
  }
  // The kernel's `faults` of one device command.
  template <class F>
  static std::uint64_t faults_of(const MirrorDevice& d, F&& command) {
    const std::uint64_t before = d.counters().faults;
    command();
    return d.counters().faults - before;
  }

  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = open_device(*process);
  Ref<MirrorDevice> device1;  // the second device of FIXTURE(hmm2)
};

// FIXTURE(hmm2): two devices of the variant's kind mirroring one process.
class Hmm2 : public Hmm {
 protected:
  Hmm2() { device1 = open_device(*process); }
};

std::string variant_name(const ::testing::TestParamInfo<DeviceMemory>& info) {
  return info.param == DeviceMemory::kCoherent ? "device_coherent" : "device_private";
}

INSTANTIATE_TEST_SUITE_P(, Hmm, ::testing::Values(DeviceMemory::kPrivate, DeviceMemory::kCoherent),
                         variant_name);
INSTANTIATE_TEST_SUITE_P(, Hmm2, ::testing::Values(DeviceMemory::kPrivate, DeviceMemory::kCoherent),
                         variant_name);

TEST_P(Hmm, open_close) {
  device->close();
  EXPECT_EQ(device->read(map(1), 1).status().code(), absl::StatusCode::kFailedPrecondition);
  device = nullptr;
}

// Pages 0 and 1 never written (1 read by the CPU: the zero page), the rest filled, all
// read-only: one device read of everything faults once and sees it all.
TEST_P(Hmm, anon_read) {
  const std::uint64_t buf = map(kNpages);
  for (std::uint64_t i = 2; i < kNpages; ++i) ASSERT_TRUE(mm.cpu_write(buf + i * kPage, i).ok());
  ASSERT_TRUE(mm.mprotect(buf, kNpages * kPage, Prot::kRead).ok());
  EXPECT_EQ(*mm.cpu_read(buf + kPage), 0u);
  absl::StatusOr<std::vector<std::uint64_t>> read;
  EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, kNpages); }), 1u);
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<std::uint64_t> want = pattern(kNpages);
  want[1] = 0;
  EXPECT_EQ(*read, want);
}

TEST_P(Hmm, anon_read_prot) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(mm.mprotect(buf, kNpages * kPage, Prot::kNone).ok());
  EXPECT_EQ(device->read(buf, kNpages).status().code(), absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(mm.mprotect(buf, kNpages * kPage, Prot::kRead).ok());
  EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages));
}

TEST_P(Hmm, anon_write) {
  const std::uint64_t buf = map(kNpages);
  absl::Status s;
  EXPECT_EQ(faults_of(*device, [&] { s = device->write(buf, pattern(kNpages)); }), 1u);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages));
}

// A device write to an advised block faults it in once, as one huge page of fresh frames.
TEST_P(Hmm, anon_write_huge) {
  const std::uint64_t buf = map_aligned();
  absl::Status s;
  EXPECT_EQ(faults_of(*device, [&] { s = device->write(buf, pattern(kPmdPages)); }), 1u);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(W | PageSnapshot::kPmd));
  EXPECT_EQ(cpu_words(mm, buf, kPmdPages), pattern(kPmdPages));
}

// A device write to a hugetlb mapping faults it in once, as one huge page.
TEST_P(Hmm, anon_write_hugetlbfs) {
  const std::uint64_t buf = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  absl::Status s;
  EXPECT_EQ(faults_of(*device, [&] { s = device->write(buf, pattern(kPmdPages)); }), 1u);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cpu_words(mm, buf, kPmdPages), pattern(kPmdPages));
}

TEST_P(Hmm, anon_write_prot) {
  const std::uint64_t buf = map(kNpages, Prot::kRead);
  absl::StatusOr<std::vector<std::uint64_t>> read;
  EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, 1); }), 1u);
  ASSERT_TRUE(read.ok());
  EXPECT_THAT(*read, ElementsAre(0u));
  EXPECT_EQ(device->write(buf, pattern(kNpages)).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(cpu_words(mm, buf, kNpages), Each(0u));
  ASSERT_TRUE(mm.mprotect(buf, kNpages * kPage, Prot::kReadWrite).ok());
  absl::Status s;
  EXPECT_EQ(faults_of(*device, [&] { s = device->write(buf, pattern(kNpages)); }), 1u);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages));
}

// A child's device write copies on write: the parent keeps its pages, whether they were
// on the device at fork or not, in huge pages or small.
TEST_P(Hmm, anon_write_child) {
  for (const bool use_thp : {false, true}) {
    for (const bool migrate : {false, true}) {
      SCOPED_TRACE(absl::StrCat(migrate ? "migrated first" : "in system RAM",
                                use_thp ? ", huge pages" : ""));
      const std::uint64_t buf = use_thp ? map_aligned(kNpages) : map(kNpages);
      cpu_fill(mm, buf, kNpages);
      ASSERT_EQ(mm.lookup(buf)->huge, use_thp);
      if (migrate) {
        ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
        EXPECT_THAT(device->snapshot(buf, kNpages), Each(use_thp ? local_huge() : local()));
      }
      Ref<Process> child = *process->fork();
      EXPECT_EQ(cpu_words(child->mm(), buf, kNpages), pattern(kNpages));
      // The kernel's child opens device 0, a private one, in both variants.
      Ref<MirrorDevice> child_device = *MirrorDevice::open(*child);
      absl::Status s;
      EXPECT_EQ(
          faults_of(*child_device, [&] { s = child_device->write(buf, pattern(kNpages, 7)); }), 1u);
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_EQ(cpu_words(child->mm(), buf, kNpages), pattern(kNpages, 7));
      EXPECT_TRUE(check_coherence(*child_device).ok()) << check_coherence(*child_device);
      child_device->close();
      child->exit();
      EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages)) << "the parent is unchanged";
    }
  }
}

TEST_P(Hmm, anon_write_child_shared) {
  const std::uint64_t buf = map(kNpages, Prot::kReadWrite, MapKind::kAnonShared);
  cpu_fill(mm, buf, kNpages);
  Ref<Process> child = *process->fork();
  EXPECT_EQ(cpu_words(child->mm(), buf, kNpages), pattern(kNpages));
  Ref<MirrorDevice> child_device = *MirrorDevice::open(*child);
  absl::Status s;
  EXPECT_EQ(faults_of(*child_device, [&] { s = child_device->write(buf, pattern(kNpages, 7)); }),
            1u);
  ASSERT_TRUE(s.ok()) << s;
  child_device->close();
  child->exit();
  EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages, 7)) << "shared: no copy-on-write";
}

// A shared file mapping read by the device sees what was written to the file.
TEST_P(Hmm, file_read) {
  Ref<File> file = make_ref<File>();
  for (std::uint64_t i = 0; i < kNpages; ++i) file->write(i * kPage, i);  // pwrite
  const std::uint64_t buf = map(kNpages, Prot::kRead, MapKind::kFileShared, file);
  absl::StatusOr<std::vector<std::uint64_t>> read;
  EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, kNpages); }), 1u);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, pattern(kNpages));
}

TEST_P(Hmm, file_write) {
  Ref<File> file = make_ref<File>();
  const std::uint64_t buf = map(kNpages, Prot::kReadWrite, MapKind::kFileShared, file);
  absl::Status s;
  EXPECT_EQ(faults_of(*device, [&] { s = device->write(buf, pattern(kNpages)); }), 1u);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages));
  for (std::uint64_t i = 0; i < kNpages; ++i) EXPECT_EQ(file->read(i * kPage), i);  // pread
}

TEST_P(Hmm, migrate) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kNpages), Each(local()));
  absl::StatusOr<std::vector<std::uint64_t>> read;
  EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, kNpages); }), 0u);
  EXPECT_EQ(*read, pattern(kNpages));
}

// A private file mapping the CPU wrote everywhere (each page now its own copy) migrates
// like anonymous memory; the file keeps its zeros.
TEST_P(Hmm, migrate_file_private) {
  Ref<File> file = make_ref<File>();
  const std::uint64_t buf = map(kNpages, Prot::kReadWrite, MapKind::kFilePrivate, file);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kNpages), Each(local()));
  EXPECT_EQ(*device->read(buf, kNpages), pattern(kNpages));
  for (std::uint64_t i = 0; i < kNpages; ++i) EXPECT_EQ(file->read(i * kPage), 0u);
}

// The CPU reads half the migrated pages (private ones come back, coherent ones stay);
// migrating the whole range again moves what came back and keeps what did not.
TEST_P(Hmm, migrate_fault) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kNpages), pattern(kNpages));
  EXPECT_EQ(cpu_words(mm, buf, kNpages / 2), pattern(kNpages / 2));
  EXPECT_EQ(device->snapshot(buf, 1)[0], coherent() ? local() : W);
  ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kNpages), Each(local()));
  EXPECT_EQ(*device->read(buf, kNpages), pattern(kNpages));
}

TEST_P(Hmm, migrate_release) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kNpages), pattern(kNpages));
  mm.evict_device(device.get());  // HMM_DMIRROR_RELEASE
  EXPECT_THAT(device->snapshot(buf, kNpages), Each(W));
  EXPECT_EQ(cpu_words(mm, buf, kNpages / 2), pattern(kNpages / 2));
}

TEST_P(Hmm, migrate_shared) {
  const std::uint64_t buf = map(kNpages, Prot::kReadWrite, MapKind::kAnonShared);
  EXPECT_EQ(device->migrate_to_device(buf, kNpages * kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(device->entries_for_testing().empty());
}

// Migrations over PROT_NONE, a hole, the zero page, read-only and written pages, and a
// page on the other device.
TEST_P(Hmm2, migrate_mixed) {
  const std::uint64_t p = map(6, Prot::kNone);
  EXPECT_EQ(device1->migrate_to_device(p, 6 * kPage).status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(mm.munmap(p + kPage, kPage).ok());
  EXPECT_EQ(device1->migrate_to_device(p, 3 * kPage).status().code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(mm.mprotect(p + 2 * kPage, kPage, Prot::kRead).ok());
  EXPECT_EQ(*mm.cpu_read(p + 2 * kPage), 0u);  // the zero page
  ASSERT_TRUE(mm.mprotect(p + 3 * kPage, kPage, Prot::kReadWrite).ok());
  ASSERT_TRUE(mm.cpu_write(p + 3 * kPage, 3).ok());
  ASSERT_TRUE(mm.mprotect(p + 3 * kPage, kPage, Prot::kRead).ok());
  ASSERT_TRUE(mm.mprotect(p + 4 * kPage, 2 * kPage, Prot::kReadWrite).ok());
  ASSERT_TRUE(mm.cpu_write(p + 4 * kPage, 3).ok());
  ASSERT_TRUE(mm.cpu_write(p + 5 * kPage, 3).ok());
  ASSERT_TRUE(device1->migrate_to_device(p + 2 * kPage, 4 * kPage).ok());
  EXPECT_THAT(device1->snapshot(p + 2 * kPage, 4),
              ElementsAre(local(R), local(R), local(), local()))
      << "all four moved";
  EXPECT_THAT(*device1->read(p + 2 * kPage, 4), ElementsAre(0u, 3u, 3u, 3u));
  EXPECT_EQ(device->migrate_to_device(p + 5 * kPage, kPage).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// Ten rounds of fill, migrate, read back on the CPU (coherent pages must be migrated back
// explicitly: a CPU access never moves them).
TEST_P(Hmm, migrate_multiple) {
  for (int c = 0; c < kNtimes; ++c) {
    const std::uint64_t buf = map(kNpages);
    cpu_fill(mm, buf, kNpages);
    ASSERT_TRUE(device->migrate_to_device(buf, kNpages * kPage).ok());
    EXPECT_THAT(device->snapshot(buf, kNpages), Each(local()));
    EXPECT_EQ(*device->read(buf, kNpages), pattern(kNpages));
    if (coherent()) {
      ASSERT_TRUE(device->migrate_to_system(buf, kNpages * kPage).ok());
      EXPECT_THAT(device->snapshot(buf, kNpages), Each(W));
    }
    EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages));
    ASSERT_TRUE(mm.munmap(buf, kNpages * kPage).ok());
  }
}

TEST_P(Hmm, anon_read_multiple) {
  for (std::uint64_t c = 0; c < kNtimes; ++c) {
    const std::uint64_t buf = map(kNpages);
    cpu_fill(mm, buf, kNpages, c);
    absl::StatusOr<std::vector<std::uint64_t>> read;
    EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, kNpages); }), 1u);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, pattern(kNpages, c));
    ASSERT_TRUE(mm.munmap(buf, kNpages * kPage).ok());
  }
}

// A device read of a buffer whose second half another thread unmaps at a random moment:
// it sees everything, or fails because the pages are gone.
TEST_P(Hmm, anon_teardown) {
  std::mt19937 rng(1);
  for (std::uint64_t c = 0; c < kNtimes; ++c) {
    const std::uint64_t buf = map(kNpages);
    cpu_fill(mm, buf, kNpages, c);
    const auto delay = std::chrono::microseconds(rng() % 33);
    std::thread unmapper([&] {
      std::this_thread::sleep_for(delay);
      EXPECT_TRUE(mm.munmap(buf + kNpages / 2 * kPage, kNpages / 2 * kPage).ok());
    });
    absl::StatusOr<std::vector<std::uint64_t>> read;
    const std::uint64_t faults = faults_of(*device, [&] { read = device->read(buf, kNpages); });
    unmapper.join();
    if (read.ok()) {
      EXPECT_EQ(faults, 1u);
      EXPECT_EQ(*read, pattern(kNpages, c));
    } else {
      EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound) << read.status();
    }
    ASSERT_TRUE(mm.munmap(buf, kNpages / 2 * kPage).ok());
  }
}

TEST_P(Hmm2, snapshot) {
  const std::uint64_t p = map(7, Prot::kNone);
  ASSERT_TRUE(mm.munmap(p + kPage, kPage).ok());
  ASSERT_TRUE(mm.mprotect(p + 2 * kPage, kPage, Prot::kRead).ok());
  EXPECT_EQ(*mm.cpu_read(p + 2 * kPage), 0u);
  ASSERT_TRUE(mm.mprotect(p + 3 * kPage, kPage, Prot::kReadWrite).ok());
  ASSERT_TRUE(mm.cpu_write(p + 3 * kPage, 3).ok());
  ASSERT_TRUE(mm.mprotect(p + 3 * kPage, kPage, Prot::kRead).ok());
  ASSERT_TRUE(mm.mprotect(p + 4 * kPage, 3 * kPage, Prot::kReadWrite).ok());
  ASSERT_TRUE(mm.cpu_write(p + 4 * kPage, 4).ok());
  ASSERT_TRUE(device->migrate_to_device(p + 5 * kPage, kPage).ok());
  ASSERT_TRUE(device1->migrate_to_device(p + 6 * kPage, kPage).ok());
  const PageSnapshot remote =
      coherent() ? PageSnapshot::kDeviceCoherentRemote | W : PageSnapshot::kNone;
  EXPECT_THAT(device->snapshot(p, 7), ElementsAre(PageSnapshot::kError, PageSnapshot::kError,
                                                  PageSnapshot::kZero | R, R, W, local(), remote));
}

// A private mapping of the device file is present, read-only, before anything touches it.
TEST_P(Hmm, mixedmap) {
  const std::uint64_t buf = *device->mmap(kPage, Prot::kReadWrite);
  EXPECT_THAT(device->snapshot(buf, 1), ElementsAre(R));
}

// A written hugetlb page shows as one PMD mapping, writable and then read-only.
TEST_P(Hmm, compound) {
  const std::uint64_t buf = *mm.mmap_hugetlb(kHugePageSize, Prot::kReadWrite);
  cpu_fill(mm, buf, kPmdPages);
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(W | PageSnapshot::kPmd));
  ASSERT_TRUE(mm.mprotect(buf, kHugePageSize, Prot::kRead).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(R | PageSnapshot::kPmd));
}

// Both devices read the read-only pages; the second migrates them, and the first reads
// them again with one fault (pulling private pages back, mapping coherent ones in place).
TEST_P(Hmm2, double_map) {
  constexpr std::uint64_t kPages = 6;
  const std::uint64_t buf = map(kPages);
  cpu_fill(mm, buf, kPages);
  ASSERT_TRUE(mm.mprotect(buf, kPages * kPage, Prot::kRead).ok());
  for (MirrorDevice* d : {device.get(), device1.get()}) {
    absl::StatusOr<std::vector<std::uint64_t>> read;
    EXPECT_EQ(faults_of(*d, [&] { read = d->read(buf, kPages); }), 1u);
    EXPECT_EQ(*read, pattern(kPages));
  }
  ASSERT_TRUE(device1->migrate_to_device(buf, kPages * kPage).ok());
  EXPECT_THAT(device1->snapshot(buf, kPages), Each(local(R)));
  absl::StatusOr<std::vector<std::uint64_t>> read;
  EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, kPages); }), 1u);
  EXPECT_EQ(*read, pattern(kPages));
  EXPECT_THAT(device1->snapshot(buf, kPages), Each(coherent() ? local(R) : R));
}

// Exclusive access for the device; every CPU access takes it back.
TEST_P(Hmm, exclusive) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->make_exclusive(buf, kNpages * kPage).ok());
  absl::StatusOr<std::vector<std::uint64_t>> read;
  EXPECT_EQ(faults_of(*device, [&] { read = device->read(buf, kNpages); }), 0u);
  EXPECT_EQ(*read, pattern(kNpages));
  for (std::uint64_t i = 0; i < kNpages; ++i) {
    const std::uint64_t at = buf + i * kPage;
    EXPECT_EQ(*mm.cpu_read(at), i);
    ASSERT_TRUE(mm.cpu_write(at, i + 1).ok());
  }
  EXPECT_EQ(cpu_words(mm, buf, kNpages), pattern(kNpages, 1));
  for (std::uint64_t i = 0; i < kNpages; ++i) {  // HMM_DMIRROR_CHECK_EXCLUSIVE
    EXPECT_EQ(mm.lookup(buf + i * kPage)->exclusive, nullptr) << i;
  }
}

TEST_P(Hmm, exclusive_mprotect) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->make_exclusive(buf, kNpages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kNpages), pattern(kNpages));
  ASSERT_TRUE(mm.mprotect(buf, kNpages * kPage, Prot::kRead).ok());
  EXPECT_EQ(device->write(buf, pattern(kNpages)).code(), absl::StatusCode::kPermissionDenied);
}

// Exclusive pages, then fork: each side's CPU increments its own copy.
TEST_P(Hmm, exclusive_cow) {
  const std::uint64_t buf = map(kNpages);
  cpu_fill(mm, buf, kNpages);
  ASSERT_TRUE(device->make_exclusive(buf, kNpages * kPage).ok());
  Ref<Process> child = *process->fork();
  for (AddressSpace* side : {&child->mm(), &mm}) {
    for (std::uint64_t i = 0; i < kNpages; ++i) {
      const std::uint64_t at = buf + i * kPage;
      EXPECT_EQ(*side->cpu_read(at), i);
      ASSERT_TRUE(side->cpu_write(at, i + 1).ok());
    }
    EXPECT_EQ(cpu_words(*side, buf, kNpages), pattern(kNpages, 1));
  }
  child->exit();
}

// Migrated pages pinned for write, one page each way (the kernel's gup_test: get_user_pages,
// its fast variant, and two long-term pins): a short-term pin brings a private device page
// back and uses a coherent one in place; a long-term pin brings both back. No word changes.
TEST_P(Hmm, hmm_gup_test) {
  constexpr std::uint64_t kPages = 4;
  const std::uint64_t buf = map(kPages);
  cpu_fill(mm, buf, kPages);
  ASSERT_TRUE(device->migrate_to_device(buf, kPages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kPages), pattern(kPages));
  std::vector<Ref<Frame>> pinned;
  for (const auto& [page, pin] : {std::pair{0, AddressSpace::Pin::kShortTerm},
                                  {1, AddressSpace::Pin::kShortTerm},
                                  {2, AddressSpace::Pin::kLongTerm},
                                  {3, AddressSpace::Pin::kLongTerm}}) {
    absl::StatusOr<std::vector<Ref<Frame>>> frames =
        mm.pin_user_pages(buf + page * kPage, kPage, /*write=*/true, pin);
    ASSERT_TRUE(frames.ok()) << frames.status();
    ASSERT_EQ(frames->size(), 1u);
    EXPECT_EQ((*frames)[0]->read(), static_cast<std::uint64_t>(page));
    pinned.push_back((*frames)[0]);
  }
  const PageSnapshot short_term = coherent() ? local() : W;
  EXPECT_THAT(device->snapshot(buf, kPages), ElementsAre(short_term, short_term, W, W));
  EXPECT_EQ(cpu_words(mm, buf, kPages), pattern(kPages));
}

// Migrated pages, fork, and the parent writes every page (copy-on-write): all of them are
// plain writable system pages after.
TEST_P(Hmm, hmm_cow_in_device) {
  constexpr std::uint64_t kPages = 4;
  const std::uint64_t buf = map(kPages);
  cpu_fill(mm, buf, kPages);
  ASSERT_TRUE(device->migrate_to_device(buf, kPages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kPages), Each(local()));
  Ref<Process> child = *process->fork();
  cpu_fill(mm, buf, kPages);
  child->exit();  // the kernel's SIGKILL
  EXPECT_THAT(device->snapshot(buf, kPages), Each(W));
}

// An untouched read-only range migrates zero-filled (the kernel moves it as one empty
// huge page; here as 512 pages).
// An advised block nothing touched yet moves to the device as one zero-filled huge page.
TEST_P(Hmm, migrate_anon_huge_empty) {
  const std::uint64_t buf = map_aligned(kPmdPages, Prot::kRead);
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local_huge(R)));
  EXPECT_THAT(*device->read(buf, kPmdPages), Each(0u));
}

// The huge zero page (the CPU read the block) migrates zero-filled, as one huge page, and
// the CPU reads zeros back.
TEST_P(Hmm, migrate_anon_huge_zero) {
  const std::uint64_t buf = map_aligned(kPmdPages, Prot::kRead);
  EXPECT_EQ(*mm.cpu_read(buf), 0u);
  ASSERT_TRUE(mm.lookup(buf)->huge && mm.lookup(buf)->zero_page);
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local_huge(R)));
  EXPECT_THAT(*device->read(buf, kPmdPages), Each(0u));
  EXPECT_THAT(cpu_words(mm, buf, kPmdPages), Each(0u));
}

// MADV_FREE of a huge page on the device succeeds; the device's pages stay (nothing of
// them is present in the CPU page table to free) and the CPU reads them back.
TEST_P(Hmm, migrate_anon_huge_free) {
  const std::uint64_t buf = map_aligned();
  cpu_fill(mm, buf, kPmdPages);
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kPmdPages), pattern(kPmdPages));
  ASSERT_TRUE(mm.madvise(buf, kPmdPages * kPage, Advice::kFree).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local_huge()));
  EXPECT_EQ(cpu_words(mm, buf, kPmdPages), pattern(kPmdPages));
}

// A huge page migrates whole: the device's pages show as one PMD (private ones as absent
// from the CPU page table, the kernel's pagemap swap entries), and the CPU's first touch
// brings the whole block back as a huge page again.
TEST_P(Hmm, migrate_anon_huge_fault) {
  const std::uint64_t buf = map_aligned();
  cpu_fill(mm, buf, kPmdPages);
  ASSERT_TRUE(mm.lookup(buf)->huge);
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kPmdPages), pattern(kPmdPages));
  if (!coherent()) {
    EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local_huge()));
    for (std::uint64_t i = 0; i < kPmdPages; ++i) {
      const PageEntry e = *mm.lookup(buf + i * kPage);
      EXPECT_TRUE(e.device == device.get() && !e.coherent) << "not a device entry at page " << i;
    }
  }
  EXPECT_EQ(*mm.cpu_read(buf + 3 * kPage), 3u);
  for (const absl::StatusOr<PageEntry>& e : mm.lookup_range(buf, kPmdPages)) {
    EXPECT_TRUE(e->huge && (coherent() || e->device == nullptr)) << "one touch, the whole block";
  }
  EXPECT_EQ(cpu_words(mm, buf, kPmdPages), pattern(kPmdPages));
}

// A mapping moved (mremap to a fixed place, keeping the old range mapped or not) before
// or after its pages migrate: the CPU reads them back at the new place. A huge page
// moved to an unaligned place splits.
TEST_P(Hmm, migrate_remap_fault) {
  for (const bool before : {false, true}) {
    for (const bool keep_old : {false, true}) {
      for (const Advice advice : {Advice::kNoHugePage, Advice::kHugePage}) {
        for (const std::uint64_t offset : {0ul, kPmdPages / 4, kPmdPages / 2}) {
          SCOPED_TRACE(absl::StrCat(before ? "moved before" : "moved after", " migrating",
                                    keep_old ? ", old range kept" : "",
                                    advice == Advice::kHugePage ? ", huge page" : "", ", offset ",
                                    offset));
          const std::uint64_t buf = map(8 * kPmdPages);
          const std::uint64_t old_buf = huge_page_of(buf + kHugePageSize - 1);
          ASSERT_TRUE(mm.madvise(old_buf, kHugePageSize, advice).ok());
          ASSERT_TRUE(mm.munmap(old_buf + kHugePageSize, 2 * kHugePageSize).ok());
          cpu_fill(mm, old_buf, kPmdPages);
          const std::uint64_t new_buf = old_buf + kHugePageSize + offset * kPage;
          std::uint64_t at = old_buf;
          if (before) {
            ASSERT_TRUE(mm.mremap(old_buf, kHugePageSize, new_buf, keep_old).ok());
            at = new_buf;
          }
          ASSERT_TRUE(device->migrate_to_device(at, kPmdPages * kPage).ok());
          EXPECT_EQ(*device->read(at, kPmdPages), pattern(kPmdPages));
          if (!before) {
            ASSERT_TRUE(mm.mremap(old_buf, kHugePageSize, new_buf, keep_old).ok());
          }
          EXPECT_EQ(mm.lookup(new_buf)->huge, advice == Advice::kHugePage && offset == 0);
          EXPECT_EQ(cpu_words(mm, new_buf, kPmdPages), pattern(kPmdPages));
          if (keep_old) {
            EXPECT_EQ(*mm.cpu_read(old_buf + kPage), 0u) << "the old range is empty";
          } else {
            EXPECT_EQ(mm.cpu_read(old_buf).status().code(), absl::StatusCode::kNotFound);
          }
          ASSERT_TRUE(mm.munmap(buf, 8 * kPmdPages * kPage).ok());
        }
      }
    }
  }
}

// A failed huge allocation splits the block, in either direction: to the device it moves
// as small device pages (and one CPU touch brings back one page), back from the device as
// small pages in system RAM.
TEST_P(Hmm, migrate_anon_huge_err) {
  std::uint64_t buf = map_aligned();
  cpu_fill(mm, buf, kPmdPages);
  device->fail_next_huge_allocation();
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_EQ(*device->read(buf, kPmdPages), pattern(kPmdPages));
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local()));
  EXPECT_EQ(*mm.cpu_read(buf + 2 * kPage), 2u);
  if (!coherent()) {
    EXPECT_EQ(mm.lookup(buf + 3 * kPage)->device, device.get()) << "only the touched page moved";
  }

  ASSERT_TRUE(mm.munmap(huge_page_of(buf - 1), 2 * kHugePageSize).ok());
  buf = map_aligned();
  cpu_fill(mm, buf, kPmdPages);
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local_huge())) << "the failure was consumed";
  device->fail_next_huge_allocation();
  ASSERT_TRUE(device->migrate_to_system(buf, kPmdPages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(W)) << "small pages in system RAM";
  EXPECT_EQ(*mm.cpu_read(buf + 2 * kPage), 2u);
  EXPECT_EQ(cpu_words(mm, buf, kPmdPages), pattern(kPmdPages));
}

// The same with the zero-filled block and the huge zero page.
TEST_P(Hmm, migrate_anon_huge_zero_err) {
  std::uint64_t buf = map_aligned(kPmdPages, Prot::kRead);
  device->fail_next_huge_allocation();
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_THAT(*device->read(buf, kPmdPages), Each(0u));
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local(R)));
  EXPECT_EQ(*mm.cpu_read(buf + 2 * kPage), 0u);

  ASSERT_TRUE(mm.munmap(huge_page_of(buf - 1), 2 * kHugePageSize).ok());
  buf = map_aligned(kPmdPages, Prot::kRead);
  EXPECT_EQ(*mm.cpu_read(buf), 0u);
  ASSERT_TRUE(mm.lookup(buf)->huge && mm.lookup(buf)->zero_page);
  device->fail_next_huge_allocation();
  ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
  EXPECT_THAT(device->snapshot(buf, kPmdPages), Each(local(R)));
  EXPECT_THAT(cpu_words(mm, buf, kPmdPages), Each(0u));
}

// Half of a migrated range (a huge page, or 512 small ones) is unmapped at three offsets;
// the CPU reads the rest back.
TEST_P(Hmm, migrate_partial_unmap_fault) {
  for (const Advice advice : {Advice::kNoHugePage, Advice::kHugePage}) {
    for (const std::uint64_t offset : {0ul, kPmdPages / 4, kPmdPages / 2}) {
      SCOPED_TRACE(absl::StrCat(offset, advice == Advice::kHugePage ? ", huge page" : ""));
      const std::uint64_t buf = map_aligned(kPmdPages, Prot::kReadWrite, advice);
      cpu_fill(mm, buf, kPmdPages);
      ASSERT_TRUE(device->migrate_to_device(buf, kPmdPages * kPage).ok());
      EXPECT_EQ(device->snapshot(buf, 1)[0], advice == Advice::kHugePage ? local_huge() : local());
      EXPECT_EQ(*device->read(buf, kPmdPages), pattern(kPmdPages));
      ASSERT_TRUE(mm.munmap(buf + offset * kPage, kPmdPages / 2 * kPage).ok());
      for (std::uint64_t i = 0; i < kPmdPages; ++i) {
        if (i >= offset && i < offset + kPmdPages / 2) continue;
        EXPECT_EQ(*mm.cpu_read(buf + i * kPage), i);
      }
    }
  }
}

// The kernel's migration benchmark, as a check that every round trip succeeds, with and
// without huge pages (the timings: BM_Mirror_MigrateRoundTrip in bench/mirror_bench.cc; sizes
// up to 2 PMDs here).
TEST_P(Hmm, benchmark_thp_migration) {
  for (const Advice advice : {Advice::kHugePage, Advice::kNoHugePage}) {
    for (const std::uint64_t pages : {kPmdPages / 4, kPmdPages / 2, kPmdPages, 2 * kPmdPages}) {
      SCOPED_TRACE(absl::StrCat(pages, advice == Advice::kHugePage ? ", huge pages" : ""));
      const std::uint64_t buf = map(pages);
      ASSERT_TRUE(mm.madvise(buf, pages * kPage, advice).ok());
      cpu_fill(mm, buf, pages);
      for (int round = 0; round < 6; ++round) {  // a warm-up and five timed in the kernel
        ASSERT_TRUE(device->migrate_to_device(buf, pages * kPage).ok());
        ASSERT_TRUE(device->migrate_to_system(buf, pages * kPage).ok());
      }
      EXPECT_EQ(cpu_words(mm, buf, pages), pattern(pages));
    }
  }
}

}  // namespace
}  // namespace itn::hw
