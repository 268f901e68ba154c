// hw_model/mirror_device.h
//
// itn::hw::MirrorDevice: a simulated device that mirrors a process's address space in its
// own page table (the kernel's lib/test_hmm.c "dmirror"), kept coherent by interval
// notifiers and the read_begin/read_retry protocol: one over the whole space (as dmirror),
// or, with MirrorOptions::notifier_chunk_pages, one per aligned chunk the device touched
// (as SVM drivers insert one per buffer), so that invalidations elsewhere never make its
// faults retry:
//
//   range_fault:  in one hold of the mmap lock for reading (AddressSpace::fault_range):
//                 per notifier covering part of the range, seq = read_begin(); walk the
//                 CPU page table, faulting the range in (no driver lock);
//                 check_retry(seq) ? start again : take the driver lock;
//                 read_retry(seq) ? start again : install device entries.
//                 (The kernel's drivers do the first and last steps outside the mmap
//                 lock; here no migration or munmap can come between walk and install.)
//   invalidate:   take the driver lock (try_lock when the range is not blockable, refusing
//                 if busy); set_seq(); drop the device entries in the range.
//
// Changes this device makes itself (kMigrate/kExclusive with owner == this) are not
// treated as foreign: the address space hands the device its new entries through a
// MigrateHook before the invalidation ends, so nothing needs to fault afterwards. Its own
// kExclusive is ignored outright (the frames do not change). Its own kMigrate keeps the
// entries for reads but write-protects them until the hook replaces them: a device write
// landing in the old frame after the migration copied it would be lost (the kernel's
// test driver skips these events entirely; concurrent device writes make that unsafe
// here, see MirrorDeviceStressTest in hw_model_stress_test.cc).
//
// So, outside an invalidation of page p, a device entry for p is absent or maps the CPU
// entry's frame, writable only if the CPU's is (I17); entries are installed only under
// the driver lock with read_retry() false (I18). A walk's own faults invalidate too (a
// copy-on-write break, a page pulled back from another device): the walk still faults
// the rest of the range, and the retry finds every page ready, so a fault costs one walk
// more, not one per page. Only walks that others invalidated count against
// MirrorOptions::max_fault_attempts.
//
// The device page table is a DevicePageTable: a BtreePageTable unless open() is given a
// table of the caller's own format (and failure injection); the device makes every change
// of entries through it, under the driver lock.
//
// Device accesses (read, write) go through the device page table and fault on a miss.
// After the address space exits, every access fails with kFailedPrecondition (I20).
//
// Thread safety: every method may be called from any thread, but not concurrently with
// close(); the driver lock serialises the device page table. Not from notifier callbacks.
// Lifetime: open() returns a Ref; the device holds a grab on the address space (not a
// user: walks take a user each with mmget_not_zero). close() (or the destructor) removes
// the notifier; after it returns no callback touches the device.
// Memory ordering: an entry installed under the driver lock is ordered after the CPU
// page table state it was read from by read_retry() under that same lock (set_seq()
// publishes invalidations under it too).
#ifndef ITN_HW_MODEL_MIRROR_DEVICE_H_
#define ITN_HW_MODEL_MIRROR_DEVICE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/address_space.h"
#include "hw_model/device_page_table.h"
#include "hw_model/process.h"
#include "notifier/interval_notifier.h"
#include "sync/atomic.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::hw {

// What snapshot() reports per page: the byte of lib/test_hmm.c's snapshot, so that tests
// compare with the kernel's values. A present page is one kind ORed with kRead or kWrite
// (as the CPU entry allows).
enum class PageSnapshot : std::uint8_t {
  kNone = 0x00,                  // mapped, nothing present (see snapshot())
  kRead = 0x01,                  // present, read-only
  kWrite = 0x02,                 // present, writable
  kPmd = 0x04,                   // part of a huge page (mapped by one PMD entry)
  kZero = 0x10,                  // the shared zero page (with kRead)
  kDevicePrivateLocal = 0x20,    // in this device's private memory
  kDeviceCoherentLocal = 0x40,   // in this device's coherent memory
  kDeviceCoherentRemote = 0x50,  // in another device's coherent memory
  kError = 0xFF,                 // unmapped or PROT_NONE
};
constexpr PageSnapshot operator|(PageSnapshot a, PageSnapshot b) {
  return static_cast<PageSnapshot>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}

