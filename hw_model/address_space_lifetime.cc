// AddressSpace: users (mmget/mmput), teardown and fork.
#include <utility>

#include "absl/strings/str_cat.h"

#include "hw_model/address_space.h"
#include "sync/trace.h"

namespace itn::hw {

void AddressSpace::mmget() {
  // Relaxed: as mmget_not_zero(); the caller's own user keeps the count above zero.
  const std::uint64_t before = users_.fetch_add(1, std::memory_order_relaxed);
  ITN_CHECK(before != 0, "mmget() without holding a user: use mmget_not_zero()");
}

bool AddressSpace::mmget_not_zero() {
  std::uint64_t n = users_.load(std::memory_order_relaxed);
  while (n != 0) {
    // Relaxed: like a reference count increment; the page table itself is ordered by
    // mmap_mu_, and the final decrement in mmput() is acq_rel.
    if (users_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void AddressSpace::mmput() {
  // acq_rel: the release half publishes this user's work; the acquire half of the last
  // decrement pairs with every earlier user's, so the teardown runs after all of it.
  const std::uint64_t before = users_.fetch_sub(1, std::memory_order_acq_rel);
  ITN_CHECK(before != 0, "mmput() without a matching user (mmget_not_zero or creation)");
  if (before != 1) return;
  trace::Span span("hw", "mm teardown", [&] { return trace::Args{{"mm", trace::hex(this)}}; });
  {
    // From here every page table operation fails, so nothing changes behind the release.
    WriteLock l(mmap_mu_);
    exited_ = true;
  }
  domain_->release();  // kRelease to every device, release() to whole-space notifiers
  WriteLock l(mmap_mu_);
  ptes_for_writer().clear();  // no invalidation: every subscriber was just told the space is gone
  vmas_.clear();
}

bool AddressSpace::exited() const {
  ReadLock l(mmap_mu_);
  return exited_;
}

absl::Status AddressSpace::check_alive_locked(const char* what) const {
  if (!exited_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": the address space has exited (its last user is gone)"));
}

absl::StatusOr<Ref<AddressSpace>> AddressSpace::fork() {
  Ref<AddressSpace> child = make_ref<AddressSpace>();
  WriteLock l(mmap_mu_);
  if (absl::Status s = check_alive_locked("fork"); !s.ok()) return s;
  // The child gets pages the CPU can reach: private device pages come back, exclusive
  // access ends (coherent device pages stay, and the child gets copies of them).
  Ptes& ptes = ptes_for_writer();
  for (auto& [page, entry] : ptes) {
    if (!cpu_reachable(entry)) restore_for_cpu_locked(page, entry);
  }
  for (const auto& [start, vma] : vmas_) {
    if (!is_private(vma.kind)) continue;
    auto first = ptes.lower_bound(start);
    if (first == ptes.end() || first->first >= vma.end) continue;  // never faulted
    // Copy-on-write from now on: both sides map the frame read-only.
    Invalidation invalidation(*domain_, start, vma.end, Event::kProtectionPage);
    for (auto it = first; it != ptes.end() && it->first < vma.end; ++it) {
      it->second.writable = false;
    }
  }
  WriteLock child_lock(child->mmap_mu_);
  copy_into_child_locked(*child);
  return child;
}

void AddressSpace::copy_into_child_locked(AddressSpace& child) {
  child.vmas_ = vmas_;  // shared mappings keep naming the same File
  child.next_addr_ = next_addr_;
  for (const auto& [start, vma] : vmas_) {
    if (!is_private(vma.kind)) continue;  // the child faults shared pages in
    const Ptes& ptes = ptes_for_writer();
    for (auto it = ptes.lower_bound(start); it != ptes.end() && it->first < vma.end; ++it) {
      Pte entry = it->second;  // read-only by now
      if (entry.device != nullptr) {
        // A coherent device page: the child's own copy in system RAM, so that no page
        // table of another address space names a device that may go away with its memory
        // (close() evicts only the address space it mirrors).
        entry = Pte{make_ref<Frame>(entry.frame->read()), false};
      }
      child.ptes_for_writer().emplace(it->first, std::move(entry));
    }
  }
}

}  // namespace itn::hw
