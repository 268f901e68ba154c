// BM_Mirror_Fault: the dmirror fault path, MirrorDevice::range_fault() of one page
// (read_begin, page table walk, driver lock, read_retry, install), as faults per second.
// cpu_churn selects what a second thread does meanwhile:
//   0  nothing (solo);
//   1  mprotect()s another buffer of the same address space back and forth: invalidations
//      of pages the faults never touch, which still reach the device's one whole-space
//      notifier (as in lib/test_hmm.c), so faults in flight retry all the same;
//   2  mprotect()s the faulted buffer itself: invalidations that drop device entries and
//      make faults in flight retry (counter retries_per_fault; aborted_per_fault counts
//      faults that gave up after MirrorOptions::max_fault_attempts collisions).
// per_range selects the device's notifiers: 0 one over the whole space (dmirror), 1 one
// per 256-page chunk (MirrorOptions::notifier_chunk_pages), so that churn 1 reaches none.
// BM_Mirror_WriteOverFreshPages: one device write over `pages` pages just mapped, which
// the CPU only read first (read_first:1: each one the shared zero page, so every page's
// fault breaks copy-on-write and invalidates the device itself) or never touched
// (read_first:0: every page faults in fresh); time per page, which must not grow with
// the length.
// BM_Mirror_MigrateRoundTrip: the kernel's benchmark_thp_migration, one migration of
// `pages` written pages to the device and back, advised for huge pages (huge:1, so the
// aligned 2 MiB blocks move whole) or not (huge:0); time per page.
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "sync/check.h"

namespace itn::bench {
namespace {

constexpr std::uint64_t kPages = 256;
constexpr std::uint64_t kBytes = kPages * hw::kPageSize;

void BM_Mirror_Fault(benchmark::State& state) {
  const int churn = static_cast<int>(state.range(0));
  const bool per_range = state.range(1) != 0;
  Ref<hw::Process> process = make_ref<hw::Process>();
  hw::AddressSpace& mm = process->mm();
  Ref<hw::MirrorDevice> device =
      *hw::MirrorDevice::open(*process, {.notifier_chunk_pages = per_range ? kPages : 0});
  const std::uint64_t buf = *mm.mmap(kBytes, hw::Prot::kReadWrite, hw::MapKind::kAnonPrivate);
  const std::uint64_t other = *mm.mmap(kBytes, hw::Prot::kReadWrite, hw::MapKind::kAnonPrivate);
  for (std::uint64_t p = 0; p < kPages; ++p) {  // present and writable: faults only walk
    ITN_CHECK_OK(mm.cpu_write(buf + p * hw::kPageSize, p), "mirror_bench setup");
  }
  std::atomic<bool> stop{false};
  std::thread cpu([&] {
    const std::uint64_t target = churn == 2 ? buf : other;
    while (churn != 0 && !stop.load(std::memory_order_relaxed)) {
      ITN_CHECK_OK(mm.mprotect(target, kBytes, hw::Prot::kRead), "mprotect");
      ITN_CHECK_OK(mm.mprotect(target, kBytes, hw::Prot::kReadWrite), "mprotect");
    }
  });
  std::uint64_t i = 0, aborted = 0;
  for (auto _ : state) {
    const absl::Status s =
        device->range_fault(buf + (i++ % kPages) * hw::kPageSize, hw::kPageSize, /*write=*/false);
    if (absl::IsAborted(s)) ++aborted;
    ITN_CHECK(s.ok() || absl::IsAborted(s), "a read fault of mapped memory fails only by aborting");
  }
  stop.store(true);
  cpu.join();
  const hw::MirrorCounters c = device->counters();
  const double n = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["retries_per_fault"] = static_cast<double>(c.retries) / n;
  state.counters["aborted_per_fault"] = static_cast<double>(aborted) / n;
  device->close();
}

BENCHMARK(BM_Mirror_Fault)
    ->ArgNames({"cpu_churn", "per_range"})
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->UseRealTime();

void BM_Mirror_WriteOverFreshPages(benchmark::State& state) {
  const auto pages = static_cast<std::uint64_t>(state.range(0));
  const bool read_first = state.range(1) != 0;
  Ref<hw::Process> process = make_ref<hw::Process>();
  hw::AddressSpace& mm = process->mm();
  Ref<hw::MirrorDevice> device = *hw::MirrorDevice::open(*process);
  const std::vector<std::uint64_t> words(pages, 1);
  std::uint64_t retries = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const std::uint64_t buf =
        *mm.mmap(pages * hw::kPageSize, hw::Prot::kReadWrite, hw::MapKind::kAnonPrivate);
    for (std::uint64_t p = 0; read_first && p < pages; ++p) {
      ITN_CHECK_OK(mm.cpu_read(buf + p * hw::kPageSize), "mirror_bench setup");
    }
    const std::uint64_t before = device->counters().retries;
    state.ResumeTiming();
    ITN_CHECK_OK(device->write(buf, words), "a device write of mapped memory");
    state.PauseTiming();
    retries += device->counters().retries - before;
    ITN_CHECK_OK(mm.munmap(buf, pages * hw::kPageSize), "mirror_bench teardown");
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pages));
  state.counters["retries_per_write"] =
      static_cast<double>(retries) / static_cast<double>(state.iterations());
  device->close();
}

BENCHMARK(BM_Mirror_WriteOverFreshPages)
    ->ArgNames({"pages", "read_first"})
    ->ArgsProduct({{64, 256, 1024, 4096}, {0, 1}})
    ->UseRealTime();

void BM_Mirror_MigrateRoundTrip(benchmark::State& state) {
  const auto pages = static_cast<std::uint64_t>(state.range(0));
  const bool huge = state.range(1) != 0;
  Ref<hw::Process> process = make_ref<hw::Process>();
  hw::AddressSpace& mm = process->mm();
  Ref<hw::MirrorDevice> device = *hw::MirrorDevice::open(*process);
  const std::uint64_t bytes = pages * hw::kPageSize;
  // A huge page more than the buffer, so that it can start at a huge page boundary.
  const std::uint64_t mapped =
      *mm.mmap(bytes + hw::kHugePageSize, hw::Prot::kReadWrite, hw::MapKind::kAnonPrivate);
  const std::uint64_t buf = hw::huge_page_of(mapped + hw::kHugePageSize - 1);
  ITN_CHECK_OK(mm.madvise(buf, bytes, huge ? hw::Advice::kHugePage : hw::Advice::kNoHugePage),
               "mirror_bench setup");
  for (std::uint64_t p = 0; p < pages; ++p) {
    ITN_CHECK_OK(mm.cpu_write(buf + p * hw::kPageSize, p), "mirror_bench setup");
  }
  for (auto _ : state) {
    ITN_CHECK_OK(device->migrate_to_device(buf, bytes), "a migration of written memory");
    ITN_CHECK_OK(device->migrate_to_system(buf, bytes), "a migration of written memory");
  }
  ITN_CHECK(mm.lookup(buf)->huge == (huge && pages * hw::kPageSize >= hw::kHugePageSize),
            "huge:1 moves huge pages, huge:0 small ones");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pages));
  device->close();
}

BENCHMARK(BM_Mirror_MigrateRoundTrip)
    ->ArgNames({"pages", "huge"})
    ->ArgsProduct({{128, 512, 1024}, {0, 1}})
    ->UseRealTime();

}  // namespace
}  // namespace itn::bench

BENCHMARK_MAIN();
