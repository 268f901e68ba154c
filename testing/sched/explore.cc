#include "testing/sched/explore.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#include "sync/check.h"
#include "sync/sched_hooks.h"
#include "sync/trace.h"

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

// One execution of `scenario` under `strategy`; its decisions go to *choices.
absl::Status execute(Strategy& strategy, int max_steps, Scenario scenario, Schedule* choices) {
  Scheduler scheduler(strategy, max_steps);
  Execution ex(scheduler);
  absl::Status status = scenario(ex);
  if (status.ok()) status = ex.status();
  *choices = scheduler.choices();
  strategy.end_execution(static_cast<int>(choices->size()));
  // A diverged replay says nothing about the scenario: report the divergence instead.
  if (!strategy.divergence().empty()) {
    status = absl::InternalError("replay diverged: " + strategy.divergence());
  }
  return status;
}

// Runs the failing `schedule` again with a trace recorder installed and writes the trace
// to $ITN_TRACE_DIR (default: the temporary directory). Returns where, or why not.
std::string trace_failure(const Schedule& schedule, int max_steps, Scenario scenario,
                          const absl::Status& failure) {
  constexpr int kMaxTracesPerProcess = 20;  // a shrinking property fails many times
  static std::atomic<int> written{0};
  const int n = written.fetch_add(1) + 1;
  if (n > kMaxTracesPerProcess) {
    return absl::StrCat("(not written: ", kMaxTracesPerProcess, " written by this process)");
  }
  trace::Recorder recorder;
  if (absl::Status s = recorder.start(); !s.ok()) {
    return absl::StrCat("(not written: ", s.message(), ")");
  }
  ReplayStrategy strategy(schedule);
  strategy.begin_execution();
  Schedule choices;
  const absl::Status again = execute(strategy, max_steps, scenario, &choices);
  recorder.stop();
  const char* dir = std::getenv("ITN_TRACE_DIR");
  std::error_code error;
  const std::string path =
      (dir != nullptr && *dir != '\0' ? std::filesystem::path(dir)
                                      : std::filesystem::temp_directory_path(error)) /
      absl::StrCat("itn-sched-", getpid(), "-", n, ".json");
  if (absl::Status s = recorder.write_json(path); !s.ok()) {
    return absl::StrCat("(not written: ", s.message(), ")");
  }
  const auto first_line = [](absl::string_view m) { return m.substr(0, m.find('\n')); };
  // (Only the first line: the rest may show addresses, which differ from run to run.)
  if (again.code() != failure.code() ||
      first_line(again.message()) != first_line(failure.message())) {
    return absl::StrCat(path, " (the recorded replay ended otherwise: ",
                        again.ok() ? "it passed" : again.message(), ")");
  }
  return path;
}

// One execution under `strategy`; fills `result` and returns true if it failed.
bool run_one(Strategy& strategy, const ExploreOptions& options, Scenario scenario,
             ExploreResult& result) {
  Schedule choices;
  const absl::Status status = execute(strategy, options.max_steps, scenario, &choices);
  ++result.executions;
  const int steps = static_cast<int>(choices.size());
  result.max_steps_seen = std::max(result.max_steps_seen, steps);
  result.decisions += steps;
  result.schedule = encode_schedule(choices);
  if (status.ok()) return false;
  result.failed = true;
  result.failure = std::string(status.message());
  // Printed before the trace's replay: if that one dies or hangs, this is still said.
  std::fprintf(stderr, "%s", result.report().c_str());
  if (options.trace_failures) {
    result.trace = trace_failure(choices, options.max_steps, scenario, status);
    std::fprintf(stderr, "trace: %s\n", result.trace.c_str());
  }
  std::fflush(stderr);
  return true;
}

}  // namespace

void Execution::run(std::vector<std::function<void()>> bodies) {
  if (sched_internal::hooks() != nullptr) {
    // From a managed thread (a body): its hooks must stay, or it would leave the
    // scheduler without ever counting out. The execution fails.
    if (status_.ok()) {
      status_ = absl::FailedPreconditionError(
          "Execution::run() called from one of the execution's own threads");
    }
    return;
  }
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
  std::string out = absl::StrCat("itn::sched: FAILED in execution ", executions, ": ", failure,
                                 "\nreplay: ITN_SCHEDULE='", schedule, "'\n");
  if (!trace.empty()) absl::StrAppend(&out, "trace: ", trace, "\n");
  return out;
}

ExploreResult replay(const Schedule& schedule, Scenario scenario, int max_steps) {
  return replay(schedule, scenario, ExploreOptions{.max_steps = max_steps});
}

ExploreResult replay(const Schedule& schedule, Scenario scenario, const ExploreOptions& options) {
  ExploreResult result;
  result.replayed = true;
  ReplayStrategy strategy(schedule);
  strategy.begin_execution();
  run_one(strategy, options, scenario, result);
  return result;
}

ExploreResult explore(const ExploreOptions& options, Scenario scenario) {
  if (const char* text = std::getenv("ITN_SCHEDULE"); text != nullptr && *text != '\0') {
    absl::StatusOr<Schedule> schedule = decode_schedule(text);
    ITN_CHECK(schedule.ok(), "ITN_SCHEDULE is not a schedule string");
    return replay(*schedule, scenario, options);
  }
  std::uint64_t seed = options.seed;
  if (const char* text = std::getenv("ITN_SCHED_SEED"); text != nullptr) {
    ITN_CHECK(absl::SimpleAtoi(text, &seed), "ITN_SCHED_SEED is not a number");
  }
  std::unique_ptr<Strategy> strategy = make_strategy(options, seed);
  ExploreResult result;
  for (int i = 0; i < options.executions && strategy->begin_execution(); ++i) {
    if (run_one(*strategy, options, scenario, result)) break;
  }
  return result;
}

}  // namespace itn::sched
