#include "hw_model/address_space.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "hw_model/internal/page_range.h"

namespace itn::hw {

using internal::check_page_range;
using internal::page_aligned;

AddressSpace::AddressSpace()
    : domain_(make_ref<NotifierDomain>()), zero_page_(make_ref<Frame>(0)) {}

absl::StatusOr<std::uint64_t> AddressSpace::mmap(std::uint64_t length, Prot prot, MapKind kind,
                                                 Ref<File> file, std::uint64_t file_offset) {
  if (length == 0 || length > (std::uint64_t{1} << 40)) {
    return absl::InvalidArgumentError(absl::StrCat("mmap: bad length ", length));
  }
  const bool file_mapping = kind == MapKind::kFileShared || kind == MapKind::kFilePrivate;
  if (file_mapping != static_cast<bool>(file) || !page_aligned(file_offset)) {
    return absl::InvalidArgumentError(
        "mmap: a file (and page-aligned offset) for the file mappings only");
  }
  if (kind == MapKind::kAnonShared) file = make_ref<File>();
  const std::uint64_t pages = (length + kPageSize - 1) / kPageSize;
  MutexLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("mmap"); !s.ok()) return s;
  const std::uint64_t addr = next_addr_;
  next_addr_ += (pages + 1) * kPageSize;  // a guard page between mappings
  vmas_.emplace(addr, Vma{addr + pages * kPageSize, prot, kind, std::move(file), file_offset});
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
  Vma tail = it->second;
  tail.file_offset += addr - it->first;
  it->second.end = addr;
  vmas_.emplace(addr, std::move(tail));
}

bool AddressSpace::fully_mapped_locked(std::uint64_t start, std::uint64_t end) {
  for (std::uint64_t at = start; at < end;) {
    auto it = find_vma_locked(at);
    if (it == vmas_.end()) return false;
    at = it->second.end;
  }
  return true;
}

AddressSpace::Invalidation::Invalidation(NotifierDomain& domain, std::uint64_t start,
                                         std::uint64_t end, Event event, const void* owner)
    : domain_(domain),
      token_(domain.invalidate_range_start(
          Range{.start = start, .end = end, .event = event, .owner = owner})) {
  ITN_CHECK_OK(token_, "a blockable invalidation of a page range cannot fail");
}

AddressSpace::Invalidation::~Invalidation() { domain_.invalidate_range_end(*std::move(token_)); }

absl::Status AddressSpace::munmap(std::uint64_t addr, std::uint64_t length) {
  if (absl::Status s = check_page_range("munmap", addr, length); !s.ok()) return s;
  const std::uint64_t end = addr + length;
  MutexLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("munmap"); !s.ok()) return s;
  Invalidation invalidation(*domain_, addr, end, Event::kUnmap);
  ptes_.erase(ptes_.lower_bound(addr), ptes_.lower_bound(end));
  split_locked(addr);
  split_locked(end);
  vmas_.erase(vmas_.lower_bound(addr), vmas_.lower_bound(end));
  return absl::OkStatus();
}

absl::Status AddressSpace::mprotect(std::uint64_t addr, std::uint64_t length, Prot prot) {
  if (absl::Status s = check_page_range("mprotect", addr, length); !s.ok()) return s;
  const std::uint64_t end = addr + length;
  MutexLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("mprotect"); !s.ok()) return s;
  if (!fully_mapped_locked(addr, end)) {
    return absl::NotFoundError(
        absl::StrCat("mprotect: [", addr, ", ", end, ") has unmapped pages"));
  }
  Invalidation invalidation(*domain_, addr, end, Event::kProtectionVma);
  split_locked(addr);
  split_locked(end);
  for (auto it = vmas_.lower_bound(addr); it != vmas_.end() && it->first < end; ++it) {
    it->second.prot = prot;
  }
  // Entries lose write access now; a later write fault restores it if allowed. Frames
  // stay: a private page's content lives only in its frame.
  for (auto it = ptes_.lower_bound(addr); it != ptes_.end() && it->first < end; ++it) {
    if (prot != Prot::kReadWrite) it->second.writable = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::uint64_t> AddressSpace::reap() {
  MutexLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("reap"); !s.ok()) return s;
  std::uint64_t skipped = 0;
  for (const auto& [start, vma] : vmas_) {
    if (!is_private(vma.kind)) continue;  // shared pages outlive the process
    absl::StatusOr<InvalidationToken> token = domain_->invalidate_range_start(
        Range{.start = start, .end = vma.end, .event = Event::kUnmap, .blockable = false});
    if (!token.ok()) {
      // R5: the refused start undid itself; nothing to end, the pages stay.
      ITN_CHECK(absl::IsUnavailable(token.status()), "only a refusal fails a page range start");
      ++skipped;
      continue;
    }
    ptes_.erase(ptes_.lower_bound(start), ptes_.lower_bound(vma.end));
    domain_->invalidate_range_end(*std::move(token));
  }
  return skipped;
}

