// The testing kit (docs/TESTING_KIT.md) pointed at ToyGpu, a device that is not itn's own:
//   - RapidCheck command sequences, each run on the real machine and on the serial memory
//     model, comparing every status and word, with check_coherence() after each command;
//   - PCT exploration of the device's fault path against CPU frees and writes;
//   - the flawed variant (read_retry() before the lock) caught by that exploration, its
//     schedule printed and replayed to the same failure.
#include "examples/toy_gpu/toy_gpu.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidcheck/gtest.h"

#include "hw_model/process.h"
#include "rapidcheck.h"
#include "sync/sched_hooks.h"
#include "testing/coherence.h"
#include "testing/memory_model.h"
#include "testing/sched/explore.h"
#include "testing/sched/schedule.h"

namespace toy {
namespace {

using absl::StatusCode;
using itn::hw::Advice;
using itn::hw::kPageSize;
using itn::hw::MapKind;
using itn::hw::Prot;

// What check_coherence() needs, kept in the test so the device does not depend on the kit.
class CoherenceView : public itn::hw::MirroringDevice {
 public:
  explicit CoherenceView(const ToyGpu& gpu) : gpu_(gpu) {}
  const itn::hw::AddressSpace& mirrored_mm() const override { return gpu_.mm(); }
  std::map<std::uint64_t, itn::hw::DeviceEntry> translations() const override {
    return gpu_.entries();
  }

