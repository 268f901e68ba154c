// An outside program built against an installed itn: it includes the headers from
// <prefix>/include/itn, links every target (itn::sync, itn::itree, itn::notifier, itn::hw_model,
// itn::testing) and uses each once; with the testing kit it explores a device of its own
// (one mirrored page) against a concurrent free, and checks it coherent after each run. It also
// checks that its debug-check level is the library's, which the installed targets define, whatever
// this program's own NDEBUG says.
//   itn_consumer <expected ITN_DEBUG_CHECKS: 0 or 1>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/mirror_device.h"
#include "hw_model/process.h"
#include "itree/interval_tree.h"
#include "notifier/domain.h"
#include "sync/check.h"
#include "sync/mutex.h"
#include "sync/ref.h"
#include "sync/srcu.h"
#include "testing/coherence.h"
#include "testing/sched/explore.h"

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  std::printf("itn consumer: %-52s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

class Counting : public itn::IntervalNotifier {
 public:
  bool invalidate(const itn::Range&, std::uint64_t cur_seq) override {
    set_seq(cur_seq);
    ++calls;
    return true;
  }
  int calls = 0;
};

void use_itree() {
  itn::SrcuDomain srcu;
  itn::IntervalTree<int> tree(srcu);
  expect(tree.insert(10, 20, 1).ok() && tree.insert(30, 40, 2).ok(), "itree: insert");
  int seen = 0;
  {
    auto guard = srcu.read_lock();
    tree.for_each_overlap(15, 35, [&](std::uint64_t, std::uint64_t, int) { ++seen; });
  }
  expect(seen == 2, "itree: overlap walk");
  expect(tree.erase(10, 20, 1).ok() && tree.erase(30, 40, 2).ok(), "itree: erase");
}

void use_notifier() {
  auto domain = itn::make_ref<itn::NotifierDomain>();
  const int key = 0;  // what find() matches
  itn::Ref<Counting> sub = itn::make_ref<Counting>();
  expect(domain->insert(sub, itn::Interval::sized(0, 4096), &key).ok(), "notifier: insert");
  expect(domain->find(&key, itn::Interval::closed(0, 0)).get() == sub.get(), "notifier: find");
  absl::StatusOr<itn::InvalidationToken> token =
      domain->invalidate_range_start(itn::Range{.start = 0, .end = 4096});
  expect(token.ok(), "notifier: invalidate_range_start");
  if (token.ok()) domain->invalidate_range_end(*std::move(token));
  expect(sub->calls == 1, "notifier: the invalidation reached the notifier");
  expect(domain->remove(*sub).ok(), "notifier: remove");
}

void use_hw() {
  itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
  absl::StatusOr<std::uint64_t> addr = process->mm().mmap(
      itn::hw::kPageSize, itn::hw::Prot::kReadWrite, itn::hw::MapKind::kAnonPrivate);
  expect(addr.ok() && process->mm().cpu_write(*addr, 42).ok(), "hw: mmap and cpu_write");
  absl::StatusOr<itn::Ref<itn::hw::MirrorDevice>> device = itn::hw::MirrorDevice::open(*process);
  expect(device.ok(), "hw: MirrorDevice::open");
  if (!device.ok() || !addr.ok()) return;
  absl::StatusOr<std::vector<std::uint64_t>> words = (*device)->read(*addr, 1);
  expect(words.ok() && words->size() == 1 && (*words)[0] == 42, "hw: device read of a CPU write");
  (*device)->close();
}

// The consumer's own device: it mirrors one page through an interval notifier, with its
// own lock, and shows its translation to the coherence check.
class OnePageDevice : public itn::IntervalNotifier, public itn::hw::MirroringDevice {
 public:
  OnePageDevice(itn::hw::AddressSpace& mm, std::uint64_t page) : mm_(mm), page_(page) {}

  bool invalidate(const itn::Range&, std::uint64_t cur_seq) override {
    itn::MutexLock l(mu_);
    set_seq(cur_seq);
    entry_.reset();
    return true;
  }

  // Faults the page in for the device and maps it, retrying after an invalidation.
  absl::Status fault(bool write) {
    for (;;) {
      std::uint64_t seq = 0;
      bool installed = false;
      const absl::StatusOr<itn::hw::AddressSpace::FaultedRange> walk = mm_.fault_range(
          page_, itn::hw::kPageSize, write, this, [&] { seq = read_begin(); },
          [&](const itn::hw::AddressSpace::FaultedRange& range) {
            itn::MutexLock l(mu_);
            if (read_retry(seq)) return;
            entry_ = itn::hw::DeviceEntry{range.entries[0].frame, range.entries[0].writable};
            installed = true;
          });
      if (!walk.ok()) return walk.status();
      if (installed) return absl::OkStatus();
    }
  }

  const itn::hw::AddressSpace& mirrored_mm() const override { return mm_; }
  std::map<std::uint64_t, itn::hw::DeviceEntry> translations() const override {
    itn::MutexLock l(mu_);
    std::map<std::uint64_t, itn::hw::DeviceEntry> all;
    if (entry_) all.emplace(page_, *entry_);
    return all;
  }

 private:
  itn::hw::AddressSpace& mm_;
  const std::uint64_t page_;
  mutable itn::Mutex mu_;
  std::optional<itn::hw::DeviceEntry> entry_ ABSL_GUARDED_BY(mu_);
};

// Explores the device's write fault against a free of its page under PCT schedules.
void use_testing() {
  if (!ITN_SCHED_SEAM) {
    std::printf("itn consumer: testing: no scheduling seam in this build, exploration skipped\n");
    return;
  }
  itn::sched::ExploreOptions options;
  options.executions = 100;
  const itn::sched::ExploreResult result =
      itn::sched::explore(options, [](itn::sched::Execution& ex) {
        itn::Ref<itn::hw::Process> process = itn::make_ref<itn::hw::Process>();
        itn::hw::AddressSpace& mm = process->mm();
        const absl::StatusOr<std::uint64_t> page =
            mm.mmap(itn::hw::kPageSize, itn::hw::Prot::kReadWrite, itn::hw::MapKind::kAnonPrivate);
        if (!page.ok()) return page.status();
        if (absl::Status s = mm.cpu_write(*page, 1); !s.ok()) return s;
        itn::Ref<OnePageDevice> device = itn::make_ref<OnePageDevice>(mm, *page);
        if (absl::Status s = mm.notifiers().insert(
                device, itn::Interval::sized(*page, itn::hw::kPageSize), nullptr);
            !s.ok()) {
          return s;
        }
        absl::Status fault, free;
        ex.run({[&] { fault = device->fault(/*write=*/true); },
                [&] { free = mm.madvise(*page, itn::hw::kPageSize, itn::hw::Advice::kFree); }});
        absl::Status coherent = itn::hw::check_coherence(*device);
        if (absl::Status s = mm.notifiers().remove(*device); !s.ok()) return s;
        if (!fault.ok()) return fault;
        if (!free.ok()) return free;
        return coherent;
      });
  expect(!result.failed && result.executions == options.executions,
         "testing: explore() of the consumer's own device");
  if (result.failed) std::printf("%s", result.report().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: itn_consumer <expected ITN_DEBUG_CHECKS>\n");
    return 2;
  }
  const int expected = std::atoi(argv[1]);
  std::printf("itn consumer: ITN_DEBUG_CHECKS=%d (expected %d), NDEBUG %s here\n", ITN_DEBUG_CHECKS,
              expected,
#ifdef NDEBUG
              "defined"
#else
              "not defined"
#endif
  );
  expect(ITN_DEBUG_CHECKS == expected, "the library's check level, not this NDEBUG");
  {
    itn::SrcuDomain srcu;
    auto guard = srcu.read_lock();
    expect(srcu.in_read_section(), "sync: SrcuDomain read section");
  }
  use_itree();
  use_notifier();
  use_hw();
  use_testing();
  return failures == 0 ? 0 : 1;
}