struct MirrorOptions {
  // The kind of memory migrate_to_device() moves pages into.
  DeviceMemory memory = DeviceMemory::kPrivate;
  // 0: one notifier over the whole address space. Otherwise one interval notifier per
  // chunk of this many pages (aligned to its size) that a fault or migration of the
  // device covers, inserted on first use and removed by close().
  std::uint64_t notifier_chunk_pages = 0;
  // range_fault() gives up with kAborted after this many walks were invalidated by others
  // (their own faults changed nothing), or this many had to fault again pages that a
  // change undid after an earlier walk faulted them.
  int max_fault_attempts = 64;
};

struct MirrorCounters {
  std::uint64_t faults = 0;   // range_faults that installed entries
  std::uint64_t retries = 0;  // walks abandoned because an invalidation intervened
  std::array<std::uint64_t, 8> invalidations{};  // by Event
};

class MirrorDevice : public RefCounted {
 public:
  // MirrorDevice::open()
  //
  // A device mirroring `process`'s address space, its entries kept in `table` (a
  // BtreePageTable if null; see DevicePageTable for a format of one's own).
  // Errors: kInvalidArgument for bad options; kFailedPrecondition if the address space has
  // exited.
  [[nodiscard]] static absl::StatusOr<Ref<MirrorDevice>> open(
      Process& process, MirrorOptions options = {},
      std::unique_ptr<DevicePageTable> table = nullptr);
  ~MirrorDevice() override;

  // MirrorDevice::open_file() / from_file()
  //
  // open() of the device file, as a process opens lib/test_hmm.c's /dev/hmm_dmirror*: a
  // device mirroring `process`'s address space (see open()) and the descriptor, returned,
  // in `process`'s file table naming it. The descriptor is shared as any file: fork()
  // gives the child one naming the same device (which keeps mirroring the opener's
  // address space, as dmirror keeps the opener's mm), pass_file() hands it on, and the
  // last close of it anywhere, exit()'s included, closes the device (exit() drops its
  // user of the address space first, which tears it down if it was the last, I20).
  // from_file() is a use of the device behind descriptor `fd` (the kernel's fdget()): the
  // handle keeps the file open, so the last close, and the device's close(), wait for the
  // last handle to go and run on the thread that drops it. Device calls made through a
  // handle never race that close (a call of close() itself through one is a close like
  // any other: it must not race other calls).
  // Errors: open_file() as open(), and kFailedPrecondition if the process has exited
  // (nothing stays open); from_file() kNotFound for an unknown descriptor,
  // kInvalidArgument for a file that is not a MirrorDevice's.
  class FileHandle {
   public:
    MirrorDevice& operator*() const { return *device_; }
    MirrorDevice* operator->() const { return device_.get(); }
    // The device itself, which outlives the file (its calls fail once it is closed; they
    // must not race the last close).
    const Ref<MirrorDevice>& device() const { return device_; }

   private:
    friend class MirrorDevice;
    FileHandle(Ref<OpenFile> file, Ref<MirrorDevice> device)
        : file_(std::move(file)), device_(std::move(device)) {}
    Ref<OpenFile> file_;
    Ref<MirrorDevice> device_;
  };
  [[nodiscard]] static absl::StatusOr<int> open_file(
      Process& process, MirrorOptions options = {},
      std::unique_ptr<DevicePageTable> table = nullptr);
  [[nodiscard]] static absl::StatusOr<FileHandle> from_file(const Process& process, int fd);

  // MirrorDevice::close()
  //
  // Stops mirroring: pages in this device's memory (or held exclusively) go back to the
  // CPU, the notifier is removed and every device entry dropped. Idempotent.
  // Context: may block until invalidations in progress end.
  void close() ABSL_LOCKS_EXCLUDED(mu_);

