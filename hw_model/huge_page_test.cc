// Transparent huge pages in AddressSpace: which faults map a whole 2 MiB block, that its
// 512 entries change together, and that whatever treats part of one differently splits
// it first under one invalidation of the whole block.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "hw_model/address_space.h"
#include "testing/coherence.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "hw_model/testing/invalidation_recorder.h"

namespace itn::hw {
namespace {

using Recorder = testing::InvalidationRecorder;
using Calls = std::vector<Recorder::Call>;

constexpr std::uint64_t kHugePages = kHugePageSize / kPageSize;

class HugePageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mm_->notifiers().insert(recorder_, Interval::whole_space(), nullptr).ok());
  }
  // Whatever a test did, each block it mapped holds a whole huge page or none of one.
  void TearDown() override {
    for (const std::uint64_t block : blocks_) {
      const std::uint64_t huge = huge_entries(block);
      EXPECT_TRUE(huge == 0 || huge == kHugePages) << huge << " huge entries in one block";
    }
    ASSERT_TRUE(mm_->notifiers().remove(*recorder_).ok());
  }

  // As the kernel's tests do: two huge pages' worth mapped, the aligned block inside it
  // returned (advised kHugePage if `advise`).
  std::uint64_t map_block(bool advise = true, Prot prot = Prot::kReadWrite) {
    const std::uint64_t addr = *mm_->mmap(2 * kHugePageSize, prot, MapKind::kAnonPrivate);
    const std::uint64_t block = huge_page_of(addr + kHugePageSize - 1);
    blocks_.push_back(block);
    if (advise) {
      EXPECT_TRUE(mm_->madvise(block, kHugePageSize, Advice::kHugePage).ok());
    }
    return block;
  }
  // The entries of the block's mapped pages.
  std::vector<PageEntry> entries(std::uint64_t block) {
    std::vector<PageEntry> out;
    for (const absl::StatusOr<PageEntry>& e : mm_->lookup_range(block, kHugePages)) {
      if (e.ok()) out.push_back(*e);
    }
    return out;
  }
  std::uint64_t huge_entries(std::uint64_t block) {
    std::uint64_t n = 0;
    for (const PageEntry& e : entries(block)) n += e.huge;
    return n;
  }

  Ref<AddressSpace> mm_ = make_ref<AddressSpace>();
  Ref<Recorder> recorder_ = make_ref<Recorder>();
  std::vector<std::uint64_t> blocks_;  // what map_block() returned
};

TEST_F(HugePageTest, AReadOfAnAdvisedBlockMapsTheHugeZeroPageWithoutInvalidating) {
  const std::uint64_t block = map_block();
  EXPECT_EQ(*mm_->cpu_read(block + 5 * kPageSize), 0u);
  for (const PageEntry& e : entries(block)) {
    EXPECT_TRUE(e.huge && e.zero_page && !e.writable);
  }
  EXPECT_FALSE(mm_->lookup(block + kHugePageSize)->frame) << "the block's neighbour stays absent";
  EXPECT_EQ(recorder_->take(), Calls{}) << "an absent entry needs no invalidation";
}

TEST_F(HugePageTest, AWriteFaultMapsAWholeBlockOfFreshFrames) {
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->cpu_write(block + 3 * kPageSize, 7).ok());
  std::set<const Frame*> frames;
  for (const PageEntry& e : entries(block)) {
    EXPECT_TRUE(e.huge && e.writable && !e.zero_page);
    frames.insert(e.frame.get());
  }
  EXPECT_EQ(frames.size(), kHugePages);
  EXPECT_EQ(*mm_->cpu_read(block + 3 * kPageSize), 7u);
  EXPECT_EQ(*mm_->cpu_read(block + 4 * kPageSize), 0u);
  EXPECT_EQ(recorder_->take(), Calls{});
}

