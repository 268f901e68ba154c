#include "testing/sched/scheduler.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <pthread.h>
#include <sched.h>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "sync/check.h"

namespace itn::sched {
namespace {

const char* point_name(SchedPoint p) {
  switch (p) {
    case SchedPoint::kLoad:
      return "atomic load";
    case SchedPoint::kStore:
      return "atomic store";
    case SchedPoint::kRmw:
      return "atomic rmw";
    case SchedPoint::kLock:
      return "lock";
    case SchedPoint::kUnlock:
      return "unlock";
    case SchedPoint::kWait:
      return "wait";
    case SchedPoint::kNotify:
      return "notify";
    case SchedPoint::kPoll:
      return "poll";
    case SchedPoint::kSpawn:
      return "spawn";
    case SchedPoint::kJoin:
      return "join";
  }
  return "?";
}

}  // namespace

struct Scheduler::CpuSet {
  cpu_set_t set;
};

thread_local int Scheduler::tl_id_ = -1;

Scheduler::Scheduler(Strategy& strategy, int max_steps)
    : strategy_(strategy), max_steps_(max_steps) {}

Scheduler::~Scheduler() {
  Lock l(mu_);
  go_free_locked(failure_);
  cv_.wait(l, [&] { return users_ == 0; });
}

int Scheduler::add_thread_locked(bool body) {
  const int id = static_cast<int>(threads_.size());
  threads_.push_back(std::make_unique<Thread>());
  threads_.back()->body = body;
  strategy_.on_new_thread(id);
  return id;
}

absl::Status Scheduler::run(std::vector<std::function<void()>> bodies) {
  std::vector<std::thread> real;
  {
    Lock l(mu_);
    pin_caller_locked();
    ITN_CHECK(threads_.empty(), "Scheduler::run() runs once per Scheduler");
    for (std::size_t i = 0; i < bodies.size(); ++i) add_thread_locked(/*body=*/true);
    bodies_left_ = static_cast<int>(bodies.size());
    users_ += bodies_left_;
  }
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    real.emplace_back([this, id = static_cast<int>(i), body = std::move(bodies[i])] {
      set_thread_hooks(this);
      {
        Lock l(mu_);
        tl_id_ = id;
        wait_turn_locked(l, id);
      }
      body();
      on_thread_exit();
    });
  }
  {
    Lock l(mu_);
    if (bodies_left_ > 0) switch_locked(l, -1);  // the first decision
    cv_.wait(l, [&] { return bodies_left_ == 0; });
  }
  for (std::thread& t : real) t.join();
  Lock l(mu_);
  restore_cpus_locked();
  if (!strategy_.divergence().empty()) failure_ = "replay diverged: " + strategy_.divergence();
  return failure_.empty() ? absl::OkStatus() : absl::InternalError(failure_);
}

void Scheduler::pin_caller_locked() {
  auto cpus = std::make_unique<CpuSet>();
  if (pthread_getaffinity_np(pthread_self(), sizeof(cpus->set), &cpus->set) != 0) return;
  const int cpu = sched_getcpu();
  if (cpu < 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  // The bodies inherit the caller's CPU set when run() starts them. A failure only costs
  // speed: the threads then run where the kernel puts them.
  if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0)
    caller_cpus_ = std::move(cpus);
}

void Scheduler::restore_cpus_locked() {
  if (caller_cpus_ == nullptr) return;
  (void)pthread_setaffinity_np(pthread_self(), sizeof(caller_cpus_->set), &caller_cpus_->set);
}

bool Scheduler::managed_locked() {
  if (!free_) return true;
  unhook_locked(/*exiting=*/false);
  return false;
}

void Scheduler::unhook_locked(bool exiting) {
  // Callers may still hold a pointer to this scheduler they loaded earlier (a lock loop,
  // a thread's exit path): only the first call of each thread counts.
  if (sched_internal::hooks() != this) return;
  set_thread_hooks(nullptr);            // from now on this thread runs unmanaged
  if (!exiting) restore_cpus_locked();  // (an exiting thread has no use for it)
}

