#include "hw_model/address_space.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "hw_model/internal/page_range.h"

namespace itn::hw {

using internal::check_page_range;
using internal::page_aligned;

AddressSpace::AddressSpace()
    : domain_(make_ref<NotifierDomain>()), zero_page_(make_ref<Frame>(0)) {}

absl::StatusOr<std::uint64_t> AddressSpace::reserve_locked(const char* what, std::uint64_t length,
                                                           std::uint64_t align) {
  if (length == 0 || length > (std::uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": bad length ", length));
  }
  if (absl::Status s = check_alive_locked(what); !s.ok()) return s;
  const std::uint64_t bytes = (length + align - 1) / align * align;
  // Past the end after an mremap to the top, or after the last reservation.
  const std::uint64_t addr = (next_addr_ + align - 1) / align * align;
  if (addr < next_addr_ || addr > kUserSpaceEnd || bytes + kPageSize > kUserSpaceEnd - addr) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": the user address space is used up"));
  }
  next_addr_ = addr + bytes + kPageSize;  // a guard page between mappings
  return addr;
}

absl::StatusOr<std::uint64_t> AddressSpace::mmap_hugetlb(std::uint64_t length, Prot prot) {
  WriteLock l(mmap_mu_);
  absl::StatusOr<std::uint64_t> addr = reserve_locked("mmap_hugetlb", length, kHugePageSize);
  if (!addr.ok()) return addr.status();
  const std::uint64_t bytes = (length + kHugePageSize - 1) / kHugePageSize * kHugePageSize;
  Vma vma{*addr + bytes, prot, MapKind::kAnonPrivate, nullptr, 0};
  vma.hugetlb = true;
  vmas_.emplace(*addr, std::move(vma));
  return addr;
}

absl::StatusOr<std::uint64_t> AddressSpace::mmap(std::uint64_t length, Prot prot, MapKind kind,
                                                 Ref<File> file, std::uint64_t file_offset,
                                                 bool populate) {
  const bool file_mapping = kind == MapKind::kFileShared || kind == MapKind::kFilePrivate;
  if (file_mapping != static_cast<bool>(file) || !page_aligned(file_offset)) {
    return absl::InvalidArgumentError(
        "mmap: a file (and page-aligned offset) for the file mappings only");
  }
  if (kind == MapKind::kAnonShared) file = make_ref<File>();
  WriteLock l(mmap_mu_);
  absl::StatusOr<std::uint64_t> addr = reserve_locked("mmap", length, kPageSize);
  if (!addr.ok()) return addr.status();
  const std::uint64_t end = *addr + (length + kPageSize - 1) / kPageSize * kPageSize;
  vmas_.emplace(*addr, Vma{end, prot, kind, std::move(file), file_offset});
  if (populate && prot != Prot::kNone) {
    ITN_CHECK_OK(fault_pages_locked(*addr, end, /*write=*/false, Where::kAnywhere, [](Pte&) {}),
                 "a read of a readable mapping just made");
  }
  return addr;
}

AddressSpace::VmaMap::iterator AddressSpace::find_vma_locked(std::uint64_t addr) {
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return vmas_.end();
  --it;
  return addr < it->second.end ? it : vmas_.end();
}

AddressSpace::VmaMap::const_iterator AddressSpace::find_vma_locked(std::uint64_t addr) const {
  auto it = vmas_.upper_bound(addr);
  if (it == vmas_.begin()) return vmas_.end();
  --it;
  return addr < it->second.end ? it : vmas_.end();
}

void AddressSpace::split_locked(std::uint64_t addr) {
  auto it = find_vma_locked(addr);
  if (it == vmas_.end() || it->first == addr) return;
  split_huge_page_at_locked(addr);
  Vma tail = it->second;
  tail.file_offset += addr - it->first;
  it->second.end = addr;
  vmas_.emplace(addr, std::move(tail));
}

absl::Status AddressSpace::check_hugetlb_edges_locked(const char* what, std::uint64_t start,
                                                      std::uint64_t end) const {
  for (const std::uint64_t edge : {start, end}) {
    auto vma = find_vma_locked(edge);
    if (vma != vmas_.end() && vma->second.hugetlb && edge != huge_page_of(edge)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": [", start, ", ", end, ") cuts a huge page of a hugetlb mapping at ", edge));
    }
  }
  return absl::OkStatus();
}

