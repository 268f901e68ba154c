// testing/sched/scheduler.h
//
// itn::sched::Scheduler: runs a set of thread bodies so that exactly one of them (or of
// the threads the library starts from them, e.g. an SRCU worker) runs at a time, and a
// Strategy decides which one at every point the library reports through the sync seam
// (sync/sched_hooks.h): each lock, unlock, condition wait and notify, atomic operation,
// polling pause, thread start and join. Threads are real; the baton passes under one
// std::mutex. So one schedule (the list of decisions) determines the whole execution,
// and replaying it reproduces it exactly.
//
// - A thread blocked on a mutex, condition or join is not runnable until the object is
//   released/notified (on_wake). If no thread is runnable while a body has not finished,
//   threads blocked on a Mutex or a join try again, every millisecond for up to a
//   second: an unmanaged thread (say, an SRCU worker started before the execution) may
//   hold that mutex, and it wakes nobody here when it lets go. That part of such an
//   execution depends on real timing. If they still cannot go on, it is a deadlock: it
//   is reported with every thread's position and the schedule, and the process aborts
//   (the threads cannot be unwound). A managed CondVar waiter must be notified by a
//   managed thread.
// - A thread at a polling pause (SchedPoint::kPoll) does not run again until another
//   thread has run, so a spinning wait cannot starve the thread it waits for.
// - More than `max_steps` decisions is reported as a livelock; the execution then runs
//   on unmanaged (free) and fails.
// - When the last body finishes, the remaining library threads are released and run
//   unmanaged from then on (they have nothing left to race with).
//
// Cost: a decision that keeps the running thread costs one lock of mu_. One that
// switches wakes only the chosen thread, each sleeping on a semaphore of its own that the
// switching thread releases after dropping mu_: one wake-up and one sleep per handoff,
// whatever the number of threads, and the woken thread does not block again on mu_.
// run() keeps its caller and every managed thread on one CPU (the one the caller is on
// when run() starts; threads inherit it from their creator): as only one runs at a time,
// nothing is lost, and a handoff is a switch on that CPU instead of a wake-up sent to
// another. A thread leaving the scheduler (it finished, or the scheduler runs free) and
// the caller, when run() returns, get the caller's CPU set back.
//
// Thread safety: run() from one unmanaged thread; the SchedHooks methods are called by
// managed threads (a std::thread a body starts itself, not through itn::Thread, is not
// managed and keeps the one CPU it inherits). Lifetime: the destructor waits until no
// thread uses the scheduler: every body and every thread started under it has made its
// last call (at its exit), so a library thread that outlives the execution (an SRCU
// worker of a domain kept beyond it) keeps the destructor waiting until it ends.
// Memory ordering: handing the baton over (under mu_) orders everything one thread did
// before everything the next does, as a context switch would.
#ifndef ITN_TESTING_SCHED_SCHEDULER_H_
#define ITN_TESTING_SCHED_SCHEDULER_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <vector>

#include "absl/status/status.h"

#include "sync/sched_hooks.h"
#include "testing/sched/schedule.h"
#include "testing/sched/strategy.h"

namespace itn::sched {

class Scheduler : public SchedHooks {
 public:
  Scheduler(Strategy& strategy, int max_steps);
  ~Scheduler() override;

  // Runs `bodies` as managed threads 0..n-1 until all have returned. Errors: a livelock
  // (step bound) or a replay that diverged from its schedule.
  absl::Status run(std::vector<std::function<void()>> bodies);

  const Schedule& choices() const { return choices_; }

  void on_point(SchedPoint point, const void* object) override;
  void on_block(const void* object) override;
  void on_wake(const void* object) override;
  void on_thread_start() override;
  void on_thread_exit() override;

 private:
  enum class State { kRunnable, kBlocked, kFinished };
  struct Thread {
    State state = State::kRunnable;
    const void* blocked_on = nullptr;
    bool polling = false;  // paused at kPoll: waits until another thread has run
    bool body = false;     // one of run()'s bodies (else started by the library)
    SchedPoint last_point = SchedPoint::kSpawn;
    const void* last_object = nullptr;
    bool retried = false;  // made runnable by retry_blocked_locked(), not yet got on
    // Released when running_ becomes this thread, and by go_free_locked(); a token may
    // be stale, so the waiter checks again under mu_.
    std::counting_semaphore<> turn{0};
  };
  using Lock = std::unique_lock<std::mutex>;
  struct CpuSet;  // the CPUs run()'s caller may use (defined by the platform)

  int add_thread_locked(bool body);
  // Picks who runs next and, unless the caller finished, waits for its turn again.
  void switch_locked(Lock& l, int self);
  void wait_turn_locked(Lock& l, int self);
  void finish_locked(int self);
  // Managed threads that are still hooked leave the scheduler and run unmanaged.
  void go_free_locked(std::string failure);
  [[noreturn]] void report_deadlock_locked();
  std::string positions_locked() const;
  // No thread but pollers can run: after a pause, makes the threads blocked on a Mutex or
  // a join runnable again (they check again). False if there are none, or once that
  // failed kMaxRetries times in a row.
  bool retry_blocked_locked(Lock& l);
  // Returns false (after unhooking the caller) once the scheduler runs free.
  bool managed_locked();
  // The caller leaves the scheduler; unless `exiting`, with the caller's CPUs back.
  void unhook_locked(bool exiting);
  // Pins the calling thread to its current CPU, saving its CPU set in caller_cpus_;
  // restore_cpus_locked() gives the calling thread that set back.
  void pin_caller_locked();
  void restore_cpus_locked();

  Strategy& strategy_;
  const int max_steps_;
  std::mutex mu_;
  // The control waits: pending_spawns_ == 0, bodies_left_ == 0, users_ == 0. Notified
  // only when one of those counts changes (never per decision).
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Thread>> threads_;  // by id; a Thread (its semaphore) never moves
  std::vector<int> runnable_, eager_;             // switch_locked()'s candidates, reused
  int running_ = -1;
  int pending_spawns_ = 0;
  int bodies_left_ = 0;
  // Threads that will still call into the scheduler: each body from run(), each library
  // thread from its spawn point, until the end of its on_thread_exit() (a thread that
  // left the scheduler may still call in through a pointer it loaded earlier).
  int users_ = 0;
  static constexpr int kMaxRetries = 1000;
  static constexpr std::chrono::milliseconds kRetryPause{1};
  int failed_retries_ = 0;  // retry rounds since a retried thread last got on
  bool free_ = false;
  std::string failure_;
  Schedule choices_;
  std::unique_ptr<CpuSet> caller_cpus_;  // null: not pinned
  static thread_local int tl_id_;
};

}  // namespace itn::sched

#endif  // ITN_TESTING_SCHED_SCHEDULER_H_