void Scheduler::wait_turn_locked(Lock& l, int self) {
  std::counting_semaphore<>& turn = threads_[self]->turn;
  while (!free_ && running_ != self) {
    l.unlock();
    turn.acquire();
    l.lock();
  }
}

void Scheduler::switch_locked(Lock& l, int self) {
  // A thread being started by the library registers first, so every decision sees the
  // same set of threads whatever the real timing.
  cv_.wait(l, [&] { return pending_spawns_ == 0 || free_; });
  if (free_) return;
  for (;;) {
    runnable_.clear();
    eager_.clear();
    for (int t = 0; t < static_cast<int>(threads_.size()); ++t) {
      if (threads_[t]->state != State::kRunnable) continue;
      runnable_.push_back(t);
      if (!threads_[t]->polling) eager_.push_back(t);
    }
    if (!runnable_.empty()) {
      // Only pollers can run: they may be waiting for a thread that is blocked on what
      // an unmanaged thread holds. Let those try again (within the same budget).
      if (!eager_.empty() || !retry_blocked_locked(l)) break;
    } else {
      if (bodies_left_ == 0) return go_free_locked({});
      if (!retry_blocked_locked(l)) report_deadlock_locked();
    }
    if (free_) return;
  }
  const int step = static_cast<int>(choices_.size());
  // The bound hit while retried threads keep failing: set free, they would spin on.
  if (step >= max_steps_ && failed_retries_ > 0) report_deadlock_locked();
  if (step >= max_steps_) {
    std::string failure = absl::StrCat("livelock: no end after ", max_steps_,
                                       " scheduling decisions\n", positions_locked());
    // Said now: a body that never ends once unmanaged keeps run() from returning.
    std::fprintf(stderr,
                 "itn::sched: %sthe threads now run unmanaged; the first %d decisions: "
                 "ITN_SCHEDULE='%s'\n",
                 failure.c_str(), max_steps_, encode_schedule(choices_).c_str());
    std::fflush(stderr);
    return go_free_locked(std::move(failure));
  }
  const int next = strategy_.pick(eager_.empty() ? runnable_ : eager_, self, step);
  choices_.push_back(next);
  for (int t = 0; t < static_cast<int>(threads_.size()); ++t) {
    if (t != next) threads_[t]->polling = false;  // someone else ran: pollers may look again
  }
  running_ = next;
  if (next == self) return;
  const bool waits = self >= 0 && threads_[self]->state != State::kFinished;
  // Semaphores by address: threads_ may grow while mu_ is dropped (a deque keeps them).
  std::counting_semaphore<>& wake = threads_[next]->turn;
  std::counting_semaphore<>* mine = waits ? &threads_[self]->turn : nullptr;
  l.unlock();  // first, so that `next` finds mu_ free when it wakes
  wake.release();
  if (mine != nullptr) mine->acquire();
  l.lock();
  if (waits) wait_turn_locked(l, self);  // the token may have been stale
}

void Scheduler::on_point(SchedPoint point, const void* object) {
  Lock l(mu_);
  if (!managed_locked()) return;
  const int self = tl_id_;
  if (threads_[self]->retried) {
    threads_[self]->retried = false;
    failed_retries_ = 0;  // a retried thread got past what it was blocked on
  }
  threads_[self]->last_point = point;
  threads_[self]->last_object = object;
  if (point == SchedPoint::kSpawn) {
    // No decision: the spawner must get to create the thread. One child registers at a
    // time, in the order they were started, so thread ids do not depend on timing.
    cv_.wait(l, [&] { return pending_spawns_ == 0 || free_; });
    if (!managed_locked()) return;
    ++pending_spawns_;
    ++users_;  // the child calls in from its first instruction to its on_thread_exit()
    return;
  }
  if (point == SchedPoint::kPoll) threads_[self]->polling = true;
  switch_locked(l, self);
}

void Scheduler::on_block(const void* object) {
  Lock l(mu_);
  if (!managed_locked()) return;
  const int self = tl_id_;
  threads_[self]->state = State::kBlocked;
  threads_[self]->blocked_on = object;
  threads_[self]->retried = false;
  switch_locked(l, self);
}

