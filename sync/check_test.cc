// ITN_CHECK, ITN_CHECK_OK and ITN_DCHECK: what a failure prints, and that ITN_CHECK_OK
// evaluates its expression exactly once.
#include "sync/check.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace itn {
namespace {

TEST(CheckTest, CheckOkEvaluatesItsExpressionOnce) {
  int calls = 0;
  auto call = [&] {
    ++calls;
    return absl::OkStatus();
  };
  ITN_CHECK_OK(call(), "a call that succeeds");
  EXPECT_EQ(calls, 1);
  auto value = [&]() -> absl::StatusOr<int> {
    ++calls;
    return 7;
  };
  ITN_CHECK_OK(value(), "a StatusOr that holds a value");
  EXPECT_EQ(calls, 2);
}

TEST(CheckDeathTest, CheckOkPrintsTheStatusAndTheRule) {
  EXPECT_DEATH(ITN_CHECK_OK(absl::NotFoundError("no page at 0x1000"), "the page exists"),
               "absl::NotFoundError.*is not OK\n  status: NOT_FOUND: no page at 0x1000\n  "
               "rule: the page exists");
  EXPECT_DEATH(ITN_CHECK_OK(absl::StatusOr<int>(absl::AbortedError("retry bound")), "bounded"),
               "status: ABORTED: retry bound");
}

TEST(CheckDeathTest, CheckPrintsTheConditionAndTheRule) {
  const int active = 1;
  EXPECT_DEATH(ITN_CHECK(active == 0, "I25: every start is ended"),
               "check failed at .*: active == 0\n  rule: I25: every start is ended");
}

TEST(CheckDeathTest, DcheckFollowsTheLibrarysCheckLevel) {
  if (!ITN_DEBUG_CHECKS) {
    int evaluated = 0;
    ITN_DCHECK(++evaluated == 0, "not evaluated without debug checks");
    EXPECT_EQ(evaluated, 0);
    return;
  }
  EXPECT_DEATH(ITN_DCHECK(false, "a debug-only rule"), "rule: a debug-only rule");
}

}  // namespace
}  // namespace itn
