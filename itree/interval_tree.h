// itree/interval_tree.h
//
// itn::IntervalTree<T>: an augmented interval tree whose readers never lock, never retry
// and never see a half-applied change.
//
// Why not a mutable balanced tree read without a lock: a rotation moves a subtree from
// one parent to another, and a reader that is between the two nodes at that moment skips
// the subtree. For an invalidation walk that is a missed invalidation, a correctness bug,
// not a slow path. So this tree is persistent: a writer copies the root-to-change path
// (itree/internal/node.h), recomputes each copy's height and subtree max `last`, and
// publishes the new root with one release store. A reader loads the root once (acquire)
// inside a read section of the tree's SrcuDomain and walks an immutable snapshot.
//
// Writer rule: all modifications are serialised by the tree's own mutex; several may be
// grouped into one Batch, published at once when the batch ends.
// Reclamation rule: the nodes a publish replaces are freed through SrcuDomain::call(),
// after every read section that could hold the old root has ended. They are queued in
// groups (IntervalTreeOptions::free_batch_nodes): a grace period that starts after the
// last of a group's publishes covers every reader of every node in the group.
//
// Keys are inclusive [start, last] over the whole uint64_t range (0 and UINT64_MAX
// included); duplicates are allowed. Overlap walks visit entries in (start, last, value)
// order in O(log n + k).
//
// Thread safety: readers (for_each_overlap, size, check_invariants) from any thread,
// inside a read section of the tree's SrcuDomain (debug builds check). Writers (insert,
// erase, Batch) from any thread; they serialise, never wait for readers, and so may also
// run inside a read section.
// Failure: changes are noexcept. Running out of memory while copying a path terminates
// the process instead of unwinding, so a batch is never published half-built and no node
// still linked is retired.
// Lifetime: the SrcuDomain must outlive the tree. The destructor must not run while
// readers or writers are active, nor inside a read section of the domain (it waits for
// pending frees).
// Memory ordering: a publish (the end of insert, erase or a Batch) happens-before every
// walk that starts from the root it stored; a walk that starts earlier sees the previous
// snapshot in full.
#ifndef ITN_ITREE_INTERVAL_TREE_H_
#define ITN_ITREE_INTERVAL_TREE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#include "itree/internal/node.h"
#include "itree/internal/node_pool.h"
#include "itree/internal/walk.h"
#include "sync/atomic.h"
#include "sync/check.h"
#include "sync/mutex.h"
#include "sync/srcu.h"

namespace itn {

// Tuning knobs of an IntervalTree.
struct IntervalTreeOptions {
  // Replaced nodes are handed to SrcuDomain::call() in groups of at least this many, so
  // that a stream of small writes does not wake the SRCU worker once per write. Until then
  // they count as retired bytes (64 bytes a node). 1 frees after every publish.
  std::size_t free_batch_nodes = 1024;
};

// Bytes held by a tree's nodes.
struct IntervalTreeMemory {
  std::uint64_t live_bytes = 0;     // nodes of the current tree
  std::uint64_t retired_bytes = 0;  // replaced nodes waiting for their grace period
  std::uint64_t pool_bytes = 0;     // reserved by the node pool (live, retired and free)
};

template <class T, class Less = std::less<T>>
class IntervalTree {
  using Node = itree_internal::Node<T>;

 public:
  class Batch;

  explicit IntervalTree(SrcuDomain& srcu, IntervalTreeOptions options = {})
      : srcu_(srcu), options_(options) {}
  ~IntervalTree();
  IntervalTree(const IntervalTree&) = delete;
  IntervalTree& operator=(const IntervalTree&) = delete;

  // IntervalTree::for_each_overlap()
  //
  // Calls fn(start, last, value) for every entry overlapping [start, last], in key order.
  // `fn` may return bool: false stops the walk. Returns false if it was stopped.
  // Context: inside a read section of the tree's SrcuDomain. Never blocks or retries.
  template <class Fn>
  bool for_each_overlap(std::uint64_t start, std::uint64_t last, Fn&& fn) const {
    check_reader();
    // Acquire: pairs with the release store in publish_locked(); the snapshot's nodes are
    // complete and immutable from here on.
    const Node* root = root_.load(std::memory_order_acquire);
    return itree_internal::walk_overlaps(root, start, last, std::forward<Fn>(fn));
  }

