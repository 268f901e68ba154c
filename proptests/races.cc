#include "proptests/races.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "gtest/gtest.h"

namespace itn::races {

void expect_no_race(const char* name, sched::Scenario scenario) {
  int budget = kDefaultBudget;
  if (const char* text = std::getenv("ITN_RACE_EXECUTIONS")) {
    ASSERT_TRUE(absl::SimpleAtoi(text, &budget) && budget > 0) << "ITN_RACE_EXECUTIONS";
  }
  const auto start = std::chrono::steady_clock::now();
  // One execution first, to measure k (decisions per execution) and n (threads).
  sched::ExploreOptions options;
  options.pct_depth = 2;
  options.executions = 1;
  sched::ExploreResult first = sched::explore(options, scenario);
  ASSERT_FALSE(first.failed) << first.report();
  if (first.replayed) return;  // ITN_SCHEDULE: that one execution was the whole job
  // PCT, depth 2: p >= 1/(n k) per execution; n <= 4 threads in these scenarios.
  const double k = first.max_steps_seen, n = 4;
  const long bound = std::lround(std::ceil(std::log(100.0) * n * k));
  options.executions = static_cast<int>(std::min<long>(bound, budget));
  options.seed = first.executions + 1;
  sched::ExploreResult r = sched::explore(options, scenario);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: k=%d decisions, PCT d=2 bound for 99%%: %ld executions; ran %d in %.2f s%s\n",
              name, first.max_steps_seen, bound, r.executions + 1, seconds,
              bound > budget ? " (budget below the worst-case bound)" : "");
  EXPECT_FALSE(r.failed) << name << ": " << r.report();
}

}  // namespace itn::races
