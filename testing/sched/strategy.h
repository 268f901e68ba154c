// testing/sched/strategy.h
//
// How the deterministic scheduler picks the next thread at each decision point:
//
//   PctStrategy         Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS 2010):
//                       every thread gets a random priority, the highest-priority runnable
//                       thread runs, and at d-1 random steps the running thread drops to a
//                       low priority. A bug of depth d in a run of k steps with n threads
//                       is found by one execution with probability >= 1/(n k^(d-1)).
//   RandomStrategy      a uniformly random runnable thread at every point.
//   ExhaustiveStrategy  every schedule with at most `preemption_bound` preemptions (a
//                       switch away from a thread that could have continued), depth-first;
//                       for small two-thread cases.
//   ReplayStrategy      exactly the choices of a recorded schedule.
//
// Thread safety: a strategy is used by one scheduler at a time, under its lock.
// Lifetime: outlives the executions it drives. Memory ordering: none.
#ifndef ITN_TESTING_SCHED_STRATEGY_H_
#define ITN_TESTING_SCHED_STRATEGY_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "testing/sched/schedule.h"

namespace itn::sched {

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Before each execution. False: nothing left to explore (exhaustive search finished).
  virtual bool begin_execution() { return true; }
  // Thread `id` exists now (ids are dense and assigned in a deterministic order).
  virtual void on_new_thread(int id) { (void)id; }
  // The next thread: one of `runnable` (ascending, not empty). `current` reached the
  // decision point (it may have blocked or finished, then it is not in `runnable`);
  // `step` counts the decisions of this execution from 0.
  virtual int pick(const std::vector<int>& runnable, int current, int step) = 0;
  // After each execution, with the number of decisions it took.
  virtual void end_execution(int steps) { (void)steps; }
  // Why pick() could not follow its plan, if it could not (replay divergence).
  virtual std::string divergence() const { return {}; }
};

class PctStrategy : public Strategy {
 public:
  PctStrategy(int depth, std::uint64_t seed) : depth_(depth), rng_(seed) {}
  bool begin_execution() override;
  void on_new_thread(int id) override;
  int pick(const std::vector<int>& runnable, int current, int step) override;
  void end_execution(int steps) override;

 private:
  const int depth_;
  std::mt19937_64 rng_;
  int k_estimate_ = 64;  // steps per execution, learned from the longest run so far
  std::vector<std::uint64_t> priority_;
  std::vector<int> change_points_;  // ascending steps at which the runner is demoted
};

class RandomStrategy : public Strategy {
 public:
  explicit RandomStrategy(std::uint64_t seed) : rng_(seed) {}
  int pick(const std::vector<int>& runnable, int current, int step) override;

 private:
  std::mt19937_64 rng_;
};

class ExhaustiveStrategy : public Strategy {
 public:
  explicit ExhaustiveStrategy(int preemption_bound) : bound_(preemption_bound) {}
  bool begin_execution() override;
  int pick(const std::vector<int>& runnable, int current, int step) override;
  void end_execution(int steps) override;
  // Set when an execution did not repeat the prefix it was to replay (the program
  // depends on more than the schedule): the search cannot go on.
  std::string divergence() const override { return divergence_; }

 private:
  struct Decision {
    std::vector<int> options;  // in the order they are tried
    std::size_t chosen = 0;
    int preemptions_before = 0;
    int current = -1;
  };
  int preemptions(const Decision& d, int choice) const;
  const int bound_;
  std::vector<Decision> stack_;
  bool started_ = false;
  std::string divergence_;
};

class ReplayStrategy : public Strategy {
 public:
  explicit ReplayStrategy(Schedule schedule) : schedule_(std::move(schedule)) {}
  int pick(const std::vector<int>& runnable, int current, int step) override;
  void end_execution(int steps) override;
  std::string divergence() const override { return divergence_; }

 private:
  const Schedule schedule_;
  std::string divergence_;
};

}  // namespace itn::sched

#endif  // ITN_TESTING_SCHED_STRATEGY_H_
