// sync/test_util.h
//
// Helpers for itn's own tests: waiting on conditions without timed sleeps.
// Test-only; no library target includes it.
#ifndef ITN_SYNC_TEST_UTIL_H_
#define ITN_SYNC_TEST_UTIL_H_

#include <thread>

namespace itn::testing {

// Spins (yielding) until pred() is true. Tests wait on conditions, never on time.
template <class Pred>
void wait_until(Pred pred) {
  while (!pred()) std::this_thread::yield();
}

}  // namespace itn::testing

#endif  // ITN_SYNC_TEST_UTIL_H_