absl::StatusOr<AddressSpace::VmaMap::iterator> AddressSpace::vma_for_locked(std::uint64_t addr,
                                                                            bool write) {
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

absl::StatusOr<AddressSpace::Pte*> AddressSpace::fault_locked(std::uint64_t addr, bool write) {
  absl::StatusOr<VmaMap::iterator> vma = vma_for_locked(addr, write);
  if (!vma.ok()) return vma.status();
  const std::uint64_t vma_start = (*vma)->first;
  const Vma& v = (*vma)->second;
  const std::uint64_t page = page_of(addr);
  auto pte = ptes_.find(page);
  if (pte == ptes_.end()) {
    // Nothing to invalidate: no device can hold a copy of an absent entry.
    Pte fresh;
    if (v.kind == MapKind::kAnonPrivate) {
      fresh = write ? Pte{make_ref<Frame>(0), true} : Pte{zero_page_, false, /*zero_page=*/true};
    } else {
      Ref<Frame> cached = v.file->frame_at(v.file_offset + (page - vma_start));
      if (!is_private(v.kind)) {  // shared: the file's frame itself
        fresh = Pte{std::move(cached), write};
      } else if (write) {
        fresh = Pte{make_ref<Frame>(cached->read()), true};
      } else {
        fresh = Pte{.frame = std::move(cached), .page_cache = true};
      }
    }
    return &ptes_.emplace(page, std::move(fresh)).first->second;
  }
  Pte& entry = pte->second;
  if (!cpu_reachable(entry)) restore_for_cpu_locked(page, entry);
  if (!write || entry.writable) return &entry;
  if (is_private(v.kind)) {
    // Break copy-on-write (the zero page, a file's page, or a frame shared after fork, in
    // system RAM or coherent device memory): devices must drop the old frame before the
    // page gets a new one, in system RAM.
    Invalidation invalidation(*domain_, page, page + kPageSize, Event::kClear);
    entry = Pte{make_ref<Frame>(entry.frame->read()), true};
  } else {
    entry.writable = true;  // same frame: no copy anywhere can go stale
  }
  return &entry;
}

void AddressSpace::restore_for_cpu_locked(std::uint64_t page, Pte& entry) {
  if (entry.device != nullptr) {
    // Back to system RAM (the CPU cannot reach private device memory, or the device
    // goes away). Owner null: every device, the one that held it included, must drop its
    // entry.
    Invalidation invalidation(*domain_, page, page + kPageSize, Event::kMigrate);
    entry = Pte{make_ref<Frame>(entry.frame->read()), entry.writable};
  } else {
    Invalidation invalidation(*domain_, page, page + kPageSize, Event::kExclusive);
    entry.exclusive = nullptr;
  }
}

absl::StatusOr<std::uint64_t> AddressSpace::cpu_read(std::uint64_t addr) {
  MutexLock l(mmap_mu_);
  absl::StatusOr<Pte*> pte = fault_locked(addr, /*write=*/false);
  if (!pte.ok()) return pte.status();
  return (*pte)->frame->read();
}

absl::Status AddressSpace::cpu_write(std::uint64_t addr, std::uint64_t value) {
  MutexLock l(mmap_mu_);
  absl::StatusOr<Pte*> pte = fault_locked(addr, /*write=*/true);
  if (!pte.ok()) return pte.status();
  (*pte)->frame->write(value);
  return absl::OkStatus();
}

}  // namespace itn::hw
