#include "sync/thread.h"

#include <utility>

#include "sync/check.h"
#include "sync/sched_hooks.h"

namespace itn {

Thread::Thread(absl::AnyInvocable<void() &&> body) {
  sched_internal::point(SchedPoint::kSpawn, this);
  SchedHooks* parent = sched_internal::hooks();
  thread_ = std::thread(
      [this, parent, body = std::move(body)]() mutable { run(std::move(body), parent); });
}

void Thread::run(absl::AnyInvocable<void() &&> body, SchedHooks* parent_hooks) {
  if (parent_hooks) {
    set_thread_hooks(parent_hooks);
    parent_hooks->on_thread_start();
  }
  std::move(body)();
  // Pairs with the acquire load in join().
  finished_.store(true, std::memory_order_release);
  if (parent_hooks) {
    parent_hooks->on_wake(&finished_);
    parent_hooks->on_thread_exit();
    set_thread_hooks(nullptr);
  }
}

Thread::~Thread() { ITN_CHECK(!thread_.joinable(), "itn::Thread destroyed without join()"); }

void Thread::join() {
  sched_internal::point(SchedPoint::kJoin, this);
  if (SchedHooks* h = sched_internal::hooks()) [[unlikely]] {
    // Pairs with the release store at the end of run().
    while (!finished_.load(std::memory_order_acquire)) h->on_block(&finished_);
  }
  thread_.join();
}

}  // namespace itn
