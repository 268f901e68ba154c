// testing/sched/explore.h
//
// itn::sched::explore(): runs one scenario under many schedules of the deterministic
// scheduler and stops at the first failure, printing the schedule that replays it.
//
//   ExploreResult r = explore(options, [&](Execution& ex) -> absl::Status {
//     auto domain = make_ref<NotifierDomain>();        // fresh state for every execution
//     ex.run({[&] { ... thread 0 ... }, [&] { ... thread 1 ... }});
//     return check(domain);                             // the property, after both ended
//   });
//   EXPECT_FALSE(r.failed) << r.report();
//
// Environment (read by every explore() call; select one test with --gtest_filter):
//   ITN_SCHEDULE='v1:...'   replay exactly that schedule, once (what a failure prints)
//   ITN_SCHED_SEED=N        use seed N instead of options.seed (soak runs)
//
// Thread safety: call from one unmanaged thread; the scenario's bodies run on managed
// threads, one at a time. Lifetime: everything an execution creates must be destroyed by
// the scenario before it returns. Memory ordering: each execution happens-after the
// previous one.
#ifndef ITN_TESTING_SCHED_EXPLORE_H_
#define ITN_TESTING_SCHED_EXPLORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

#include "testing/sched/scheduler.h"

namespace itn::sched {

enum class StrategyKind { kPct, kRandom, kExhaustive };

struct ExploreOptions {
  StrategyKind strategy = StrategyKind::kPct;
  int pct_depth = 3;  // PCT's d: bugs needing d-1 ordering constraints
  std::uint64_t seed = 1;
  int executions = 1000;     // upper bound (exhaustive search may finish earlier)
  int preemption_bound = 2;  // exhaustive search only
  int max_steps = 200'000;   // decisions per execution before it counts as a livelock
  // On a failure, run the failing schedule once more with a trace recorder installed
  // (sync/trace.h) and write the trace (Trace Event JSON: Perfetto, chrome://tracing) to
  // $ITN_TRACE_DIR, default the temporary directory; report() names the file under the
  // replay line. At most 20 files per process. Skipped if a recorder is installed; a
  // scenario that installs a recorder of its own must turn this off.
  bool trace_failures = true;
};

// What a scenario gets: run() once per execution, from the scenario's own thread (a
// second call, or one from a body, fails the execution without running its bodies: they
// would run unmanaged, outside the schedule).
class Execution {
 public:
  explicit Execution(Scheduler& scheduler) : scheduler_(scheduler) {}
  // Runs the bodies as managed threads 0..n-1 and returns when all have finished.
  void run(std::vector<std::function<void()>> bodies);
  const absl::Status& status() const { return status_; }

 private:
  Scheduler& scheduler_;
  absl::Status status_;
  bool ran_ = false;
};

struct ExploreResult {
  int executions = 0;
  bool failed = false;
  bool replayed = false;  // ran the ITN_SCHEDULE schedule instead of exploring
  std::string failure;    // the scenario's status message, or the scheduler's
  std::string schedule;   // of the failing execution (or of the last one)
  int max_steps_seen = 0;
  std::int64_t decisions = 0;  // summed over every execution run
  std::string trace;           // the failing execution's trace file (or why none was written)
  // A readable summary: what failed and how to replay it.
  std::string report() const;
};

using Scenario = absl::FunctionRef<absl::Status(Execution&)>;

ExploreResult explore(const ExploreOptions& options, Scenario scenario);

// Runs exactly `schedule` once (what ITN_SCHEDULE does), with the step bound of the
// exploration that printed it. A replay that cannot follow the schedule (a pick that is
// not runnable, an execution shorter or longer than the schedule) fails with
// "replay diverged", whatever the scenario returned.
ExploreResult replay(const Schedule& schedule, Scenario scenario,
                     int max_steps = ExploreOptions().max_steps);
// The same with the exploration's options (its max_steps and trace_failures).
ExploreResult replay(const Schedule& schedule, Scenario scenario, const ExploreOptions& options);

}  // namespace itn::sched

#endif  // ITN_TESTING_SCHED_EXPLORE_H_
