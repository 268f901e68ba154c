// sync/check.h
//
// Contract checks. A failed check is a bug in the caller or in itn, never bad input:
// bad input gets an absl::Status instead.
//
//   ITN_CHECK(cond, msg)   always on; for cheap checks that guard memory safety.
//   ITN_CHECK_OK(expr, msg) always on; `expr` (an absl::Status or StatusOr) is evaluated
//                          exactly once, so it may be the call itself; on failure the
//                          status text is printed too.
//   ITN_DCHECK(cond, msg)  only with ITN_DEBUG_CHECKS=1; `cond` is not evaluated
//                          otherwise, so it may be expensive.
//
// ITN_DEBUG_CHECKS is the library's check level: its CMake targets define it (from the
// library's own build type), so that code compiled against an installed itn agrees with
// it whatever its own NDEBUG. Without a definition it follows NDEBUG.
//
// `msg` names the rule that was broken, e.g. "I23: synchronize() inside a read section".
// On failure the process prints file, line, condition and message to stderr and aborts,
// which is what death tests match on.
//
// Thread safety: callable from any thread.
// Lifetime: no state.
// Memory ordering: none.
#ifndef ITN_SYNC_CHECK_H_
#define ITN_SYNC_CHECK_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace itn::check_internal {

[[noreturn]] void fail(const char* file, int line, const char* condition, const char* message);
[[noreturn]] void fail_status(const char* file, int line, const char* expression,
                              const char* message, const absl::Status& status);

inline void check_ok(const absl::Status& status, const char* file, int line, const char* expression,
                     const char* message) {
  if (!status.ok()) [[unlikely]]
    fail_status(file, line, expression, message, status);
}
template <class T>
void check_ok(const absl::StatusOr<T>& status_or, const char* file, int line,
              const char* expression, const char* message) {
  check_ok(status_or.status(), file, line, expression, message);
}

}  // namespace itn::check_internal

#define ITN_CHECK(cond, msg)                                         \
  do {                                                               \
    if (!(cond)) [[unlikely]]                                        \
      ::itn::check_internal::fail(__FILE__, __LINE__, #cond, (msg)); \
  } while (false)

#define ITN_CHECK_OK(expr, msg) \
  ::itn::check_internal::check_ok((expr), __FILE__, __LINE__, #expr, (msg))

#ifndef ITN_DEBUG_CHECKS
#ifdef NDEBUG
#define ITN_DEBUG_CHECKS 0
#else
#define ITN_DEBUG_CHECKS 1
#endif
#endif

#if !ITN_DEBUG_CHECKS
#define ITN_DCHECK(cond, msg) \
  do {                        \
    if (false) {              \
      (void)(cond);           \
      (void)(msg);            \
    }                         \
  } while (false)
#else
#define ITN_DCHECK(cond, msg) ITN_CHECK(cond, msg)
#endif

#endif  // ITN_SYNC_CHECK_H_
