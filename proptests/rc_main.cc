// main() of every property-test binary. Each binary is built with its own RapidCheck
// defaults (ITN_RC_DEFAULT_PARAMS, e.g. "max_success=1000 max_size=199"); an RC_PARAMS set
// by the user (say, to replay a failure with reproduce=...) replaces them entirely.
#include <cstdlib>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  setenv("RC_PARAMS", ITN_RC_DEFAULT_PARAMS, /*overwrite=*/0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
