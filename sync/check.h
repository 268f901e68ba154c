// sync/check.h
//
// Contract checks. A failed check is a bug in the caller or in itn, never bad input:
// bad input gets an absl::Status instead.
//
//   ITN_CHECK(cond, msg)   always on; for cheap checks that guard memory safety.
//   ITN_DCHECK(cond, msg)  debug builds only (NDEBUG unset); `cond` is not evaluated
//                          otherwise, so it may be expensive.
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

namespace itn::check_internal {

[[noreturn]] void fail(const char* file, int line, const char* condition, const char* message);

}  // namespace itn::check_internal

#define ITN_CHECK(cond, msg)                                         \
  do {                                                               \
    if (!(cond)) [[unlikely]]                                        \
      ::itn::check_internal::fail(__FILE__, __LINE__, #cond, (msg)); \
  } while (false)

#ifdef NDEBUG
#define ITN_DEBUG_CHECKS 0
#define ITN_DCHECK(cond, msg) \
  do {                        \
    if (false) {              \
      (void)(cond);           \
      (void)(msg);            \
    }                         \
  } while (false)
#else
#define ITN_DEBUG_CHECKS 1
#define ITN_DCHECK(cond, msg) ITN_CHECK(cond, msg)
#endif

#endif  // ITN_SYNC_CHECK_H_