TEST_F(HugePageTest, FaultsMapSmallPagesWithoutTheHintOrWhereTheBlockDoesNotFit) {
  const std::uint64_t plain = map_block(/*advise=*/false);
  ASSERT_TRUE(mm_->cpu_write(plain, 1).ok());
  EXPECT_EQ(huge_entries(plain), 0u);
  EXPECT_FALSE(mm_->lookup(plain + kPageSize)->frame);

  const std::uint64_t withdrawn = map_block();
  ASSERT_TRUE(mm_->madvise(withdrawn, kHugePageSize, Advice::kNoHugePage).ok());
  ASSERT_TRUE(mm_->cpu_write(withdrawn, 1).ok());
  EXPECT_EQ(huge_entries(withdrawn), 0u);

  // Advised, but the VMA ends one page short of the block.
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->munmap(block + kHugePageSize - kPageSize, kPageSize).ok());
  ASSERT_TRUE(mm_->cpu_write(block, 1).ok());
  EXPECT_EQ(huge_entries(block), 0u);
  EXPECT_FALSE(mm_->lookup(block + kPageSize)->frame);
}

TEST_F(HugePageTest, AWriteToTheHugeZeroPageCopiesTheBlockUnderOneInvalidation) {
  const std::uint64_t block = map_block();
  ASSERT_EQ(*mm_->cpu_read(block), 0u);
  ASSERT_TRUE(mm_->cpu_write(block + 9 * kPageSize, 9).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize}}));
  for (const PageEntry& e : entries(block)) EXPECT_TRUE(e.huge && e.writable && !e.zero_page);
  EXPECT_EQ(*mm_->cpu_read(block + 9 * kPageSize), 9u);
}

TEST_F(HugePageTest, CopyOnWriteAfterForkCopiesTheWholeHugePage) {
  const std::uint64_t block = map_block();
  for (std::uint64_t i = 0; i < kHugePages; ++i) {
    ASSERT_TRUE(mm_->cpu_write(block + i * kPageSize, i).ok());
  }
  Ref<AddressSpace> child = *mm_->fork();
  recorder_->take();
  ASSERT_TRUE(mm_->cpu_write(block, 100).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize}}));
  for (const PageEntry& e : entries(block)) EXPECT_TRUE(e.huge && e.writable);
  for (std::uint64_t i = 1; i < kHugePages; ++i) {
    ASSERT_EQ(*mm_->cpu_read(block + i * kPageSize), i) << "the copy lost page " << i;
  }
  ASSERT_TRUE(mm_->cpu_write(block + kHugePageSize - kPageSize, 7).ok());
  EXPECT_EQ(recorder_->take(), Calls{}) << "the whole block was copied at once";
  EXPECT_EQ(*child->cpu_read(block), 0u) << "the parent's write reached the child";
  EXPECT_EQ(*child->cpu_read(block + kHugePageSize - kPageSize), kHugePages - 1);
  const absl::StatusOr<PageEntry> in_child = child->lookup(block);
  EXPECT_TRUE(in_child->huge && !in_child->writable);
  child->mmput();
}

TEST_F(HugePageTest, UnmappingPartOfAHugePageSplitsItFirst) {
  const std::uint64_t block = map_block();
  for (std::uint64_t i = 0; i < kHugePages; ++i) {
    ASSERT_TRUE(mm_->cpu_write(block + i * kPageSize, i).ok());
  }
  const std::uint64_t cut = block + kHugePageSize / 4;
  ASSERT_TRUE(mm_->munmap(cut, kHugePageSize / 2).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize},
                                      {Event::kUnmap, cut, cut + kHugePageSize / 2}}));
  for (std::uint64_t i = 0; i < kHugePages; ++i) {
    const std::uint64_t page = block + i * kPageSize;
    if (page >= cut && page < cut + kHugePageSize / 2) continue;
    const absl::StatusOr<PageEntry> e = mm_->lookup(page);
    EXPECT_FALSE(e->huge) << "page " << i << " still claims a PMD";
    EXPECT_EQ(e->frame->read(), i);
  }
}