  // MirrorDevice::range_fault()
  //
  // Installs device entries for the pages of [addr, addr + length), writable if `write`.
  // Errors (nothing installed; entries the walk's own faults invalidated before it
  // failed are gone, as after any invalidation): kInvalidArgument for a bad range,
  // kNotFound if unmapped, kPermissionDenied if the protection forbids the access,
  // kAborted when invalidations kept coming (MirrorOptions::max_fault_attempts),
  // kFailedPrecondition if the address space exited or the device was closed.
  [[nodiscard]] absl::Status range_fault(std::uint64_t addr, std::uint64_t length, bool write)
      ABSL_LOCKS_EXCLUDED(mu_);

  // MirrorDevice::read() / write()
  //
  // Device accesses of whole pages (one word each) starting at `addr`, through the device
  // page table, faulting on a miss. All pages are accessed in one driver-lock critical
  // section, so the result is one consistent snapshot.
  // Errors: as range_fault(); on error nothing was written and `read` returns nothing.
  [[nodiscard]] absl::StatusOr<std::vector<std::uint64_t>> read(std::uint64_t addr,
                                                                std::uint64_t pages)
      ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::Status write(std::uint64_t addr, std::span<const std::uint64_t> words)
      ABSL_LOCKS_EXCLUDED(mu_);

  // MirrorDevice::snapshot()
  //
  // The CPU-side state of each page, without faulting, as of one instant: a migration or
  // fork in progress shows entirely before or entirely after. As in the kernel, another
  // device's private page is kNone (the CPU page table holds no page this device could
  // map without faulting it back).
  std::vector<PageSnapshot> snapshot(std::uint64_t addr, std::uint64_t pages) const;

  // MirrorDevice::mmap()
  //
  // mmap() of the device file itself, as lib/test_hmm.c's dmirror allows: `length` bytes
  // (rounded up to pages) of a private mapping of pages the driver allocates for it
  // (zero-filled, in system RAM, fresh for each call) and maps read-only at once, so the
  // CPU and devices find them present without faulting; a write copies the page, as in
  // any private mapping. Errors: as AddressSpace::mmap(); kFailedPrecondition if the
  // device was closed.
  [[nodiscard]] absl::StatusOr<std::uint64_t> mmap(std::uint64_t length, Prot prot)
      ABSL_LOCKS_EXCLUDED(mu_);

  // MirrorDevice::migrate_to_device() / migrate_to_system() / make_exclusive()
  //
  // Moves anonymous private pages into this device's memory (and back), or takes
  // exclusive access (a CPU access revokes it), and returns what became of each page.
  // With Moves::kWhatItCan, pages that cannot move are skipped (as the kernel's
  // migrate_vma does); with kAllOrNothing they fail the call. See AddressSpace for the
  // rules, outcomes and errors; additionally kFailedPrecondition if the address space
  // exited or the device was closed.
  using Outcomes = AddressSpace::Outcomes;
  [[nodiscard]] absl::StatusOr<Outcomes> migrate_to_device(std::uint64_t addr, std::uint64_t length,
                                                           Moves moves = Moves::kAllOrNothing)
      ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::StatusOr<Outcomes> migrate_to_system(std::uint64_t addr, std::uint64_t length,
                                                           Moves moves = Moves::kAllOrNothing)
      ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::StatusOr<Outcomes> make_exclusive(std::uint64_t addr, std::uint64_t length,
                                                        Moves moves = Moves::kAllOrNothing)
      ABSL_LOCKS_EXCLUDED(mu_);

  // MirrorDevice::fail_next_huge_allocation()
  //
  // The next huge page one of this device's migrations would move whole, in either
  // direction, finds none (the kernel's HMM_DMIRROR_FLAG_FAIL_ALLOC): that block splits and
  // moves as small pages. Later migrations get huge pages again.
  void fail_next_huge_allocation() {
    // Relaxed: a flag the next migration consumes with an exchange; the caller orders the
    // migration after this call.
    fail_huge_.store(true, std::memory_order_relaxed);
  }

  MirrorCounters counters() const;

  // The device page table (page -> frame, writable), for coherence checks.
  using DeviceEntry = hw::DeviceEntry;
  std::map<std::uint64_t, DeviceEntry> entries_for_testing() const ABSL_LOCKS_EXCLUDED(mu_);
  AddressSpace& mm() const { return *mm_; }
  // The driver lock's identity as the sync seam reports it, for schedule-driven tests.
  const void* driver_lock_for_testing() const { return &mu_; }

