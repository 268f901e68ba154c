// hw_model/address_space.h
//
// itn::hw::AddressSpace: a simulated CPU address space (the kernel's mm_struct) with VMAs,
// a page table of reference-counted frames, and the NotifierDomain that devices subscribe
// to. Every change to an existing page table entry is bracketed by
// invalidate_range_start/end with the Event the kernel would use, so a mirror built on
// the domain stays coherent:
//
//   munmap                          kUnmap over the range
//   mremap                          kUnmap over the new range, then over the old one
//   mprotect                        kProtectionVma over the range
//   fork                            kProtectionPage over each private VMA (parent's
//                                   entries become read-only, copy-on-write)
//   write fault on a read-only private page (zero page, copy-on-write)
//                                   kClear over the page, then a fresh writable frame
//   migrate_to_device / _to_system  kMigrate, owner = the device moving the pages
//   CPU touch of a private device page
//                                   kMigrate, owner = null (every device drops it); a
//                                   coherent device page is used where it is
//   make_exclusive                  kExclusive, owner = the device
//   splitting a huge page           kClear over its 2 MiB (see below)
//   write fault on a read-only huge page (the huge zero page, copy-on-write)
//                                   kClear over its 2 MiB, then 512 fresh frames
//   CPU touch of a private device huge page
//                                   kMigrate over its 2 MiB, owner = null
//   CPU touch of an exclusive page  kExclusive, owner = null (the device loses it)
//   reap (the OOM reaper)           kUnmap over each private VMA, not blockable
//   last mmput                      the domain's release(): kRelease over everything
//
// Installing an entry where there was none needs no invalidation (no device can hold a
// copy of nothing), exactly as in the kernel.
//
// Mappings: anonymous private (zero page on read, a new frame on write), anonymous shared
// and file-backed shared (frames come from a File shared by every mapping of it; an
// anonymous shared mapping gets a File of its own, shared with children after fork), and
// file-backed private (the File's frames read-only, a copy on the first write).
//
// Transparent huge pages (the kernel's THP in its "madvise" mode): in an anonymous private
// mapping advised with madvise(kHugePage), the first fault of a page whose aligned 2 MiB
// block lies inside the VMA and holds no entry yet maps the whole block at once, as one
// PMD entry would: a read maps the huge zero page, a write 512 fresh frames; their
// PageEntry::huge is set. The 512 entries of a huge page change together: a write to a
// read-only one copies the whole block (still huge), and a CPU touch of a private device
// huge page brings the whole block back. A migration moves a block it covers whole as one
// huge page, if the HugeAllocator gives it one: to the device, a huge page (or the huge
// zero page, or nothing yet, in an advised VMA); back, a huge page in device memory.
// Anything that would treat part of a huge page differently splits it first into 512
// small pages (one kClear over the block, as the kernel's split_huge_pmd): munmap,
// mprotect or madvise of part of the block (the VMA splits inside it), a migration that
// covers part of it or gets no huge page, and exclusive access.
//
// Users and memory (the split SVA's exit ordering needs, R6): mmget_not_zero()/mmput() count users
// of the address space (processes, device walks); the last mmput tears it down (domain release,
// then every mapping goes) and later calls fail with kFailedPrecondition. The memory of the object
// is a separate count: every Ref<AddressSpace> is a "grab" (mmgrab/mmdrop), and notifiers hold a
// grab of the domain only, never a user.
//
// Thread safety: every method may be called from any thread. As in the kernel, CPU
// faults (cpu_read, cpu_write), device walks (fault_range), pins (pin_user_pages),
// madvise(kFree) and lookups hold the mmap lock for reading only, so they run at once,
// their invalidations included: a page table lock serialises their changes of entries
// but is never held across an invalidation (a fault looks at the entry, starts the
// invalidation its change needs, then makes the change only if no concurrent fault made
// it meanwhile; a free drops entries only inside its invalidation).
// Everything else holds the mmap lock for writing: mmap, munmap, mprotect, madvise's
// hints, fork, teardown, and, unlike the kernel (which runs them under the read side,
// with migration entries in the page table for the first two), migrations, exclusive
// access and reap. Notifier
// callbacks, MigrateHooks and fault_range()'s steps run with the mmap lock held and must
// not call back into the address space (as in the kernel, where invalidations run under
// mmap_lock). Lifetime: created with make_ref; users are counted separately (above),
// starting at one. Memory ordering: the mmap lock orders page table changes against the
// write side, the page table lock orders those made on the read side; an invalidation's
// callbacks run before the change it announces, and its end after.
#ifndef ITN_HW_MODEL_ADDRESS_SPACE_H_
#define ITN_HW_MODEL_ADDRESS_SPACE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/memory.h"
#include "notifier/domain.h"
#include "sync/atomic.h"
#include "sync/mutex.h"
#include "sync/ref.h"
#include "sync/rw_mutex.h"