TEST_F(HugePageTest, MprotectKeepsAWholeHugePageAndSplitsOneItCuts) {
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->cpu_write(block, 1).ok());
  recorder_->take();
  ASSERT_TRUE(mm_->mprotect(block, kHugePageSize, Prot::kRead).ok());
  EXPECT_EQ(huge_entries(block), kHugePages);
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kProtectionVma, block, block + kHugePageSize}}));

  ASSERT_TRUE(mm_->mprotect(block, kPageSize, Prot::kReadWrite).ok());
  EXPECT_EQ(huge_entries(block), 0u);
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize},
                                      {Event::kProtectionVma, block, block + kPageSize}}));
  EXPECT_EQ(*mm_->cpu_read(block), 1u);
}

TEST_F(HugePageTest, AMigrationThatReachesAHugePageSplitsIt) {
  const int device = 0;
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 5).ok());
  recorder_->take();
  ASSERT_TRUE(
      mm_->migrate_to_device(block, 4 * kPageSize, &device, [](std::uint64_t, const PageEntry&) {})
          .ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize},
                                      {Event::kMigrate, block, block + 4 * kPageSize, &device}}));
  EXPECT_EQ(huge_entries(block), 0u);
  EXPECT_EQ(*mm_->cpu_read(block + kPageSize), 5u);
}

TEST_F(HugePageTest, AMigrationOfAWholeHugePageMovesItAsOneAndBack) {
  const int device = 0;
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 5).ok());
  recorder_->take();
  std::uint64_t hooked = 0;
  const auto count = [&](std::uint64_t, const PageEntry& e) { hooked += e.huge; };
  ASSERT_TRUE(mm_->migrate_to_device(block, kHugePageSize, &device, count).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kMigrate, block, block + kHugePageSize, &device}}))
      << "no split first";
  EXPECT_EQ(hooked, kHugePages);
  for (const PageEntry& e : entries(block)) EXPECT_TRUE(e.huge && e.device == &device);
  ASSERT_TRUE(mm_->migrate_to_system(block, kHugePageSize, &device, count).ok());
  EXPECT_EQ(hooked, 2 * kHugePages);
  for (const PageEntry& e : entries(block)) EXPECT_TRUE(e.huge && e.device == nullptr);
  EXPECT_EQ(*mm_->cpu_read(block + kPageSize), 5u);
}

TEST_F(HugePageTest, PartOfADeviceHugePageMovingBackSplitsItFirst) {
  const int device = 0;
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 5).ok());
  const auto ignore = [](std::uint64_t, const PageEntry&) {};
  ASSERT_TRUE(mm_->migrate_to_device(block, kHugePageSize, &device, ignore).ok());
  recorder_->take();
  ASSERT_TRUE(mm_->migrate_to_system(block, kPageSize, &device, ignore).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize},
                                      {Event::kMigrate, block, block + kPageSize, &device}}));
  EXPECT_EQ(huge_entries(block), 0u);
  EXPECT_EQ(mm_->lookup(block)->device, nullptr);
  EXPECT_EQ(mm_->lookup(block + kPageSize)->device, &device);
  EXPECT_EQ(*mm_->cpu_read(block + kPageSize), 5u);
}

TEST_F(HugePageTest, EvictionAndForkBringADeviceHugePageBackWhole) {
  const int device = 0;
  const auto ignore = [](std::uint64_t, const PageEntry&) {};
  for (const bool by_fork : {false, true}) {
    SCOPED_TRACE(by_fork ? "fork" : "evict_device");
    const std::uint64_t block = map_block();
    ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 5).ok());
    ASSERT_TRUE(mm_->migrate_to_device(block, kHugePageSize, &device, ignore).ok());
    recorder_->take();
    Ref<AddressSpace> child;
    if (by_fork) {
      child = *mm_->fork();
    } else {
      mm_->evict_device(&device);
    }
    const std::vector<Recorder::Call> calls = recorder_->take();
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls[0], (Recorder::Call{Event::kMigrate, block, block + kHugePageSize}))
        << "one invalidation for the whole block";
    for (const PageEntry& e : entries(block)) EXPECT_TRUE(e.huge && e.device == nullptr);
    EXPECT_EQ(*mm_->cpu_read(block + kPageSize), 5u);
    if (child) child->mmput();
  }
}

