#include "testing/sched/explore.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "sync/check.h"

namespace itn::sched {
namespace {

std::unique_ptr<Strategy> make_strategy(const ExploreOptions& o, std::uint64_t seed) {
  switch (o.strategy) {
    case StrategyKind::kPct:
      return std::make_unique<PctStrategy>(o.pct_depth, seed);
    case StrategyKind::kRandom:
      return std::make_unique<RandomStrategy>(seed);
    case StrategyKind::kExhaustive:
      return std::make_unique<ExhaustiveStrategy>(o.preemption_bound);
  }
  return nullptr;
}

// One execution under `strategy`; fills `result` and returns true if it failed.
bool run_one(Strategy& strategy, int max_steps, Scenario scenario, ExploreResult& result) {
  Scheduler scheduler(strategy, max_steps);
  Execution ex(scheduler);
  absl::Status status = scenario(ex);
  if (status.ok()) status = ex.status();
  ++result.executions;
  const int steps = static_cast<int>(scheduler.choices().size());
  result.max_steps_seen = std::max(result.max_steps_seen, steps);
  result.decisions += steps;
  result.schedule = encode_schedule(scheduler.choices());
  strategy.end_execution(steps);
  // A diverged replay says nothing about the scenario: report the divergence instead.
  if (!strategy.divergence().empty()) {
    status = absl::InternalError("replay diverged: " + strategy.divergence());
  }
  if (status.ok()) return false;
  result.failed = true;
  result.failure = std::string(status.message());
  std::fprintf(stderr, "%s", result.report().c_str());
  return true;
}

}  // namespace

void Execution::run(std::vector<std::function<void()>> bodies) {
  ITN_CHECK(set_thread_hooks(nullptr), "the deterministic scheduler needs ITN_SCHED_SEAM=1");
  if (ran_) {
    if (status_.ok()) {
      status_ = absl::FailedPreconditionError(
          "Execution::run() called twice in one execution: the second set of bodies would "
          "run unmanaged (run them all in one call)");
    }
    return;
  }
  ran_ = true;
  absl::Status s = scheduler_.run(std::move(bodies));
  if (status_.ok()) status_ = s;
}

std::string ExploreResult::report() const {
  if (!failed) {
    return absl::StrCat("itn::sched: ", executions, " executions passed (longest ", max_steps_seen,
                        " decisions)\n");
  }
  return absl::StrCat("itn::sched: FAILED in execution ", executions, ": ", failure,
                      "\nreplay: ITN_SCHEDULE='", schedule, "'\n");
}

ExploreResult replay(const Schedule& schedule, Scenario scenario, int max_steps) {
  ExploreResult result;
  result.replayed = true;
  ReplayStrategy strategy(schedule);
  strategy.begin_execution();
  run_one(strategy, max_steps, scenario, result);
  return result;
}

ExploreResult explore(const ExploreOptions& options, Scenario scenario) {
  if (const char* text = std::getenv("ITN_SCHEDULE"); text != nullptr && *text != '\0') {
    absl::StatusOr<Schedule> schedule = decode_schedule(text);
    ITN_CHECK(schedule.ok(), "ITN_SCHEDULE is not a schedule string");
    return replay(*schedule, scenario, options.max_steps);
  }
  std::uint64_t seed = options.seed;
  if (const char* text = std::getenv("ITN_SCHED_SEED"); text != nullptr) {
    ITN_CHECK(absl::SimpleAtoi(text, &seed), "ITN_SCHED_SEED is not a number");
  }
  std::unique_ptr<Strategy> strategy = make_strategy(options, seed);
  ExploreResult result;
  for (int i = 0; i < options.executions && strategy->begin_execution(); ++i) {
    if (run_one(*strategy, options.max_steps, scenario, result)) break;
  }
  return result;
}

}  // namespace itn::sched