  // IntervalTree::Cursor
  //
  // An overlap walk that can pause between entries: next() returns the value of each
  // entry overlapping the query in key order, then null. It walks the snapshot published
  // when overlaps() made it; current() tells whether that is still the published one.
  // Context: inside a read section of the tree's SrcuDomain for as long as it is used.
  class Cursor {
   public:
    const T* next() {
      const Node* n = cursor_.next();
      return n != nullptr ? &n->value : nullptr;
    }
    bool current(const IntervalTree& tree) const {
      // Acquire: pairs with the release store in publish_locked(). The held read section
      // keeps this snapshot's root from being reused, so equal pointers mean one snapshot.
      return tree.root_.load(std::memory_order_acquire) == cursor_.root();
    }

   private:
    friend class IntervalTree;
    Cursor(const Node* root, std::uint64_t start, std::uint64_t last)
        : cursor_(root, start, last) {}
    itree_internal::OverlapCursor<T> cursor_;
  };
  Cursor overlaps(std::uint64_t start, std::uint64_t last) const {
    check_reader();
    // Acquire: pairs with the release store in publish_locked().
    return Cursor(root_.load(std::memory_order_acquire), start, last);
  }

  // IntervalTree::may_overlap()
  //
  // False if no entry overlaps [start, last]: a check against the span from the lowest
  // start to the highest last of every entry, which touches no node and so needs no read
  // section. True only says to walk. An entry published before this call (happens-before)
  // and still in the tree is never missed; one published concurrently may be.
  bool may_overlap(std::uint64_t start, std::uint64_t last) const {
    // Acquire: pairs with the release stores in publish_locked(). The two loads may come
    // from different publishes; each bounds every entry present through both.
    return span_first_.load(std::memory_order_acquire) <= last &&
           start <= span_last_.load(std::memory_order_acquire);
  }

  // IntervalTree::size()
  //
  // The number of entries as of the latest publish. Lock-free; may lag a concurrent publish.
  std::size_t size() const {
    // Relaxed: a count, not a handle to memory; pairs with the store in publish_locked().
    return size_.load(std::memory_order_relaxed);
  }

  // IntervalTree::insert()
  //
  // Adds the entry [start, last] -> value (a one-change batch).
  // Errors: kInvalidArgument if start > last; the tree is unchanged.
  // Context: may block on other writers, never on readers.
  [[nodiscard]] absl::Status insert(std::uint64_t start, std::uint64_t last, T value) noexcept
      ABSL_LOCKS_EXCLUDED(mu_);

  // IntervalTree::erase()
  //
  // Removes one entry equal to ([start, last], value).
  // Errors: kInvalidArgument if start > last, kNotFound if there is no such entry; the
  // tree is unchanged.
  [[nodiscard]] absl::Status erase(std::uint64_t start, std::uint64_t last, const T& value) noexcept
      ABSL_LOCKS_EXCLUDED(mu_);

  // IntervalTree::check_invariants()
  //
  // Verifies the published snapshot: key order, AVL balance and heights, subtree max
  // `last`, and the entry count. For tests; O(n).
  // Context: inside a read section of the tree's SrcuDomain.
  [[nodiscard]] absl::Status check_invariants() const;

  // IntervalTree::memory()
  //
  // Live and retired node bytes. Relaxed snapshots of two counters.
  IntervalTreeMemory memory() const;

  // IntervalTree::reclaim()
  //
  // Frees every node retired so far, waiting for their grace period, and gives every
  // empty pool chunk back above the pool's watermark (publishes do so only now and then:
  // their scans are amortised). For a writer that must bound the retired bytes, and for
  // an owner that wants the memory of a finished churn back.
  // Context: may block on readers (a grace period); not inside a read section of the
  // tree's SrcuDomain or from one of its callbacks (dies). A Section from
  // SrcuDomain::hold() is invisible to that check: its holder must not call this (hangs).
  void reclaim() ABSL_LOCKS_EXCLUDED(mu_);

  // The published root's atomic: tests pause a writer at its publish (a kStore on it).
  const void* root_address_for_testing() const { return &root_; }

