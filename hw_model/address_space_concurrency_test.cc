// Faults, device walks, pins and frees hold the mmap lock for reading only: their
// invalidations run at once, two faults of one page make one change between them, and a
// fault whose entry a free drops meanwhile faults the page afresh.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#include "hw_model/address_space.h"
#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "sync/test_util.h"

namespace itn::hw {
namespace {

using itn::testing::wait_until;

// Holds the first invalidation of `page` in its callback until release(); counts the
// invalidations that reach it.
class HoldingNotifier : public IntervalNotifier {
 public:
  explicit HoldingNotifier(std::uint64_t page) : page_(page) {}
  bool invalidate(const Range& r, std::uint64_t seq) override {
    set_seq(seq);
    calls.fetch_add(1);
    if (r.start <= page_ && page_ < r.end && !held_once_.exchange(true)) {
      holding.store(true);
      wait_until([&] { return released_.load(); });
    }
    return true;
  }
  void release() { released_.store(true); }
  std::atomic<bool> holding{false};
  std::atomic<int> calls{0};

 private:
  const std::uint64_t page_;
  std::atomic<bool> held_once_{false}, released_{false};
};

// True once `pred` holds; false if it still does not after a generous deadline (a fault
// serialised behind another would otherwise hang the test instead of failing it).
template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class AddressSpaceConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::uint64_t> a =
        mm_->mmap(2 * kPageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
    ASSERT_TRUE(a.ok());
    a_ = *a;
    b_ = a_ + kPageSize;
    ASSERT_EQ(*mm_->cpu_read(a_), 0u);  // both on the zero page: a write breaks CoW
    ASSERT_EQ(*mm_->cpu_read(b_), 0u);
    holder_ = make_ref<HoldingNotifier>(a_);
    ASSERT_TRUE(mm_->notifiers().insert(holder_, Interval::whole_space(), nullptr).ok());
  }
  void TearDown() override {
    holder_->release();
    ASSERT_TRUE(mm_->notifiers().remove(*holder_).ok());
  }
  // Starts a CPU write of `a_` whose copy-on-write invalidation stays in its callback.
  std::thread held_write(std::uint64_t value) {
    std::thread t([this, value] { EXPECT_TRUE(mm_->cpu_write(a_, value).ok()); });
    wait_until([&] { return holder_->holding.load(); });
    return t;
  }

  Ref<Process> process_ = make_ref<Process>();
  Ref<AddressSpace> mm_ = process_->mm_ref();
  Ref<HoldingNotifier> holder_;
  std::uint64_t a_ = 0, b_ = 0;
};

TEST_F(AddressSpaceConcurrencyTest, FaultsOfTwoPagesInvalidateAtOnce) {
  std::thread first = held_write(1);
  // The second fault's whole invalidation runs while the first one's callback lasts.
  std::atomic<bool> second_done{false};
  std::thread second([&] {
    EXPECT_TRUE(mm_->cpu_write(b_, 2).ok());
    second_done.store(true);
  });
  EXPECT_TRUE(eventually([&] { return second_done.load(); }))
      << "a CPU fault waited for another page's invalidation to end";
  EXPECT_TRUE(holder_->holding.load());
  holder_->release();
  first.join();
  second.join();
  EXPECT_EQ(*mm_->cpu_read(a_), 1u);
  EXPECT_EQ(*mm_->cpu_read(b_), 2u);
}

// Device walks and pins hold the mmap lock for reading, as CPU faults do: their own
// invalidations (a copy-on-write break here) run while a CPU fault's lasts. The walk's
// retry then waits in read_begin() until no invalidation is in progress (its notifier
// was called during this run of them), as in the kernel. (The device has a notifier per
// page, inserted before, so that the CPU fault's invalidation does not reach it.)
TEST_F(AddressSpaceConcurrencyTest, ADeviceWalkInvalidatesWhileACpuFaultDoes) {
  absl::StatusOr<Ref<MirrorDevice>> device =
      MirrorDevice::open(*process_, {.notifier_chunk_pages = 1});
  ASSERT_TRUE(device.ok());
  ASSERT_TRUE((*device)->read(b_, 1).ok());  // maps the zero page: a write must copy it
  std::thread first = held_write(1);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    EXPECT_TRUE((*device)->write(b_, std::vector<std::uint64_t>{2}).ok());
    written.store(true);
  });
  EXPECT_TRUE(eventually([&] {
    absl::StatusOr<PageEntry> e = mm_->lookup(b_);
    return e.ok() && e->writable && !e->zero_page;
  })) << "the device's copy-on-write break waited for another page's invalidation to end";
  EXPECT_TRUE(holder_->holding.load());
  EXPECT_FALSE(written.load()) << "the walk installed while an invalidation that reached it "
                                  "was still running";
  holder_->release();
  first.join();
  writer.join();
  EXPECT_EQ(*mm_->cpu_read(a_), 1u);
  EXPECT_EQ(*mm_->cpu_read(b_), 2u);
  (*device)->close();
}

