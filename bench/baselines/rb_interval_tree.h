// bench/baselines/rb_interval_tree.h
//
// Baseline: an intrusive augmented red-black interval tree. It mirrors the design of the
// Linux kernel's lib/rbtree.c with interval_tree_generic.h on top, written here from the
// textbook algorithm (insert and delete fixups with parent pointers): the node lives inside
// the caller's object, so linking and unlinking allocate nothing, and a query is one descent
// followed by in-order successor steps. Benchmarks use it to compare itn's trees with the
// kernel's own data structure, not just with its locking.
//
// Each node is keyed by `start` and carries the closed interval [start, last]. An entry
// overlaps the query [start, last] iff
//   Cond1: entry.start <= last   and   Cond2: start <= entry.last.
// In-order, starts never decrease, so once an entry fails Cond1 every later one does; a
// subtree whose subtree_last < start has no entry meeting Cond2 and is skipped.
//
// Thread safety: none; the caller serialises every call.
// Lifetime: nodes belong to the caller and must stay alive while linked.
// Memory ordering: none (the caller's lock).
#ifndef ITN_BENCH_BASELINES_RB_INTERVAL_TREE_H_
#define ITN_BENCH_BASELINES_RB_INTERVAL_TREE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace itn::bench {

// Embed one in the object to be linked. The tree owns the link fields while linked; the
// caller sets start and last before insert() and must not change them until erase().
struct RbIntervalNode {
  RbIntervalNode* parent = nullptr;
  RbIntervalNode* left = nullptr;
  RbIntervalNode* right = nullptr;
  bool red = false;
  std::uint64_t start = 0, last = 0;  // closed interval [start, last], start <= last
  std::uint64_t subtree_last = 0;     // max last over this node's subtree (the augmentation)
};

class RbIntervalTree {
 public:
  RbIntervalTree() = default;
  // A copy would share the caller's nodes with the original.
  RbIntervalTree(const RbIntervalTree&) = delete;
  RbIntervalTree& operator=(const RbIntervalTree&) = delete;

  // Links `n` (whose start/last the caller set, start <= last; not linked anywhere). Ordered
  // by start; equal starts go right (after existing ones), so duplicates are allowed and
  // keep their insertion order in-order.
  void insert(RbIntervalNode& n) {
    RbIntervalNode* parent = nullptr;
    RbIntervalNode** link = &root_;
    while (*link != nullptr) {
      parent = *link;
      // Every node on the way down gains `n` in its subtree: this is the propagation of the
      // augmentation up the new leaf's path, done while we pass.
      parent->subtree_last = std::max(parent->subtree_last, n.last);
      link = n.start < parent->start ? &parent->left : &parent->right;
    }
    n.parent = parent;
    n.left = n.right = nullptr;
    n.red = true;
    n.subtree_last = n.last;
    *link = &n;
    ++size_;
    insert_fixup(&n);
  }

  // Unlinks `n`, which must be linked in this tree.
  void erase(RbIntervalNode& n) {
    RbIntervalNode* z = &n;
    RbIntervalNode* x;         // the node that takes the spliced-out node's place (may be null)
    RbIntervalNode* x_parent;  // x's parent: the lowest node whose subtree changed
    bool removed_black;        // a black node left its place: z, or y when y takes z's colour
    if (z->left == nullptr || z->right == nullptr) {
      x = z->left != nullptr ? z->left : z->right;
      x_parent = z->parent;
      removed_black = !z->red;
      transplant(z, x);
    } else {
      // Two children: z's successor y (no left child) takes z's place and colour; the hole
      // moves to y's old position.
      RbIntervalNode* y = leftmost(z->right);
      removed_black = !y->red;
      x = y->right;
      if (y->parent == z) {
        x_parent = y;
      } else {
        x_parent = y->parent;
        transplant(y, x);
        y->right = z->right;
        y->right->parent = y;
      }
      transplant(z, y);
      y->left = z->left;
      y->left->parent = y;
      y->red = z->red;
    }
    // Every node from x_parent to the root lost `n` (and y, if it moved, sits on this path
    // with new children), so recompute them all now: the fixup's rotations then see correct
    // children everywhere, and recompute only the two nodes they move.
    for (RbIntervalNode* p = x_parent; p != nullptr; p = p->parent) recompute(p);
    --size_;
    if (removed_black) erase_fixup(x, x_parent);
    n.parent = n.left = n.right = nullptr;
    n.red = false;
  }

