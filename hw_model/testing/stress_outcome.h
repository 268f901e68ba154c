// hw_model/testing/stress_outcome.h
//
// The outcome of a device operation in a stress test: collisions with the other threads
// are expected to fail some operations (read-only moments, pages on the other device,
// retry bounds), never with any other status.
//
// Thread safety: a pure function. Lifetime: nothing kept. Memory ordering: none.
#ifndef ITN_HW_MODEL_TESTING_STRESS_OUTCOME_H_
#define ITN_HW_MODEL_TESTING_STRESS_OUTCOME_H_

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace itn::hw::testing {

// Success, or a failure with an expected code.
inline ::testing::AssertionResult expected_outcome(const absl::Status& s) {
  if (s.ok() || absl::IsPermissionDenied(s) || absl::IsFailedPrecondition(s) ||
      absl::IsAborted(s)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "an unexpected failure: " << s;
}

}  // namespace itn::hw::testing

#endif  // ITN_HW_MODEL_TESTING_STRESS_OUTCOME_H_