TEST_F(AddressSpaceConcurrencyTest, PinsRunWhileACpuFaultsInvalidationLasts) {
  const int device = 0;
  ASSERT_TRUE(mm_->migrate_to_device(
                     b_, kPageSize, &device, [](std::uint64_t, const PageEntry&) {},
                     DeviceMemory::kCoherent)
                  .ok());
  std::thread first = held_write(1);
  for (AddressSpace::Pin pin : {AddressSpace::Pin::kShortTerm, AddressSpace::Pin::kLongTerm}) {
    std::atomic<bool> pinned{false};
    std::thread pinner([&] {
      absl::StatusOr<std::vector<Ref<Frame>>> frames =
          mm_->pin_user_pages(b_, kPageSize, /*write=*/true, pin);
      EXPECT_TRUE(frames.ok()) << frames.status();
      pinned.store(true);
    });
    const bool ran = eventually([&] { return pinned.load(); });
    EXPECT_TRUE(ran) << "a pin waited for another page's invalidation to end";
    if (!ran) holder_->release();  // else the pin never ends
    pinner.join();
  }
  EXPECT_EQ(mm_->lookup(b_)->device, nullptr) << "the long-term pin brought the page back";
  holder_->release();
  first.join();
}

// madvise(kFree) holds the mmap lock for reading, as the kernel's MADV_FREE: it frees
// another page while a CPU fault's invalidation lasts.
TEST_F(AddressSpaceConcurrencyTest, AFreeRunsWhileACpuFaultsInvalidationLasts) {
  ASSERT_TRUE(mm_->cpu_write(b_, 2).ok());
  std::thread first = held_write(1);
  std::atomic<bool> freed{false};
  std::thread freer([&] {
    EXPECT_TRUE(mm_->madvise(b_, kPageSize, Advice::kFree).ok());
    freed.store(true);
  });
  EXPECT_TRUE(eventually([&] { return freed.load(); }))
      << "a free waited for another page's invalidation to end";
  EXPECT_TRUE(holder_->holding.load());
  holder_->release();
  first.join();
  freer.join();
  EXPECT_EQ(*mm_->cpu_read(a_), 1u);
  EXPECT_EQ(*mm_->cpu_read(b_), 0u) << "a freed page reads zero";
}

// A fault keeps its entry across its invalidation (to make the change after it); a free
// drops that entry meanwhile. The fault must find the page absent and map a fresh one
// for its write, not change the entry the free erased.
TEST_F(AddressSpaceConcurrencyTest, AFaultWhoseEntryIsFreedDuringItsInvalidationStartsAfresh) {
  std::thread first = held_write(1);  // a_'s copy-on-write break, held
  ASSERT_TRUE(mm_->madvise(a_, kPageSize, Advice::kFree).ok());
  EXPECT_FALSE(mm_->lookup(a_)->frame) << "the free dropped the zero page's entry";
  holder_->release();
  first.join();
  const PageEntry entry = *mm_->lookup(a_);
  EXPECT_TRUE(entry.writable && !entry.zero_page);
  EXPECT_EQ(*mm_->cpu_read(a_), 1u) << "the write went into the entry the free erased";
}

