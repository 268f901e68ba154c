#include "examples/toy_gpu/toy_gpu.h"

#include <algorithm>
#include <utility>

#include "notifier/domain.h"
#include "notifier/interval_notifier.h"
#include "sync/check.h"

namespace toy {

using itn::hw::AddressSpace;
using itn::hw::kPageSize;

class ToyGpu::ChunkNotifier : public itn::IntervalNotifier {
 public:
  ChunkNotifier(ToyGpu& gpu, std::uint64_t base) : gpu_(gpu), base_(base) {}

  bool invalidate(const itn::Range& range, std::uint64_t cur_seq) override {
    if (range.blockable) {
      itn::MutexLock l(gpu_.mu_);
      invalidate_locked(range, cur_seq);
      return true;
    }
    if (!gpu_.mu_.try_lock()) return false;  // would sleep: refuse
    invalidate_locked(range, cur_seq);
    gpu_.mu_.unlock();
    return true;
  }

 private:
  void invalidate_locked(const itn::Range& range, std::uint64_t cur_seq)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(gpu_.mu_) {
    set_seq(cur_seq);  // every walk of this chunk that began before now must retry
    gpu_.drop(std::max(range.start, base_), std::min(range.end, base_ + kChunkBytes));
  }

  ToyGpu& gpu_;
  const std::uint64_t base_;
};

ToyGpu::ToyGpu(itn::Ref<AddressSpace> mm, Flaw flaw) : mm_(std::move(mm)), flaw_(flaw) {}

ToyGpu::~ToyGpu() { close(); }

absl::StatusOr<std::vector<std::uint64_t>> ToyGpu::read(std::uint64_t addr, std::uint64_t pages) {
  std::vector<std::uint64_t> words;
  if (absl::Status s = access(addr, pages, /*write=*/false, {}, &words); !s.ok()) return s;
  return words;
}

absl::Status ToyGpu::write(std::uint64_t addr, const std::vector<std::uint64_t>& words) {
  return access(addr, words.size(), /*write=*/true, words, nullptr);
}

absl::Status ToyGpu::access(std::uint64_t addr, std::uint64_t pages, bool write,
                            std::span<const std::uint64_t> in, std::vector<std::uint64_t>* out) {
  if (addr % kPageSize != 0 || pages == 0 || pages > (~addr) / kPageSize) {
    return absl::InvalidArgumentError("ToyGpu: the range must be whole pages, at least one");
  }
  {
    itn::MutexLock l(mu_);
    if (access_mapped_locked(addr, pages, write, in, out)) return absl::OkStatus();
  }
  absl::StatusOr<Chunks> chunks = chunks_for(addr, pages);
  if (!chunks.ok()) return chunks.status();
  std::vector<std::uint64_t> seqs(chunks->size());
  for (;;) {
    bool done = false;
    const absl::StatusOr<AddressSpace::FaultedRange> walk = mm_->fault_range(
        addr, pages * kPageSize, write, this,
        [&] {
          for (std::size_t i = 0; i < seqs.size(); ++i) seqs[i] = (*chunks)[i]->read_begin();
        },
        [&](const AddressSpace::FaultedRange& walked) {
          const auto stale = [&] {
            for (std::size_t i = 0; i < seqs.size(); ++i) {
              if ((*chunks)[i]->read_retry(seqs[i])) return true;
            }
            return false;
          };
          if (flaw_ == Flaw::kRetryCheckedBeforeTheLock && stale()) return;
          itn::MutexLock l(mu_);
          if (flaw_ == Flaw::kNone && stale()) return;
          install_locked(addr, walked);
          done = access_mapped_locked(addr, pages, write, in, out);
          ITN_CHECK(done, "ToyGpu: a page fault_range() made ready is not mapped as needed");
        });
    if (!walk.ok()) return walk.status();
    if (done) return absl::OkStatus();
  }
}

absl::StatusOr<ToyGpu::Chunks> ToyGpu::chunks_for(std::uint64_t addr, std::uint64_t pages) {
  itn::MutexLock l(chunks_mu_);
  if (closed_) return absl::FailedPreconditionError("ToyGpu: the device was closed");
  Chunks chunks;
  const std::uint64_t last = addr + pages * kPageSize - 1;
  for (std::uint64_t base = addr - addr % kChunkBytes; base <= last; base += kChunkBytes) {
    itn::Ref<ChunkNotifier>& chunk = chunks_[base];
    if (chunk == nullptr) {
      itn::Ref<ChunkNotifier> fresh = itn::make_ref<ChunkNotifier>(*this, base);
      if (absl::Status s =
              mm_->notifiers().insert(fresh, itn::Interval::sized(base, kChunkBytes), this);
          !s.ok()) {
        chunks_.erase(base);
        return s;
      }
      chunk = std::move(fresh);
    }
    chunks.push_back(chunk);
    if (base + kChunkBytes - 1 >= last) break;  // the top chunk: base + kChunkBytes wraps
  }
  return chunks;
}

ToyGpu::Slot* ToyGpu::slot_locked(std::uint64_t page) {
  const auto bucket = table_.find(page / kChunkBytes);
  if (bucket == table_.end()) return nullptr;
  return &bucket->second[(page % kChunkBytes) / kPageSize];
}

bool ToyGpu::access_mapped_locked(std::uint64_t addr, std::uint64_t pages, bool write,
                                  std::span<const std::uint64_t> in,
                                  std::vector<std::uint64_t>* out) {
  for (std::uint64_t i = 0; i < pages; ++i) {
    const Slot* slot = slot_locked(addr + i * kPageSize);
    if (slot == nullptr || slot->frame == nullptr || (write && !slot->writable)) return false;
  }
  for (std::uint64_t i = 0; i < pages; ++i) {
    itn::hw::Frame& frame = *slot_locked(addr + i * kPageSize)->frame;
    if (write) {
      frame.write(in[i]);
    } else {
      out->push_back(frame.read());
    }
  }
  return true;
}

void ToyGpu::install_locked(std::uint64_t addr, const AddressSpace::FaultedRange& walked) {
  for (std::size_t i = 0; i < walked.entries.size(); ++i) {
    const std::uint64_t page = addr + i * kPageSize;
    table_[page / kChunkBytes][(page % kChunkBytes) / kPageSize] =
        Slot{walked.entries[i].frame, walked.entries[i].writable};
  }
}

void ToyGpu::drop(std::uint64_t start, std::uint64_t end) {
  if (start >= end) return;
  const auto bucket = table_.find(start / kChunkBytes);
  if (bucket == table_.end()) return;
  for (std::uint64_t page = start - start % kPageSize; page < end; page += kPageSize) {
    bucket->second[(page % kChunkBytes) / kPageSize] = Slot{};
  }
  if (std::all_of(bucket->second.begin(), bucket->second.end(),
                  [](const Slot& s) { return s.frame == nullptr; })) {
    table_.erase(bucket);
  }
}

void ToyGpu::close() {
  std::map<std::uint64_t, itn::Ref<ChunkNotifier>> chunks;
  {
    itn::MutexLock l(chunks_mu_);
    closed_ = true;
    chunks.swap(chunks_);
  }
  for (auto& [base, chunk] : chunks) {
    const absl::Status s = mm_->notifiers().remove(*chunk);
    ITN_CHECK(s.ok(), "ToyGpu: a chunk notifier was not inserted");
  }
  itn::MutexLock l(mu_);
  table_.clear();
}

std::map<std::uint64_t, itn::hw::DeviceEntry> ToyGpu::entries() const {
  itn::MutexLock l(mu_);
  std::map<std::uint64_t, itn::hw::DeviceEntry> all;
  for (const auto& [index, bucket] : table_) {
    for (std::uint64_t i = 0; i < kChunkPages; ++i) {
      if (bucket[i].frame != nullptr) {
        all.emplace(index * kChunkBytes + i * kPageSize,
                    itn::hw::DeviceEntry{bucket[i].frame, bucket[i].writable});
      }
    }
  }
  return all;
}

}  // namespace toy