absl::Status AddressSpace::check_mapped_locked(const char* what, std::uint64_t start,
                                               std::uint64_t end) const {
  if (absl::Status s = check_alive_locked(what); !s.ok()) return s;
  for (std::uint64_t at = start; at < end;) {
    auto it = find_vma_locked(at);
    if (it == vmas_.end()) {
      return absl::NotFoundError(
          absl::StrCat(what, ": [", start, ", ", end, ") has unmapped pages"));
    }
    at = it->second.end;
  }
  return absl::OkStatus();
}

AddressSpace::Invalidation::Invalidation(NotifierDomain& domain, std::uint64_t start,
                                         std::uint64_t end, Event event, const void* owner)
    : domain_(domain),
      start_(start),
      end_(end),
      event_(event),
      token_(domain.invalidate_range_start(
          Range{.start = start, .end = end, .event = event, .owner = owner})) {
  ITN_CHECK_OK(token_, "a blockable invalidation of a page range cannot fail");
}

AddressSpace::Invalidation::~Invalidation() { domain_.invalidate_range_end(*std::move(token_)); }

absl::Status AddressSpace::munmap(std::uint64_t addr, std::uint64_t length) {
  if (absl::Status s = check_page_range("munmap", addr, length); !s.ok()) return s;
  const std::uint64_t end = addr + length;
  WriteLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("munmap"); !s.ok()) return s;
  if (absl::Status s = check_hugetlb_edges_locked("munmap", addr, end); !s.ok()) return s;
  unmap_locked(addr, end);
  return absl::OkStatus();
}

void AddressSpace::unmap_locked(std::uint64_t start, std::uint64_t end) {
  split_locked(start);  // first: a huge page cut in two splits under its own invalidation
  split_locked(end);
  Invalidation invalidation(*domain_, start, end, Event::kUnmap);
  Ptes& ptes = ptes_for_writer();
  ptes.erase(ptes.lower_bound(start), ptes.lower_bound(end));
  vmas_.erase(vmas_.lower_bound(start), vmas_.lower_bound(end));
}

absl::Status AddressSpace::mremap(std::uint64_t old_addr, std::uint64_t length,
                                  std::uint64_t new_addr, bool keep_old) {
  if (absl::Status s = check_page_range("mremap", old_addr, length); !s.ok()) return s;
  if (absl::Status s = check_page_range("mremap", new_addr, length); !s.ok()) return s;
  const std::uint64_t old_end = old_addr + length, new_end = new_addr + length;
  if (new_end > kUserSpaceEnd) {
    return absl::InvalidArgumentError(
        absl::StrCat("mremap: [", new_addr, ", ", new_end, ") is past the user address space"));
  }
  if (old_addr < new_end && new_addr < old_end) {
    return absl::InvalidArgumentError("mremap: the old and new ranges overlap");
  }
  WriteLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("mremap"); !s.ok()) return s;
  auto vma = find_vma_locked(old_addr);
  if (vma == vmas_.end()) {
    return absl::NotFoundError(absl::StrCat("mremap: no mapping at ", old_addr));
  }
  if (vma->second.end < old_end) {
    return absl::InvalidArgumentError(
        absl::StrCat("mremap: [", old_addr, ", ", old_end, ") is not one mapping"));
  }
  if (keep_old && (vma->second.kind != MapKind::kAnonPrivate || vma->second.hugetlb)) {
    return absl::InvalidArgumentError(
        "mremap: keep_old needs anonymous private memory (not hugetlb)");
  }
  if (vma->second.hugetlb && new_addr != huge_page_of(new_addr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mremap: a hugetlb mapping moves to a huge page boundary, not ", new_addr));
  }
  if (absl::Status s = check_hugetlb_edges_locked("mremap", old_addr, old_end); !s.ok()) return s;
  if (absl::Status s = check_hugetlb_edges_locked("mremap", new_addr, new_end); !s.ok()) return s;
  Vma moved = vma->second;
  moved.file_offset += old_addr - vma->first;
  moved.end = new_end;
  unmap_locked(new_addr, new_end);
  // Huge pages move whole only to an aligned place and only if the range holds them whole.
  if ((new_addr - old_addr) % kHugePageSize == 0) {
    split_huge_page_at_locked(old_addr);
    split_huge_page_at_locked(old_end);
  } else {
    for (std::uint64_t block = huge_page_of(old_addr); block < old_end; block += kHugePageSize) {
      split_huge_page_locked(block);
    }
  }
  {
    Invalidation invalidation(*domain_, old_addr, old_end, Event::kUnmap);
    Ptes& ptes = ptes_for_writer();
    // All taken out before any goes in: the new range may lie on either side.
    const auto first = ptes.lower_bound(old_addr), last = ptes.lower_bound(old_end);
    std::vector<std::pair<std::uint64_t, Pte>> moving;
    for (auto it = first; it != last; ++it) {
      moving.emplace_back(new_addr + (it->first - old_addr), std::move(it->second));
    }
    ptes.erase(first, last);
    ptes.insert(std::make_move_iterator(moving.begin()), std::make_move_iterator(moving.end()));
  }
  if (!keep_old) {
    split_locked(old_addr);
    split_locked(old_end);
    vmas_.erase(vmas_.lower_bound(old_addr), vmas_.lower_bound(old_end));
  }
  vmas_.emplace(new_addr, std::move(moved));
  next_addr_ = std::max(next_addr_, new_end + kPageSize);  // mmap never hands it out again
  return absl::OkStatus();
}

