#include "sync/sched_hooks.h"

namespace itn {

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
