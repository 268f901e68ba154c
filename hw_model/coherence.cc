#include "hw_model/coherence.h"

#include "absl/strings/str_cat.h"

namespace itn::hw {

absl::Status check_coherence(const MirrorDevice& device) {
  // Copied under the driver lock and compared after it: the driver lock nests inside the
  // mmap lock (migration hooks), never the other way round.
  for (const auto& [page, dev] : device.entries_for_testing()) {
    absl::StatusOr<PageEntry> cpu = device.mm().lookup(page);
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
  }
  return absl::OkStatus();
}

}  // namespace itn::hw
