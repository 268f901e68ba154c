// hw_model/device_page_table.h
//
// itn::hw::DevicePageTable: the page table of a MirrorDevice, as an interface a driver
// prototype implements in its own format (radix levels, packed entries, whatever its
// hardware walks) and with its own failure injection, without copying MirrorDevice: the
// device keeps the notifiers, the fault protocol and migrations, and calls the table for
// every change of its entries. BtreePageTable (hw_model/btree_page_table.h) is the one
// MirrorDevice uses unless given another.
//
// A table maps pages (kPageSize-aligned addresses) to a frame and a writable bit. The
// device keeps it coherent (I17): outside an invalidation of a page, the page's entry is
// absent or maps the CPU entry's frame, writable only if the CPU's is.
//
// Thread safety: the device calls every method with its driver lock held (so a table
// needs no lock of its own), except allocate_huge(), called by migrations with the mmap
// lock held and not the driver lock, and the destructor. Lifetime: owned by the device,
// destroyed with it. Memory ordering: the driver lock's.
#ifndef ITN_HW_MODEL_DEVICE_PAGE_TABLE_H_
#define ITN_HW_MODEL_DEVICE_PAGE_TABLE_H_

#include <cstdint>
#include <map>
#include <vector>

#include "absl/functional/function_ref.h"

#include "hw_model/address_space.h"
#include "hw_model/memory.h"
#include "sync/ref.h"

namespace itn::hw {

// One entry, as coherence checks read it.
struct DeviceEntry {
  Ref<Frame> frame;
  bool writable;
};

class DevicePageTable {
 public:
  virtual ~DevicePageTable() = default;

  // Maps `page` to `entry`'s frame, writable if `entry` is (replacing what was there).
  virtual void install(std::uint64_t page, const PageEntry& entry) = 0;
  // install() of each entry of a walk, page after page from `addr`; a table whose format
  // installs runs faster than pages may override it.
  virtual void install_run(std::uint64_t addr, const std::vector<PageEntry>& entries) {
    for (std::uint64_t i = 0; i < entries.size(); ++i) install(addr + i * kPageSize, entries[i]);
  }
  // Unmaps every page of [start, end).
  virtual void forget(std::uint64_t start, std::uint64_t end) = 0;
  // Clears the writable bit of every page of [start, end).
  virtual void write_protect(std::uint64_t start, std::uint64_t end) = 0;
  // If each of the `pages` pages from `addr` is mapped (writable, for a write), runs `fn`
  // on each one's frame in order and returns true; otherwise returns false, running it
  // on none.
  virtual bool access(std::uint64_t addr, std::uint64_t pages, bool write,
                      absl::FunctionRef<void(std::uint64_t i, Frame& frame)> fn) = 0;
  // Every entry, by page.
  virtual std::map<std::uint64_t, DeviceEntry> entries() const = 0;
  // Failure injection: asked for each huge page a migration of the device would move whole
  // (see HugeAllocator); false makes it split and move small pages.
  virtual bool allocate_huge() { return true; }
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_DEVICE_PAGE_TABLE_H_
