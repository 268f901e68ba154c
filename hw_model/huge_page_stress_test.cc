// Real-thread stress of transparent huge pages (run under ASan and TSan in CI): one
// advised 2 MiB block that the CPU writes, protects in part, frees in part and forks, and
// a second CPU thread frees (in part, or whole so that it faults in huge again) and
// writes on the read side of the mmap lock as faults do, while two devices (private and coherent
// memory) fault, read and write it and migrate it whole, in part (which splits it) and back. Words
// carry their page (the forked child's a page outside the block), so a foreign frame or a
// copy-on-write leak is caught by content (lost writes are not: the CPU's frees make any word of
// the page's possible). After every CPU operation the block is one whole huge page or none; at each
// round's end both devices are coherent (I17: a huge page is whole) and read what the CPU reads
// (I19), and the next round starts on a fresh block, mapped whole by its first fault.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "testing/coherence.h"
#include "hw_model/mirror_device.h"
#include "hw_model/testing/stress_outcome.h"
#include "hw_model/testing/tagged_word.h"

namespace itn::hw {
namespace {

using testing::belongs_to;
using testing::tagged;

constexpr std::uint64_t kPage = kPageSize;
constexpr std::uint64_t kBlockPages = kHugePageSize / kPage;

// A fresh advised block inside a mapping twice its size.
std::uint64_t map_block(AddressSpace& mm) {
  const std::uint64_t addr = *mm.mmap(2 * kHugePageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  const std::uint64_t block = huge_page_of(addr + kHugePageSize - 1);
  EXPECT_TRUE(mm.madvise(block, kHugePageSize, Advice::kHugePage).ok());
  return block;
}

// True if the block holds one whole huge page or none: every page's entry huge, or no
// entry huge (looked at in one go, between two changes of the page table).
bool whole_or_split(const AddressSpace& mm, std::uint64_t block) {
  std::uint64_t huge = 0;
  for (const absl::StatusOr<PageEntry>& e : mm.lookup_range(block, kBlockPages)) {
    huge += e.ok() && e->huge;
  }
  return huge == 0 || huge == kBlockPages;
}

TEST(HugePageStressTest, SplitsCopiesAndMigrationsOfAHugePageStayCoherent) {
  constexpr int kRounds = 4;
  constexpr int kOpsPerThread = 150;
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> devices[2] = {*MirrorDevice::open(*process),
                                  *MirrorDevice::open(*process, {.memory = DeviceMemory::kCoherent,
                                                                 .notifier_chunk_pages = 64})};
  // Wrong values include half-split huge pages.
  std::atomic<int> wrong_values{0}, device_ops_ok{0}, huge_at_start{0};

  for (int round = 0; round < kRounds; ++round) {
    const std::uint64_t block = map_block(mm);
    ASSERT_TRUE(mm.cpu_write(block, tagged(0, 1)).ok());
    if (mm.lookup(block + kHugePageSize - kPage)->huge) huge_at_start.fetch_add(1);
    std::vector<std::thread> threads;
    threads.emplace_back([&, round] {  // the CPU
      std::mt19937_64 rng(round);
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::uint64_t p = rng() % kBlockPages;
        const std::uint64_t part = 1 + rng() % 8;  // pages from p a partial change covers
        const std::uint64_t n = std::min(part, kBlockPages - p);
        // Changes of part of the block (which split it) one time in four as often as the
        // others, so that the huge page lives long enough to move and copy whole.
        unsigned op = rng() % 8;
        if (op < 2 && rng() % 4 != 0) op = 7;
        switch (op) {
          case 0:  // in part: splits the huge page
            ASSERT_TRUE(mm.mprotect(block + p * kPage, n * kPage, Prot::kRead).ok());
            ASSERT_TRUE(mm.mprotect(block + p * kPage, n * kPage, Prot::kReadWrite).ok());
            break;
          case 1:
            ASSERT_TRUE(mm.madvise(block + p * kPage, n * kPage, Advice::kFree).ok());
            break;
          case 2: {  // copy-on-write of the whole huge page, on both sides
            Ref<Process> child = *process->fork();
            // Tagged for no page of the block: the parent must never see it.
            (void)child->mm().cpu_write(block + p * kPage, tagged(kBlockPages + p, rng()));
            child->exit();
            break;
          }
          case 3: {
            absl::StatusOr<std::uint64_t> v = mm.cpu_read(block + p * kPage);
            ASSERT_TRUE(v.ok()) << v.status();
            if (!belongs_to(*v, p)) wrong_values.fetch_add(1);
            break;
          }
          default:
            ASSERT_TRUE(mm.cpu_write(block + p * kPage, tagged(p, rng())).ok());
        }
        if (!whole_or_split(mm, block)) wrong_values.fetch_add(1);
      }
    });
    threads.emplace_back([&, round] {  // a second CPU: frees race the first one's faults
      std::mt19937_64 rng(500 + round);
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::uint64_t p = rng() % kBlockPages;
        const unsigned op = rng() % 8;
        if (op == 0) {  // the whole block: the next fault maps a huge page again
          ASSERT_TRUE(mm.madvise(block, kHugePageSize, Advice::kFree).ok());
        } else if (op == 1 && rng() % 4 == 0) {  // in part: splits it (rarer, as above)
          const std::uint64_t n = std::min<std::uint64_t>(1 + rng() % 8, kBlockPages - p);
          ASSERT_TRUE(mm.madvise(block + p * kPage, n * kPage, Advice::kFree).ok());
        } else if (op < 4) {
          absl::StatusOr<std::uint64_t> v = mm.cpu_read(block + p * kPage);
          ASSERT_TRUE(v.ok()) << v.status();
          if (!belongs_to(*v, p)) wrong_values.fetch_add(1);
        } else {
          ASSERT_TRUE(mm.cpu_write(block + p * kPage, tagged(p, rng())).ok());
        }
        if (!whole_or_split(mm, block)) wrong_values.fetch_add(1);
      }
    });
    for (int d = 0; d < 2; ++d) {
      threads.emplace_back([&, d, round] {
        MirrorDevice& dev = *devices[d];
        std::mt19937_64 rng(1000 * round + d);
        for (int i = 0; i < kOpsPerThread; ++i) {
          const std::uint64_t p = rng() % (kBlockPages - 1);
          absl::Status s;
          unsigned op = rng() % 7;
          if ((op == 4 || op == 5) && rng() % 4 != 0) op = 6;  // splits: rarer, as above
          switch (op) {
            case 0: {
              absl::StatusOr<std::vector<std::uint64_t>> w = dev.read(block + p * kPage, 2);
              s = w.status();
              if (w.ok() && (!belongs_to((*w)[0], p) || !belongs_to((*w)[1], p + 1))) {
                wrong_values.fetch_add(1);
              }
              break;
            }
            case 1:
              s = dev.write(block + p * kPage,
                            std::vector<std::uint64_t>{tagged(p, rng()), tagged(p + 1, rng())});
              break;
            case 2:  // whole: moves as one huge page while it is one
              s = dev.migrate_to_device(block, kHugePageSize).status();
              break;
            case 3:
              s = dev.migrate_to_system(block, kHugePageSize).status();
              break;
            case 4:  // in part: splits it
              s = dev.migrate_to_device(block + p * kPage, 2 * kPage).status();
              break;
            case 5:
              s = dev.make_exclusive(block + p * kPage, kPage).status();
              break;
            default:
              s = dev.range_fault(block, kHugePageSize, rng() % 2 == 0);
          }
          if (s.ok()) device_ops_ok.fetch_add(1);
          ASSERT_TRUE(testing::expected_outcome(s));
        }
      });
    }
    for (std::thread& t : threads) t.join();

    // The read first: with an entry for every page, the coherence check covers every huge
    // page of the block.
    absl::StatusOr<std::vector<std::uint64_t>> on_device = devices[1]->read(block, kBlockPages);
    ASSERT_TRUE(on_device.ok()) << on_device.status();
    for (Ref<MirrorDevice>& dev : devices) {
      ASSERT_TRUE(check_coherence(*dev).ok()) << check_coherence(*dev);
    }
    for (std::uint64_t p = 0; p < kBlockPages; ++p) {
      const std::uint64_t cpu = *mm.cpu_read(block + p * kPage);
      if (!belongs_to(cpu, p)) wrong_values.fetch_add(1);
      EXPECT_EQ((*on_device)[p], cpu) << "page " << p;
    }
    ASSERT_TRUE(mm.munmap(block, kHugePageSize).ok());
  }
  EXPECT_EQ(wrong_values.load(), 0) << "a device or the CPU saw another page's data";
  EXPECT_EQ(huge_at_start.load(), kRounds) << "every round started on one huge page";
  EXPECT_GT(device_ops_ok.load(), kRounds * kOpsPerThread / 4) << "the devices barely ran";
  for (Ref<MirrorDevice>& dev : devices) dev->close();
}

}  // namespace
}  // namespace itn::hw
