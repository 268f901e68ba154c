// itree/internal/node_pool.h
//
// NodePool<Node>: the node allocator of one IntervalTree. Slots are one cache line (64
// bytes, aligned) carved from 256-slot chunks; freed slots go on a free list and are
// reused by the next allocation. Compared with malloc this avoids the cost that dominated
// writers before (about 60% of an insert+erase was glibc malloc/free, mostly because the
// SRCU worker thread frees what the writer thread allocated).
//
// Freed slots are poisoned for AddressSanitizer, so a reader that touches a node after its
// grace period is still reported as a use-after-poison.
//
// Thread safety: allocate() and release() are the owner's, who serialises them (the tree's
// writer mutex). give_back() may be called from any thread at any time (the SRCU callback
// that frees retired nodes): it must not take the writer mutex, or every grace period
// would stall the writer.
// Lifetime: trim() returns chunks whose slots are all free once three quarters of the pool
// are free, trim_fully() once half is (the watermarks); the rest go when the pool is
// destroyed, which must happen after every node has been released, given back or
// abandoned.
// Memory ordering: a give_back() happens-before the allocate() that reuses its nodes.
#ifndef ITN_ITREE_INTERNAL_NODE_POOL_H_
#define ITN_ITREE_INTERNAL_NODE_POOL_H_

#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "sanitizer/asan_interface.h"
#include "sync/atomic.h"

namespace itn::itree_internal {

template <class Node>
class NodePool {
 public:
  static constexpr std::size_t kSlotBytes = (sizeof(Node) + 63) / 64 * 64;
  static constexpr std::size_t kSlotsPerChunk = 256;

  NodePool() = default;
  ~NodePool() {
    take_given_back();  // frees the batch records
    for (std::byte* chunk : chunks_) {
      ASAN_UNPOISON_MEMORY_REGION(chunk, kChunkBytes);
      ::operator delete (chunk, std::align_val_t{64});
    }
  }
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;

  Node* allocate(const Node& init) {
    void* slot;
    if (free_.empty()) take_given_back();
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      if (chunks_.empty() || carved_ == kSlotsPerChunk) add_chunk();
      slot = chunks_.back() + carved_++ * kSlotBytes;
    }
    ASAN_UNPOISON_MEMORY_REGION(slot, kSlotBytes);
    return new (slot) Node(init);
  }

  void release(Node* n) {
    n->~Node();
    ASAN_POISON_MEMORY_REGION(n, kSlotBytes);
    free_.push_back(n);
    ++freed_since_scan_;
  }

  // Returns nodes no reader can reach any more; any thread.
  void give_back(std::vector<Node*> nodes) {
    for (Node* n : nodes) {
      n->~Node();
      ASAN_POISON_MEMORY_REGION(n, kSlotBytes);
    }
    auto* batch = new GivenBack{std::move(nodes), nullptr};
    // Relaxed load: only seeds the CAS loop.
    GivenBack* head = given_back_.load(std::memory_order_relaxed);
    do {
      batch->next = head;
      // Release: pairs with the acquire exchange in take_given_back(); the slots' last uses
      // (ordered before us by the grace period) happen-before their reuse.
    } while (!given_back_.compare_exchange_weak(head, batch, std::memory_order_release,
                                                std::memory_order_relaxed));
  }

  // Bytes reserved from the system.
  std::size_t reserved_bytes() const { return chunks_.size() * kChunkBytes; }

  // NodePool::trim()
  //
  // Takes in what give_back() returned and, once three quarters of the pool are free,
  // frees every chunk with no slot in use. Writers call it on every publish, so it must
  // stay cheap: a steady churn, whose free slots come and go in grace-period batches, stays
  // below that mark; a scan costs O(free slots), so trim() scans again only after half as
  // many slots (and a chunk's worth) came free since the last scan, or twice as many if
  // that scan gave nothing back, however fragmented the pool (a churn that frees ~20
  // slots per change would otherwise spend half its time rescanning a fragmented pool).
  // trim_fully() uses the lower watermark (half free). Owner only.
  void trim() {
    take_given_back();
    if (4 * free_.size() < 3 * chunks_.size() * kSlotsPerChunk) return;
    if (freed_since_scan_ < std::max(kSlotsPerChunk, rescan_after_)) return;
    trim_fully();
  }

  // NodePool::trim_fully()
  //
  // As trim(), but scans whenever half the pool is free: on return, if half of it is,
  // no chunk is empty. Owner only.
  void trim_fully() {
    take_given_back();
    if (chunks_.empty()) return;
    const std::size_t never_carved = kSlotsPerChunk - carved_;  // of chunks_.back()
    if (2 * (free_.size() + never_carved) < chunks_.size() * kSlotsPerChunk) return;
    freed_since_scan_ = 0;
    std::vector<std::byte*> sorted = chunks_;
    std::sort(sorted.begin(), sorted.end());
    auto chunk_of = [&](const void* slot) {
      const auto* byte = static_cast<const std::byte*>(slot);
      return static_cast<std::size_t>(std::upper_bound(sorted.begin(), sorted.end(), byte) -
                                      sorted.begin() - 1);
    };
    std::vector<std::size_t> free_in(sorted.size(), 0);
    for (const void* slot : free_) ++free_in[chunk_of(slot)];
    free_in[chunk_of(chunks_.back())] += never_carved;
    std::vector<bool> drop(sorted.size());
    bool any = false;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      drop[i] = free_in[i] == kSlotsPerChunk;
      any = any || drop[i];
    }
    if (!any) {
      rescan_after_ = 2 * free_.size();
      return;
    }
    std::erase_if(free_, [&](const void* slot) { return drop[chunk_of(slot)]; });
    rescan_after_ = free_.size() / 2;
    const bool carving_dropped = drop[chunk_of(chunks_.back())];
    std::erase_if(chunks_, [&](std::byte* chunk) {
      if (!drop[chunk_of(chunk)]) return false;
      ASAN_UNPOISON_MEMORY_REGION(chunk, kChunkBytes);
      ::operator delete (chunk, std::align_val_t{64});
      return true;
    });
    if (carving_dropped) carved_ = kSlotsPerChunk;  // the next allocation adds a chunk
  }

 private:
  static constexpr std::size_t kChunkBytes = kSlotBytes * kSlotsPerChunk;

  struct GivenBack {
    std::vector<Node*> nodes;
    GivenBack* next;
  };

  void take_given_back() {
    // Acquire: pairs with the release CAS in give_back().
    GivenBack* batch = given_back_.exchange(nullptr, std::memory_order_acquire);
    while (batch != nullptr) {
      free_.insert(free_.end(), batch->nodes.begin(), batch->nodes.end());
      freed_since_scan_ += batch->nodes.size();
      delete std::exchange(batch, batch->next);
    }
  }

  void add_chunk() {
    auto* chunk = static_cast<std::byte*>(::operator new (kChunkBytes, std::align_val_t{64}));
    ASAN_POISON_MEMORY_REGION(chunk, kChunkBytes);
    chunks_.push_back(chunk);
    carved_ = 0;
  }

  std::vector<std::byte*> chunks_;
  std::size_t carved_ = 0;                  // slots handed out from chunks_.back()
  std::vector<void*> free_;                 // released slots, reused last-in first-out
  std::size_t freed_since_scan_ = 0;        // slots freed since trim() last scanned
  std::size_t rescan_after_ = 0;            // ... before trim() scans again
  Atomic<GivenBack*> given_back_{nullptr};  // stack of batches from give_back()
};

}  // namespace itn::itree_internal

#endif  // ITN_ITREE_INTERNAL_NODE_POOL_H_