// A PMD has one writable bit: a device write to its own huge page, write-protected by an
// mprotect since, makes the whole block writable.
TEST(HugePageDeviceTest, ADeviceWriteToItsOwnReadOnlyHugePageMakesItAllWritable) {
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
  const std::uint64_t addr = *mm.mmap(2 * kHugePageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  const std::uint64_t block = huge_page_of(addr + kHugePageSize - 1);
  ASSERT_TRUE(mm.madvise(block, kHugePageSize, Advice::kHugePage).ok());
  ASSERT_TRUE(mm.cpu_write(block, 1).ok());
  ASSERT_TRUE(device->migrate_to_device(block, kHugePageSize).ok());
  ASSERT_TRUE(mm.mprotect(block, kHugePageSize, Prot::kRead).ok());
  ASSERT_TRUE(mm.mprotect(block, kHugePageSize, Prot::kReadWrite).ok());
  const std::uint64_t words[] = {7};
  ASSERT_TRUE(device->write(block + kPageSize, words).ok());
  for (const absl::StatusOr<PageEntry>& e : mm.lookup_range(block, kHugePages)) {
    EXPECT_TRUE(e->huge && e->writable && e->device == device.get());
  }
  EXPECT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  EXPECT_EQ(*mm.cpu_read(block + kPageSize), 7u);
  device->close();
}

TEST_F(HugePageTest, FreeingPartOfAHugePageSplitsItAndDropsOnlyThatPart) {
  const std::uint64_t block = map_block();
  for (std::uint64_t i = 0; i < kHugePages; ++i) {
    ASSERT_TRUE(mm_->cpu_write(block + i * kPageSize, i).ok());
  }
  recorder_->take();
  ASSERT_TRUE(mm_->madvise(block + 4 * kPageSize, 8 * kPageSize, Advice::kFree).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, block + kHugePageSize}}))
      << "one invalidation, over the whole huge page the free splits";
  EXPECT_EQ(huge_entries(block), 0u);
  EXPECT_EQ(*mm_->cpu_read(block + 3 * kPageSize), 3u);
  EXPECT_EQ(*mm_->cpu_read(block + 4 * kPageSize), 0u) << "a freed page reads zero";
  EXPECT_EQ(*mm_->cpu_read(block + 11 * kPageSize), 0u);
  EXPECT_EQ(*mm_->cpu_read(block + 12 * kPageSize), 12u);
}

TEST_F(HugePageTest, FreeingAWholeHugePageDropsItWholeAndKeepsDevicePages) {
  const int device = 0;
  const std::uint64_t block = map_block();
  const std::uint64_t on_device = block + kHugePageSize;  // small pages after the block
  ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 5).ok());
  ASSERT_TRUE(mm_->cpu_write(on_device, 6).ok());
  ASSERT_TRUE(
      mm_->migrate_to_device(on_device, kPageSize, &device, [](std::uint64_t, const PageEntry&) {})
          .ok());
  recorder_->take();
  ASSERT_TRUE(mm_->madvise(block, kHugePageSize + kPageSize, Advice::kFree).ok());
  EXPECT_EQ(recorder_->take(), (Calls{{Event::kClear, block, on_device + kPageSize}}));
  for (const PageEntry& e : entries(block)) EXPECT_FALSE(e.frame) << "the whole block is freed";
  EXPECT_EQ(mm_->lookup(on_device)->device, &device) << "a device page is not present: it stays";
  EXPECT_EQ(*mm_->cpu_read(block + kPageSize), 0u);
  EXPECT_EQ(huge_entries(block), kHugePages) << "the block faults in huge again";
  EXPECT_EQ(*mm_->cpu_read(on_device), 6u);
}