 private:
  class Subscription;
  MirrorDevice(Ref<AddressSpace> mm, MirrorOptions options, std::unique_ptr<DevicePageTable> table);
  template <class U, class... Args>
  friend Ref<U> itn::make_ref(Args&&... args);

  bool invalidate(Subscription& sub, const Range& range, std::uint64_t cur_seq)
      ABSL_LOCKS_EXCLUDED(mu_);
  void invalidate_locked(Subscription& sub, const Range& range, std::uint64_t cur_seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The notifiers covering [addr, addr + length); inserts the missing chunk notifiers.
  // Errors: as AddressSpace::check_access() (nothing inserted); kFailedPrecondition once
  // the address space exited.
  [[nodiscard]] absl::StatusOr<std::vector<Subscription*>> cover(std::uint64_t addr,
                                                                 std::uint64_t length, bool write)
      ABSL_LOCKS_EXCLUDED(chunks_mu_);
  // range_fault() with the range's notifiers: one walk, installed only if no notifier saw
  // an invalidation since its read_begin().
  [[nodiscard]] absl::Status fault(const std::vector<Subscription*>& subs, std::uint64_t addr,
                                   std::uint64_t length, bool write) ABSL_LOCKS_EXCLUDED(mu_);
  // A migration or exclusive access (`change`, given the hook that installs its pages).
  [[nodiscard]] absl::StatusOr<Outcomes> change_pages(
      std::uint64_t addr, std::uint64_t length,
      absl::FunctionRef<absl::StatusOr<Outcomes>(MigrateHook)> change) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs fn on the frame of each page of a device access in one driver-lock critical
  // section, faulting the pages in first on a miss.
  [[nodiscard]] absl::Status access(std::uint64_t addr, std::uint64_t pages, bool write,
                                    absl::FunctionRef<void(std::uint64_t i, Frame& frame)> fn)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The CPU page table walk of a fault: fault_range() with a user of the address space.
  [[nodiscard]] absl::StatusOr<AddressSpace::FaultedRange> walk(
      std::uint64_t addr, std::uint64_t length, bool write,
      AddressSpace::WalkBegin begin = AddressSpace::no_walk_begin,
      AddressSpace::WalkDone then = AddressSpace::ignore_walk);
  // The HugeAllocator of this device's migrations: consumes fail_next_huge_allocation(),
  // then asks the table. Not under the driver lock (DevicePageTable allows this call).
  bool allocate_huge() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    // Relaxed: pairs with the store in fail_next_huge_allocation(); nothing else is
    // published through the flag.
    return !fail_huge_.exchange(false, std::memory_order_relaxed) && table_->allocate_huge();
  }
  // The MigrateHook of this device's own migrations and exclusive accesses: installs the
  // page's new entry if the device's notifiers cover the change's range, else drops the
  // page's old entry.
  void install(std::uint64_t page, const PageEntry& entry, bool covered) ABSL_LOCKS_EXCLUDED(mu_);
  [[nodiscard]] absl::Status check_open() const ABSL_LOCKS_EXCLUDED(mu_);

  const Ref<AddressSpace> mm_;
  const MirrorOptions options_;
  const Ref<Subscription> sub_;  // whole-space mode: inserted by open(), removed by close()

  // Chunk mode: the chunk notifiers by chunk start. Never taken by callbacks, so inserts
  // (which may wait for a grace period) run under it.
  Mutex chunks_mu_;
  std::map<std::uint64_t, Ref<Subscription>> chunks_ ABSL_GUARDED_BY(chunks_mu_);

  mutable Mutex mu_;  // the driver lock
  const std::unique_ptr<DevicePageTable> table_ ABSL_PT_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  Atomic<bool> fail_huge_{false};
  Atomic<std::uint64_t> faults_{0};
  Atomic<std::uint64_t> retries_{0};
  std::array<Atomic<std::uint64_t>, 8> invalidations_{};
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_MIRROR_DEVICE_H_
