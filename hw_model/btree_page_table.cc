#include "hw_model/btree_page_table.h"

namespace itn::hw {

void BtreePageTable::install_run(std::uint64_t addr, const std::vector<PageEntry>& entries) {
  auto hint = entries_.lower_bound(addr);
  for (std::uint64_t i = 0; i < entries.size(); ++i) {
    const PageEntry& entry = entries[i];
    hint = entries_.insert_or_assign(hint, addr + i * kPageSize,
                                     DeviceEntry{entry.frame, entry.writable});
    ++hint;
  }
}

bool BtreePageTable::access(std::uint64_t addr, std::uint64_t pages, bool write,
                            absl::FunctionRef<void(std::uint64_t i, Frame& frame)> fn) {
  const auto first = entries_.lower_bound(addr);
  auto it = first;
  for (std::uint64_t i = 0; i < pages; ++i, ++it) {
    if (it == entries_.end() || it->first != addr + i * kPageSize ||
        (write && !it->second.writable)) {
      return false;
    }
  }
  it = first;
  for (std::uint64_t i = 0; i < pages; ++i, ++it) fn(i, *it->second.frame);
  return true;
}

}  // namespace itn::hw
