#!/usr/bin/env bash
# Every lock, wait, atomic operation and thread of the library must go through the
# scheduling seam (sync/sched_hooks.h), or the deterministic scheduler cannot control it.
# This lint fails if library code outside the seam's own files uses the std:: primitives.
#   seam_lint.sh <repo root>
set -euo pipefail
root="$1"
cd "$root"

# The seam itself: the only files allowed to touch the primitives. And the trace recorder
# (sync/trace.h), which must stay outside the seam: its trace points are no scheduling
# points, so that recording a run does not change a deterministic schedule.
allowed='^sync/(atomic\.h|backoff\.h|cond_var\.h|lock_tracking\.cc|mutex\.h|rw_mutex\.h|sched_hooks\.(h|cc)|thread\.(h|cc)|trace\.(h|cc))$'
pattern='std::(atomic|mutex|recursive_mutex|shared_mutex|condition_variable(_any)?|thread|jthread|this_thread|lock_guard|unique_lock|scoped_lock|atomic_ref)\b|atomic_thread_fence|atomic_signal_fence|__atomic_|__sync_|pthread_'

status=0
for dir in sync itree notifier hw_model; do
  [ -d "$dir" ] || continue
  while IFS= read -r file; do
    # Test-only files may use the primitives; library code must not include them.
    case "$file" in *_test.cc|*test_util.h|*test_support.h|*_test_peer.h) continue ;; esac
    if grep -nE '#include "[^"]*(test_util|test_support|_test_peer)\.h"' "$file"; then
      echo "seam_lint: library file $file includes a test-only header" >&2
      status=1
    fi
    [[ "$file" =~ $allowed ]] && continue
    if grep -nE "$pattern" "$file" | grep -vE '^\s*[0-9]+:\s*//'; then
      echo "seam_lint: $file uses a synchronisation primitive outside the seam" >&2
      status=1
    fi
  done < <(find "$dir" -type f \( -name '*.h' -o -name '*.cc' \) | sort)
done
[ "$status" -eq 0 ] && echo "seam_lint: ok"
exit "$status"
