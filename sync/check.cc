#include "sync/check.h"

#include <cstdio>
#include <cstdlib>

namespace itn::check_internal {

void fail(const char* file, int line, const char* condition, const char* message) {
  std::fprintf(stderr, "itn: check failed at %s:%d: %s\n  rule: %s\n", file, line, condition,
               message);
  std::fflush(stderr);
  std::abort();
}

void fail_status(const char* file, int line, const char* expression, const char* message,
                 const absl::Status& status) {
  std::fprintf(stderr, "itn: check failed at %s:%d: %s is not OK\n  status: %s\n  rule: %s\n", file,
               line, expression, status.ToString().c_str(), message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace itn::check_internal
