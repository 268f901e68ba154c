// sync/atomic.h
//
// itn::Atomic<T>: std::atomic<T> routed through the scheduling seam. Every operation
// takes an explicit std::memory_order, so each lock-free access in itn states its ordering
// at the call site, next to the comment naming the access it pairs with.
//
// Thread safety: as std::atomic<T>.
// Lifetime: as std::atomic<T>.
// Memory ordering: exactly the order passed; the seam adds none.
#ifndef ITN_SYNC_ATOMIC_H_
#define ITN_SYNC_ATOMIC_H_

#include <atomic>

#include "sync/sched_hooks.h"

namespace itn {

template <class T>
class Atomic {
 public:
  constexpr Atomic() noexcept : value_() {}
  constexpr explicit Atomic(T value) noexcept : value_(value) {}
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  T load(std::memory_order order) const noexcept {
    sched_internal::point(SchedPoint::kLoad, this);
    return value_.load(order);
  }
  void store(T value, std::memory_order order) noexcept {
    sched_internal::point(SchedPoint::kStore, this);
    value_.store(value, order);
  }
  T exchange(T value, std::memory_order order) noexcept {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.exchange(value, order);
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure) noexcept {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.compare_exchange_strong(expected, desired, success, failure);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure) noexcept {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.compare_exchange_weak(expected, desired, success, failure);
  }
  T fetch_add(T delta, std::memory_order order) noexcept requires std::is_integral_v<T> {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.fetch_add(delta, order);
  }
  T fetch_sub(T delta, std::memory_order order) noexcept requires std::is_integral_v<T> {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.fetch_sub(delta, order);
  }
  T fetch_or(T bits, std::memory_order order) noexcept requires std::is_integral_v<T> {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.fetch_or(bits, order);
  }
  T fetch_and(T bits, std::memory_order order) noexcept requires std::is_integral_v<T> {
    sched_internal::point(SchedPoint::kRmw, this);
    return value_.fetch_and(bits, order);
  }

 private:
  std::atomic<T> value_;
};

}  // namespace itn

#endif  // ITN_SYNC_ATOMIC_H_
