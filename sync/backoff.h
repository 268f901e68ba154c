// sync/backoff.h
//
// itn::Backoff: the pause between two polls of a condition that another thread will
// make true (a grace period waiting for readers to leave). It yields the CPU first and
// then sleeps for doubling intervals up to a cap, so a short wait costs microseconds and
// a long one does not burn a core. Under a deterministic scheduler a pause is a kPoll
// point and never sleeps: the scheduler runs another thread instead.
//
// Thread safety: one Backoff per polling loop, used by one thread.
// Lifetime: no external state.
// Memory ordering: none.
#ifndef ITN_SYNC_BACKOFF_H_
#define ITN_SYNC_BACKOFF_H_

#include <chrono>
#include <thread>

#include "sync/sched_hooks.h"

namespace itn {

class Backoff {
 public:
  // Backoff::pause()
  //
  // Waits a little; `object` names what the caller polls, for the scheduler's trace.
  void pause(const void* object) {
    if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
      h->on_point(SchedPoint::kPoll, object);
      return;
    }
    if (rounds_++ < kYieldRounds) {
      std::this_thread::yield();
      return;
    }
    std::this_thread::sleep_for(sleep_);
    if (sleep_ < kMaxSleep) sleep_ *= 2;
  }

 private:
  static constexpr int kYieldRounds = 16;
  static constexpr std::chrono::microseconds kMaxSleep{1000};

  int rounds_ = 0;
  std::chrono::microseconds sleep_{1};
};

}  // namespace itn

#endif  // ITN_SYNC_BACKOFF_H_
