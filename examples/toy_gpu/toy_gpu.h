// examples/toy_gpu/toy_gpu.h
//
// ToyGpu: a device written the way a driver engineer embedding itn would write one, to
// show the testing kit (docs/TESTING_KIT.md) checking a device that is not itn's own. It
// mirrors one address space in a page table of its own format (a hash map of buckets, one
// bucket of 16 slots per 64 KiB chunk), keeps that table under a lock of its own, and
// hears of invalidations through one interval notifier per chunk it has ever accessed,
// inserted on the first access and removed by close().
//
//   access (a read or write of whole pages):
//     under the lock: every page mapped, writable if this is a write? use those frames.
//     otherwise, in one AddressSpace::fault_range() of the range:
//       begin: seq[i] = chunk[i]->read_begin(), for each chunk the range touches;
//       then:  take the lock; any chunk[i]->read_retry(seq[i])? start again;
//              install the walked entries; do the access on their frames.
//   invalidate (of one chunk): take the lock; set_seq(); drop the chunk's slots in range.
//
// Flaw::kRetryCheckedBeforeTheLock is the classic mistake: read_retry() looked at before
// the lock is taken, so an invalidation can run between the look and the install, which
// then maps a frame the CPU no longer maps (and a write into it is lost).
// toy_gpu_test.cc shows the testing kit catching it and replaying the schedule.
//
// Thread safety: read(), write() and entries() from any thread, concurrently; close()
// once no access runs. Not from notifier callbacks of the address space.
// Lifetime: holds a grab of the address space (a Ref, not a user: it may exit first, and
// then every access fails). close() (or the destructor) removes the chunk notifiers;
// after it returns no callback touches the device.
// Memory ordering: a slot is installed under the lock after read_retry(), under the same
// lock, said no invalidation reached its chunk since the walk began; invalidations
// publish set_seq() and drop slots under that lock too.
#ifndef ITN_EXAMPLES_TOY_GPU_TOY_GPU_H_
#define ITN_EXAMPLES_TOY_GPU_TOY_GPU_H_

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "hw_model/address_space.h"
#include "hw_model/device_page_table.h"
#include "hw_model/memory.h"
#include "sync/mutex.h"
#include "sync/ref.h"

namespace toy {

class ToyGpu {
 public:
  enum class Flaw { kNone, kRetryCheckedBeforeTheLock };
  static constexpr std::uint64_t kChunkPages = 16;
  static constexpr std::uint64_t kChunkBytes = kChunkPages * itn::hw::kPageSize;

  explicit ToyGpu(itn::Ref<itn::hw::AddressSpace> mm, Flaw flaw = Flaw::kNone);
  ~ToyGpu();
  ToyGpu(const ToyGpu&) = delete;
  ToyGpu& operator=(const ToyGpu&) = delete;

  // ToyGpu::read() / write()
  //
  // The words of `pages` pages from `addr`, or writes one word per page from `addr`.
  // Errors: kInvalidArgument for an unaligned address, no pages or a range past the top;
  // kFailedPrecondition after close(); otherwise what fault_range() fails with at the
  // first page the access may not touch (the pages before it stay faulted in, nothing is
  // written).
  absl::StatusOr<std::vector<std::uint64_t>> read(std::uint64_t addr, std::uint64_t pages);
  absl::Status write(std::uint64_t addr, const std::vector<std::uint64_t>& words);

  // Removes the chunk notifiers and empties the page table. Idempotent.
  void close();

  const itn::hw::AddressSpace& mm() const { return *mm_; }
  // A copy of every slot mapped, by page, taken under the lock.
  std::map<std::uint64_t, itn::hw::DeviceEntry> entries() const;

 private:
  class ChunkNotifier;
  struct Slot {
    itn::Ref<itn::hw::Frame> frame;  // null: not mapped
    bool writable = false;
  };
  using Bucket = std::array<Slot, kChunkPages>;
  using Chunks = std::vector<itn::Ref<ChunkNotifier>>;

  absl::Status access(std::uint64_t addr, std::uint64_t pages, bool write,
                      std::span<const std::uint64_t> in, std::vector<std::uint64_t>* out);
  // The notifiers of every chunk of the range, inserting those missing.
  absl::StatusOr<Chunks> chunks_for(std::uint64_t addr, std::uint64_t pages)
      ABSL_LOCKS_EXCLUDED(chunks_mu_);
  // The slot of `page`, or null if its bucket does not exist.
  Slot* slot_locked(std::uint64_t page) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Does the access on the mapped frames if every page is mapped as it needs.
  bool access_mapped_locked(std::uint64_t addr, std::uint64_t pages, bool write,
                            std::span<const std::uint64_t> in, std::vector<std::uint64_t>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void install_locked(std::uint64_t addr, const itn::hw::AddressSpace::FaultedRange& walked)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ChunkNotifier::invalidate(): drops the slots of [start, end) (within one chunk).
  void drop(std::uint64_t start, std::uint64_t end) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const itn::Ref<itn::hw::AddressSpace> mm_;
  const Flaw flaw_;
  // The driver lock: the page table, and every read_retry() against set_seq().
  mutable itn::Mutex mu_;
  std::unordered_map<std::uint64_t, Bucket> table_ ABSL_GUARDED_BY(mu_);  // by chunk index
  // Taken alone: inserting into the address space's notifiers never waits for callbacks.
  itn::Mutex chunks_mu_;
  std::map<std::uint64_t, itn::Ref<ChunkNotifier>> chunks_ ABSL_GUARDED_BY(chunks_mu_);
  bool closed_ ABSL_GUARDED_BY(chunks_mu_) = false;
};

}  // namespace toy

#endif  // ITN_EXAMPLES_TOY_GPU_TOY_GPU_H_