absl::Status AddressSpace::mprotect(std::uint64_t addr, std::uint64_t length, Prot prot) {
  if (absl::Status s = check_page_range("mprotect", addr, length); !s.ok()) return s;
  const std::uint64_t end = addr + length;
  WriteLock l(mmap_mu_);
  if (absl::Status s = check_mapped_locked("mprotect", addr, end); !s.ok()) return s;
  if (absl::Status s = check_hugetlb_edges_locked("mprotect", addr, end); !s.ok()) return s;
  split_locked(addr);
  split_locked(end);
  Invalidation invalidation(*domain_, addr, end, Event::kProtectionVma);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < end; ++it) {
    it->second.prot = prot;
  }
  // Entries lose write access now; a later write fault restores it if allowed. Frames
  // stay: a private page's content lives only in its frame.
  Ptes& ptes = ptes_for_writer();
  for (auto it = ptes.lower_bound(addr); it != ptes.end() && it->first < end; ++it) {
    if (prot != Prot::kReadWrite) it->second.writable = false;
  }
  return absl::OkStatus();
}

absl::Status AddressSpace::madvise(std::uint64_t addr, std::uint64_t length, Advice advice) {
  if (absl::Status s = check_page_range("madvise", addr, length); !s.ok()) return s;
  const std::uint64_t end = addr + length;
  if (advice == Advice::kFree) {  // changes entries only: the read side
    ReadLock l(mmap_mu_);
    if (absl::Status s = check_advice_locked(addr, end, advice); !s.ok()) return s;
    free_pages_locked(addr, end);
    return absl::OkStatus();
  }
  WriteLock l(mmap_mu_);
  if (absl::Status s = check_advice_locked(addr, end, advice); !s.ok()) return s;
  split_locked(addr);
  split_locked(end);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < end; ++it) {
    it->second.huge_pages = advice == Advice::kHugePage;
  }
  return absl::OkStatus();
}

absl::Status AddressSpace::check_advice_locked(std::uint64_t start, std::uint64_t end,
                                               Advice advice) const {
  if (absl::Status s = check_mapped_locked("madvise", start, end); !s.ok()) return s;
  if (absl::Status s = check_hugetlb_edges_locked("madvise", start, end); !s.ok()) return s;
  if (advice != Advice::kFree) return absl::OkStatus();
  for (auto it = find_vma_locked(start); it != vmas_.end() && it->first < end; ++it) {
    if (it->second.kind != MapKind::kAnonPrivate || it->second.hugetlb) {
      return absl::InvalidArgumentError(
          absl::StrCat("madvise: kFree of [", start, ", ", end,
                       ") reaches memory that is not anonymous private (or is hugetlb)"));
    }
  }
  return absl::OkStatus();
}

bool AddressSpace::cuts_huge_page_locked(std::uint64_t addr) const {
  const std::uint64_t block = huge_page_of(addr);
  if (addr == block) return false;
  // A fault may map one by the time the caller takes the page table lock.
  const auto vma = find_vma_locked(block);
  if (vma != vmas_.end() && fits_huge_page(*vma, block)) return true;
  // Else one that is there (mapped before the VMA lost its hint) is all there can be.
  MutexLock l(ptl_);
  const auto first = ptes_.lower_bound(block);
  return first != ptes_.end() && first->first < block + kHugePageSize && first->second.huge;
}

