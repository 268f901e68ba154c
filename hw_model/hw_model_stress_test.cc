// Real-thread stress of the hardware model (run under ASan and TSan in CI): CPU-side page
// table changes against device faults, reads, writes and migrations on two devices, and
// device reads racing munmap. Migrations take all or nothing, or what they can. Values
// carry the page they were written to, so a device that read a stale or foreign frame is
// caught by content; at quiescent points both devices must be coherent (I17) and agree
// with the CPU (I19).
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
#include "sync/test_util.h"

namespace itn::hw {
namespace {

constexpr std::uint64_t kPage = kPageSize;
using testing::belongs_to;
using testing::tagged;

TEST(HwModelStressTest, CpuChangesAgainstDeviceFaultsStayCoherent) {
  constexpr std::uint64_t kPages = 16;
  constexpr int kRounds = 8;
  constexpr int kOpsPerThread = 2000;
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  // One dmirror-like device (private memory, one whole-space notifier) and one with
  // coherent memory and a notifier per 4-page chunk.
  Ref<MirrorDevice> devices[2] = {*MirrorDevice::open(*process),
                                  *MirrorDevice::open(*process, {.memory = DeviceMemory::kCoherent,
                                                                 .notifier_chunk_pages = 4})};
  const std::uint64_t buf = *mm.mmap(kPages * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  std::atomic<int> wrong_values{0}, device_ops_ok{0}, wrong_outcomes{0}, skipped_pages{0};

  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::thread> threads;
    threads.emplace_back([&, round] {  // the CPU: writes, protection flips, fork
      std::mt19937_64 rng(round);
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::uint64_t p = rng() % kPages;
        switch (rng() % 6) {
          case 0:
            ASSERT_TRUE(mm.mprotect(buf, kPages * kPage, Prot::kRead).ok());
            ASSERT_TRUE(mm.mprotect(buf, kPages * kPage, Prot::kReadWrite).ok());
            break;
          case 1: {
            Ref<Process> child = *process->fork();
            child->exit();
            break;
          }
          case 2: {
            absl::StatusOr<std::uint64_t> v = mm.cpu_read(buf + p * kPage);
            ASSERT_TRUE(v.ok()) << v.status();
            if (!belongs_to(*v, p)) wrong_values.fetch_add(1);
            break;
          }
          case 3:
            // The OOM reaper, now and then: non-blockable invalidations a device that
            // holds its lock refuses (a refused VMA keeps its pages).
            if (rng() % 16 == 0) {
              ASSERT_TRUE(mm.reap().ok());
            }
            break;
          default:
            // Fails only if a device flipped nothing: protections are restored at once.
            (void)mm.cpu_write(buf + p * kPage, tagged(p, rng()));
        }
      }
    });
    for (int d = 0; d < 2; ++d) {
      threads.emplace_back([&, d, round] {
        MirrorDevice& dev = *devices[d];
        std::mt19937_64 rng(1000 * round + d);
        for (int i = 0; i < kOpsPerThread; ++i) {
          const std::uint64_t p = rng() % (kPages - 1);
          const std::uint64_t addr = buf + p * kPage;
          absl::Status s;
          const std::uint64_t choice = rng() % 6;
          switch (choice) {
            case 0: {
              absl::StatusOr<std::vector<std::uint64_t>> w = dev.read(addr, 2);
              s = w.status();
              if (w.ok() && (!belongs_to((*w)[0], p) || !belongs_to((*w)[1], p + 1))) {
                wrong_values.fetch_add(1);
              }
              break;
            }
            case 1:
              s = dev.write(addr,
                            std::vector<std::uint64_t>{tagged(p, rng()), tagged(p + 1, rng())});
              break;
            case 2:
            case 3:
            case 4: {
              const Moves moves = rng() % 2 == 0 ? Moves::kAllOrNothing : Moves::kWhatItCan;
              const std::uint64_t op = choice - 2;
              absl::StatusOr<MirrorDevice::Outcomes> got =
                  op == 0   ? dev.migrate_to_device(addr, 2 * kPage, moves)
                  : op == 1 ? dev.migrate_to_system(addr, 2 * kPage, moves)
                            : dev.make_exclusive(addr, kPage, moves);
              s = got.status();
              for (PageOutcome o : got.ok() ? *got : MirrorDevice::Outcomes{}) {
                // All anonymous private memory: only the other device's pages are skipped,
                // and only on the way in.
                if (o == PageOutcome::kOnAnotherDevice && op == 0) skipped_pages.fetch_add(1);
                if (o == PageOutcome::kNotAnonymous ||
                    (o == PageOutcome::kOnAnotherDevice && op != 0)) {
                  wrong_outcomes.fetch_add(1);
                }
              }
              break;
            }
            default:
              s = dev.range_fault(addr, 2 * kPage, rng() % 2 == 0);
          }
          if (s.ok()) device_ops_ok.fetch_add(1);
          ASSERT_TRUE(testing::expected_outcome(s));
        }
      });
    }
    for (std::thread& t : threads) t.join();

    // Quiescent: both devices coherent, and device reads agree with the CPU (I17, I19).
    for (Ref<MirrorDevice>& dev : devices) {
      ASSERT_TRUE(check_coherence(*dev).ok()) << check_coherence(*dev);
      ASSERT_TRUE(dev->migrate_to_system(buf, kPages * kPage).ok());
    }
    for (std::uint64_t p = 0; p < kPages; ++p) {
      const std::uint64_t cpu = *mm.cpu_read(buf + p * kPage);
      for (Ref<MirrorDevice>& dev : devices) {
        EXPECT_EQ(dev->read(buf + p * kPage, 1)->at(0), cpu) << "page " << p;
      }
    }
  }
  EXPECT_EQ(wrong_values.load(), 0) << "a device or the CPU saw another page's data";
  EXPECT_EQ(wrong_outcomes.load(), 0) << "a migration skipped a page it could move";
  EXPECT_GT(skipped_pages.load(), 0) << "no migration ever met the other device's page";
  EXPECT_GT(device_ops_ok.load(), kRounds * kOpsPerThread / 4) << "the devices barely ran";
  RecordProperty("device_ops_ok", device_ops_ok.load());
}

TEST(HwModelStressTest, DeviceReadRacingMunmapNeverReturnsStaleData) {
  constexpr std::uint64_t kPages = 8;
  Ref<Process> process = make_ref<Process>();
  AddressSpace& mm = process->mm();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
  std::atomic<int> reads_before{0};
  int failures_after = 0;
  for (int round = 0; round < 100; ++round) {
    const std::uint64_t buf = *mm.mmap(kPages * kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
    std::vector<std::uint64_t> expected;
    for (std::uint64_t p = 0; p < kPages; ++p) expected.push_back(tagged(p, round + 1));
    ASSERT_TRUE(mm.cpu_write(buf, expected[0]).ok());
    for (std::uint64_t p = 1; p < kPages; ++p) {
      ASSERT_TRUE(mm.cpu_write(buf + p * kPage, expected[p]).ok());
    }
    std::atomic<bool> unmapped{false};
    std::thread reader([&] {
      for (;;) {
        const bool after = unmapped.load();  // the read starts after munmap returned
        absl::StatusOr<std::vector<std::uint64_t>> words = device->read(buf, kPages);
        if (words.ok()) {
          EXPECT_FALSE(after) << "a read that began after munmap succeeded (stale)";
          EXPECT_EQ(*words, expected);
          ++reads_before;
        } else {
          EXPECT_EQ(words.status().code(), absl::StatusCode::kNotFound) << words.status();
          ++failures_after;
          return;
        }
      }
    });
    const int reads_so_far = reads_before.load();
    itn::testing::wait_until([&] { return reads_before.load() > reads_so_far; });  // racing now
    ASSERT_TRUE(mm.munmap(buf + kPages / 2 * kPage, kPages / 2 * kPage).ok());
    unmapped.store(true);
    reader.join();
  }
  EXPECT_EQ(failures_after, 100);
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
  RecordProperty("reads_before_munmap", reads_before.load());
}

TEST(MirrorDeviceStressTest, DeviceWritesRacingItsOwnMigrationsAreNeverLost) {
  Ref<Process> process = make_ref<Process>();
  Ref<MirrorDevice> device = *MirrorDevice::open(*process);
  const std::uint64_t page = *process->mm().mmap(kPage, Prot::kReadWrite, MapKind::kAnonPrivate);
  std::atomic<bool> stop{false};
  std::atomic<int> migrations{0};
  std::thread migrator([&] {
    while (!stop.load()) {
      ASSERT_TRUE(device->migrate_to_device(page, kPage).ok());
      ASSERT_TRUE(device->migrate_to_system(page, kPage).ok());
      migrations.fetch_add(1);
    }
  });
  int lost = 0;
  for (std::uint64_t i = 1; i <= 20000 || migrations.load() < 100; ++i) {
    const absl::Status written = device->write(page, std::vector<std::uint64_t>{i});
    ASSERT_TRUE(written.ok()) << written;
    if ((*device->read(page, 1))[0] != i) ++lost;
  }
  stop.store(true);
  migrator.join();
  EXPECT_EQ(lost, 0) << "a write landed in a frame the migration had already copied";
  ASSERT_TRUE(check_coherence(*device).ok()) << check_coherence(*device);
}

}  // namespace
}  // namespace itn::hw
