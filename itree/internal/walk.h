// itree/internal/walk.h
//
// The lock-free overlap walk over one immutable snapshot. Internal: see
// itree/interval_tree.h for the contract.
//
// An entry [s, l] overlaps the query [start, last] iff
//   Cond1: s <= last   and   Cond2: start <= l.
// Key order is by s, so once an entry fails Cond1 every later one does: the walk stops.
// A subtree whose max_last < start has no entry meeting Cond2: the walk skips it.
//
// Cost: every node visited is on the root path of a reported entry or of the entry that
// ended the walk, so a walk costs O(log n) plus at most O(log n) per result, and O(log n + k)
// when the results are contiguous in key order (the kernel's interval tree has the same
// bound). No lock, no retry: the snapshot cannot change under the walk.
#ifndef ITN_ITREE_INTERNAL_WALK_H_
#define ITN_ITREE_INTERNAL_WALK_H_

#include <cstdint>
#include <type_traits>

#include "itree/internal/node.h"
#include "sync/check.h"

namespace itn::itree_internal {

// An AVL tree of height h has at least F(h+2)-1 nodes, so 2^64 entries fit in height 93.
inline constexpr int kMaxHeight = 96;

template <class T, class Fn>
bool report(const Node<T>& n, Fn& fn) {
  if constexpr (std::is_convertible_v<
                    std::invoke_result_t<Fn&, std::uint64_t, std::uint64_t, const T&>, bool>) {
    return fn(n.start, n.last, n.value);
  } else {
    fn(n.start, n.last, n.value);
    return true;
  }
}

// A walk that can pause: next() returns the entries of one snapshot overlapping
// [start, last], in key order, then null for ever.
template <class T>
class OverlapCursor {
 public:
  OverlapCursor(const Node<T>* root, std::uint64_t start, std::uint64_t last)
      : root_(root), n_(root), start_(start), last_(last) {}

  const Node<T>* root() const { return root_; }

  const Node<T>* next() {
    for (;;) {
      // Loop invariant: every entry before `n_`'s subtree in key order has been returned
      // or ruled out; `pending_` holds, innermost last, the ancestors still to visit.
      while (n_ != nullptr && n_->max_last >= start_) {  // Cond2 possible in n_'s subtree
        ITN_DCHECK(depth_ < kMaxHeight, "IntervalTree deeper than an AVL tree can be");
        pending_[depth_++] = n_;
        n_ = n_->left;
      }
      if (depth_ == 0) return nullptr;
      const Node<T>* n = pending_[--depth_];
      if (n->start > last_) {  // Cond1 fails here and for everything after
        depth_ = 0;
        n_ = nullptr;
        return nullptr;
      }
      n_ = n->right;
      if (n->last >= start_) return n;  // Cond1 and Cond2 hold
    }
  }

 private:
  const Node<T>* root_;
  const Node<T>* n_;
  std::uint64_t start_, last_;
  const Node<T>* pending_[kMaxHeight];  // ancestors whose entry and right subtree remain
  int depth_ = 0;
};

template <class T, class Fn>
bool walk_overlaps(const Node<T>* root, std::uint64_t start, std::uint64_t last, Fn&& fn) {
  OverlapCursor<T> cursor(root, start, last);
  while (const Node<T>* n = cursor.next()) {
    if (!report(*n, fn)) return false;
  }
  return true;
}

}  // namespace itn::itree_internal

#endif  // ITN_ITREE_INTERNAL_WALK_H_