namespace itn::hw {

enum class Prot : std::uint8_t { kNone, kRead, kReadWrite };

// A private file mapping maps the file's pages read-only until its first write to each,
// which copies the page (from then on an anonymous page of this address space).
enum class MapKind : std::uint8_t { kAnonPrivate, kAnonShared, kFileShared, kFilePrivate };

// madvise() advice: whether later faults may map transparent huge pages (MADV_HUGEPAGE,
// MADV_NOHUGEPAGE; neither changes a page already mapped), or that the contents of
// anonymous private pages are no longer needed (MADV_FREE: the kernel frees them lazily,
// under memory pressure; the model frees them at once, which the kernel may do too).
enum class Advice : std::uint8_t { kHugePage, kNoHugePage, kFree };

// Writes stay in this address space (copy-on-write), as opposed to reaching a File.
inline bool is_private(MapKind kind) {
  return kind == MapKind::kAnonPrivate || kind == MapKind::kFilePrivate;
}

// One page table entry as a device walk sees it (what hmm_range_fault reports).
struct PageEntry {
  Ref<Frame> frame;                 // null: nothing present (never touched)
  bool writable = false;            // the CPU may write through this entry
  bool zero_page = false;           // the shared zero page
  const void* device = nullptr;     // the frame lives in this device's memory
  bool coherent = false;            // ... which the CPU maps directly (device-coherent)
  bool page_cache = false;          // a file's page mapped by a private mapping (read-only)
  const void* exclusive = nullptr;  // this device holds exclusive access
  bool huge = false;                // one page of a transparent huge page (a PMD mapping)
};

// Called for each page a device-initiated change moved to `entry`, inside the change's
// invalidation and under the mmap lock, so the device updates its own page table before
// the invalidation ends (see MirrorDevice for how it treats its own invalidations).
using MigrateHook = absl::FunctionRef<void(std::uint64_t page, const PageEntry& entry)>;

// Asked once for each huge page a migration would move whole, before anything moves:
// true if the destination (device memory, or system RAM on the way back) has a huge page
// for it; false makes the block split and move as 512 small pages.
using HugeAllocator = absl::FunctionRef<bool()>;
inline bool huge_pages_available() { return true; }

// Which pages a migration or exclusive access takes. kAllOrNothing: a page it cannot take
// fails the whole call, and nothing changes. kWhatItCan (the kernel's migrate_vma, which
// migrates what it can and reports which pages moved): such pages are skipped and
// reported, the rest change.
enum class Moves : std::uint8_t { kAllOrNothing, kWhatItCan };

// What a migration or exclusive access did with one page of its range.
enum class PageOutcome : std::uint8_t {
  kMoved,           // moved (exclusive access: the device now holds it exclusively)
  kUnchanged,       // nothing to do: already on the device, or (back to system RAM) not on it
  kNotAnonymous,    // skipped: shared memory, or a private file mapping's page still the file's
  kOnAnotherDevice  // skipped: in another device's memory
};

class AddressSpace : public RefCounted {
 public:
  AddressSpace();

  // AddressSpace::notifiers()
  //
  // The domain devices insert their notifiers into.
  NotifierDomain& notifiers() const { return *domain_; }
  // The mmap lock's and page table lock's identities as the sync seam reports them, for
  // schedule-driven tests.
  const void* mmap_lock_for_testing() const { return &mmap_mu_; }
  const void* page_table_lock_for_testing() const { return &ptl_; }

