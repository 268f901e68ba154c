// hw_model/btree_page_table.h
//
// itn::hw::BtreePageTable: MirrorDevice's default DevicePageTable, one B-tree of entries
// by page, as flat to walk as the kernel's xarray: an access over many pages costs the
// same per page as one over a few.
//
// Thread safety: none of its own (see DevicePageTable: the device's driver lock).
// Lifetime: a plain object. Memory ordering: none.
#ifndef ITN_HW_MODEL_BTREE_PAGE_TABLE_H_
#define ITN_HW_MODEL_BTREE_PAGE_TABLE_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/container/btree_map.h"

#include "hw_model/device_page_table.h"

namespace itn::hw {

class BtreePageTable final : public DevicePageTable {
 public:
  void install(std::uint64_t page, const PageEntry& entry) override {
    entries_.insert_or_assign(page, DeviceEntry{entry.frame, entry.writable});
  }
  void install_run(std::uint64_t addr, const std::vector<PageEntry>& entries) override;
  void forget(std::uint64_t start, std::uint64_t end) override {
    entries_.erase(entries_.lower_bound(start), entries_.lower_bound(end));
  }
  void write_protect(std::uint64_t start, std::uint64_t end) override {
    for (auto it = entries_.lower_bound(start); it != entries_.end() && it->first < end; ++it) {
      it->second.writable = false;
    }
  }
  bool access(std::uint64_t addr, std::uint64_t pages, bool write,
              absl::FunctionRef<void(std::uint64_t i, Frame& frame)> fn) override;
  std::map<std::uint64_t, DeviceEntry> entries() const override {
    return {entries_.begin(), entries_.end()};
  }

 private:
  absl::btree_map<std::uint64_t, DeviceEntry> entries_;
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_BTREE_PAGE_TABLE_H_