TEST_F(HugePageTest, FreeingMemoryThatIsNotAnonymousPrivateFailsAndDropsNothing) {
  const std::uint64_t block = map_block();
  const std::uint64_t shared = *mm_->mmap(kPageSize, Prot::kReadWrite, MapKind::kAnonShared);
  ASSERT_TRUE(mm_->cpu_write(block, 1).ok());
  ASSERT_TRUE(mm_->cpu_write(shared, 2).ok());
  recorder_->take();
  EXPECT_EQ(mm_->madvise(shared, kPageSize, Advice::kFree).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(recorder_->take(), Calls{});
  EXPECT_EQ(*mm_->cpu_read(shared), 2u);
  EXPECT_EQ(*mm_->cpu_read(block), 1u);
}

TEST_F(HugePageTest, MremapMovesAHugePageWholeOnlyToAnAlignedPlace) {
  for (const std::uint64_t offset : {std::uint64_t{0}, 4 * kPageSize}) {
    SCOPED_TRACE(offset);
    const std::uint64_t block = map_block();
    const std::uint64_t target = map_block() + offset;  // a second advised block
    ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 5).ok());
    recorder_->take();
    ASSERT_TRUE(mm_->mremap(block, kHugePageSize, target).ok());
    const std::vector<Recorder::Call> calls = recorder_->take();
    ASSERT_FALSE(calls.empty());
    EXPECT_EQ(calls.back(), (Recorder::Call{Event::kUnmap, block, block + kHugePageSize}));
    const bool split =
        std::find(calls.begin(), calls.end(),
                  Recorder::Call{Event::kClear, block, block + kHugePageSize}) != calls.end();
    EXPECT_EQ(split, offset != 0);
    EXPECT_EQ(mm_->lookup(target)->huge, offset == 0);
    EXPECT_EQ(*mm_->cpu_read(target + kPageSize), 5u);
  }
}

// Exclusive access faults an untouched advised block in first, which maps a huge page:
// that one splits too, before any entry becomes exclusive.
TEST_F(HugePageTest, ExclusiveAccessToAnUntouchedBlockHoldsSmallPages) {
  const int device = 0;
  const std::uint64_t block = map_block();
  ASSERT_TRUE(mm_->make_exclusive(block + kPageSize, kPageSize, &device,
                                  [](std::uint64_t, const PageEntry&) {})
                  .ok());
  EXPECT_EQ(huge_entries(block), 0u);
  EXPECT_EQ(mm_->lookup(block + kPageSize)->exclusive, &device);
  ASSERT_TRUE(mm_->cpu_write(block + kPageSize, 3).ok());
  EXPECT_EQ(mm_->lookup(block + kPageSize)->exclusive, nullptr);
  EXPECT_EQ(*mm_->cpu_read(block + kPageSize), 3u);
}

TEST_F(HugePageTest, MadviseRejectsBadRangesAndChangesNothing) {
  const std::uint64_t block = map_block(/*advise=*/false);
  EXPECT_EQ(mm_->madvise(block + 1, kPageSize, Advice::kHugePage).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(mm_->madvise(block, 0, Advice::kHugePage).code(), absl::StatusCode::kInvalidArgument);
  // The block and the guard page after the mapping: part of it is unmapped.
  EXPECT_EQ(mm_->madvise(block, 3 * kHugePageSize, Advice::kHugePage).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(mm_->cpu_write(block, 1).ok());
  EXPECT_EQ(huge_entries(block), 0u) << "a failed madvise() applied its hint";
}

TEST_F(HugePageTest, FaultsOfOneAbsentBlockAtOnceMapItOnceAndKeepEveryWrite) {
  for (int round = 0; round < 50; ++round) {
    const std::uint64_t block = map_block();
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        if (t % 2 == 0) {
          EXPECT_TRUE(mm_->cpu_write(block + t * kPageSize, 10 + t).ok());
        } else {
          EXPECT_TRUE(mm_->cpu_read(block + t * kPageSize).ok());
        }
      });
    }
    go.store(true);
    for (std::thread& t : threads) t.join();
    ASSERT_EQ(huge_entries(block), kHugePages) << "round " << round;
    EXPECT_EQ(*mm_->cpu_read(block), 10u) << "round " << round;
    EXPECT_EQ(*mm_->cpu_read(block + 2 * kPageSize), 12u) << "round " << round;
  }
}

}  // namespace
}  // namespace itn::hw
