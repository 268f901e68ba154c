// testing/sched/schedule.h
//
// A schedule: the thread chosen at every decision point of one execution under the
// deterministic scheduler, and its printable form. The string is what a failing
// exploration prints and what ITN_SCHEDULE takes to replay it:
//
//   v1:0*12.1*3.0*5      thread 0 for 12 decisions, then thread 1 for 3, then 0 for 5
//
// Thread safety: value types and pure functions. Lifetime: no references kept.
// Memory ordering: none.
#ifndef ITN_TESTING_SCHED_SCHEDULE_H_
#define ITN_TESTING_SCHED_SCHEDULE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace itn::sched {

using Schedule = std::vector<int>;

std::string encode_schedule(const Schedule& choices);

// Errors: kInvalidArgument for anything encode_schedule() cannot have produced.
absl::StatusOr<Schedule> decode_schedule(std::string_view text);

}  // namespace itn::sched

#endif  // ITN_TESTING_SCHED_SCHEDULE_H_
