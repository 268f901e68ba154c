// hw_model/address_space.h
//
// itn::hw::AddressSpace: a simulated CPU address space (the kernel's mm_struct) with VMAs,
// a page table of reference-counted frames, and the NotifierDomain that devices subscribe
// to. Every change to an existing page table entry is bracketed by
// invalidate_range_start/end with the Event the kernel would use, so a mirror built on
// the domain stays coherent:
//
//   munmap                 kUnmap over the range
//   mprotect               kProtectionVma over the range
//   write fault on a read-only private page (zero page, copy-on-write)
//                          kClear over the page, then a fresh writable frame
//
// Installing an entry where there was none needs no invalidation (no device can hold a
// copy of nothing), exactly as in the kernel.
//
// Mappings: anonymous private (zero page on read, a new frame on write), anonymous shared
// and file-backed shared (frames come from a File shared by every mapping of it; an
// anonymous shared mapping gets a File of its own).
//
// Thread safety: every method may be called from any thread; the mmap lock serialises
// them. Notifier callbacks run with the mmap lock held and must not call back into the
// address space (as in the kernel, where invalidations run under mmap_lock).
// Lifetime: created with make_ref. Devices keep the notifier domain alive through their
// notifiers' grab.
// Memory ordering: the mmap lock orders page table changes; an invalidation's callbacks
// run before the change it announces, and its end after.
#ifndef ITN_HW_MODEL_ADDRESS_SPACE_H_
#define ITN_HW_MODEL_ADDRESS_SPACE_H_

#include <cstdint>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/memory.h"
#include "notifier/domain.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::hw {

enum class Prot : std::uint8_t { kNone, kRead, kReadWrite };

enum class MapKind : std::uint8_t { kAnonPrivate, kAnonShared, kFileShared };

class AddressSpace : public RefCounted {
 public:
  AddressSpace();

  // AddressSpace::notifiers()
  //
  // The domain devices insert their notifiers into.
  NotifierDomain& notifiers() const { return *domain_; }

  // AddressSpace::mmap()
  //
  // Maps `length` bytes (rounded up to pages) at a fresh address and returns it. `file`
  // and `file_offset` (page-aligned) are for kFileShared only.
  // Errors (nothing changes): kInvalidArgument for length 0, a missing or unexpected file,
  // or an unaligned offset.
  absl::StatusOr<std::uint64_t> mmap(std::uint64_t length, Prot prot, MapKind kind,
                                     Ref<File> file = nullptr, std::uint64_t file_offset = 0)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::munmap()
  //
  // Unmaps every page of [addr, addr + length) (holes are fine), splitting VMAs.
  // Errors (nothing changes): kInvalidArgument for an unaligned or empty range.
  absl::Status munmap(std::uint64_t addr, std::uint64_t length) ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::mprotect()
  //
  // Changes the protection of [addr, addr + length), which must be fully mapped.
  // Errors (nothing changes): kInvalidArgument for an unaligned or empty range, kNotFound
  // if part of it is unmapped.
  absl::Status mprotect(std::uint64_t addr, std::uint64_t length, Prot prot)
      ABSL_LOCKS_EXCLUDED(mmap_mu_);

  // AddressSpace::cpu_read() / cpu_write()
  //
  // A CPU access to the word of the page holding `addr`, faulting the page in as needed.
  // Errors (nothing changes): kNotFound if unmapped, kPermissionDenied if the protection
  // forbids the access.
  absl::StatusOr<std::uint64_t> cpu_read(std::uint64_t addr) ABSL_LOCKS_EXCLUDED(mmap_mu_);
  absl::Status cpu_write(std::uint64_t addr, std::uint64_t value) ABSL_LOCKS_EXCLUDED(mmap_mu_);

 private:
  struct Vma {
    std::uint64_t end;  // exclusive; the start is the map key
    Prot prot;
    MapKind kind;
    Ref<File> file;
    std::uint64_t file_offset;  // of the VMA's start
  };
  struct Pte {
    Ref<Frame> frame;
    bool writable;
  };
  using VmaMap = std::map<std::uint64_t, Vma>;

  // Makes the page of `addr` present (and writable, for a write); returns its entry.
  absl::StatusOr<Pte*> fault_locked(std::uint64_t addr, bool write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  VmaMap::iterator find_vma_locked(std::uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // Splits the VMA that strictly contains `addr`, if any, so that a VMA starts there.
  void split_locked(std::uint64_t addr) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  bool fully_mapped_locked(std::uint64_t start, std::uint64_t end)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_);
  // Brackets a page table change: invalidate_range_start over [start, end) on
  // construction, the matching end on destruction. Used under mmap_mu_.
  class Invalidation {
   public:
    Invalidation(NotifierDomain& domain, std::uint64_t start, std::uint64_t end, Event event);
    ~Invalidation();
    Invalidation(const Invalidation&) = delete;
    Invalidation& operator=(const Invalidation&) = delete;

   private:
    NotifierDomain& domain_;
    const Range range_;
  };

  const Ref<NotifierDomain> domain_;
  const Ref<Frame> zero_page_;  // shared read-only by every untouched private page

  Mutex mmap_mu_;
  VmaMap vmas_ ABSL_GUARDED_BY(mmap_mu_);
  std::map<std::uint64_t, Pte> ptes_ ABSL_GUARDED_BY(mmap_mu_);   // page address -> entry
  std::uint64_t next_addr_ ABSL_GUARDED_BY(mmap_mu_) = 0x100000;  // never reused
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_ADDRESS_SPACE_H_
