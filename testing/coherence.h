// testing/coherence.h
//
// itn::hw::check_coherence(): I17 as a check, for any device that mirrors a CPU address
// space in a page table of its own. Every translation the device holds must map the frame
// the CPU page table maps at that page, and be writable only if the CPU entry is; and
// each huge page the device maps part of must be whole in the CPU page table (512 huge
// entries in one place, all writable or none, none held exclusively).
//
// A device takes part by implementing MirroringDevice (two const calls), or through a
// small adapter when it should not depend on the testing kit; MirrorDevice has one here.
//
//   class MyDevice : public itn::hw::MirroringDevice { ... };
//   EXPECT_TRUE(itn::hw::check_coherence(device).ok());
//
// Thread safety: call only at a quiescent point (no invalidation of the device's address
// space active, no device change in progress); the device's translations and the CPU page
// table are read one after the other, not atomically together.
// Lifetime: no references kept. Memory ordering: none beyond the locks the calls take.
#ifndef ITN_TESTING_COHERENCE_H_
#define ITN_TESTING_COHERENCE_H_

#include <cstdint>
#include <map>

#include "absl/status/status.h"

#include "hw_model/address_space.h"
#include "hw_model/device_page_table.h"
#include "hw_model/mirror_device.h"

namespace itn::hw {

// What check_coherence() looks at in a device.
class MirroringDevice {
 public:
  virtual ~MirroringDevice() = default;
  // The address space whose pages the device maps.
  virtual const AddressSpace& mirrored_mm() const = 0;
  // A copy of every translation the device holds, by page, taken under the device's own
  // lock (which must not be held while the check then reads the CPU page table).
  virtual std::map<std::uint64_t, DeviceEntry> translations() const = 0;
};

// OK, or kInternal naming the first incoherent page.
absl::Status check_coherence(const MirroringDevice& device);
// The same for the model's own device.
absl::Status check_coherence(const MirrorDevice& device);

}  // namespace itn::hw

#endif  // ITN_TESTING_COHERENCE_H_
