// itree/internal/node.h
//
// The nodes of IntervalTree and the path-copying AVL algorithms over them. Internal: the
// public contract is in itree/interval_tree.h.
//
// Nodes are immutable once published. A writer changes the tree by copying every node on
// the path from the root to the change ("own" it), editing the copies, and publishing the
// new root; readers holding the old root keep walking an untouched snapshot. A node that
// already belongs to the current generation (it was created or copied by this batch and
// has not been published) is edited in place, so a batch of k changes copies each node at
// most once. Every node a change replaces is retired; the tree frees retired nodes after a
// grace period.
//
// Ordering: by key (start, last, value) with `Less` on values; equal keys are allowed
// (a multiset) and sit in insertion order to the right of each other.
// Augmentation: max_last = the largest `last` in the subtree ("Cond: start <= last" holds
// for every node, so a subtree whose max_last < q.start cannot overlap q).
#ifndef ITN_ITREE_INTERNAL_NODE_H_
#define ITN_ITREE_INTERNAL_NODE_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace itn::itree_internal {

template <class T>
struct Node {
  std::uint64_t start;
  std::uint64_t last;
  std::uint64_t max_last;  // max of `last` over this subtree
  Node* left;
  Node* right;
  // One word for both, so that a 16-byte value still fits a 64-byte slot: 2^56 batches
  // never wrap, and an AVL tree of 2^64 entries is at most 93 high.
  std::uint64_t gen : 56;    // generation (batch) that created this version of the node
  std::uint64_t height : 8;  // AVL height; a leaf is 1
  T value;
};

template <class T>
int height(const Node<T>* n) {
  return n ? static_cast<int>(n->height) : 0;
}

// Rewrites height and max_last of `n` from its children. `n` must be owned.
template <class T>
void update(Node<T>* n) {
  n->height = 1 + std::max(height(n->left), height(n->right));
  n->max_last = n->last;
  if (n->left) n->max_last = std::max(n->max_last, n->left->max_last);
  if (n->right) n->max_last = std::max(n->max_last, n->right->max_last);
}

// Key order: start, then last, then value.
template <class T, class Less>
bool key_less(std::uint64_t s1, std::uint64_t l1, const T& v1, const Node<T>& n, Less less) {
  if (s1 != n.start) return s1 < n.start;
  if (l1 != n.last) return l1 < n.last;
  return less(v1, n.value);
}
template <class T, class Less>
bool key_equal(std::uint64_t s, std::uint64_t l, const T& v, const Node<T>& n, Less less) {
  return s == n.start && l == n.last && !less(v, n.value) && !less(n.value, v);
}

// True if the subtree holds an entry equal to the key.
template <class T, class Less>
bool contains(const Node<T>* n, std::uint64_t start, std::uint64_t last, const T& value,
              Less less) {
  while (n != nullptr) {
    if (key_equal(start, last, value, *n, less)) return true;
    n = key_less(start, last, value, *n, less) ? n->left : n->right;
  }
  return false;
}

// Passes every node of the subtree (which no reader may still see) to release(node).
template <class T, class Release>
void free_subtree(Node<T>* n, Release& release) {
  while (n != nullptr) {
    free_subtree(n->left, release);
    Node<T>* right = n->right;
    release(n);
    n = right;
  }
}

// The state of one writer batch. `Alloc` provides Node<T>* allocate(const Node<T>&) and is
// the only source of new nodes.
template <class T, class Less, class Alloc>
class PathCopier {
 public:
  PathCopier(std::uint64_t gen, Alloc& alloc, std::vector<Node<T>*>& retired, Less less)
      : gen_(gen), alloc_(alloc), retired_(retired), less_(less) {}

  Node<T>* insert(Node<T>* root, std::uint64_t start, std::uint64_t last, const T& value) {
    Node<T>* fresh = alloc_.allocate(Node<T>{start, last, last, nullptr, nullptr, gen_, 1, value});
    return insert_node(root, fresh);
  }

  // Removes one entry equal to the key; it must be present (the caller checks first, so a
  // miss never copies anything).
  Node<T>* erase(Node<T>* n, std::uint64_t start, std::uint64_t last, const T& value) {
    n = own(n);
    if (key_equal(start, last, value, *n, less_)) return remove_owned(n);
    if (key_less(start, last, value, *n, less_)) {
      n->left = erase(n->left, start, last, value);
    } else {
      n->right = erase(n->right, start, last, value);
    }
    return rebalance(n);
  }

 private:
  // Returns a version of `n` this batch may edit: `n` itself if this batch made it,
  // otherwise a copy, retiring `n`.
  Node<T>* own(Node<T>* n) {
    if (n->gen == gen_) return n;
    Node<T>* copy = alloc_.allocate(*n);
    copy->gen = gen_;
    retired_.push_back(n);
    return copy;
  }

  Node<T>* insert_node(Node<T>* n, Node<T>* fresh) {
    if (!n) return fresh;
    n = own(n);
    // Equal keys go right, after the existing ones.
    if (key_less(fresh->start, fresh->last, fresh->value, *n, less_)) {
      n->left = insert_node(n->left, fresh);
    } else {
      n->right = insert_node(n->right, fresh);
    }
    return rebalance(n);
  }

  // Unlinks the owned node `n`, returning the subtree that replaces it.
  Node<T>* remove_owned(Node<T>* n) {
    retired_.push_back(n);  // `n` may be fresh (never published); retiring it is still safe
    if (!n->left) return n->right;
    if (!n->right) return n->left;
    // Two children: the successor (minimum of the right subtree) takes n's place.
    Node<T>* successor = nullptr;
    Node<T>* right = take_min(n->right, &successor);
    Node<T>* replacement = own(successor);
    replacement->left = n->left;
    replacement->right = right;
    return rebalance(replacement);
  }

  // Removes the minimum of subtree `n` and returns the new subtree; *min receives the
  // removed node (not retired: the caller reuses it).
  Node<T>* take_min(Node<T>* n, Node<T>** min) {
    if (!n->left) {
      *min = n;
      return n->right;
    }
    n = own(n);
    n->left = take_min(n->left, min);
    return rebalance(n);
  }

  // rotate_right: n(l(a, b), c) becomes l(a, n(b, c)); rotate_left is its mirror image.
  // `n` must be owned; the child that rises is owned here.
  Node<T>* rotate_right(Node<T>* n) {
    Node<T>* l = own(n->left);
    n->left = l->right;
    update(n);
    l->right = n;
    update(l);
    return l;
  }
  Node<T>* rotate_left(Node<T>* n) {
    Node<T>* r = own(n->right);
    n->right = r->left;
    update(n);
    r->left = n;
    update(r);
    return r;
  }

  // Restores the AVL balance of the owned node `n` (children differ in height by at most
  // 2 after one insert or erase below it) and its augmentation.
  Node<T>* rebalance(Node<T>* n) {
    update(n);
    const int balance = height(n->left) - height(n->right);
    if (balance > 1) {
      if (height(n->left->left) < height(n->left->right)) n->left = rotate_left(own(n->left));
      return rotate_right(n);
    }
    if (balance < -1) {
      if (height(n->right->right) < height(n->right->left)) n->right = rotate_right(own(n->right));
      return rotate_left(n);
    }
    return n;
  }

  std::uint64_t gen_;
  Alloc& alloc_;
  std::vector<Node<T>*>& retired_;
  Less less_;
};

}  // namespace itn::itree_internal

#endif  // ITN_ITREE_INTERNAL_NODE_H_