void AddressSpace::free_pages_locked(std::uint64_t start, std::uint64_t end) {
  // One invalidation and one hold of the page table lock: the free takes effect at one
  // instant, so each concurrent fault comes wholly before or after it. A huge page the
  // range cuts (or one a fault may map there meanwhile) splits in that hold, inside the
  // invalidation, which covers all of it.
  const bool cuts_first = cuts_huge_page_locked(start), cuts_last = cuts_huge_page_locked(end);
  const std::uint64_t from = cuts_first ? huge_page_of(start) : start;
  const std::uint64_t to = cuts_last ? huge_page_of(end) + kHugePageSize : end;
  Invalidation invalidation(*domain_, from, to, Event::kClear);
  MutexLock l(ptl_);
  for (const auto& [cuts, at] : {std::pair{cuts_first, start}, std::pair{cuts_last, end}}) {
    if (!cuts) continue;
    for (auto& [page, entry] : block_entries(ptes_, huge_page_of(at))) entry.huge = false;
  }
  bool erased = false;
  for (auto it = ptes_.lower_bound(start); it != ptes_.end() && it->first < end;) {
    const Pte& entry = it->second;
    // Device pages are not present: they stay. A huge page inside the range goes whole:
    // all of its entries are in system RAM or none.
    if (cpu_reachable(entry) && entry.device == nullptr) {
      it = ptes_.erase(it);
      erased = true;
    } else {
      ++it;
    }
  }
  if (erased) ++read_side_erasures_;  // pairs with still_valid_locked(): kept entries are stale
}

AddressSpace::BlockEntries AddressSpace::block_entries(Ptes& ptes, std::uint64_t block) {
  return {ptes.lower_bound(block), ptes.lower_bound(block + kHugePageSize)};
}

void AddressSpace::split_huge_page_locked(std::uint64_t block) {
  Ptes& ptes = ptes_for_writer();
  const BlockEntries entries = block_entries(ptes, block);
  if (entries.empty() || !entries.begin()->second.huge) return;
  ITN_DCHECK(!find_vma_locked(block)->second.hugetlb, "a hugetlb huge page never splits");
  Invalidation invalidation(*domain_, block, block + kHugePageSize, Event::kClear);
  for (auto& [page, entry] : entries) entry.huge = false;
}

void AddressSpace::split_huge_page_at_locked(std::uint64_t addr) {
  if (addr != huge_page_of(addr)) split_huge_page_locked(huge_page_of(addr));
}

absl::StatusOr<std::uint64_t> AddressSpace::reap() {
  WriteLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("reap"); !s.ok()) return s;
  std::uint64_t skipped = 0;
  for (const auto& [start, vma] : vmas_) {
    // Shared pages outlive the process; the kernel's reaper leaves hugetlb pages alone.
    if (!is_private(vma.kind) || vma.hugetlb) continue;
    absl::StatusOr<InvalidationToken> token = domain_->invalidate_range_start(
        Range{.start = start, .end = vma.end, .event = Event::kUnmap, .blockable = false});
    if (!token.ok()) {
      // R5: the refused start undid itself; nothing to end, the pages stay.
      ITN_CHECK(absl::IsUnavailable(token.status()), "only a refusal fails a page range start");
      ++skipped;
      continue;
    }
    Ptes& ptes = ptes_for_writer();
    ptes.erase(ptes.lower_bound(start), ptes.lower_bound(vma.end));
    domain_->invalidate_range_end(*std::move(token));
  }
  return skipped;
}

absl::StatusOr<AddressSpace::VmaMap::const_iterator> AddressSpace::vma_for_locked(
    std::uint64_t addr, bool write) const {
  if (absl::Status s = check_alive_locked(write ? "write" : "read"); !s.ok()) return s;
  auto vma = find_vma_locked(addr);
  if (absl::Status s = permits_locked(vma, addr, write); !s.ok()) return s;
  return vma;
}

absl::Status AddressSpace::permits_locked(VmaMap::const_iterator vma, std::uint64_t addr,
                                          bool write) const {
  if (vma == vmas_.end()) return absl::NotFoundError(absl::StrCat("no mapping at ", addr));
  const Prot prot = vma->second.prot;
  if (prot == Prot::kNone || (write && prot != Prot::kReadWrite)) {
    return absl::PermissionDeniedError(
        absl::StrCat(write ? "write" : "read", " not permitted at ", addr));
  }
  return absl::OkStatus();
}

