#!/usr/bin/env bash
# proptests/spin/run_spin.sh [model|all] [variant]
#
# Model-checks the spin models of proptests/spin/ (layer L4, see README.md there): for each
# (model, variant) it generates pan with `spin -a`, compiles it and runs an exhaustive
# search, in a fresh temporary directory (never in the source tree).
#
#   model    notifier_protocol, release_unregister, reclaim_handoff, fast_path_handshake,
#            or all (the default)
#   variant  ok, or macros joined by '+', e.g. BROKEN_R3 or BROKEN_R3+OUTCOMES_ONLY or
#            NINV=3+INV0_MASK=3+INV1_MASK=3 (each becomes -D...); default: the model's list
#
# A variant with a BROKEN_* macro must be rejected (pan reports errors); any other must
# verify: zero errors and a complete search (no "depth too small", no memory bound hit).
# Prints one line per (model, variant) and exits 1 if any outcome was unexpected, 2 if spin
# or a C compiler is missing. On an unexpected outcome the logs are printed and the work
# directory is kept (replay a trail there with `spin -t -p -g <model>.pml` and the same -D
# flags).
#
# Environment: SPIN (default: spin), SPIN_CC (default: cc, else gcc), SPIN_TIMEOUT seconds
# per pan run (default 300), SPIN_KEEP=1 keeps every work directory.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
spin_bin=${SPIN:-spin}
cc_bin=${SPIN_CC:-}
if [ -z "$cc_bin" ]; then
  cc_bin=$(command -v cc || command -v gcc || true)
fi

if ! command -v "$spin_bin" >/dev/null 2>&1; then
  echo "run_spin.sh: spin not found ('$spin_bin'); install the Debian package 'spin'" \
       "(scripts/install_deps.sh does)" >&2
  exit 2
fi
if [ -z "$cc_bin" ] || ! command -v "$cc_bin" >/dev/null 2>&1; then
  echo "run_spin.sh: no C compiler found for pan (set SPIN_CC, or install gcc)" >&2
  exit 2
fi

# The variants each model must pass through. A broken variant is also run with
# OUTCOMES_ONLY where the model has it: then only user-visible outcomes are checked
# (coherence, use of a removed notifier), so the rejection shows a real bug.
variants_of() {
  case "$1" in
    notifier_protocol)
      echo ok BROKEN_R3 BROKEN_RETRY BROKEN_DEFER_INSERT \
           BROKEN_R3+OUTCOMES_ONLY BROKEN_RETRY+OUTCOMES_ONLY BROKEN_DEFER_INSERT+OUTCOMES_ONLY
      ;;
    release_unregister)
      echo ok BROKEN_I15 BROKEN_I14 BROKEN_I13 BROKEN_I25
      ;;
    reclaim_handoff)
      echo ok BROKEN_HANDOFF_BEFORE_PUBLISH BROKEN_TOUCH_AFTER_HANDOFF
      ;;
    fast_path_handshake)
      echo ok SHARDS=2 UNDO_UNLOCKED WAIT_LOCKFREE ROUNDS=2+SHARDS=2+UNDO_UNLOCKED \
           BROKEN_NO_CLOSE BROKEN_NO_COUNT_CHECK BROKEN_APPLY_NO_CHECK BROKEN_END_NO_RECHECK
      ;;
    *)
      return 1
      ;;
  esac
}

all_models="notifier_protocol release_unregister reclaim_handoff fast_path_handshake"
model_arg=${1:-all}
variant_arg=${2:-}
if [ "$model_arg" = all ]; then
  models=$all_models
else
  if ! variants_of "$model_arg" >/dev/null; then
    echo "run_spin.sh: unknown model '$model_arg' (known: $all_models)" >&2
    exit 2
  fi
  models=$model_arg
fi

unexpected=0

# check_one MODEL VARIANT: runs one search and prints its line.
check_one() {
  local model=$1 variant=$2
  local defs=() expect=verify
  if [ "$variant" != ok ]; then
    local IFS=+
    for m in $variant; do
      defs+=("-D$m")
      case "$m" in BROKEN_*) expect=reject ;; esac
    done
  fi

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/itn-spin.XXXXXX") || { unexpected=1; return; }
  cp "$here/$model.pml" "$work/"
  local t0 t1
  t0=$(date +%s.%N)

  local stage=ok
  if ! (cd "$work" && "$spin_bin" "${defs[@]}" -a "$model.pml") >"$work/spin.log" 2>&1; then
    stage="spin -a failed"
  # -DSAFETY: only safety properties (assertions, the ltl invariant, end states);
  # -DCOLLAPSE: compressed state storage (the search stays exhaustive).
  elif ! (cd "$work" && "$cc_bin" -O2 -DSAFETY -DCOLLAPSE -o pan pan.c) >"$work/cc.log" 2>&1; then
    stage="compiling pan failed"
  else
    # -m: search depth bound (the models reach ~300); pan stops at the first error.
    (cd "$work" && timeout "${SPIN_TIMEOUT:-300}" ./pan -m20000) >"$work/pan.log" 2>&1
    local rc=$?
    if [ $rc -eq 124 ]; then stage="pan timed out"; fi
  fi
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

  local errors="" states="" depth="" incomplete="" first_error=""
  if [ "$stage" = ok ]; then
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$work/pan.log" | tail -1)
    states=$(awk '/states, stored/ { print $1; exit }' "$work/pan.log")
    depth=$(sed -n 's/.*depth reached \([0-9][0-9]*\).*/\1/p' "$work/pan.log" | tail -1)
    if grep -Eq 'depth too small|out of memory|MEMLIM|Search not completed|max search depth' \
         "$work/pan.log"; then
      incomplete=yes
    fi
    first_error=$(grep -m1 -E '^pan:[0-9]+:' "$work/pan.log" | sed 's/^pan:[0-9]*: *//')
    [ -n "$errors" ] || stage="no result in pan's output"
  fi

  local verdict ok_outcome=no
  if [ "$stage" != ok ]; then
    verdict="UNEXPECTED: $stage"
  elif [ "$expect" = verify ]; then
    if [ "$errors" -eq 0 ] && [ -z "$incomplete" ]; then
      verdict="verified ($states states, depth $depth, ${secs} s)"
      ok_outcome=yes
    elif [ "$errors" -eq 0 ]; then
      verdict="UNEXPECTED: search incomplete ($states states, depth $depth)"
    else
      verdict="UNEXPECTED: $errors error(s): $first_error"
    fi
  else
    if [ "$errors" -gt 0 ]; then
      verdict="rejected as expected ($first_error; ${secs} s)"
      ok_outcome=yes
    else
      verdict="UNEXPECTED: not rejected ($states states, depth $depth)"
    fi
  fi

  printf '%-20s %-36s %s\n' "$model" "$variant" "$verdict"
  if [ $ok_outcome = no ]; then
    unexpected=1
    for log in spin.log cc.log pan.log; do
      if [ -s "$work/$log" ]; then
        echo "---- $log (last 40 lines) ----"
        tail -40 "$work/$log"
      fi
    done
    echo "---- kept $work (replay: cd $work && spin -t -p -g ${defs[*]} $model.pml)"
  elif [ "${SPIN_KEEP:-0}" = 1 ]; then
    echo "     kept $work"
  else
    rm -rf "$work"
  fi
}

for model in $models; do
  if [ -n "$variant_arg" ]; then
    list=$variant_arg
  else
    list=$(variants_of "$model")
  fi
  for variant in $list; do
    check_one "$model" "$variant"
  done
done

exit $unexpected
