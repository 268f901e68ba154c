// main() of every property-test binary. Each binary is built with its own RapidCheck
// defaults (ITN_RC_DEFAULT_PARAMS, e.g. "max_success=1000 max_size=199"); an RC_PARAMS set
// by the user (say, to replay a failure with reproduce=...) replaces them entirely.
// ITN_RC_SEED=N (soak runs) keeps the defaults but starts from seed N.
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

int main(int argc, char** argv) {
  std::string params = ITN_RC_DEFAULT_PARAMS;
  if (const char* seed = std::getenv("ITN_RC_SEED")) params += std::string(" seed=") + seed;
  setenv("RC_PARAMS", params.c_str(), /*overwrite=*/0);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