  // AddressSpace::mmap()
  //
  // Maps `length` bytes (rounded up to pages) at a fresh address and returns it. `file`
  // and `file_offset` (page-aligned) are for the file mappings only. With `populate`
  // (MAP_POPULATE), every page is faulted in for reading before any other call can see
  // the mapping (unless the protection is kNone).
  // Errors (nothing changes): kInvalidArgument for length 0, a missing or unexpected file,
  // or an unaligned offset; kResourceExhausted once fresh addresses run out (at
  // kUserSpaceEnd); kFailedPrecondition after teardown.
  [[nodiscard]] absl::StatusOr<std::uint64_t> mmap(std::uint64_t length, Prot prot, MapKind kind,
                                                   Ref<File> file = nullptr,
                                                   std::uint64_t file_offset = 0,
                                                   bool populate = false)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::mmap_hugetlb()
  //
  // mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB): `length` bytes (rounded up to huge
  // pages) of anonymous private memory at a fresh huge page boundary, mapped only in huge
  // pages: every fault maps the whole huge page around it (a read fault too, with a fresh
  // zero-filled page where a transparent huge page would use the huge zero page), whatever
  // the madvise() hints. Its huge pages never split: munmap, mprotect, madvise and mremap
  // must cut it at huge page boundaries, madvise(kFree) and mremap's `keep_old` refuse it,
  // its pages do not migrate to a device or go exclusive, and reap() skips it (as the
  // kernel's OOM reaper skips hugetlb mappings).
  // Errors: as mmap().
  [[nodiscard]] absl::StatusOr<std::uint64_t> mmap_hugetlb(std::uint64_t length, Prot prot)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::munmap()
  //
  // Unmaps every page of [addr, addr + length) (holes are fine), splitting VMAs.
  // Errors (nothing changes): kInvalidArgument for an unaligned or empty range, or one
  // that cuts a hugetlb mapping inside a huge page; kFailedPrecondition after teardown.
  [[nodiscard]] absl::Status munmap(std::uint64_t addr, std::uint64_t length)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::mremap()
  //
  // Moves the mapping of [old_addr, old_addr + length), which must lie in one VMA, to
  // [new_addr, new_addr + length) (the kernel's MREMAP_MAYMOVE | MREMAP_FIXED, same size):
  // whatever was mapped there is unmapped first (kUnmap), then the pages move under one
  // kUnmap of the old range (devices drop what they mirrored; the pages, in device
  // memory or not, keep their frames). A huge page that would land unaligned, or that the
  // old range covers in part, splits first. With `keep_old` (MREMAP_DONTUNMAP, anonymous
  // private memory only) the old range stays mapped, empty: it reads zero pages.
  // Errors (nothing changes): kInvalidArgument for unaligned or empty ranges, ranges that
  // overlap, a new range past kUserSpaceEnd, an old range across VMAs, `keep_old` of
  // other memory, or ranges of a hugetlb mapping off huge page boundaries; kNotFound if
  // the old
  // range is not mapped; kFailedPrecondition after teardown.
  [[nodiscard]] absl::Status mremap(std::uint64_t old_addr, std::uint64_t length,
                                    std::uint64_t new_addr, bool keep_old = false)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::mprotect()
  //
  // Changes the protection of [addr, addr + length), which must be fully mapped.
  // Errors (nothing changes): kInvalidArgument for an unaligned or empty range, or one
  // that cuts a hugetlb mapping inside a huge page; kNotFound if part of it is unmapped;
  // kFailedPrecondition after teardown.
  [[nodiscard]] absl::Status mprotect(std::uint64_t addr, std::uint64_t length, Prot prot)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::madvise()
  //
  // Sets the hint of [addr, addr + length), which must be fully mapped, splitting VMAs
  // (and a huge page the new VMA boundary cuts). kFree instead drops the range's pages in
  // system RAM (later reads see zero pages) and splits a huge page the range covers in
  // part, under one kClear invalidation (over the whole of such a huge page); pages in
  // device memory or held exclusively by a device stay (as the kernel skips entries that
  // are not present). Like the kernel's MADV_FREE, kFree holds the mmap lock for reading:
  // faults, walks and other frees run meanwhile; the free takes effect at one instant
  // within the call, each of them wholly before or after it.
  // Errors (nothing changes): kInvalidArgument for an unaligned or empty range, or kFree
  // of a page that is not anonymous private memory; kNotFound if part of it is unmapped;
  // kFailedPrecondition after teardown.
  [[nodiscard]] absl::Status madvise(std::uint64_t addr, std::uint64_t length, Advice advice)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::cpu_read() / cpu_write()
  //
  // A CPU access to the word of the page holding `addr`, faulting the page in as needed
  // (a device page migrates back, a device's exclusive access is revoked).
  // Errors (nothing changes): kNotFound if unmapped, kPermissionDenied if the protection
  // forbids the access; kFailedPrecondition after teardown.
  [[nodiscard]] absl::StatusOr<std::uint64_t> cpu_read(std::uint64_t addr)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);
  [[nodiscard]] absl::Status cpu_write(std::uint64_t addr, std::uint64_t value)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::pin_user_pages()
  //
  // The kernel's get_user_pages()/pin_user_pages() of [addr, addr + length): every page
  // faulted in as a CPU access would (a write breaks copy-on-write, a device-private page
  // migrates back to system RAM, exclusive access is revoked), and its frame returned,
  // page by page; the caller's Refs keep the frames alive. A long-term pin also brings
  // device-coherent pages back to system RAM, as FOLL_LONGTERM does (device memory must
  // stay free to move); a short-term one uses them in place. A pin does not stop later
  // migrations or copy-on-write: the frames returned may stop being the mapped ones.
  // Errors: kInvalidArgument for an unaligned or empty range; else as cpu_read() /
  // cpu_write() for the first page that fails (the pages before it stay faulted in,
  // nothing is returned).
  enum class Pin : std::uint8_t { kShortTerm, kLongTerm };
  [[nodiscard]] absl::StatusOr<std::vector<Ref<Frame>>> pin_user_pages(std::uint64_t addr,
                                                                       std::uint64_t length,
                                                                       bool write, Pin pin)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::reap()
  //
  // What the kernel's OOM reaper does to the memory of a process being killed: for each
  // anonymous private VMA, one non-blockable kUnmap invalidation (a device that would
  // have to sleep for its lock refuses it) and, unless refused, the VMA's pages dropped:
  // their words are lost and later accesses see zero pages (a private file mapping the
  // file's); the mapping stays. Returns
  // how many VMAs were skipped because a notifier refused (the kernel's reaper tries
  // those again later); their pages are untouched.
  // Errors: kFailedPrecondition after teardown.
  [[nodiscard]] absl::StatusOr<std::uint64_t> reap() ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::fork()
  //
  // A child address space (one user) with a copy of every VMA: private pages are shared
  // read-only by both sides until one writes (copy-on-write), shared mappings stay shared.
  // The parent's private device pages migrate back and exclusive accesses are revoked
  // first; its coherent device pages stay (read-only), the child gets copies of them in
  // system RAM.
  // Errors: kFailedPrecondition after teardown.
  [[nodiscard]] absl::StatusOr<Ref<AddressSpace>> fork() ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::mmget() / mmget_not_zero() / mmput()
  //
  // Users of the address space. mmget takes another user for a caller that holds one
  // (debug: dies otherwise); mmget_not_zero takes one if any remains (false once teardown
  // began); mmput drops one, and the last runs the teardown on the calling thread.
  // Context: mmput may block (the domain's release runs device callbacks).
  void mmget();
  bool mmget_not_zero();
  void mmput() ABSL_LOCKS_EXCLUDED(mmap_mu_);
  bool exited() const ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::mmgrab()
  //
  // The memory of the address space: a new Ref, which keeps the object (and its domain)
  // valid but not the address space alive. mmdrop() is dropping that Ref.
  Ref<AddressSpace> mmgrab() { return Ref<AddressSpace>::from_this(this); }

