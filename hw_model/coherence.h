// hw_model/coherence.h
//
// itn::hw::check_coherence(): I17 as a check. Every entry in a mirror's device page table
// must map the frame the CPU page table maps at that page, and be writable only if the
// CPU entry is; and each huge page the device maps part of must be whole in the CPU page
// table (512 huge entries in one place, all writable or none, none held exclusively).
//
// Thread safety: call only at a quiescent point (no invalidation of the device's address
// space active, no device change in progress); the device page table and the CPU page
// table are read one after the other, not atomically together.
// Lifetime: no references kept. Memory ordering: none beyond the locks it takes.
#ifndef ITN_HW_MODEL_COHERENCE_H_
#define ITN_HW_MODEL_COHERENCE_H_

#include "absl/status/status.h"

#include "hw_model/mirror_device.h"

namespace itn::hw {

// OK, or kInternal naming the first incoherent page.
absl::Status check_coherence(const MirrorDevice& device);

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_COHERENCE_H_