AddressSpace::Pte AddressSpace::fresh_entry_locked(VmaMap::const_iterator vma, std::uint64_t page,
                                                   bool write) const {
  const Vma& v = vma->second;
  if (v.kind == MapKind::kAnonPrivate) {
    return write ? Pte{make_ref<Frame>(0), true} : Pte{zero_page_, false, /*zero_page=*/true};
  }
  Ref<Frame> cached = v.file->frame_at(v.file_offset + (page - vma->first));
  if (!is_private(v.kind)) return Pte{std::move(cached), write};  // shared: the file's frame
  if (write) return Pte{make_ref<Frame>(cached->read()), true};
  return Pte{.frame = std::move(cached), .page_cache = true};
}

bool AddressSpace::maps_huge_page_locked(VmaMap::const_iterator vma, std::uint64_t page) const {
  const std::uint64_t block = huge_page_of(page);
  if (!fits_huge_page(*vma, block)) return false;
  auto first = ptes_.lower_bound(block);
  return first == ptes_.end() || first->first >= block + kHugePageSize;  // nothing mapped yet
}

void AddressSpace::map_huge_page_locked(VmaMap::const_iterator vma, std::uint64_t block,
                                        bool write) {
  auto hint = ptes_.lower_bound(block);
  for (std::uint64_t page = block; page < block + kHugePageSize; page += kPageSize) {
    // The huge zero page for a read, unless hugetlb, which has none.
    Pte entry{.frame = zero_page_, .zero_page = true};
    if (write || vma->second.hugetlb) {
      entry = Pte{.frame = make_ref<Frame>(0), .writable = write};
    }
    entry.huge = true;
    hint = std::next(ptes_.emplace_hint(hint, page, std::move(entry)));
  }
}

void AddressSpace::make_writable_locked(Ptes::iterator pte) {
  if (!pte->second.huge) {
    pte->second.writable = true;
    return;
  }
  // One writable bit for the whole PMD.
  for (auto& [at, entry] : block_entries(ptes_, huge_page_of(pte->first))) entry.writable = true;
}

AddressSpace::Ptes::iterator AddressSpace::find_pte_locked(std::uint64_t page,
                                                           const PteHint* hint) {
  const std::optional<Ptes::iterator> kept =
      hint == nullptr ? std::nullopt : still_valid_locked(hint->next);
  if (!kept) return ptes_.find(page);
  // When the walk left it, the hint's entry was `page`'s or the first past it. A
  // concurrent fault may have inserted entries since: just before it, nowhere else
  // between the walk's pages.
  const Ptes::iterator next = *kept;
  if (next != ptes_.end() && next->first == page) return next;
  ITN_DCHECK(next == ptes_.end() || next->first > page, "a walk faults consecutive pages in order");
  if (next != ptes_.begin() && std::prev(next)->first >= page) return ptes_.find(page);
  return ptes_.end();
}

void AddressSpace::change_huge_page(Ptes& ptes, std::uint64_t block, Event change) {
  ITN_DCHECK(change == Event::kClear || change == Event::kMigrate,
             "a huge page is copied or brought back whole; exclusive access splits it first");
  for (auto& [page, entry] : block_entries(ptes, block)) {
    apply_cpu_fault_change(entry, change);
    entry.huge = true;
  }
}

std::optional<Event> AddressSpace::cpu_fault_change(const Pte& entry, bool write, bool private_vma,
                                                    Where where) {
  if (!cpu_reachable(entry) || (where == Where::kSystemRam && entry.device != nullptr)) {
    return entry.device != nullptr ? Event::kMigrate : Event::kExclusive;
  }
  if (write && !entry.writable && private_vma) return Event::kClear;
  return std::nullopt;
}

void AddressSpace::apply_cpu_fault_change(Pte& entry, Event change) {
  switch (change) {
    case Event::kMigrate:
      // Back to system RAM (the CPU cannot reach private device memory, or the device
      // goes away). Owner null: every device, the one that held it included, drops it.
      entry = Pte{make_ref<Frame>(entry.frame->read()), entry.writable};
      break;
    case Event::kExclusive:
      entry.exclusive = nullptr;
      break;
    case Event::kClear:
      // Break copy-on-write (the zero page, a file's page, or a frame shared after fork,
      // in system RAM or coherent device memory): a new frame, in system RAM.
      entry = Pte{make_ref<Frame>(entry.frame->read()), true};
      break;
    default:
      ITN_CHECK(false, "not a change a CPU fault makes");
  }
}