void Scheduler::on_wake(const void* object) {
  Lock l(mu_);
  if (!managed_locked()) return;
  for (const std::unique_ptr<Thread>& t : threads_) {
    if (t->state == State::kBlocked && t->blocked_on == object) {
      t->state = State::kRunnable;
      t->blocked_on = nullptr;
    }
  }
}

void Scheduler::on_thread_start() {
  Lock l(mu_);
  if (!managed_locked()) return;
  tl_id_ = add_thread_locked(/*body=*/false);
  if (--pending_spawns_ == 0) cv_.notify_all();
  wait_turn_locked(l, tl_id_);
}

void Scheduler::on_thread_exit() {
  Lock l(mu_);
  const int self = tl_id_;
  tl_id_ = -1;
  // A library thread that started after the scheduler ran free never registered.
  if (self >= 0 && threads_[self]->state != State::kFinished) {
    if (!free_) {
      // A thread this one started registers first (its id and the strategy's draws for
      // it must not depend on timing), even if this is the last body's end.
      cv_.wait(l, [&] { return pending_spawns_ == 0 || free_; });
    }
    if (free_) {
      threads_[self]->state = State::kFinished;
      if (threads_[self]->body && --bodies_left_ == 0) cv_.notify_all();
    } else {
      finish_locked(self);
      if (bodies_left_ == 0) {
        go_free_locked({});
      } else {
        switch_locked(l, self);
      }
    }
  }
  unhook_locked(/*exiting=*/true);
  if (--users_ == 0) cv_.notify_all();  // the last call of this thread into the scheduler
}

bool Scheduler::retry_blocked_locked(Lock& l) {
  // Exactly the waits whose callers check again when woken: a Mutex's lock loop and a
  // join (a CondVar's waiter would return as if notified).
  const auto retryable = [](const Thread& t) {
    if (t.state != State::kBlocked) return false;
    return (t.last_point == SchedPoint::kLock && t.last_object == t.blocked_on) ||
           t.last_point == SchedPoint::kJoin;
  };
  const auto any = [&] {
    for (const std::unique_ptr<Thread>& t : threads_) {
      if (retryable(*t)) return true;
    }
    return false;
  };
  if (!any() || failed_retries_ == kMaxRetries) return false;
  ++failed_retries_;
  l.unlock();
  std::this_thread::sleep_for(kRetryPause);
  l.lock();
  bool retried = false;
  for (const std::unique_ptr<Thread>& t : threads_) {
    if (!retryable(*t)) continue;  // (woken meanwhile, or the scheduler went free)
    t->state = State::kRunnable;
    t->blocked_on = nullptr;
    t->retried = true;
    retried = true;
  }
  return retried || free_;
}

void Scheduler::finish_locked(int self) {
  threads_[self]->state = State::kFinished;
  if (threads_[self]->body) --bodies_left_;
}

void Scheduler::go_free_locked(std::string failure) {
  if (!failure.empty() && failure_.empty()) failure_ = std::move(failure);
  free_ = true;
  for (const std::unique_ptr<Thread>& t : threads_) t->turn.release();
  cv_.notify_all();
}

std::string Scheduler::positions_locked() const {
  std::string out;
  for (int t = 0; t < static_cast<int>(threads_.size()); ++t) {
    const Thread& th = *threads_[t];
    absl::StrAppend(&out, "  thread ", t, th.body ? " (body)" : " (library)", ": ");
    switch (th.state) {
      case State::kFinished:
        absl::StrAppend(&out, "finished");
        break;
      case State::kBlocked:
        absl::StrAppend(&out, "blocked on ", absl::StrFormat("%p", th.blocked_on));
        break;
      case State::kRunnable:
        absl::StrAppend(&out, "runnable");
        break;
    }
    absl::StrAppend(&out, ", last point: ", point_name(th.last_point), " on ",
                    absl::StrFormat("%p", th.last_object), "\n");
  }
  return out;
}

void Scheduler::report_deadlock_locked() {
  std::fprintf(stderr,
               "itn::sched: DEADLOCK: no thread can run after %zu decisions\n%s"
               "replay: ITN_SCHEDULE='%s'\n",
               choices_.size(), positions_locked().c_str(), encode_schedule(choices_).c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace itn::sched
