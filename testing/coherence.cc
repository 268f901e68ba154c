#include "testing/coherence.h"

#include <cstdint>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"

namespace itn::hw {

namespace {

// The CPU huge page at `block` is whole: 512 huge entries, all in one place (system RAM or
// one device's memory), all writable or none, none held exclusively.
absl::Status check_huge_page(const AddressSpace& mm, std::uint64_t block) {
  const std::vector<absl::StatusOr<PageEntry>> pages =
      mm.lookup_range(block, kHugePageSize / kPageSize);
  for (const absl::StatusOr<PageEntry>& e : pages) {
    if (!e.ok() || !e->huge || e->device != pages[0]->device || e->coherent != pages[0]->coherent ||
        e->writable != pages[0]->writable || e->exclusive != nullptr) {
      return absl::InternalError(
          absl::StrCat("I17: the huge page at ", block, " is not whole and uniform"));
    }
  }
  return absl::OkStatus();
}

// MirrorDevice as a MirroringDevice, without making the model depend on the testing kit.
class MirrorDeviceView : public MirroringDevice {
 public:
  explicit MirrorDeviceView(const MirrorDevice& device) : device_(device) {}
  const AddressSpace& mirrored_mm() const override { return device_.mm(); }
  std::map<std::uint64_t, DeviceEntry> translations() const override {
    return device_.entries_for_testing();
  }

 private:
  const MirrorDevice& device_;
};

}  // namespace

absl::Status check_coherence(const MirroringDevice& device) {
  const AddressSpace& mm = device.mirrored_mm();
  std::uint64_t checked_block = 1;  // not a block address
  // Copied under the device's lock and compared after it: a driver lock nests inside the
  // mmap lock (migration hooks), never the other way round.
  for (const auto& [page, dev] : device.translations()) {
    absl::StatusOr<PageEntry> cpu = mm.lookup(page);
    if (!cpu.ok()) {
      return absl::InternalError(absl::StrCat("I17: device maps page ", page,
                                              " that the CPU cannot: ", cpu.status().message()));
    }
    if (cpu->frame != dev.frame) {
      return absl::InternalError(
          absl::StrCat("I17: device maps a different frame than the CPU at page ", page));
    }
    if (dev.writable && !cpu->writable) {
      return absl::InternalError(
          absl::StrCat("I17: device may write page ", page, ", which the CPU maps read-only"));
    }
    if (cpu->huge && huge_page_of(page) != checked_block) {
      checked_block = huge_page_of(page);
      if (absl::Status s = check_huge_page(mm, checked_block); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status check_coherence(const MirrorDevice& device) {
  return check_coherence(MirrorDeviceView(device));
}

}  // namespace itn::hw
