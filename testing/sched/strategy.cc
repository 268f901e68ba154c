#include "testing/sched/strategy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace itn::sched {

// PCT --------------------------------------------------------------------------------------

bool PctStrategy::begin_execution() {
  priority_.clear();
  change_points_.clear();
  std::uniform_int_distribution<int> step(0, std::max(1, k_estimate_ - 1));
  for (int i = 0; i < depth_ - 1; ++i) change_points_.push_back(step(rng_));
  std::sort(change_points_.begin(), change_points_.end());
  return true;
}

void PctStrategy::on_new_thread(int id) {
  if (static_cast<int>(priority_.size()) <= id) priority_.resize(id + 1);
  // Initial priorities sit above every demoted one (those are < depth_).
  priority_[id] = static_cast<std::uint64_t>(depth_) + (rng_() >> 1);
}

int PctStrategy::pick(const std::vector<int>& runnable, int current, int step) {
  for (std::size_t j = 0; j < change_points_.size(); ++j) {
    if (change_points_[j] == step && current >= 0) {
      priority_[current] = change_points_.size() - j;  // later change points: lower
    }
  }
  return *std::max_element(runnable.begin(), runnable.end(),
                           [&](int a, int b) { return priority_[a] < priority_[b]; });
}

void PctStrategy::end_execution(int steps) { k_estimate_ = std::max(k_estimate_, steps); }

// Random -----------------------------------------------------------------------------------

int RandomStrategy::pick(const std::vector<int>& runnable, int, int) {
  return runnable[std::uniform_int_distribution<std::size_t>(0, runnable.size() - 1)(rng_)];
}

// Exhaustive -------------------------------------------------------------------------------

int ExhaustiveStrategy::preemptions(const Decision& d, int choice) const {
  const bool current_could_run =
      std::find(d.options.begin(), d.options.end(), d.current) != d.options.end();
  return d.preemptions_before + (current_could_run && choice != d.current ? 1 : 0);
}

bool ExhaustiveStrategy::begin_execution() {
  if (!started_) {
    started_ = true;
    return true;
  }
  // Backtrack to the deepest decision with an untried option within the bound.
  while (!stack_.empty()) {
    Decision& d = stack_.back();
    while (++d.chosen < d.options.size()) {
      if (preemptions(d, d.options[d.chosen]) <= bound_) return true;
    }
    stack_.pop_back();
  }
  return false;
}

int ExhaustiveStrategy::pick(const std::vector<int>& runnable, int current, int step) {
  if (step < static_cast<int>(stack_.size())) {
    const Decision& d = stack_[step];
    const int want = d.options[d.chosen];  // replaying the prefix
    if (std::find(runnable.begin(), runnable.end(), want) != runnable.end()) return want;
    if (divergence_.empty()) {
      divergence_ = absl::StrCat("exhaustive search: decision ", step,
                                 " of the prefix to replay "
                                 "picks thread ",
                                 want,
                                 ", which is not runnable this time (the "
                                 "program depends on more than the schedule)");
    }
    return runnable[0];
  }
  Decision d;
  d.current = current;
  d.preemptions_before =
      stack_.empty() ? 0 : preemptions(stack_.back(), stack_.back().options[stack_.back().chosen]);
  // The current thread first (no preemption), then the others in id order.
  if (std::find(runnable.begin(), runnable.end(), current) != runnable.end()) {
    d.options.push_back(current);
  }
  for (int t : runnable) {
    if (t != current) d.options.push_back(t);
  }
  stack_.push_back(d);
  return d.options[0];
}

void ExhaustiveStrategy::end_execution(int steps) {
  stack_.resize(std::min(stack_.size(), static_cast<std::size_t>(steps)));
}

// Replay -----------------------------------------------------------------------------------

int ReplayStrategy::pick(const std::vector<int>& runnable, int, int step) {
  if (step >= static_cast<int>(schedule_.size())) {
    if (divergence_.empty()) {
      divergence_ = absl::StrCat("the schedule ended after ", schedule_.size(),
                                 " decisions but the execution went on");
    }
    return runnable[0];
  }
  const int want = schedule_[step];
  if (std::find(runnable.begin(), runnable.end(), want) == runnable.end()) {
    if (divergence_.empty()) {
      divergence_ = absl::StrCat("decision ", step, ": thread ", want, " is not runnable");
    }
    return runnable[0];
  }
  return want;
}

void ReplayStrategy::end_execution(int steps) {
  if (divergence_.empty() && steps < static_cast<int>(schedule_.size())) {
    divergence_ = absl::StrCat("the execution ended after ", steps,
                               " decisions but the schedule has ", schedule_.size());
  }
}

}  // namespace itn::sched
