// sync/srcu.h
//
// itn::SrcuDomain: sleepable read-copy-update. Readers mark a read section and never
// block; an updater unpublishes an object, waits for a grace period (every read section
// that could have seen the object has ended), then frees it. This is what lets the
// interval tree and find() hand out pointers without taking a lock.
//
//   // reader                                  // updater (serialised by its own lock)
//   {                                          Config* old = cur_.exchange(fresh, acq_rel);
//     auto guard = srcu.read_lock();           srcu.call([old] { delete old; });
//     Config* c = cur_.load(acquire);          // or: srcu.synchronize(); delete old;
//     use(*c);  // valid until guard ends
//   }
//
// Rules
// - synchronize() and barrier() must not be called inside a read section of the same
//   domain: they would wait for the caller itself (I23). They die with a message naming
//   the rule instead of deadlocking. barrier() must not be called from a callback of
//   the same domain either (it would wait for itself).
// - Read sections nest, within one domain and across domains. A guard belongs to the
//   thread that made it and is released in LIFO order.
// - Sections may be long and may block (hence "sleepable"); a long section only delays
//   grace periods and callbacks of its own domain.
// - hold() makes a Section that is not tied to a thread: it can be moved and ended on
//   another thread (the kernel's srcu_down_read()/srcu_up_read()). The I23 check does not
//   see it, so a thread holding one must itself not call synchronize() or barrier().
//
// How it works
// Each domain has two counters per shard (a thread keeps one shard for life). A reader
// adds one to counter[epoch & 1] of its shard on entry and subtracts one from the same
// counter on exit. A grace period drains counter[idle] of every shard (readers that read
// the epoch just before the previous flip), flips the epoch so new readers use the other
// index, then drains the old one. "Drained" is judged with read-modify-writes (fetch_add
// of 0), not loads: if the drain's RMW comes before a reader's entry in that counter's
// modification order, it synchronises-with the entry, so the reader sees every store the
// updater made before synchronize(); if it comes after the entry, it also comes after the
// reader's exit (the count was zero) and the exit synchronises-with it. Either way no
// standalone fence is needed, and ThreadSanitizer sees every edge. The flip only bounds
// the wait: new readers never join the index being drained.
//
// Costs: a read section is two uncontended atomic RMWs on a cache line its thread rarely
// shares, plus two thread-local stores. synchronize() is two drains of kShards counters,
// plus the wait for readers.
//
// Thread safety: every method may be called from any thread, subject to the rules above.
// Lifetime: the domain must outlive every guard and every callback it queued; its
// destructor runs every queued callback (after a grace period) and joins the worker.
// Destroying it while a read section is active dies.
// Memory ordering: for every read section that began before synchronize() was called,
// the section's end happens-before synchronize() returns (and before a callback passed to
// call() runs). A section that synchronize() does not wait for sees every store the caller
// made before calling it.
#ifndef ITN_SYNC_SRCU_H_
#define ITN_SYNC_SRCU_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"

#include "sync/atomic.h"
#include "sync/check.h"
#include "sync/cond_var.h"
#include "sync/mutex.h"
#include "sync/thread.h"

namespace itn {
namespace srcu_internal {
inline constexpr int kShards = 16;
}  // namespace srcu_internal

// Counters for diagnostics and tests; each is monotonic.
struct SrcuStats {
  std::uint64_t grace_periods = 0;     // completed synchronize() calls (including the worker's)
  std::uint64_t reader_waits = 0;      // polls that found a reader still inside a section
  std::uint64_t callbacks_queued = 0;  // call() invocations
  std::uint64_t callbacks_run = 0;     // callbacks that have returned
};

class SrcuDomain {
 public:
  class ReadGuard;
  class Section;

  SrcuDomain() = default;
  ~SrcuDomain();
  SrcuDomain(const SrcuDomain&) = delete;
  SrcuDomain& operator=(const SrcuDomain&) = delete;

  // SrcuDomain::read_lock()
  //
  // Enters a read section that lasts as long as the returned guard. Never blocks.
  [[nodiscard]] ReadGuard read_lock();

  // SrcuDomain::hold()
  //
  // Enters a read section that lasts until the returned Section is ended or destroyed,
  // on whichever thread that happens. Never blocks. Invisible to in_read_section().
  [[nodiscard]] Section hold();

  // SrcuDomain::synchronize()
  //
  // Returns once every read section that began before the call has ended.
  // Context: may block. Must not be called inside a read section of this domain (I23,
  // dies). Concurrent calls are serialised.
  void synchronize() ABSL_LOCKS_EXCLUDED(gp_mu_);

  // SrcuDomain::call()
  //
  // Queues `fn` to run on the domain's worker thread after a grace period that begins
  // after this call. Callbacks queued by one thread run in the order queued. Never blocks
  // on readers; may be called inside a read section and from a callback.
  void call(absl::AnyInvocable<void() &&> fn) ABSL_LOCKS_EXCLUDED(cb_mu_);

  // SrcuDomain::barrier()
  //
  // Returns once every callback queued before the call has run.
  // Context: may block. Must not be called inside a read section of this domain (I23) or
  // from one of its callbacks (dies).
  void barrier() ABSL_LOCKS_EXCLUDED(cb_mu_);

  // SrcuDomain::in_read_section()
  //
  // True if the calling thread holds a read guard of this domain. For contract checks.
  bool in_read_section() const;

  // SrcuDomain::on_worker_thread()
  //
  // True if the calling thread is this domain's worker (running its callbacks). The
  // domain must not be destroyed there: its destructor joins that thread.
  bool on_worker_thread() const;