 private:
  const ToyGpu& gpu_;
};

absl::Status check_coherence(const ToyGpu& gpu) {
  return itn::hw::check_coherence(CoherenceView(gpu));
}

TEST(ToyGpuTest, BadRangesAreRefusedAndMapNothing) {
  itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
  ToyGpu gpu(process->mm_ref());
  const absl::StatusOr<std::uint64_t> addr =
      process->mm().mmap(4 * kPageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(addr.ok());
  EXPECT_EQ(gpu.read(*addr + 8, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu.read(*addr, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu.write(*addr, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu.read(~std::uint64_t{0} - kPageSize + 1, 2).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(gpu.entries().empty());
}

TEST(ToyGpuTest, WritesReachTheCpuAndInvalidationsUnmap) {
  itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
  itn::hw::AddressSpace& mm = process->mm();
  ToyGpu gpu(process->mm_ref());
  const std::uint64_t pages = ToyGpu::kChunkPages + 2;  // two chunks
  const absl::StatusOr<std::uint64_t> addr =
      mm.mmap(pages * kPageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(addr.ok());
  const std::vector<std::uint64_t> words(pages, 5);
  ASSERT_TRUE(gpu.write(*addr, words).ok());
  EXPECT_EQ(gpu.entries().size(), pages);
  EXPECT_TRUE(check_coherence(gpu).ok());
  const std::uint64_t last = *addr + (pages - 1) * kPageSize;
  EXPECT_EQ(*mm.cpu_read(last), 5u);
  // A free in the second chunk drops exactly its page; the first chunk keeps its slots.
  ASSERT_TRUE(mm.madvise(last, kPageSize, Advice::kFree).ok());
  EXPECT_EQ(gpu.entries().size(), pages - 1);
  EXPECT_TRUE(check_coherence(gpu).ok());
  EXPECT_EQ(*gpu.read(last, 1), std::vector<std::uint64_t>{0});
  // A fork write-protects the CPU entries, so the device's writable slots must go.
  const absl::StatusOr<itn::Ref<itn::hw::Process>> child = process->fork();
  ASSERT_TRUE(child.ok());
  EXPECT_TRUE(check_coherence(gpu).ok());
  ASSERT_TRUE(gpu.write(*addr, {9}).ok());
  EXPECT_EQ(*mm.cpu_read(*addr), 9u);
  EXPECT_EQ(*(*child)->mm().cpu_read(*addr), 5u);
  EXPECT_TRUE(check_coherence(gpu).ok());
}

TEST(ToyGpuTest, AccessesFailAfterCloseAndAfterTheProcessExits) {
  itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
  const absl::StatusOr<std::uint64_t> addr =
      process->mm().mmap(kPageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  ASSERT_TRUE(addr.ok());
  ToyGpu closed(process->mm_ref());
  ToyGpu open(process->mm_ref());
  ASSERT_TRUE(closed.write(*addr, {1}).ok());
  ASSERT_TRUE(open.write(*addr, {2}).ok());
  closed.close();
  EXPECT_TRUE(closed.entries().empty());
  EXPECT_EQ(closed.read(*addr, 1).status().code(), StatusCode::kFailedPrecondition);
  process->exit();
  EXPECT_TRUE(open.entries().empty());  // the exit's invalidation dropped them
  EXPECT_EQ(open.read(*addr, 1).status().code(), StatusCode::kFailedPrecondition);
}

// One command of a sequence, on the device, the CPU or the address space, run on both.
class Machine {
 public:
  Machine() : process_(itn::make_ref<itn::hw::Process>()), gpu_(process_->mm_ref()), model_(0) {
    model_.new_process();
    model_.devices.push_back(itn::models::MDevice{.process = kProc});
  }
  ~Machine() { gpu_.close(); }

  void step() {
    const int kind = history().empty() ? 0 : *rc::gen::inRange(0, 9);
    if (kind == 0) return mmap();
    const auto [start, length] = *rc::gen::elementOf(history());
    const std::uint64_t first = *rc::gen::inRange<std::uint64_t>(0, length);
    const std::uint64_t addr = start + first * kPageSize;
    const std::uint64_t pages = *rc::gen::inRange<std::uint64_t>(1, length - first + 2);
    switch (kind) {
      case 1:
        return munmap(addr, pages);
      case 2:
        return mprotect(addr, pages, *rc::gen::element(Prot::kNone, Prot::kRead, Prot::kReadWrite));
      case 3:
        return free(addr, pages);
      case 4:
        return cpu(addr, *rc::gen::arbitrary<bool>());
      case 5:
        return fork();
      case 6:
        return gpu_read(addr, pages);
      default:
        return gpu_write(addr, pages);
    }
  }

  // Every page ever mapped reads the model's word from the CPU (or fails as predicted).
  void check_every_page() {
    for (const auto& [start, length] : history()) {
      for (std::uint64_t i = 0; i <= length; ++i) cpu(start + i * kPageSize, /*write=*/false);
    }
  }

 private:
  static constexpr int kProc = 0;  // the model's process
  static constexpr int kGpu = 0;   // the model's device

  const std::vector<std::pair<std::uint64_t, std::uint64_t>>& history() const {
    return model_.procs[kProc].history;
  }
  itn::hw::AddressSpace& mm() { return process_->mm(); }

  void expect_code(StatusCode predicted, const absl::Status& real, const std::string& what) {
    RC_LOG() << what << " -> " << real << "\n";
    RC_ASSERT(real.code() == predicted);
    const absl::Status coherent = check_coherence(gpu_);
    if (!coherent.ok()) RC_FAIL(std::string(coherent.message()));
  }

  void mmap() {
    const std::uint64_t pages = *rc::gen::inRange<std::uint64_t>(1, 2 * ToyGpu::kChunkPages + 3);
    const MapKind kind = *rc::gen::element(MapKind::kAnonPrivate, MapKind::kAnonShared);
    const Prot prot = *rc::gen::element(Prot::kRead, Prot::kReadWrite);
    std::uint64_t predicted = 0;
    const StatusCode code = model_.mmap(kProc, pages, prot, kind, -1, 0, &predicted);
    const absl::StatusOr<std::uint64_t> real = mm().mmap(pages * kPageSize, prot, kind);
    expect_code(code, real.status(), absl::StrCat("mmap ", pages, " pages"));
    if (real.ok()) RC_ASSERT(*real == predicted);
  }
  void munmap(std::uint64_t addr, std::uint64_t pages) {
    expect_code(model_.munmap(kProc, addr, pages * kPageSize), mm().munmap(addr, pages * kPageSize),
                absl::StrCat("munmap ", addr, " +", pages));
  }
  void mprotect(std::uint64_t addr, std::uint64_t pages, Prot prot) {
    expect_code(model_.mprotect(kProc, addr, pages * kPageSize, prot),
                mm().mprotect(addr, pages * kPageSize, prot),
                absl::StrCat("mprotect ", addr, " +", pages, " to ", static_cast<int>(prot)));
  }
  void free(std::uint64_t addr, std::uint64_t pages) {
    expect_code(model_.madvise(kProc, addr, pages * kPageSize, Advice::kFree),
                mm().madvise(addr, pages * kPageSize, Advice::kFree),
                absl::StrCat("madvise(kFree) ", addr, " +", pages));
  }
  void cpu(std::uint64_t addr, bool write) {
    const std::uint64_t value = ++next_word_;
    std::uint64_t predicted = 0;
    const StatusCode code = model_.cpu_access(kProc, addr, write, value, &predicted);
    if (write) {
      return expect_code(code, mm().cpu_write(addr, value),
                         absl::StrCat("cpu_write ", addr, " = ", value));
    }
    const absl::StatusOr<std::uint64_t> real = mm().cpu_read(addr);
    expect_code(code, real.status(), absl::StrCat("cpu_read ", addr));
    if (real.ok()) RC_ASSERT(*real == predicted);
  }
  void fork() {
    const StatusCode code = model_.fork(kProc);
    absl::StatusOr<itn::Ref<itn::hw::Process>> child = process_->fork();
    expect_code(code, child.status(), "fork");
    if (child.ok()) children_.push_back(*std::move(child));
  }
  void gpu_read(std::uint64_t addr, std::uint64_t pages) {
    const StatusCode code = model_.device_access(kGpu, addr, pages, /*write=*/false);
    const absl::StatusOr<std::vector<std::uint64_t>> real = gpu_.read(addr, pages);
    expect_code(code, real.status(), absl::StrCat("gpu read ", addr, " +", pages));
    if (!real.ok()) return;
    for (std::uint64_t i = 0; i < pages; ++i) {
      RC_ASSERT((*real)[i] == model_.word(kProc, addr + i * kPageSize));
    }
  }
  void gpu_write(std::uint64_t addr, std::uint64_t pages) {
    std::vector<std::uint64_t> words;
    for (std::uint64_t i = 0; i < pages; ++i) words.push_back(++next_word_);
    const StatusCode code = model_.device_access(kGpu, addr, pages, /*write=*/true, words);
    expect_code(code, gpu_.write(addr, words),
                absl::StrCat("gpu write ", addr, " +", pages, " from ", words[0]));
  }

  itn::Ref<itn::hw::Process> process_;
  std::vector<itn::Ref<itn::hw::Process>> children_;
  ToyGpu gpu_;
  itn::models::MemoryModel model_;
  std::uint64_t next_word_ = 0;
};

RC_GTEST_PROP(ToyGpuProperty, CommandSequencesMatchTheSerialModel, ()) {
  Machine machine;
  const int steps = *rc::gen::inRange(1, 60);
  for (int i = 0; i < steps; ++i) machine.step();
  machine.check_every_page();
}

// One execution: the device writes 2 to two pages while the CPU frees the second and,
// if `cpu_writes`, writes 3 to the first. Afterwards the device must be coherent and
// memory must hold an outcome of some order of the two: the first page 2 (or 3 if the
// CPU wrote it), the second 2 or 0 (freed after or before the device's write), never a
// write lost or a value from before.
absl::Status gpu_write_against_free(itn::sched::Execution& ex, ToyGpu::Flaw flaw,
                                    bool cpu_writes = true) {
  itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
  itn::hw::AddressSpace& mm = process->mm();
  const absl::StatusOr<std::uint64_t> addr =
      mm.mmap(2 * kPageSize, Prot::kReadWrite, MapKind::kAnonPrivate);
  if (!addr.ok()) return addr.status();
  for (std::uint64_t page : {*addr, *addr + kPageSize}) {
    if (absl::Status s = mm.cpu_write(page, 1); !s.ok()) return s;
  }
  ToyGpu gpu(process->mm_ref(), flaw);
  absl::Status device, free, cpu;
  ex.run({[&] {
            device = gpu.write(*addr, {2, 2});
          },
          [&] {
            free = mm.madvise(*addr + kPageSize, kPageSize, Advice::kFree);
            if (cpu_writes) cpu = mm.cpu_write(*addr, 3);
          }});
  for (const absl::Status& s : {device, free, cpu}) {
    if (!s.ok()) return s;
  }
  if (absl::Status s = check_coherence(gpu); !s.ok()) return s;
  const absl::StatusOr<std::uint64_t> first = mm.cpu_read(*addr);
  const absl::StatusOr<std::uint64_t> second = mm.cpu_read(*addr + kPageSize);
  if (!first.ok()) return first.status();
  if (!second.ok()) return second.status();
  const bool first_ok = *first == 2 || (cpu_writes && *first == 3);
  if (!first_ok || (*second != 2 && *second != 0)) {
    return absl::InternalError(absl::StrCat("memory holds ", *first, ", ", *second,
                                            ": no order of the device's write and the CPU's "
                                            "free",
                                            cpu_writes ? " and write" : "", " leaves that"));
  }
  return absl::OkStatus();
}

TEST(ToyGpuExploreTest, TheFaultPathStaysCoherentUnderEverySchedule) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the scheduling seam (ITN_SCHED_SEAM)";
  itn::sched::ExploreOptions options;
  options.executions = 1000;
  const itn::sched::ExploreResult r = itn::sched::explore(options, [](itn::sched::Execution& ex) {
    return gpu_write_against_free(ex, ToyGpu::Flaw::kNone);
  });
  EXPECT_FALSE(r.failed) << r.report();
  // Without the CPU's write the device's write to the first page is the only one: a
  // write the device reports done but never made shows.
  const itn::sched::ExploreResult only_free =
      itn::sched::explore(options, [](itn::sched::Execution& ex) {
        return gpu_write_against_free(ex, ToyGpu::Flaw::kNone, /*cpu_writes=*/false);
      });
  EXPECT_FALSE(only_free.failed) << only_free.report();
}

TEST(ToyGpuExploreTest, RetryCheckedBeforeTheLockIsCaughtAndReplays) {
  if (!ITN_SCHED_SEAM) GTEST_SKIP() << "needs the scheduling seam (ITN_SCHED_SEAM)";
  const auto flawed = [](itn::sched::Execution& ex) {
    return gpu_write_against_free(ex, ToyGpu::Flaw::kRetryCheckedBeforeTheLock);
  };
  itn::sched::ExploreOptions options;
  options.executions = 2000;
  const itn::sched::ExploreResult found = itn::sched::explore(options, flawed);
  ASSERT_TRUE(found.failed) << "the flaw went unnoticed: " << found.report();
  EXPECT_NE(found.report().find("ITN_SCHEDULE='" + found.schedule + "'"), std::string::npos);
  // The printed schedule is all it takes to see the failure again, every time.
  const absl::StatusOr<itn::sched::Schedule> schedule = itn::sched::decode_schedule(found.schedule);
  ASSERT_TRUE(schedule.ok()) << schedule.status();
  for (int i = 0; i < 2; ++i) {
    const itn::sched::ExploreResult again = itn::sched::replay(*schedule, flawed);
    EXPECT_TRUE(again.failed);
    EXPECT_EQ(again.failure, found.failure);
  }
}

}  // namespace
}  // namespace toy
