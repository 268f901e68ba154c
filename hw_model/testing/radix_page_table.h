// hw_model/testing/radix_page_table.h
//
// A DevicePageTable in a format of its own, written as a driver prototype would: a
// directory of 2 MiB leaves of 512 slots (a two-level radix table, as GPUs walk), and
// failure injection: it refuses the huge page allocations a test asks it to. Used to
// check that MirrorDevice keeps any table coherent, not only its B-tree.
//
// Thread safety: none of its own (the device's driver lock; see DevicePageTable), but
// the refusal count, which tests set before the device runs. Lifetime: a plain object.
// Memory ordering: none.
#ifndef ITN_HW_MODEL_TESTING_RADIX_PAGE_TABLE_H_
#define ITN_HW_MODEL_TESTING_RADIX_PAGE_TABLE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>

#include "hw_model/device_page_table.h"

namespace itn::hw::testing {

class RadixPageTable final : public DevicePageTable {
 public:
  // The first `refusals` huge page allocations fail; `asked`, if given, counts them all.
  explicit RadixPageTable(int refusals = 0, int* asked = nullptr)
      : refusals_(refusals), asked_(asked) {}

  void install(std::uint64_t page, const PageEntry& entry) override {
    std::unique_ptr<Leaf>& leaf = leaves_[huge_page_of(page)];
    if (!leaf) leaf = std::make_unique<Leaf>();
    (*leaf)[slot_of(page)] = Slot{entry.frame, entry.writable};
  }
  void forget(std::uint64_t start, std::uint64_t end) override {
    for_each_slot(start, end, [](Slot& slot) { slot = Slot{}; });
  }
  void write_protect(std::uint64_t start, std::uint64_t end) override {
    for_each_slot(start, end, [](Slot& slot) { slot.writable = false; });
  }
  bool access(std::uint64_t addr, std::uint64_t pages, bool write,
              absl::FunctionRef<void(std::uint64_t i, Frame& frame)> fn) override {
    for (std::uint64_t i = 0; i < pages; ++i) {
      const Slot* slot = find(addr + i * kPageSize);
      if (slot == nullptr || (write && !slot->writable)) return false;
    }
    for (std::uint64_t i = 0; i < pages; ++i) fn(i, *find(addr + i * kPageSize)->frame);
    return true;
  }
  std::map<std::uint64_t, DeviceEntry> entries() const override {
    std::map<std::uint64_t, DeviceEntry> out;
    for (const auto& [block, leaf] : leaves_) {
      for (std::uint64_t i = 0; i < leaf->size(); ++i) {
        const Slot& slot = (*leaf)[i];
        if (slot.frame) out.emplace(block + i * kPageSize, DeviceEntry{slot.frame, slot.writable});
      }
    }
    return out;
  }
  bool allocate_huge() override {
    if (asked_ != nullptr) ++*asked_;
    if (refusals_ == 0) return true;
    --refusals_;
    return false;
  }

 private:
  struct Slot {
    Ref<Frame> frame;  // null: not mapped
    bool writable = false;
  };
  using Leaf = std::array<Slot, kHugePageSize / kPageSize>;
  static std::uint64_t slot_of(std::uint64_t page) {
    return (page - huge_page_of(page)) / kPageSize;
  }
  const Slot* find(std::uint64_t page) const {
    auto leaf = leaves_.find(huge_page_of(page));
    if (leaf == leaves_.end()) return nullptr;
    const Slot& slot = (*leaf->second)[slot_of(page)];
    return slot.frame ? &slot : nullptr;
  }
  // Runs `change` on every slot of the leaves that [start, end) reaches, inside the range.
  template <class Change>
  void for_each_slot(std::uint64_t start, std::uint64_t end, Change change) {
    for (auto leaf = leaves_.lower_bound(huge_page_of(start));
         leaf != leaves_.end() && leaf->first < end; ++leaf) {
      for (std::uint64_t i = 0; i < leaf->second->size(); ++i) {
        const std::uint64_t page = leaf->first + i * kPageSize;
        if (page >= start && page < end) change((*leaf->second)[i]);
      }
    }
  }

  std::map<std::uint64_t, std::unique_ptr<Leaf>> leaves_;  // by 2 MiB block
  int refusals_;
  int* const asked_;
};

}  // namespace itn::hw::testing

#endif  // ITN_HW_MODEL_TESTING_RADIX_PAGE_TABLE_H_
