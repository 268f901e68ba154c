// sync/test_util.h
//
// Helpers for itn's own tests: waiting on conditions without timed sleeps, and a
// SchedHooks that counts the scheduling points a piece of code passes through.
// Test-only; no library target includes it.
#ifndef ITN_SYNC_TEST_UTIL_H_
#define ITN_SYNC_TEST_UTIL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <thread>

#include "sync/sched_hooks.h"

namespace itn::testing {

// Spins (yielding) until pred() is true. Tests wait on conditions, never on time.
template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

inline constexpr int kKinds = static_cast<int>(SchedPoint::kJoin) + 1;

// Counts points. Blocking is a yield: callers re-check their condition, so the real
// threads behave correctly, only less efficiently than under a real scheduler.
class CountingHooks : public SchedHooks {
 public:
  void on_point(SchedPoint p, const void*) override { points[static_cast<int>(p)].fetch_add(1); }
  void on_block(const void*) override {
    blocks.fetch_add(1);
    std::this_thread::yield();
  }
  void on_wake(const void*) override { wakes.fetch_add(1); }
  void on_thread_start() override { starts.fetch_add(1); }
  void on_thread_exit() override { exits.fetch_add(1); }

  std::uint64_t count(SchedPoint p) const { return points[static_cast<int>(p)].load(); }

  std::array<std::atomic<std::uint64_t>, kKinds> points{};
  std::atomic<std::uint64_t> blocks{0}, wakes{0}, starts{0}, exits{0};
};

// Pauses the calling thread at its `nth` scheduling point of kind `point` on `object`
// (before the lock is taken, the store made, the mutex released, ...) until the test sets
// may_go. Install it on one thread only.
class PauseAt : public CountingHooks {
 public:
  PauseAt(SchedPoint point, const void* object, int nth)
      : point_(point), object_(object), nth_(nth) {}
  void on_point(SchedPoint p, const void* object) override {
    CountingHooks::on_point(p, object);
    if (p != point_ || object != object_ || ++seen_ != nth_) return;
    paused.store(true);
    wait_until([&] { return may_go.load(); });
  }
  std::atomic<bool> paused{false}, may_go{false};

 private:
  const SchedPoint point_;
  const void* const object_;
  const int nth_;
  int seen_ = 0;
};

}  // namespace itn::testing

#endif  // ITN_SYNC_TEST_UTIL_H_
