#include "sync/sched_hooks.h"

namespace itn {

const char* sched_point_name(SchedPoint point) {
  switch (point) {
    case SchedPoint::kLoad:
      return "load";
    case SchedPoint::kStore:
      return "store";
    case SchedPoint::kRmw:
      return "rmw";
    case SchedPoint::kLock:
      return "lock";
    case SchedPoint::kUnlock:
      return "unlock";
    case SchedPoint::kWait:
      return "wait";
    case SchedPoint::kNotify:
      return "notify";
    case SchedPoint::kPoll:
      return "poll";
    case SchedPoint::kSpawn:
      return "spawn";
    case SchedPoint::kJoin:
      return "join";
  }
  return "?";
}

bool set_thread_hooks(SchedHooks* hooks) {
#if ITN_SCHED_SEAM
  sched_internal::tl_hooks = hooks;
  return true;
#else
  (void)hooks;
  return false;
#endif
}

}  // namespace itn
