// sync/thread.h
//
// itn::Thread: std::thread routed through the scheduling seam. A thread started by a
// thread that has SchedHooks installed runs under the same hooks, so a deterministic
// scheduler also manages the helper threads the library starts (e.g. the SrcuDomain
// callback worker).
//
// Thread safety: join() from one thread, once.
// Lifetime: must be joined before destruction (checked: destroying a joinable Thread
// dies, as std::thread would terminate).
// Memory ordering: everything the thread did happens-before join() returns.
#ifndef ITN_SYNC_THREAD_H_
#define ITN_SYNC_THREAD_H_

#include <atomic>
#include <thread>

#include "absl/functional/any_invocable.h"

#include "sync/sched_hooks.h"

namespace itn {

class Thread {
 public:
  explicit Thread(absl::AnyInvocable<void() &&> body);
  ~Thread();
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  // Thread::join()
  //
  // Blocks until the thread's body has returned.
  void join();

 private:
  void run(absl::AnyInvocable<void() &&> body, SchedHooks* parent_hooks);

  // Set when the body returns; lets a managed join() block through the seam instead of
  // inside the OS join. Seam-internal, not a scheduling point.
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace itn

#endif  // ITN_SYNC_THREAD_H_