  // The overlapping node with the lowest start (leftmost in order) that overlaps
  // [start, last], or null. One descent, pruning by subtree_last.
  RbIntervalNode* first_overlap(std::uint64_t start, std::uint64_t last) const {
    if (root_ == nullptr || root_->subtree_last < start) return nullptr;
    return leftmost_overlap(root_, start, last);
  }

  // The next node after `n` in order that overlaps [start, last], or null (in-order successor
  // search pruned by subtree_last and by start > last). Each step walks the tree path from one
  // result to the next, so a whole first_overlap/next_overlap iteration costs O(log n) per
  // result at worst and O(log n + hits) when the results are contiguous in order: the bound
  // of the kernel's iterator.
  static RbIntervalNode* next_overlap(const RbIntervalNode& n, std::uint64_t start,
                                      std::uint64_t last) {
    const RbIntervalNode* from = &n;
    for (;;) {
      // Everything in from's right subtree comes next in order, before any ancestor.
      RbIntervalNode* r = from->right;
      if (r != nullptr && r->subtree_last >= start) return leftmost_overlap(r, start, last);
      // Otherwise the successor is the first ancestor we reach from its left child.
      RbIntervalNode* up = ancestor_after(from);
      if (up == nullptr || up->start > last) return nullptr;  // Cond1 fails from here on
      if (up->last >= start) return up;                       // Cond1 and Cond2 hold
      from = up;  // up fails Cond2 only; its right subtree comes next
    }
  }

  bool empty() const { return root_ == nullptr; }
  std::size_t size() const { return size_; }

  // Debug/test aid: checks every red-black and augmentation invariant (root black, no
  // red-red, equal black heights, parent links consistent, BST order by start, start <= last,
  // subtree_last correct, size() equal to the node count); returns false on the first
  // violation. O(n).
  bool valid() const {
    if (root_ == nullptr) return size_ == 0;
    if (root_->parent != nullptr || root_->red) return false;
    std::size_t count = 0;
    if (check_subtree(root_, 0, UINT64_MAX, count) < 0) return false;
    return count == size_;
  }

 private:
  static bool is_red(const RbIntervalNode* n) { return n != nullptr && n->red; }
  static std::uint64_t subtree_last_of(const RbIntervalNode* n) {
    return n != nullptr ? n->subtree_last : 0;  // 0 never raises a max
  }
  static void recompute(RbIntervalNode* n) {
    n->subtree_last = std::max({n->last, subtree_last_of(n->left), subtree_last_of(n->right)});
  }
  static RbIntervalNode* leftmost(RbIntervalNode* n) {
    while (n->left != nullptr) n = n->left;
    return n;
  }
  // The first ancestor of `n` whose left subtree holds `n`, i.e. n's in-order successor when
  // n has no right subtree; null if n is the last node.
  static RbIntervalNode* ancestor_after(const RbIntervalNode* n) {
    RbIntervalNode* p = n->parent;
    while (p != nullptr && p->right == n) {
      n = p;
      p = p->parent;
    }
    return p;
  }

  // The leftmost overlapping node of n's subtree, given n->subtree_last >= start. The walk
  // heads for the leftmost node meeting Cond2: if that one fails Cond1 so does everything
  // after it, and nothing before it meets Cond2, so there is no overlap at all.
  static RbIntervalNode* leftmost_overlap(RbIntervalNode* n, std::uint64_t start,
                                          std::uint64_t last) {
    for (;;) {
      if (n->left != nullptr && n->left->subtree_last >= start) {
        n = n->left;  // the leftmost Cond2 node is in the left subtree
        continue;
      }
      if (n->start > last) return nullptr;  // Cond1 fails here and after
      if (n->last >= start) return n;
      n = n->right;  // n fails Cond2 only; nothing on the left meets Cond2
      if (n == nullptr || n->subtree_last < start) return nullptr;
    }
  }

  // Makes `v` take `u`'s place under u's parent (v may be null). u's own links are untouched.
  void transplant(RbIntervalNode* u, RbIntervalNode* v) {
    RbIntervalNode* p = u->parent;
    if (p == nullptr) {
      root_ = v;
    } else if (p->left == u) {
      p->left = v;
    } else {
      p->right = v;
    }
    if (v != nullptr) v->parent = p;
  }

