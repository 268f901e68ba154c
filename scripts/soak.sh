#!/usr/bin/env bash
# Long property campaigns: runs the stateful property tests (RapidCheck), the race
# scenarios (deterministic scheduler, PCT) and the concurrent-history checks with fresh
# seeds, in a loop, one worker per core, until the time is up. Prints a live progress
# line; on a failure, keeps the log and prints the line that replays it (RC_PARAMS=... or
# ITN_SCHEDULE=...).
#   scripts/soak.sh [--minutes N] [--jobs J]      (defaults: 10 minutes, all cores)
# Exit status 1 if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=10
jobs="$(nproc)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "usage: scripts/soak.sh [--minutes N] [--jobs J]" >&2; exit 2 ;;
  esac
done
[[ "$minutes" =~ ^[0-9]+$ && "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "soak: bad --minutes/--jobs" >&2; exit 2; }

scripts/install_deps.sh >/dev/null
cmake --preset dev >/dev/null
suites=(proptests/itree_property_test proptests/domain_property_test
        proptests/hw_model_property_test proptests/domain_lin_test proptests/races_test)
targets=()
for s in "${suites[@]}"; do targets+=("$(basename "$s")"); done
cmake --build --preset dev --target "${targets[@]}" >/dev/null

out="$(mktemp -d /tmp/itn-soak.XXXXXX)"
start=$SECONDS
deadline=$((start + minutes * 60))
echo "soak: ${minutes} min on ${jobs} workers, logs in ${out}"

worker() {  # worker <id>: runs suites round-robin with fresh seeds until the deadline
  set +e +o pipefail  # a run's failure is data here, not the end of the worker
  local id="$1" n=0
  while (( SECONDS < deadline )); do
    local suite="${suites[$(( (id + n) % ${#suites[@]} ))]}" seed="$RANDOM$RANDOM$id"
    local log="$out/w${id}-${n}.log" bin="build/dev/$suite"
    n=$((n + 1))
    if ITN_RC_SEED="$seed" ITN_SCHED_SEED="$seed" ITN_RACE_EXECUTIONS=500 "$bin" >"$log" 2>&1; then
      local cases schedules
      cases="$(grep -oE 'max_success=[0-9]+' "$log" | awk -F= '{s += $2} END {print s + 0}')"
      schedules="$(grep -oE 'ran [0-9]+' "$log" | awk '{s += $2} END {print s + 0}')"
      echo "ok ${cases:-0} ${schedules:-0}" >> "$out/records.$id"
      rm -f "$log"
    else
      echo "fail 0 0 $log" >> "$out/records.$id"
    fi
  done
}

for ((i = 0; i < jobs; i++)); do worker "$i" & done

progress() {
  local runs=0 cases=0 schedules=0 fails=0
  if compgen -G "$out/records.*" >/dev/null; then
    read -r runs cases schedules fails < <(cat "$out"/records.* |
      awk '{r++; c += $2; s += $3; if ($1 == "fail") f++} END {print r + 0, c + 0, s + 0, f + 0}')
  fi
  local t=$(( SECONDS - start > 0 ? SECONDS - start : 1 ))
  printf '\rsoak %02d:%02d  runs %d  cases %d (%d/s)  schedules %d (%d/s)  failures %d ' \
    $((t / 60)) $((t % 60)) "$runs" "$cases" $((cases / t)) "$schedules" $((schedules / t)) "$fails"
  echo "$fails" > "$out/fails"
}
while (( SECONDS < deadline )); do progress; sleep 2; done
wait
progress
echo
fails="$(cat "$out/fails")"
if (( fails > 0 )); then
  echo "soak: ${fails} failing run(s). Replay lines:"
  for log in $(cat "$out"/records.* | awk '$1 == "fail" {print $4}'); do
    echo "--- $log"
    grep -hE "RC_PARAMS=|ITN_SCHEDULE=|FAILED|Falsifiable" "$log" | head -8
  done
  exit 1
fi
echo "soak: no failures"