absl::Status AddressSpace::fault_locked(std::uint64_t addr, bool write,
                                        absl::FunctionRef<void(Pte&)> use, PteHint* hint,
                                        Where where) {
  absl::StatusOr<VmaMap::const_iterator> vma = vma_for_locked(addr, write);
  if (!vma.ok()) return vma.status();
  const bool private_vma = is_private((*vma)->second.kind);
  const std::uint64_t page = page_of(addr);
  // Devices must drop their copies before an existing entry changes, and their callbacks
  // may sleep: the invalidation runs without the page table lock, and the change is made
  // under it only if the entry, looked at again, still needs it (a concurrent fault of
  // the same page may have made it meanwhile, like the kernel's pte_same() check).
  std::optional<Invalidation> invalidation;
  std::optional<KeptPte> found;  // the page's entry, once found
  const auto done = [&](Ptes::iterator pte) ABSL_EXCLUSIVE_LOCKS_REQUIRED(ptl_) {
    use(pte->second);
    if (hint != nullptr) hint->next = keep_locked(std::next(pte));
    return absl::OkStatus();
  };
  for (;;) {
    std::optional<Event> change;
    std::uint64_t start = 0, end = 0;  // the range `change` invalidates
    {
      MutexLock l(ptl_);
      // Gone if a free dropped it meanwhile: then the page is absent again.
      const std::optional<Ptes::iterator> kept = still_valid_locked(found);
      const Ptes::iterator pte = kept ? *kept : find_pte_locked(page, hint);
      if (pte == ptes_.end()) {
        // Nothing to invalidate: no device can hold a copy of an absent entry.
        if (maps_huge_page_locked(*vma, page)) {
          map_huge_page_locked(*vma, huge_page_of(page), write);
          return done(ptes_.find(page));
        }
        return done(ptes_.emplace(page, fresh_entry_locked(*vma, page, write)).first);
      }
      found = keep_locked(pte);
      Pte& entry = pte->second;
      change = cpu_fault_change(entry, write, private_vma, where);
      if (!change) {
        if (write && !entry.writable) {
          make_writable_locked(pte);  // a shared page: same frame, no copy goes stale
        }
        return done(pte);
      }
      // A huge page changes as a whole.
      start = entry.huge ? huge_page_of(page) : page;
      end = entry.huge ? start + kHugePageSize : page + kPageSize;
      if (invalidation && invalidation->event() == *change && invalidation->start() == start &&
          invalidation->end() == end) {
        if (entry.huge) {
          change_huge_page(ptes_, start, *change);
        } else {
          apply_cpu_fault_change(entry, *change);
        }
        continue;  // a write to a page just brought back may need a copy too
      }
    }
    invalidation.reset();
    invalidation.emplace(*domain_, start, end, *change);
  }
}

void AddressSpace::restore_for_cpu_locked(std::uint64_t page, Pte& entry) {
  // A coherent device page too (the device goes away, or exclusive access needs RAM).
  const Event change = entry.device != nullptr ? Event::kMigrate : Event::kExclusive;
  if (entry.huge) {  // the whole block comes back (later pages of it need nothing more)
    const std::uint64_t block = huge_page_of(page);
    Invalidation invalidation(*domain_, block, block + kHugePageSize, change);
    change_huge_page(ptes_for_writer(), block, change);
    return;
  }
  Invalidation invalidation(*domain_, page, page + kPageSize, change);
  apply_cpu_fault_change(entry, change);
}

absl::Status AddressSpace::fault_pages_locked(std::uint64_t start, std::uint64_t end, bool write,
                                              Where where, absl::FunctionRef<void(Pte&)> use) {
  PteHint hint;
  for (std::uint64_t page = start; page < end; page += kPageSize) {
    if (absl::Status s = fault_locked(page, write, use, &hint, where); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::uint64_t> AddressSpace::cpu_read(std::uint64_t addr) {
  ReadLock l(mmap_mu_);
  std::uint64_t word = 0;
  if (absl::Status s = fault_locked(addr, /*write=*/false, [&](Pte& e) { word = e.frame->read(); });
      !s.ok()) {
    return s;
  }
  return word;
}

absl::Status AddressSpace::cpu_write(std::uint64_t addr, std::uint64_t value) {
  ReadLock l(mmap_mu_);
  return fault_locked(addr, /*write=*/true, [&](Pte& e) { e.frame->write(value); });
}

}  // namespace itn::hw