  SrcuStats stats() const;

 private:
  struct alignas(64) Shard {
    Atomic<std::int64_t> count[2];
  };

  // Enters a read section on the calling thread's shard; returns the counter to leave by.
  Atomic<std::int64_t>* enter();
  void wait_for_readers(int index);
  void worker_loop() ABSL_LOCKS_EXCLUDED(cb_mu_);

  Shard shards_[srcu_internal::kShards];
  // Read by readers only to pick an index; a stale value costs a longer drain, never
  // safety (see "How it works").
  Atomic<std::uint64_t> epoch_{0};

  Mutex gp_mu_;  // serialises grace periods
  Atomic<std::uint64_t> grace_periods_{0};
  Atomic<std::uint64_t> reader_waits_{0};

  mutable Mutex cb_mu_;
  CondVar work_cv_;  // signalled when pending_ gains a callback or stopping_ is set
  CondVar done_cv_;  // signalled when completed_ advances
  std::vector<absl::AnyInvocable<void() &&>> pending_ ABSL_GUARDED_BY(cb_mu_);
  std::uint64_t queued_ ABSL_GUARDED_BY(cb_mu_) = 0;     // tickets handed out by call()
  std::uint64_t completed_ ABSL_GUARDED_BY(cb_mu_) = 0;  // tickets whose callback ran
  bool stopping_ ABSL_GUARDED_BY(cb_mu_) = false;
  bool worker_waiting_ ABSL_GUARDED_BY(cb_mu_) = false;  // worker blocked on work_cv_
  std::unique_ptr<Thread> worker_ ABSL_GUARDED_BY(cb_mu_);
};

namespace srcu_internal {

// Per-thread state shared by every domain.
struct ThreadState {
  static constexpr unsigned kNoShard = ~0u;
  unsigned shard = kNoShard;
  const SrcuDomain::ReadGuard* innermost = nullptr;  // chain of this thread's guards
  const SrcuDomain* running_callbacks_of = nullptr;  // set on a domain's worker
};
inline thread_local ThreadState tl_state;

unsigned assign_shard();

}  // namespace srcu_internal

// SrcuDomain::ReadGuard
//
// A read section of one domain, from read_lock() to destruction. Neither copyable nor
// movable: it stays on the stack frame (and thread) that entered the section.
class [[nodiscard]] SrcuDomain::ReadGuard {
 public:
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;

  ~ReadGuard() {
    srcu_internal::ThreadState& ts = srcu_internal::tl_state;
    ITN_DCHECK(ts.innermost == this, "SrcuDomain read guards must be released in LIFO order");
    ts.innermost = outer_;
    // Release: pairs with the acquire half of the drain RMW in wait_for_readers(); makes
    // this section happen-before the grace period that observes the count at zero.
    counter_->fetch_sub(1, std::memory_order_release);
  }

 private:
  friend class SrcuDomain;

  explicit ReadGuard(SrcuDomain& domain) : domain_(&domain), counter_(domain.enter()) {
    srcu_internal::ThreadState& ts = srcu_internal::tl_state;
    outer_ = ts.innermost;
    ts.innermost = this;
  }

  const SrcuDomain* domain_;
  Atomic<std::int64_t>* counter_;
  const ReadGuard* outer_;
};

// SrcuDomain::Section
//
// A read section of one domain from hold() until end() or destruction, movable, and
// ended on any thread. A moved-from or ended Section holds nothing.
class [[nodiscard]] SrcuDomain::Section {
 public:
  Section() = default;
  Section(Section&& other) noexcept : counter_(other.counter_) { other.counter_ = nullptr; }
  Section& operator=(Section&& other) noexcept {
    if (this != &other) {
      end();
      counter_ = other.counter_;
      other.counter_ = nullptr;
    }
    return *this;
  }
  ~Section() { end(); }

  // SrcuDomain::Section::end()
  //
  // Leaves the section (nothing if it holds none).
  void end() {
    if (counter_ == nullptr) return;
    // Release: pairs with the acquire half of the drain RMW in wait_for_readers(), as in
    // ~ReadGuard().
    counter_->fetch_sub(1, std::memory_order_release);
    counter_ = nullptr;
  }

 private:
  friend class SrcuDomain;
  explicit Section(Atomic<std::int64_t>* counter) : counter_(counter) {}

  Atomic<std::int64_t>* counter_ = nullptr;
};

inline Atomic<std::int64_t>* SrcuDomain::enter() {
  srcu_internal::ThreadState& ts = srcu_internal::tl_state;
  if (ts.shard == srcu_internal::ThreadState::kNoShard) [[unlikely]] {
    ts.shard = srcu_internal::assign_shard();
  }
  // Relaxed: the epoch only steers the reader away from the index being drained; it
  // pairs with nothing (see "How it works").
  const auto index = epoch_.load(std::memory_order_relaxed) & 1;
  Atomic<std::int64_t>* counter = &shards_[ts.shard].count[index];
  // Acquire: pairs with the release half of the drain RMW in wait_for_readers(). If a
  // drain came first in this counter's order, every store its updater made before
  // synchronize() is visible to this section.
  counter->fetch_add(1, std::memory_order_acquire);
  return counter;
}

inline SrcuDomain::ReadGuard SrcuDomain::read_lock() { return ReadGuard(*this); }

inline SrcuDomain::Section SrcuDomain::hold() { return Section(enter()); }

}  // namespace itn

#endif  // ITN_SYNC_SRCU_H_