// A free takes effect at one instant, a huge page its range cuts included. Here, while
// the free is under way, a fault maps the block it cuts huge, then a later write fills a
// page past the block. The free comes after both (it drops both pages) or before both
// (it drops neither); dropping only the later write's page fits no order.
TEST_F(AddressSpaceConcurrencyTest, AFreeThatCutsAHugePageTakesEffectAtOneInstant) {
  const std::uint64_t addr = *mm_->mmap(3 * kHugePageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  const std::uint64_t block = huge_page_of(addr + kHugePageSize - 1);  // aligned, inside
  ASSERT_TRUE(mm_->madvise(block, kHugePageSize, Advice::kHugePage).ok());
  const std::uint64_t past = block + kHugePageSize;  // small pages: not advised
  ASSERT_TRUE(mm_->cpu_write(past, 1).ok());
  Ref<HoldingNotifier> free_holder = make_ref<HoldingNotifier>(past);
  ASSERT_TRUE(mm_->notifiers().insert(free_holder, Interval::whole_space(), nullptr).ok());
  std::thread freer(
      [&] { EXPECT_TRUE(mm_->madvise(block + kPageSize, kHugePageSize, Advice::kFree).ok()); });
  wait_until([&] { return free_holder->holding.load(); });  // in the free's invalidation
  ASSERT_TRUE(mm_->cpu_write(block + 2 * kPageSize, 9).ok());
  EXPECT_TRUE(mm_->lookup(block)->huge) << "the empty advised block faulted in huge";
  ASSERT_TRUE(mm_->cpu_write(past, 7).ok());
  free_holder->release();
  freer.join();
  ASSERT_TRUE(mm_->notifiers().remove(*free_holder).ok());
  std::uint64_t huge = 0;
  for (const absl::StatusOr<PageEntry>& e : mm_->lookup_range(block, kHugePageSize / kPageSize)) {
    huge += e.ok() && e->huge;
  }
  EXPECT_TRUE(huge == 0 || huge == kHugePageSize / kPageSize) << huge << " huge entries";
  const std::uint64_t in_block = *mm_->cpu_read(block + 2 * kPageSize);
  const std::uint64_t after = *mm_->cpu_read(past);
  EXPECT_TRUE((in_block == 0 && after == 0) || (in_block == 9 && after == 7))
      << "the free kept the block's page (" << in_block << ") but dropped the later write ("
      << after << ")";
}

TEST_F(AddressSpaceConcurrencyTest, TwoFaultsOfOnePageMakeOneCopy) {
  std::thread first = held_write(1);
  // The second write breaks copy-on-write itself while the first is held ...
  ASSERT_TRUE(eventually([&] { return mm_->cpu_write(a_, 2).ok(); }));
  absl::StatusOr<PageEntry> copy = mm_->lookup(a_);
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(copy->writable);
  // ... so the first, once its invalidation ends, finds the page writable and writes into
  // that copy instead of copying it again.
  holder_->release();
  first.join();
  absl::StatusOr<PageEntry> after = mm_->lookup(a_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->frame.get(), copy->frame.get()) << "the page was copied twice";
  EXPECT_EQ(*mm_->cpu_read(a_), 1u);    // the first write landed last
  EXPECT_EQ(holder_->calls.load(), 2);  // one kClear each; no third
}

TEST_F(AddressSpaceConcurrencyTest, ADeviceFaultWaitsUntilTheCpuFaultsInvalidationEnds) {
  absl::StatusOr<Ref<MirrorDevice>> device = MirrorDevice::open(*process_);
  ASSERT_TRUE(device.ok());
  std::thread first = held_write(7);
  // Until the CPU fault's invalidation ends, the device cannot map the page: its fault
  // waits in read_begin() (it would otherwise map the zero page about to be replaced).
  const std::uint64_t waits = mm_->notifiers().stats().read_begin_waits;
  std::atomic<bool> read_done{false};
  std::thread reader([&] {
    absl::StatusOr<std::vector<std::uint64_t>> words = (*device)->read(a_, 1);
    ASSERT_TRUE(words.ok());
    EXPECT_EQ((*words)[0], 7u);
    read_done.store(true);
  });
  wait_until([&] { return mm_->notifiers().stats().read_begin_waits > waits; });
  EXPECT_FALSE(read_done.load());
  holder_->release();
  first.join();
  reader.join();
  EXPECT_TRUE(read_done.load());
  (*device)->close();
}

}  // namespace
}  // namespace itn::hw
