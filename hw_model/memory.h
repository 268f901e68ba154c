// hw_model/memory.h
//
// The simulated physical memory of itn::hw: pages of 4 KiB addresses whose content is one
// 64-bit word, held in reference-counted Frames (system RAM, or the memory of one device
// after a migration: private, which the CPU cannot reach, or coherent, which it can), and
// Files: backing objects whose frames
// several mappings (of one or many address spaces) share, so that a write through any
// mapping reaches every other. An anonymous shared mapping is backed by a File of its own.
//
// Thread safety: a Frame's word is atomic (several address spaces may map one frame);
// File::frame_at() may be called from any thread.
// Lifetime: frames and files are owned through Ref; a page table entry holds its frame.
// Memory ordering: frame words are relaxed: whoever needs ordering (a page table walk
// against a write) gets it from the address space's mmap lock.
#ifndef ITN_HW_MODEL_MEMORY_H_
#define ITN_HW_MODEL_MEMORY_H_

#include <cstdint>
#include <map>

#include "absl/base/thread_annotations.h"

#include "sync/atomic.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace itn::hw {

inline constexpr std::uint64_t kPageSize = 4096;

inline std::uint64_t page_of(std::uint64_t addr) { return addr & ~(kPageSize - 1); }

// A transparent huge page: 512 pages mapped by one PMD entry, aligned to its size.
inline constexpr std::uint64_t kHugePageSize = 512 * kPageSize;

inline std::uint64_t huge_page_of(std::uint64_t addr) { return addr & ~(kHugePageSize - 1); }
// Where user addresses end (the kernel's TASK_SIZE on x86-64 with 4-level page tables):
// nothing maps at or past it.
inline constexpr std::uint64_t kUserSpaceEnd = std::uint64_t{1} << 47;

// The two kinds of device memory (the kernel's MEMORY_DEVICE_PRIVATE and
// MEMORY_DEVICE_COHERENT). A CPU access to a private device page migrates it back to
// system RAM first; the CPU maps a coherent device page directly, so it stays on the
// device until the device migrates it back (or goes away); fork() gives the child a copy
// in system RAM.
enum class DeviceMemory : std::uint8_t { kPrivate, kCoherent };

class Frame : public RefCounted {
 public:
  explicit Frame(std::uint64_t word = 0, const void* device = nullptr)
      : word_(word), device_(device) {}
  std::uint64_t read() const { return word_.load(std::memory_order_relaxed); }  // see header
  void write(std::uint64_t word) { word_.store(word, std::memory_order_relaxed); }
  // The device whose memory holds this frame, or null for system RAM.
  const void* device() const { return device_; }

 private:
  Atomic<std::uint64_t> word_;
  const void* const device_;
};

class File : public RefCounted {
 public:
  // File::frame_at()
  //
  // The frame at page-aligned `offset`, created zero-filled on first use.
  Ref<Frame> frame_at(std::uint64_t offset) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock l(mu_);
    Ref<Frame>& f = frames_[offset];
    if (!f) f = make_ref<Frame>();
    return f;
  }

  // File::read() / write()
  //
  // pread/pwrite of the word at page-aligned `offset`, through the page cache: shared
  // mappings of the file, and private ones that have not written the page, see it.
  std::uint64_t read(std::uint64_t offset) ABSL_LOCKS_EXCLUDED(mu_) {
    return frame_at(offset)->read();
  }
  void write(std::uint64_t offset, std::uint64_t word) ABSL_LOCKS_EXCLUDED(mu_) {
    frame_at(offset)->write(word);
  }

 private:
  Mutex mu_;
  std::map<std::uint64_t, Ref<Frame>> frames_ ABSL_GUARDED_BY(mu_);
};

}  // namespace itn::hw

#endif  // ITN_HW_MODEL_MEMORY_H_
