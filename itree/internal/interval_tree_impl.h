// itree/internal/interval_tree_impl.h
//
// Out-of-line members of IntervalTree<T, Less>. Included by itree/interval_tree.h only.
#ifndef ITN_ITREE_INTERNAL_INTERVAL_TREE_IMPL_H_
#define ITN_ITREE_INTERNAL_INTERVAL_TREE_IMPL_H_

#include <algorithm>
#include <utility>

#include "itree/interval_tree.h"

namespace itn {

template <class T, class Less>
IntervalTree<T, Less>::~IntervalTree() {
  srcu_.barrier();  // frees every node already queued
  MutexLock l(mu_);
  ITN_CHECK(!dirty_, "IntervalTree destroyed with a batch open");
  // Readers are gone by contract, so every node can go back to the pool, which frees its
  // chunks when it is destroyed.
  auto release = [this](Node* n) { pool_.release(n); };
  for (Node* n : unreclaimed_) release(n);
  itree_internal::free_subtree(working_, release);
}

template <class T, class Less>
absl::Status IntervalTree<T, Less>::insert(std::uint64_t start, std::uint64_t last,
                                           T value) noexcept {
  Batch batch(*this);
  return batch.insert(start, last, std::move(value));
}

template <class T, class Less>
absl::Status IntervalTree<T, Less>::erase(std::uint64_t start, std::uint64_t last,
                                          const T& value) noexcept {
  Batch batch(*this);
  return batch.erase(start, last, value);
}

template <class T, class Less>
void IntervalTree<T, Less>::publish_locked() {
  if (!dirty_) return;
  std::uint64_t first = ~std::uint64_t{0};
  std::uint64_t last = 0;
  if (working_ != nullptr) {
    const Node* leftmost = working_;
    while (leftmost->left != nullptr) leftmost = leftmost->left;
    first = leftmost->start;
    last = working_->max_last;
  }
  // Release: pairs with the acquire loads in may_overlap().
  span_first_.store(first, std::memory_order_release);
  span_last_.store(last, std::memory_order_release);
  // Release: pairs with the acquire load in for_each_overlap() and check_invariants();
  // every node of the new snapshot was written before this store and never changes again.
  root_.store(working_, std::memory_order_release);
  // Relaxed: size() is advisory and pairs with nothing.
  size_.store(working_size_, std::memory_order_relaxed);
  ++gen_;  // from now on this batch's nodes are published: copy before editing
  dirty_ = false;
  if (!retired_.empty()) {
    // Relaxed: statistic only.
    retired_bytes_.fetch_add(retired_.size() * kNodeBytes, std::memory_order_relaxed);
    unreclaimed_.insert(unreclaimed_.end(), retired_.begin(), retired_.end());
    retired_.clear();
    if (unreclaimed_.size() >= options_.free_batch_nodes) queue_unreclaimed_locked();
  }
  pool_.trim();  // takes in what grace periods gave back; frees chunks above the watermark
  pool_bytes_.store(pool_.reserved_bytes(), std::memory_order_relaxed);  // statistic only
}

template <class T, class Less>
void IntervalTree<T, Less>::queue_unreclaimed_locked() {
  if (unreclaimed_.empty()) return;
  // Every node here was unlinked by a publish before this call, so the grace period that
  // call() waits for covers all of their readers.
  srcu_.call([this, nodes = std::move(unreclaimed_)]() mutable {
    const std::uint64_t bytes = nodes.size() * kNodeBytes;
    // Not under mu_: the pool takes nodes back from any thread, so a grace period never
    // waits for (or stalls) the writer.
    pool_.give_back(std::move(nodes));
    retired_bytes_.fetch_sub(bytes, std::memory_order_relaxed);  // statistic only
  });
  unreclaimed_.clear();
}

template <class T, class Less>
void IntervalTree<T, Less>::reclaim() {
  {
    MutexLock l(mu_);
    queue_unreclaimed_locked();
  }
  srcu_.barrier();
  MutexLock l(mu_);
  pool_.trim_fully();
  pool_bytes_.store(pool_.reserved_bytes(), std::memory_order_relaxed);  // statistic only
}

template <class T, class Less>
absl::Status IntervalTree<T, Less>::check_invariants() const {
  check_reader();
  // Acquire: pairs with the release store in publish_locked().
  const Node* root = root_.load(std::memory_order_acquire);
  const Less less;
  std::size_t count = 0;
  const Node* prev = nullptr;
  absl::Status status;
  // Returns the height; records the first violation in `status`.
  auto check = [&](auto& self, const Node* n) -> int {
    if (n == nullptr || !status.ok()) return 0;
    const int lh = self(self, n->left);
    if (n->start > n->last) status = absl::InternalError("node with start > last");
    if (prev && itree_internal::key_less(n->start, n->last, n->value, *prev, less)) {
      status =
          absl::InternalError(absl::StrCat("key order broken at [", n->start, ", ", n->last, "]"));
    }
    prev = n;
    ++count;
    const int rh = self(self, n->right);
    std::uint64_t max_last = n->last;
    if (n->left) max_last = std::max(max_last, n->left->max_last);
    if (n->right) max_last = std::max(max_last, n->right->max_last);
    if (n->max_last != max_last) {
      status = absl::InternalError(absl::StrCat("max_last ", n->max_last, " should be ", max_last,
                                                " at [", n->start, ", ", n->last, "]"));
    }
    if (n->height != 1 + std::max(lh, rh)) status = absl::InternalError("stale height");
    if (lh - rh > 1 || rh - lh > 1) status = absl::InternalError("AVL balance broken");
    return 1 + std::max(lh, rh);
  };
  check(check, root);
  if (status.ok() && count != size()) {
    status = absl::InternalError(
        absl::StrCat("size() is ", size(), " but the tree has ", count, " entries"));
  }
  return status;
}

template <class T, class Less>
IntervalTreeMemory IntervalTree<T, Less>::memory() const {
  IntervalTreeMemory m;
  m.live_bytes = size() * kNodeBytes;
  m.pool_bytes = pool_bytes_.load(std::memory_order_relaxed);        // statistic only
  m.retired_bytes = retired_bytes_.load(std::memory_order_relaxed);  // statistic only
  return m;
}

}  // namespace itn

#endif  // ITN_ITREE_INTERNAL_INTERVAL_TREE_IMPL_H_
