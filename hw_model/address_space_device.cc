// AddressSpace: the device side (hmm_range_fault, snapshot lookups, migration, exclusive
// access).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "hw_model/address_space.h"
#include "hw_model/internal/page_range.h"
#include "sync/trace.h"

namespace itn::hw {
namespace {

// Where `page`'s outcome sits among the outcomes of a change that starts at `start`.
std::size_t outcome_index(std::uint64_t start, std::uint64_t page) {
  return (page - start) / kPageSize;
}

}  // namespace

absl::StatusOr<AddressSpace::FaultedRange> AddressSpace::fault_range(std::uint64_t addr,
                                                                     std::uint64_t length,
                                                                     bool write, const void* device,
                                                                     WalkBegin begin,
                                                                     WalkDone then) {
  if (absl::Status s = internal::check_page_range("fault_range", addr, length); !s.ok()) return s;
  FaultedRange out;
  // A hint only: a range past its mapping fails at its first hole.
  out.entries.reserve(std::min<std::uint64_t>(length / kPageSize, 1024));
  trace::Span span("hw", "walk", [&] {
    return trace::Args{{"mm", trace::hex(this)},
                       {"start", trace::hex(addr)},
                       {"end", trace::hex(addr + length)},
                       {"write", write}};
  });
  // The read side, as the kernel's hmm_range_fault: CPU faults and other walks run
  // meanwhile, and a caller's read_retry() catches what they change.
  ReadLock l(mmap_mu_);
  begin();
  PteHint hint;
  for (std::uint64_t page = addr; page < addr + length; page += kPageSize) {
    absl::StatusOr<PageEntry> entry =
        fault_for_device_locked(page, write, device, out.faulted, hint);
    if (!entry.ok()) return entry.status();
    out.entries.push_back(*std::move(entry));
  }
  then(out);
  span.end_arg("faulted", out.faulted);
  return out;
}

absl::StatusOr<PageEntry> AddressSpace::fault_for_device_locked(std::uint64_t addr, bool write,
                                                                const void* device,
                                                                std::uint64_t& faulted,
                                                                PteHint& hint) {
  absl::StatusOr<VmaMap::const_iterator> vma = vma_for_locked(addr, write);
  if (!vma.ok()) return vma.status();
  {
    MutexLock l(ptl_);
    const Ptes::iterator pte = find_pte_locked(page_of(addr), &hint);
    if (pte != ptes_.end()) {
      Pte& entry = pte->second;
      // Already the device's own: the VMA permits a write, so the entry may carry one,
      // unless it is a coherent page that fork() shares: a write copies that one.
      const bool own = device != nullptr && (entry.device == device || entry.exclusive == device);
      const bool ready = own ? !write || entry.writable || !entry.coherent
                             : cpu_reachable(entry) && (!write || entry.writable);
      if (ready) {
        if (own && write && !entry.writable) make_writable_locked(pte);
        hint.next = keep_locked(std::next(pte));
        return entry;
      }
    }
  }
  ++faulted;
  PageEntry out;
  if (absl::Status s = fault_locked(
          addr, write, [&](Pte& e) { out = e; }, &hint);
      !s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::vector<Ref<Frame>>> AddressSpace::pin_user_pages(std::uint64_t addr,
                                                                     std::uint64_t length,
                                                                     bool write, Pin pin) {
  if (absl::Status s = internal::check_page_range("pin_user_pages", addr, length); !s.ok()) {
    return s;
  }
  std::vector<Ref<Frame>> frames;
  frames.reserve(std::min<std::uint64_t>(length / kPageSize, 1024));  // a hint, as above
  // The read side, as the kernel's get_user_pages(): CPU faults and walks run meanwhile.
  ReadLock l(mmap_mu_);
  if (absl::Status s = fault_pages_locked(
          addr, addr + length, write, pin == Pin::kLongTerm ? Where::kSystemRam : Where::kAnywhere,
          [&](Pte& e) { frames.push_back(e.frame); });
      !s.ok()) {
    return s;
  }
  return frames;
}

absl::Status AddressSpace::check_access(std::uint64_t addr, std::uint64_t length,
                                        bool write) const {
  if (absl::Status s = internal::check_page_range("check_access", addr, length); !s.ok()) {
    return s;
  }
  ReadLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked(write ? "write" : "read"); !s.ok()) return s;
  for (std::uint64_t at = addr; at < addr + length;) {
    auto vma = find_vma_locked(at);
    if (absl::Status s = permits_locked(vma, at, write); !s.ok()) return s;
    if (vma->second.end >= addr + length) break;
    at = vma->second.end;
  }
  return absl::OkStatus();
}

absl::StatusOr<PageEntry> AddressSpace::lookup(std::uint64_t addr) const {
  ReadLock l(mmap_mu_);
  MutexLock p(ptl_);
  return lookup_locked(addr);
}

std::vector<absl::StatusOr<PageEntry>> AddressSpace::lookup_range(std::uint64_t addr,
                                                                  std::uint64_t pages) const {
  std::vector<absl::StatusOr<PageEntry>> out;
  out.reserve(pages);
  ReadLock l(mmap_mu_);
  MutexLock p(ptl_);  // one instant for the whole range: no fault's change is seen half done
  for (std::uint64_t i = 0; i < pages; ++i) out.push_back(lookup_locked(addr + i * kPageSize));
  return out;
}

absl::StatusOr<PageEntry> AddressSpace::lookup_locked(std::uint64_t addr) const {
  if (absl::Status s = check_alive_locked("lookup"); !s.ok()) return s;
  auto vma = find_vma_locked(addr);
  if (vma == vmas_.end()) return absl::NotFoundError(absl::StrCat("no mapping at ", addr));
  if (vma->second.prot == Prot::kNone) {
    return absl::PermissionDeniedError(absl::StrCat("PROT_NONE at ", addr));
  }
  auto pte = ptes_.find(page_of(addr));
  return pte == ptes_.end() ? PageEntry{} : pte->second;
}

void AddressSpace::evict_device(const void* device) {
  WriteLock l(mmap_mu_);
  for (auto& [page, entry] : ptes_for_writer()) {
    if (entry.device == device || entry.exclusive == device) restore_for_cpu_locked(page, entry);
  }
}

absl::StatusOr<AddressSpace::Outcomes> AddressSpace::migrate_to_device(
    std::uint64_t addr, std::uint64_t length, const void* device, MigrateHook hook,
    DeviceMemory memory, HugeAllocator allocate_huge, Moves moves) {
  return device_change(DeviceChange::kToDevice, addr, length, device, hook, memory, allocate_huge,
                       moves);
}

absl::StatusOr<AddressSpace::Outcomes> AddressSpace::migrate_to_system(
    std::uint64_t addr, std::uint64_t length, const void* device, MigrateHook hook,
    HugeAllocator allocate_huge, Moves moves) {
  return device_change(DeviceChange::kToSystem, addr, length, device, hook,
                       DeviceMemory::kPrivate,  // the kind matters only on the way in
                       allocate_huge, moves);
}

absl::StatusOr<AddressSpace::Outcomes> AddressSpace::make_exclusive(std::uint64_t addr,
                                                                    std::uint64_t length,
                                                                    const void* device,
                                                                    MigrateHook hook, Moves moves) {
  return device_change(DeviceChange::kExclusive, addr, length, device, hook, DeviceMemory::kPrivate,
                       huge_pages_available, moves);
}

std::vector<std::uint64_t> AddressSpace::plan_huge_pages_locked(
    DeviceChange change, std::uint64_t start, std::uint64_t end, const void* device,
    HugeAllocator allocate_huge, const Outcomes& outcomes) {
  std::vector<std::uint64_t> whole;
  for (std::uint64_t block = huge_page_of(start); block < end; block += kHugePageSize) {
    const BlockEntries entries = block_entries(ptes_for_writer(), block);
    const auto first = entries.begin();
    // A huge entry stands for the whole block: all 512 are huge, or none.
    const bool huge = !entries.empty() && first->first == block && first->second.huge;
    const auto may_become_huge = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mmap_mu_) {
      if (change != DeviceChange::kToDevice || !entries.empty()) return false;
      const auto vma = find_vma_locked(block);
      return vma != vmas_.end() && fits_huge_page(*vma, block);
    };
    if (!huge && !may_become_huge()) continue;
    if (change == DeviceChange::kToSystem && first->second.device != device) continue;  // stays
    // A huge page lies in one anonymous private VMA, on one device: its pages are all
    // skipped (another device's), or none.
    const std::uint64_t first_page = std::max(block, start);
    if (outcomes[outcome_index(start, first_page)] != PageOutcome::kMoved) continue;
    const bool covered = block >= start && block + kHugePageSize <= end;
    const bool here = change == DeviceChange::kToDevice && huge && first->second.device == device;
    // Pages already here need no allocation; exclusive access holds small pages.
    if (covered && change != DeviceChange::kExclusive && (here || allocate_huge())) {
      whole.push_back(block);
    } else if (huge) {
      split_huge_page_locked(block);
    }
  }
  return whole;
}

absl::StatusOr<AddressSpace::Outcomes> AddressSpace::check_device_change_locked(
    DeviceChange change, std::uint64_t start, std::uint64_t end, const void* device, Moves moves) {
  if (absl::Status s = check_alive_locked("migrate"); !s.ok()) return s;
  Outcomes outcomes;
  outcomes.reserve((end - start) / kPageSize);
  // Skips `page` for `outcome`, or, taking all or nothing, fails with `why`.
  const auto skip = [&](PageOutcome outcome, std::uint64_t page, const char* why) -> absl::Status {
    if (moves == Moves::kAllOrNothing) {
      return absl::FailedPreconditionError(absl::StrCat("page ", page, why));
    }
    outcomes.push_back(outcome);
    return absl::OkStatus();
  };
  for (std::uint64_t page = start; page < end; page += kPageSize) {
    auto vma = find_vma_locked(page);
    if (vma == vmas_.end()) return absl::NotFoundError(absl::StrCat("no mapping at ", page));
    const Prot prot = vma->second.prot;
    auto pte = ptes_for_writer().find(page);
    absl::Status s = absl::OkStatus();
    if (!is_private(vma->second.kind)) {  // whatever its protection
      s = skip(PageOutcome::kNotAnonymous, page,
               " is shared memory: only anonymous private pages move");
    } else if (vma->second.hugetlb) {
      s = absl::FailedPreconditionError(
          absl::StrCat("page ", page, " is hugetlb memory, which stays in system RAM"));
    } else if (prot == Prot::kNone ||
               (change == DeviceChange::kExclusive && prot != Prot::kReadWrite)) {
      s = absl::PermissionDeniedError(absl::StrCat("protection forbids it at ", page));
    } else if (change == DeviceChange::kToDevice && vma->second.kind == MapKind::kFilePrivate &&
               (pte == ptes_for_writer().end() || pte->second.page_cache)) {
      s = skip(PageOutcome::kNotAnonymous, page,
               " is the file's: only anonymous private pages move");
    } else if (change == DeviceChange::kToDevice && pte != ptes_for_writer().end() &&
               pte->second.device != nullptr && pte->second.device != device) {
      s = skip(PageOutcome::kOnAnotherDevice, page, " is on another device");
    } else {
      outcomes.push_back(PageOutcome::kMoved);  // until the change finds nothing to do
    }
    if (!s.ok()) return s;
  }
  return outcomes;
}

absl::StatusOr<AddressSpace::Outcomes> AddressSpace::device_change(
    DeviceChange change, std::uint64_t addr, std::uint64_t length, const void* device,
    MigrateHook hook, DeviceMemory memory, HugeAllocator allocate_huge, Moves moves) {
  if (absl::Status s = internal::check_page_range("migrate", addr, length); !s.ok()) return s;
  ITN_CHECK(device != nullptr, "a device change needs the device that makes it");
  const std::uint64_t end = addr + length;
  WriteLock l(mmap_mu_);
  absl::StatusOr<Outcomes> outcomes = check_device_change_locked(change, addr, end, device, moves);
  if (!outcomes.ok()) return outcomes.status();
  const auto taken = [&](std::uint64_t page) {
    return (*outcomes)[outcome_index(addr, page)] == PageOutcome::kMoved;
  };
  if (change == DeviceChange::kExclusive) {
    // Like the kernel's get_user_pages: present and writable first (may break CoW), and
    // in system RAM (a coherent device page comes back too); each run of pages taken.
    for (std::uint64_t run = addr; run < end;) {
      std::uint64_t run_end = run;
      while (run_end < end && taken(run_end)) run_end += kPageSize;
      ITN_CHECK_OK(fault_pages_locked(run, run_end, /*write=*/true, Where::kSystemRam, [](Pte&) {}),
                   "checked writable above");
      run = run_end + kPageSize;  // past the page that ended the run, which is skipped
    }
  }
  // After exclusive access faulted the range in (which may map a huge page, to split).
  const std::vector<std::uint64_t> whole =
      plan_huge_pages_locked(change, addr, end, device, allocate_huge, *outcomes);
  Ptes& ptes = ptes_for_writer();
  const Event event = change == DeviceChange::kExclusive ? Event::kExclusive : Event::kMigrate;
  Invalidation invalidation(*domain_, addr, end, event, device);
  for (std::uint64_t page = addr; page < end; page += kPageSize) {
    if (!taken(page)) continue;
    PageOutcome& outcome = (*outcomes)[outcome_index(addr, page)];
    // Only a migration to the device creates entries (absent pages arrive zero-filled);
    // the other changes touch entries that exist (exclusive access faulted them in above).
    auto existing = ptes.find(page);
    if (change == DeviceChange::kToSystem &&
        (existing == ptes.end() || existing->second.device != device)) {
      outcome = PageOutcome::kUnchanged;
      continue;
    }
    Pte& entry = existing != ptes.end() ? existing->second : ptes[page];
    const bool writable = find_vma_locked(page)->second.prot == Prot::kReadWrite;
    const bool huge = std::binary_search(whole.begin(), whole.end(), huge_page_of(page));
    switch (change) {
      case DeviceChange::kToDevice:
        // Already here: not copied, so the device's entry may stay writable (its own
        // kMigrate write-protected it).
        if (entry.device == device) {
          outcome = PageOutcome::kUnchanged;
          break;
        }
        entry = Pte{.frame = make_ref<Frame>(entry.frame ? entry.frame->read() : 0, device),
                    .writable = writable,
                    .device = device,
                    .coherent = memory == DeviceMemory::kCoherent,
                    .huge = huge};
        break;
      case DeviceChange::kToSystem:
        entry = Pte{.frame = make_ref<Frame>(entry.frame->read()),
                    .writable = entry.writable,
                    .huge = huge};
        break;
      case DeviceChange::kExclusive:
        entry.exclusive = device;
        break;
    }
    hook(page, entry);
  }
  return outcomes;
}

}  // namespace itn::hw