  // Device side -------------------------------------------------------------------------

  // AddressSpace::fault_range()
  //
  // Faults every page of [addr, addr + length) in for a read or write by `device`, in one
  // hold of the mmap lock for reading, as hmm_range_fault does (CPU faults and other
  // walks run meanwhile): a page on `device` (or held exclusively by it) is reported as it
  // is, another device's private page migrates back (its coherent page is reported as it
  // is), another device's exclusive access is revoked, a write breaks copy-on-write.
  // Those changes invalidate, `device`'s own notifier included: a caller that began a
  // read section before this call must retry it, and then finds the pages ready.
  // With the mmap lock held, `begin` runs before the first page and `then` sees the
  // entries after the last: a device that takes its read_begin() in `begin` and checks
  // read_retry() and installs in `then` can be overtaken by no change that takes the write
  // side (a migration, munmap), only by faults, which its read_retry() catches. (The
  // kernel's drivers take both outside the mmap lock and bound their retries by time
  // instead; a device migrating its own pages in a tight loop starves such walks here.)
  // Neither may call into the address space; `begin` runs even if the walk then fails.
  // Errors: kInvalidArgument for a bad range; else as cpu_read()/cpu_write() for the
  // first page that cannot be faulted in (the pages before it stay faulted in; `then`
  // does not run).
  struct FaultedRange {
    std::vector<PageEntry> entries;  // one per page, in address order
    std::uint64_t faulted = 0;       // pages that were not yet as the access needs
  };
  using WalkBegin = absl::FunctionRef<void()>;
  using WalkDone = absl::FunctionRef<void(const FaultedRange&)>;
  static void no_walk_begin() {}
  static void ignore_walk(const FaultedRange&) {}
  [[nodiscard]] absl::StatusOr<FaultedRange> fault_range(std::uint64_t addr, std::uint64_t length,
                                                         bool write, const void* device,
                                                         WalkBegin begin = no_walk_begin,
                                                         WalkDone then = ignore_walk)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::check_access()
  //
  // What a read (or write) of every page of [addr, addr + length) would fail with, without
  // faulting or changing anything: OK, or the status of the first page it fails at.
  // Errors: kInvalidArgument for a bad range, kNotFound for a hole, kPermissionDenied for
  // a protection that forbids the access, kFailedPrecondition after teardown.
  [[nodiscard]] absl::Status check_access(std::uint64_t addr, std::uint64_t length,
                                          bool write) const ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::lookup() / lookup_range()
  //
  // The entry of the page holding `addr` without faulting (frame null if not present).
  // lookup_range() looks `pages` pages up from `addr` in one hold of the mmap lock, so
  // that no change (a migration, say) is seen half done.
  // Errors (per page for lookup_range()): kNotFound if unmapped, kPermissionDenied for
  // PROT_NONE; kFailedPrecondition after teardown.
  [[nodiscard]] absl::StatusOr<PageEntry> lookup(std::uint64_t addr) const
      ABSL_LOCKS_EXCLUDED(mmap_mu_);
  [[nodiscard]] std::vector<absl::StatusOr<PageEntry>> lookup_range(std::uint64_t addr,
                                                                    std::uint64_t pages) const
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::migrate_to_device() / migrate_to_system()
  //
  // Moves the anonymous pages of private mappings in [addr, addr + length) (of a private
  // file mapping, the pages written since it was mapped) into frames of `device`'s
  // memory of kind `memory` (absent pages arrive zero-filled), or those on `device` back
  // to system RAM,
  // under one kMigrate invalidation owned by `device`; `hook` sees every moved page, and
  // for a migration to the device also every page of the range that was there already.
  // Huge pages move whole if `allocate_huge` says so (see the header). Returns the outcome
  // of each page, in address order; `moves` says what becomes of pages that cannot move
  // (shared memory or a private file mapping's page that is still the file's, or not
  // there yet: kNotAnonymous; on the way in, a page on another device: kOnAnotherDevice).
  // Errors (nothing changes): kInvalidArgument for a bad range; kNotFound for a hole;
  // kFailedPrecondition for hugetlb memory, after teardown, or with kAllOrNothing for a
  // page that cannot move; kPermissionDenied for PROT_NONE.
  using Outcomes = std::vector<PageOutcome>;
  [[nodiscard]] absl::StatusOr<Outcomes> migrate_to_device(
      std::uint64_t addr, std::uint64_t length, const void* device, MigrateHook hook,
      DeviceMemory memory = DeviceMemory::kPrivate,
      HugeAllocator allocate_huge = huge_pages_available, Moves moves = Moves::kAllOrNothing)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);
  [[nodiscard]] absl::StatusOr<Outcomes> migrate_to_system(
      std::uint64_t addr, std::uint64_t length, const void* device, MigrateHook hook,
      HugeAllocator allocate_huge = huge_pages_available, Moves moves = Moves::kAllOrNothing)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::evict_device()
  //
  // Gives every page in `device`'s memory, and every page it holds exclusively, back to
  // the CPU (as a CPU touch would). A device calls it when it goes away. Nothing to do
  // after teardown.
  void evict_device(const void* device) ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::make_exclusive()
  //
  // Gives `device` exclusive access to the writable anonymous private pages of [addr,
  // addr + length) (faulting them in for write first) under one kExclusive invalidation
  // owned by `device`; a CPU access revokes it (a private file mapping's page still the
  // file's is copied first). Outcomes and errors as migrate_to_device() but for that page
  // (no page is on another device once faulted in), plus kPermissionDenied for read-only
  // memory.
  [[nodiscard]] absl::StatusOr<Outcomes> make_exclusive(std::uint64_t addr, std::uint64_t length,
                                                        const void* device, MigrateHook hook,
                                                        Moves moves = Moves::kAllOrNothing)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

 private:
  struct Vma {
    std::uint64_t end;  // exclusive; the start is the map key
    Prot prot;
    MapKind kind;
    Ref<File> file;
    std::uint64_t file_offset;  // of the VMA's start
    bool huge_pages = false;    // madvise(kHugePage): faults may map huge pages
    bool hugetlb = false;       // mmap_hugetlb(): only huge pages, which never split
  };
  using Pte = PageEntry;
  using Ptes = std::map<std::uint64_t, Pte>;  // page address -> entry
  using VmaMap = std::map<std::uint64_t, Vma>;
  enum class DeviceChange : std::uint8_t { kToDevice, kToSystem, kExclusive };

  // An entry found under the page table lock and kept after the lock is dropped. With
  // the mmap lock held it stays valid until a free on the read side erases entries
  // (madvise(kFree)); nothing else there erases, and the write side cannot run.
  struct KeptPte {
    Ptes::iterator it;
    std::uint64_t erasures;  // read_side_erasures_ when it was kept
  };
  KeptPte keep_locked(Ptes::iterator it) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_) {
    return {it, read_side_erasures_};
  }
  // `kept`'s iterator, unless there is none or it may be stale.
  std::optional<Ptes::iterator> still_valid_locked(const std::optional<KeptPte>& kept) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_) {
    if (!kept || kept->erasures != read_side_erasures_) return std::nullopt;
    return kept->it;
  }
  // Where a walk over consecutive pages stands in the page table: the entry after the
  // last page it faulted, as of then (none before the first).
  struct PteHint {
    std::optional<KeptPte> next;
  };
  // The entry of `page`, or the end: in constant time from a walk's `hint` (its next
  // page is `page`) unless a concurrent fault inserted entries just before the hint's or
  // a free erased entries, searched for otherwise.
  Ptes::iterator find_pte_locked(std::uint64_t page, const PteHint* hint)
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_);
  // fault_range() for one page; counts it in `faulted` if it was not ready.
  [[nodiscard]] absl::StatusOr<PageEntry> fault_for_device_locked(std::uint64_t addr, bool write,
                                                                  const void* device,
                                                                  std::uint64_t& faulted,
                                                                  PteHint& hint)
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_LOCKS_EXCLUDED(ptl_);
  [[nodiscard]] absl::StatusOr<PageEntry> lookup_locked(std::uint64_t addr) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_);
  // Where a fault leaves the page: wherever the CPU can use it, or in system RAM (a
  // coherent device page comes back too, as for FOLL_LONGTERM and exclusive access).
  enum class Where : std::uint8_t { kAnywhere, kSystemRam };
  // Makes the page of `addr` present for the CPU (and writable, for a write), then runs
  // `use` on its entry under the page table lock (so no concurrent fault changes it
  // during the access). A walk passes its `hint`, which then stands after the page.
  [[nodiscard]] absl::Status fault_locked(std::uint64_t addr, bool write,
                                          absl::FunctionRef<void(Pte&)> use,
                                          PteHint* hint = nullptr, Where where = Where::kAnywhere)
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_LOCKS_EXCLUDED(ptl_);
  // fault_locked() of every page of [start, end), in order; stops at the first failure.
  [[nodiscard]] absl::Status fault_pages_locked(std::uint64_t start, std::uint64_t end, bool write,
                                                Where where, absl::FunctionRef<void(Pte&)> use)
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_LOCKS_EXCLUDED(ptl_);
  // The entry of a page that was never touched, as the fault of `addr` in `vma` makes it.
  Pte fresh_entry_locked(VmaMap::const_iterator vma, std::uint64_t page, bool write) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  // True if `vma` is an advised anonymous private mapping holding all of the block at
  // `block`.
  static bool fits_huge_page(const VmaMap::value_type& vma, std::uint64_t block) {
    return vma.second.kind == MapKind::kAnonPrivate &&
           (vma.second.huge_pages || vma.second.hugetlb) && vma.first <= block &&
           block + kHugePageSize <= vma.second.end;
  }
  // True if a fault of `page` maps the whole huge page around it (see the header).
  bool maps_huge_page_locked(VmaMap::const_iterator vma, std::uint64_t page) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_);
  // Maps the huge page at `block` of `vma` (absent so far) for a read (the huge zero page,
  // or read-only zero-filled frames in a hugetlb mapping) or a write.
  void map_huge_page_locked(VmaMap::const_iterator vma, std::uint64_t block, bool write)
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_);
  // Lets the CPU write the present `page` (and the rest of its huge page) in place.
  void make_writable_locked(Ptes::iterator pte) ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_);
  // A CPU fault's `change` (kClear: a copy; kMigrate: back from device memory) made to
  // all 512 entries of the huge page at `block` in `ptes`; it stays huge.
  static void change_huge_page(Ptes& ptes, std::uint64_t block, Event change);
  // A fresh range of `length` bytes (rounded up to `align`, a power of two) at an
  // `align`-aligned address, with a guard page after it; `what` names the call in errors
  // (kInvalidArgument for a bad length, kResourceExhausted past kUserSpaceEnd,
  // kFailedPrecondition after teardown).
  [[nodiscard]] absl::StatusOr<std::uint64_t> reserve_locked(const char* what, std::uint64_t length,
                                                             std::uint64_t align)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // munmap() of [start, end) with the mmap lock held.
  void unmap_locked(std::uint64_t start, std::uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // What madvise(`advice`) of [start, end) fails with, if anything.
  [[nodiscard]] absl::Status check_advice_locked(std::uint64_t start, std::uint64_t end,
                                                 Advice advice) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  // madvise(kFree) of the checked range [start, end), on the read side.
  void free_pages_locked(std::uint64_t start, std::uint64_t end)
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_) ABSL_LOCKS_EXCLUDED(ptl_);
  // True if `addr` falls inside a block (is not its start) that holds a huge page, or may
  // come to hold one through a concurrent fault, as long as the mmap lock is held.
  bool cuts_huge_page_locked(std::uint64_t addr) const ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_)
      ABSL_LOCKS_EXCLUDED(ptl_);
  // Splits the huge page at `block`, if there is one, into small pages (kClear over it).
  void split_huge_page_locked(std::uint64_t block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // Splits the huge page `addr` falls inside, if `addr` cuts one (is not its start).
  void split_huge_page_at_locked(std::uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // The entries of `ptes` in the 2 MiB block at `block`.
  struct BlockEntries {
    Ptes::iterator first, last;
    Ptes::iterator begin() const { return first; }
    Ptes::iterator end() const { return last; }
    bool empty() const { return first == last; }
  };
  static BlockEntries block_entries(Ptes& ptes, std::uint64_t block);
  // The blocks of [start, end) that `change` moves as huge pages; splits every other huge
  // page the range reaches.
  // Blocks of pages `change` skips stay as they are.
  std::vector<std::uint64_t> plan_huge_pages_locked(DeviceChange change, std::uint64_t start,
                                                    std::uint64_t end, const void* device,
                                                    HugeAllocator allocate_huge,
                                                    const Outcomes& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // OK if `vma` (that of `addr`, or the end: none) permits the access.
  [[nodiscard]] absl::Status permits_locked(VmaMap::const_iterator vma, std::uint64_t addr,
                                            bool write) const ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  // The VMA of `addr` if it permits the access.
  [[nodiscard]] absl::StatusOr<VmaMap::const_iterator> vma_for_locked(std::uint64_t addr,
                                                                      bool write) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  // True if the CPU can use `entry` as it is: not a private device page, not held
  // exclusively by a device.
  static bool cpu_reachable(const Pte& entry) {
    return entry.exclusive == nullptr && (entry.device == nullptr || entry.coherent);
  }
  // The change (named by its invalidation's event) a CPU access must make to `entry`
  // first, if any: kMigrate brings a private device page (or, for kSystemRam, any device
  // page) back to system RAM, kExclusive revokes a device's exclusive access, kClear
  // breaks copy-on-write for a write to a private mapping. A write to a read-only shared
  // page needs none (the frame stays).
  static std::optional<Event> cpu_fault_change(const Pte& entry, bool write, bool private_vma,
                                               Where where);
  static void apply_cpu_fault_change(Pte& entry, Event change);
  // Gives a device page or exclusive entry back to the CPU (kMigrate / kExclusive, owner
  // null). With the mmap lock held for writing: no fault runs meanwhile.
  void restore_for_cpu_locked(std::uint64_t page, Pte& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  [[nodiscard]] absl::StatusOr<Outcomes> device_change(DeviceChange change, std::uint64_t addr,
                                                       std::uint64_t length, const void* device,
                                                       MigrateHook hook, DeviceMemory memory,
                                                       HugeAllocator allocate_huge, Moves moves)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);
  // Checks every page of [start, end) for `change`: kMoved for the pages it may take, a
  // skip outcome for the others; an error for what fails the whole call (with
  // kAllOrNothing, any skip).
  [[nodiscard]] absl::StatusOr<Outcomes> check_device_change_locked(DeviceChange change,
                                                                    std::uint64_t start,
                                                                    std::uint64_t end,
                                                                    const void* device, Moves moves)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  [[nodiscard]] absl::Status check_alive_locked(const char* what) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  VmaMap::iterator find_vma_locked(std::uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  VmaMap::const_iterator find_vma_locked(std::uint64_t addr) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  // Splits the VMA that strictly contains `addr`, if any, so that a VMA starts there (and
  // the huge page `addr` cuts, if any).
  void split_locked(std::uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // OK if the space is alive and every page of [start, end) is mapped; else the error
  // `what` reports.
  [[nodiscard]] absl::Status check_mapped_locked(const char* what, std::uint64_t start,
                                                 std::uint64_t end) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  // OK unless `start` or `end` falls inside a huge page of a hugetlb mapping (which never
  // splits); else kInvalidArgument, reported as `what`'s.
  [[nodiscard]] absl::Status check_hugetlb_edges_locked(const char* what, std::uint64_t start,
                                                        std::uint64_t end) const
      ABSL_SHARED_LOCKS_REQUIRED(mmap_mu_);
  void copy_into_child_locked(AddressSpace& child) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(child.mmap_mu_);
  // Brackets a page table change: invalidate_range_start over [start, end) on
  // construction, the matching end on destruction. Used under mmap_mu_.
  class Invalidation {
   public:
    Invalidation(NotifierDomain& domain, std::uint64_t start, std::uint64_t end, Event event,
                 const void* owner = nullptr);
    ~Invalidation();
    Invalidation(const Invalidation&) = delete;
    Invalidation& operator=(const Invalidation&) = delete;
    Event event() const { return event_; }
    std::uint64_t start() const { return start_; }
    std::uint64_t end() const { return end_; }

   private:
    NotifierDomain& domain_;
    const std::uint64_t start_, end_;
    const Event event_;
    absl::StatusOr<InvalidationToken> token_;
  };

  const Ref<NotifierDomain> domain_;
  const Ref<Frame> zero_page_;  // shared read-only by every untouched private page
  Atomic<std::uint64_t> users_{1};

  // The page table with the mmap lock held for writing. ptl_ is only ever taken with the
  // mmap lock held (for reading, by faults), so the writer owns every entry outright.
  Ptes& ptes_for_writer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mmap_mu_.assert_held();
    return ptes_;
  }

  mutable RwMutex mmap_mu_;
  VmaMap vmas_ ABSL_GUARDED_BY(mmap_mu_);
  std::uint64_t next_addr_ ABSL_GUARDED_BY(mmap_mu_) = 0x100000;  // never reused
  bool exited_ ABSL_GUARDED_BY(mmap_mu_) = false;
  // The page table lock: taken inside the mmap lock, never across an invalidation.
  mutable Mutex ptl_ ABSL_ACQUIRED_AFTER(mmap_mu_);
  Ptes ptes_ ABSL_GUARDED_BY(ptl_);
  // How many times a free on the read side erased entries (see KeptPte).
  std::uint64_t read_side_erasures_ ABSL_GUARDED_BY(ptl_) = 0;
};

// mmdrop()
//
// Drops a grab taken by mmgrab() (or any Ref); the last one frees the object.
inline void mmdrop(Ref<AddressSpace>& grab) { grab.reset(); }

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_ADDRESS_SPACE_H_