  // x's right child y rises to x's place. The set of nodes under y afterwards is the one that
  // was under x, but recomputing both (x, now the lower one, first) needs no trust in x's
  // old value.
  void rotate_left(RbIntervalNode* x) {
    RbIntervalNode* y = x->right;
    x->right = y->left;
    if (y->left != nullptr) y->left->parent = x;
    transplant(x, y);
    y->left = x;
    x->parent = y;
    recompute(x);
    recompute(y);
  }
  void rotate_right(RbIntervalNode* x) {
    RbIntervalNode* y = x->left;
    x->left = y->right;
    if (y->right != nullptr) y->right->parent = x;
    transplant(x, y);
    y->right = x;
    x->parent = y;
    recompute(x);
    recompute(y);
  }

  // Restores "no red node has a red parent" after linking the red leaf z; the root is made
  // black at the end. A red parent is never the root, so the grandparent exists.
  void insert_fixup(RbIntervalNode* z) {
    while (is_red(z->parent)) {
      RbIntervalNode* p = z->parent;
      RbIntervalNode* g = p->parent;
      const bool parent_is_left = p == g->left;
      RbIntervalNode* uncle = parent_is_left ? g->right : g->left;
      if (is_red(uncle)) {  // recolour and move the problem two levels up
        p->red = uncle->red = false;
        g->red = true;
        z = g;
        continue;
      }
      if (parent_is_left) {
        if (z == p->right) {  // bend the zig-zag straight first
          rotate_left(p);
          p = z;
        }
        rotate_right(g);
      } else {
        if (z == p->left) {
          rotate_right(p);
          p = z;
        }
        rotate_left(g);
      }
      p->red = false;  // p now stands where g stood, with g red below it
      g->red = true;
      break;
    }
    root_->red = false;
  }

  // x (possibly null) under `parent` carries an extra black after a black node left the
  // path. Push it up or absorb it with rotations and recolouring. Since x's side is short
  // by one black, x's sibling always exists.
  void erase_fixup(RbIntervalNode* x, RbIntervalNode* parent) {
    while (parent != nullptr && !is_red(x)) {
      if (x == parent->left) {
        RbIntervalNode* w = parent->right;
        if (w->red) {  // make the sibling black so one of the cases below applies
          w->red = false;
          parent->red = true;
          rotate_left(parent);
          w = parent->right;
        }
        if (!is_red(w->left) && !is_red(w->right)) {
          w->red = true;  // both sides short by one: the extra black moves up
          x = parent;
          parent = x->parent;
          continue;
        }
        if (!is_red(w->right)) {  // turn the near red nephew into a far one
          w->left->red = false;
          w->red = true;
          rotate_right(w);
          w = parent->right;
        }
        w->red = parent->red;
        parent->red = false;
        w->right->red = false;
        rotate_left(parent);
      } else {
        RbIntervalNode* w = parent->left;
        if (w->red) {
          w->red = false;
          parent->red = true;
          rotate_right(parent);
          w = parent->left;
        }
        if (!is_red(w->left) && !is_red(w->right)) {
          w->red = true;
          x = parent;
          parent = x->parent;
          continue;
        }
        if (!is_red(w->left)) {
          w->right->red = false;
          w->red = true;
          rotate_left(w);
          w = parent->left;
        }
        w->red = parent->red;
        parent->red = false;
        w->left->red = false;
        rotate_right(parent);
      }
      x = root_;  // the extra black was absorbed
      break;
    }
    if (x != nullptr) x->red = false;
  }

  // Checks n's subtree, whose starts must lie in [lo, hi]; returns its black height (null
  // leaves count as one) or -1 on a violation. Counts the nodes into `count`. Recursion
  // depth is the tree height; a child whose parent link is wrong is not entered, so a cycle
  // cannot make it loop.
  static int check_subtree(const RbIntervalNode* n, std::uint64_t lo, std::uint64_t hi,
                           std::size_t& count) {
    if (n == nullptr) return 1;
    ++count;
    if (n->start > n->last || n->start < lo || n->start > hi) return -1;
    if (n->red && (is_red(n->left) || is_red(n->right))) return -1;
    if (n->left != nullptr && n->left->parent != n) return -1;
    if (n->right != nullptr && n->right->parent != n) return -1;
    if (n->subtree_last != std::max({n->last, subtree_last_of(n->left), subtree_last_of(n->right)}))
      return -1;
    const int left = check_subtree(n->left, lo, n->start, count);
    if (left < 0) return -1;
    const int right = check_subtree(n->right, n->start, hi, count);
    if (right != left) return -1;
    return left + (n->red ? 0 : 1);
  }

  RbIntervalNode* root_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace itn::bench

#endif  // ITN_BENCH_BASELINES_RB_INTERVAL_TREE_H_