  // Bytes one entry occupies (a cache-line slot of the node pool).
  static constexpr std::size_t kNodeBytes = itree_internal::NodePool<Node>::kSlotBytes;

 private:
  void check_reader() const {
    ITN_DCHECK(srcu_.in_read_section(),
               "IntervalTree readers must hold a read section of the tree's SrcuDomain");
  }
  itree_internal::PathCopier<T, Less, itree_internal::NodePool<Node>> copier_locked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return {gen_, pool_, retired_, Less()};
  }
  void publish_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands the unreclaimed nodes to the SRCU domain, to be freed after a grace period.
  void queue_unreclaimed_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  SrcuDomain& srcu_;
  const IntervalTreeOptions options_;
  // The published root. Written only in publish_locked(), read by every walk.
  Atomic<Node*> root_{nullptr};
  // The span of the published entries, for may_overlap() (empty: first > last).
  Atomic<std::uint64_t> span_first_{~std::uint64_t{0}};
  Atomic<std::uint64_t> span_last_{0};
  Atomic<std::size_t> size_{0};
  Atomic<std::uint64_t> retired_bytes_{0};
  Atomic<std::uint64_t> pool_bytes_{0};

  Mutex mu_;                                      // serialises writers
  Node* working_ ABSL_GUARDED_BY(mu_) = nullptr;  // root of the batch being built
  std::size_t working_size_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint64_t gen_ ABSL_GUARDED_BY(mu_) = 1;  // nodes of this generation are unpublished
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Node*> retired_ ABSL_GUARDED_BY(mu_);      // replaced by the open batch
  std::vector<Node*> unreclaimed_ ABSL_GUARDED_BY(mu_);  // published-away, not yet queued
  // allocate()/release() under mu_; give_back() from SRCU callbacks without it.
  itree_internal::NodePool<Node> pool_;
};

// IntervalTree::Batch
//
// Holds the tree's writer lock from construction to destruction; every change made through
// it becomes visible to readers at once, when it is destroyed (one publish). Readers are
// never blocked by an open batch.
template <class T, class Less>
class ABSL_SCOPED_LOCKABLE IntervalTree<T, Less>::Batch {
 public:
  explicit Batch(IntervalTree& tree) ABSL_EXCLUSIVE_LOCK_FUNCTION(tree.mu_) : tree_(tree) {
    tree_.mu_.lock();
  }
  ~Batch() ABSL_UNLOCK_FUNCTION() {
    tree_.mu_.assert_held();
    tree_.publish_locked();
    tree_.mu_.unlock();
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Batch::insert() / erase(): as IntervalTree::insert() / erase(), published at the end
  // of the batch. A failed change leaves the batch as it was.
  [[nodiscard]] absl::Status insert(std::uint64_t start, std::uint64_t last, T value) noexcept {
    tree_.mu_.assert_held();
    if (start > last) return bad_range(start, last);
    tree_.working_ = tree_.copier_locked().insert(tree_.working_, start, last, value);
    ++tree_.working_size_;
    tree_.dirty_ = true;
    return absl::OkStatus();
  }
  [[nodiscard]] absl::Status erase(std::uint64_t start, std::uint64_t last,
                                   const T& value) noexcept {
    tree_.mu_.assert_held();
    if (start > last) return bad_range(start, last);
    if (!itree_internal::contains(tree_.working_, start, last, value, Less())) {
      return absl::NotFoundError(
          absl::StrCat("IntervalTree::erase: no entry [", start, ", ", last, "] with that value"));
    }
    tree_.working_ = tree_.copier_locked().erase(tree_.working_, start, last, value);
    --tree_.working_size_;
    tree_.dirty_ = true;
    return absl::OkStatus();
  }

 private:
  [[nodiscard]] static absl::Status bad_range(std::uint64_t start, std::uint64_t last) {
    return absl::InvalidArgumentError(
        absl::StrCat("IntervalTree: start ", start, " > last ", last));
  }

  IntervalTree& tree_;
};

}  // namespace itn

#include "itree/internal/interval_tree_impl.h"  // IWYU pragma: export

#endif  // ITN_ITREE_INTERVAL_TREE_H_
