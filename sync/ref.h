// sync/ref.h
//
// Intrusive reference counting: RefCounted (the base), Ref<T> (a counted reference) and
// make_ref<T>() (the only way to create a counted object).
//
//   class Widget : public itn::RefCounted { ... };
//   itn::Ref<Widget> w = itn::make_ref<Widget>(args...);   // count 1
//   itn::Ref<Widget> w2 = w;                               // count 2
//
// Lock-free lookups. A container read without a lock (inside an SrcuDomain read section)
// can meet an object whose last reference is being dropped concurrently. Ref<T>::try_get()
// takes a reference only if the count has not already reached zero, so a lookup either
// gets a reference that keeps the object alive or gets null, never a resurrected object.
// For that to be safe the memory must stay valid until the reader's section ends: such
// objects call free_after_grace_period(srcu) (before they are published), and then their
// final release frees them through srcu.call() instead of at once.
//
// Thread safety: Ref<T> values are like std::shared_ptr: one Ref object must not be
// written by one thread while another accesses it, but distinct Refs to one object may be
// used freely from any threads.
// Lifetime: an object lives while its count is above zero; at zero it is deleted at once,
// or after a grace period of the domain given to free_after_grace_period(), which must
// outlive it.
// Memory ordering: everything done through any reference happens-before the object's
// destructor runs. try_get() orders nothing by itself; the container that published the
// object (with a release store read by an acquire load) orders its contents.
#ifndef ITN_SYNC_REF_H_
#define ITN_SYNC_REF_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "sync/atomic.h"
#include "sync/check.h"

namespace itn {

class SrcuDomain;
template <class T>
class Ref;

class RefCounted {
 public:
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;

  // RefCounted::ref_count_for_testing()
  //
  // The current count. Stale as soon as it is returned; for tests and assertions.
  std::uint64_t ref_count_for_testing() const {
    return refs_.load(std::memory_order_relaxed);  // relaxed: a snapshot, orders nothing
  }

 protected:
  RefCounted() = default;
  virtual ~RefCounted() = default;

  // RefCounted::free_after_grace_period()
  //
  // Makes the final release delete this object through `srcu.call()`, so that readers of
  // `srcu` that found it without a reference may keep using its memory until their read
  // section ends. Call before the object is published; `srcu` must outlive the object.
  void free_after_grace_period(SrcuDomain& srcu) { reclaim_domain_ = &srcu; }

 private:
  template <class T>
  friend class Ref;

  void add_ref() const {
    // Relaxed: the caller already holds a reference, so the object is alive and nothing
    // needs ordering (the same argument as std::shared_ptr's copy).
    refs_.fetch_add(1, std::memory_order_relaxed);
  }

  bool try_add_ref() const {
    // Relaxed: the caller's read section keeps the memory valid; the object's contents
    // were ordered by the container's publication. Only the zero check matters here.
    std::uint64_t n = refs_.load(std::memory_order_relaxed);
    while (n != 0) {
      if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed,
                                      std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  void drop_ref() const {
    // acq_rel: the release half publishes this holder's uses of the object; the acquire
    // half, on the final release, pairs with every earlier holder's release so that the
    // destructor sees all of their effects.
    const std::uint64_t before = refs_.fetch_sub(1, std::memory_order_acq_rel);
    ITN_CHECK(before != 0, "Ref released more times than acquired");
    if (before == 1) destroy();
  }

  // Deletes the object now, or after a grace period of reclaim_domain_.
  void destroy() const;

  mutable Atomic<std::uint64_t> refs_{1};
  SrcuDomain* reclaim_domain_ = nullptr;
};

template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): null converts implicitly

  Ref(const Ref& other) : ptr_(other.ptr_) {
    if (ptr_) counted(ptr_)->add_ref();
  }
  Ref(Ref&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}

  template <class U>
  requires std::is_convertible_v<U*, T*> Ref(const Ref<U>& other)
      : ptr_(other.ptr_) {  // NOLINT(google-explicit-constructor)
    if (ptr_) counted(ptr_)->add_ref();
  }
  template <class U>
  requires std::is_convertible_v<U*, T*> Ref(Ref<U>&& other)
  noexcept  // NOLINT(google-explicit-constructor)
      : ptr_(std::exchange(other.ptr_, nullptr)) {}

  ~Ref() { reset(); }

  Ref& operator=(Ref other) noexcept {
    std::swap(ptr_, other.ptr_);
    return *this;
  }

  // Ref<T>::try_get()
  //
  // A new reference to `object`, or null if its count already reached zero (it is being
  // destroyed). `object` must be valid memory for the duration of the call: typically it
  // was found in an SrcuDomain-protected container inside a read section, and the object
  // frees itself after a grace period (free_after_grace_period()).
  static Ref try_get(T* object) {
    return object && counted(object)->try_add_ref() ? Ref(object) : Ref();
  }

  // Ref<T>::from_this()
  //
  // A new reference to an object the caller already knows to be alive through another
  // reference (e.g. `this` inside a method called through a Ref).
  static Ref from_this(T* object) {
    ITN_DCHECK(object->ref_count_for_testing() != 0, "Ref::from_this() on a dead object");
    counted(object)->add_ref();
    return Ref(object);
  }

  void reset() {
    // Here rather than at class scope, so that a class may hold a Ref to its own type.
    static_assert(std::is_base_of_v<RefCounted, T>, "Ref<T> requires T to derive from RefCounted");
    if (T* p = std::exchange(ptr_, nullptr)) counted(p)->drop_ref();
  }

  T* get() const { return ptr_; }
  T& operator*() const { return *ptr_; }
  T* operator->() const { return ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }

  friend bool operator==(const Ref& a, const Ref& b) { return a.ptr_ == b.ptr_; }
  friend bool operator==(const Ref& a, std::nullptr_t) { return a.ptr_ == nullptr; }

 private:
  template <class U>
  friend class Ref;
  template <class U, class... Args>
  friend Ref<U> make_ref(Args&&... args);

  // Adopts a count the caller already took.
  explicit Ref(T* adopted) : ptr_(adopted) {}

  // The counting functions are called through the base, so that a subclass's own
  // functions of those names can never be picked up by mistake.
  static const RefCounted* counted(const T* p) { return p; }

  T* ptr_ = nullptr;
};

// make_ref()
//
// Creates a T with count 1 and returns the reference that owns that count.
template <class T, class... Args>
Ref<T> make_ref(Args&&... args) {
  return Ref<T>(new T(std::forward<Args>(args)...));
}

}  // namespace itn

#endif  // ITN_SYNC_REF_H_
