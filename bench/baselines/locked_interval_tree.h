// bench/baselines/locked_interval_tree.h
//
// Baseline `kernel_design`: the way the kernel's interval tree is used, a mutable augmented
// balanced tree behind one mutex; readers take the mutex too. It runs the very AVL
// algorithms of itree/internal/node.h, in place: every node carries the writer's single
// generation, so PathCopier never copies, and replaced nodes are deleted at once. The
// difference from itn::IntervalTree is therefore exactly "persistent + SRCU" versus
// "mutable + lock".
//
// Thread safety: every method locks. Lifetime: owns its nodes. Memory ordering: the mutex.
#ifndef ITN_BENCH_BASELINES_LOCKED_INTERVAL_TREE_H_
#define ITN_BENCH_BASELINES_LOCKED_INTERVAL_TREE_H_

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/status.h"

#include "itree/internal/node.h"
#include "itree/internal/walk.h"
#include "sync/mutex.h"

namespace itn::bench {

template <class T, class Less = std::less<T>>
class LockedIntervalTree {
  using Node = itree_internal::Node<T>;

 public:
  LockedIntervalTree() = default;
  ~LockedIntervalTree() {
    auto release = [](Node* n) { delete n; };
    itree_internal::free_subtree(root_, release);
  }
  LockedIntervalTree(const LockedIntervalTree&) = delete;
  LockedIntervalTree& operator=(const LockedIntervalTree&) = delete;

  absl::Status insert(std::uint64_t start, std::uint64_t last, T value) {
    if (start > last) return absl::InvalidArgumentError("start > last");
    MutexLock l(mu_);
    root_ = copier_locked().insert(root_, start, last, value);
    return absl::OkStatus();
  }

  absl::Status erase(std::uint64_t start, std::uint64_t last, const T& value) {
    MutexLock l(mu_);
    if (!itree_internal::contains(root_, start, last, value, Less()))
      return absl::NotFoundError("no such entry");
    root_ = copier_locked().erase(root_, start, last, value);
    for (Node* n : removed_) delete n;
    removed_.clear();
    return absl::OkStatus();
  }

  template <class Fn>
  bool for_each_overlap(std::uint64_t start, std::uint64_t last, Fn&& fn) {
    MutexLock l(mu_);
    return itree_internal::walk_overlaps(static_cast<const Node*>(root_), start, last,
                                         std::forward<Fn>(fn));
  }

 private:
  static constexpr std::uint64_t kGen = 0;  // the only generation: edit in place
  struct Alloc {
    Node* allocate(const Node& init) { return new Node(init); }
  };

  itree_internal::PathCopier<T, Less, Alloc> copier_locked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return {kGen, alloc_, removed_, Less()};
  }

  Mutex mu_;
  Node* root_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<Node*> removed_ ABSL_GUARDED_BY(mu_);  // nodes unlinked by the last erase
  Alloc alloc_ ABSL_GUARDED_BY(mu_);
};

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_LOCKED_INTERVAL_TREE_H_
