#!/usr/bin/env bash
# Long property campaigns: runs the stateful property tests (RapidCheck), the race
# scenarios (deterministic scheduler, PCT) and the concurrent-history checks, one worker
# per core. On a failure it keeps the log and prints the line that replays it
# (RC_PARAMS=... or ITN_SCHEDULE=...). Two modes:
#
#   scripts/soak.sh [--minutes N] [--jobs J]
#       fresh random seeds, in a loop, until the time is up (default 10 minutes), with a
#       live progress line.
#   scripts/soak.sh --seeds FIRST:COUNT [--shard I/N] [--out DIR] [--jobs J]
#       deterministic: every suite once with each seed FIRST .. FIRST+COUNT-1, or, with
#       --shard, with the I-th of N disjoint blocks of that range (I from 0; default
#       --seeds 1:100). Writes DIR/soak-shard-I-of-N.json and .junit.xml (default DIR: a
#       fresh one under /tmp); scripts/soak_results.py merge sums the shards.
#
# --suites "BIN ..." runs those executables instead of building and running the default
# suites of the dev preset (each must honour ITN_RC_SEED / ITN_SCHED_SEED).
# Exit status: 1 if a run failed, 2 for bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() {
  echo "usage: scripts/soak.sh [--minutes N] [--jobs J]" >&2
  echo "       scripts/soak.sh --seeds FIRST:COUNT [--shard I/N] [--out DIR] [--jobs J]" >&2
  echo "       (either form: [--suites \"BIN ...\"])" >&2
  exit 2
}
minutes=10
jobs="$(nproc)"
seeds="" shard="" out="" suites_arg=""
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || usage
  case "$1" in
    --minutes) minutes="$2" ;;
    --jobs) jobs="$2" ;;
    --seeds) seeds="$2" ;;
    --shard) shard="$2" ;;
    --out) out="$2" ;;
    --suites) suites_arg="$2" ;;
    *) usage ;;
  esac
  shift 2
done
[[ "$minutes" =~ ^[0-9]+$ && "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "soak: bad --minutes/--jobs" >&2; exit 2; }
if [[ -n "$shard" && -z "$seeds" ]]; then seeds="1:100"; fi
if [[ -n "$seeds" ]]; then
  [[ "$seeds" =~ ^([0-9]+):([1-9][0-9]*)$ ]] || { echo "soak: --seeds must be FIRST:COUNT" >&2; exit 2; }
  first="${BASH_REMATCH[1]}" count="${BASH_REMATCH[2]}"
  [[ -n "$shard" ]] || shard="0/1"
  [[ "$shard" =~ ^([0-9]+)/([1-9][0-9]*)$ ]] || { echo "soak: --shard must be I/N" >&2; exit 2; }
  index="${BASH_REMATCH[1]}" shards="${BASH_REMATCH[2]}"
  (( index < shards )) || { echo "soak: --shard $shard: I must be below N" >&2; exit 2; }
fi

if [[ -n "$suites_arg" ]]; then
  read -r -a suites <<< "$suites_arg"
  for s in "${suites[@]}"; do [[ -x "$s" ]] || { echo "soak: $s is not an executable" >&2; exit 2; }; done
  # Logs, records and JUnit cases are named by the suite's file name.
  dup="$(for s in "${suites[@]}"; do basename "$s"; done | sort | uniq -d | head -1)"
  [[ -z "$dup" ]] || { echo "soak: two suites are named $dup: give suites distinct file names" >&2; exit 2; }
else
  scripts/install_deps.sh >/dev/null
  cmake --preset dev >/dev/null
  suites=()
  for s in itree_property_test domain_property_test hw_model_property_test domain_lin_test \
           races_test; do
    suites+=("build/dev/proptests/$s")
  done
  targets=()
  for s in "${suites[@]}"; do targets+=("$(basename "$s")"); done
  cmake --build --preset dev --target "${targets[@]}" >/dev/null
fi

# run_case <bin> <seed> <log>: one run; prints "result cases schedules seconds".
run_case() {
  local bin="$1" seed="$2" log="$3" t0 t1 result=pass cases schedules
  t0="$(date +%s.%N)"
  ITN_RC_SEED="$seed" ITN_SCHED_SEED="$seed" ITN_RACE_EXECUTIONS=500 "$bin" >"$log" 2>&1 || result=fail
  t1="$(date +%s.%N)"
  cases="$(grep -oE 'max_success=[0-9]+' "$log" | awk -F= '{s += $2} END {print s + 0}')"
  schedules="$(grep -oE 'ran [0-9]+' "$log" | awk '{s += $2} END {print s + 0}')"
  echo "$result $cases $schedules $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
}

# replay_line <log> <seed>: how to reproduce a failing run, if it printed a way. A
# RapidCheck suite's last RC_PARAMS line (the shrunk case) wins over the schedules its
# explorations printed on the way (those belong to cases RC_PARAMS regenerates), and it
# needs the run's scheduler seed too.
replay_line() {
  local params
  params="$(grep -hoE "RC_PARAMS=.*" "$1" | tail -1 || true)"
  if [[ -n "$params" ]]; then
    echo "ITN_SCHED_SEED=$2 $params"
  else
    grep -hoE "ITN_SCHEDULE=.*" "$1" | head -1 || true
  fi
}

if [[ -n "$seeds" ]]; then
  lo=$(( first + index * count / shards )) hi=$(( first + (index + 1) * count / shards ))
  out="${out:-$(mktemp -d /tmp/itn-soak.XXXXXX)}"
  mkdir -p "$out/logs"
  name="soak-shard-${index}-of-${shards}"
  records="$(mktemp -d /tmp/itn-soak-records.XXXXXX)"
  echo "soak: shard ${index}/${shards}: seeds ${lo}..$((hi - 1)) of ${first}..$((first + count - 1)), ${#suites[@]} suites, ${jobs} workers"
  cases=()
  for ((seed = lo; seed < hi; seed++)); do
    for s in "${suites[@]}"; do cases+=("$seed $s"); done
  done
  seeded_worker() {  # seeded_worker <id>: the cases whose position is id modulo jobs
    set +e +o pipefail
    local id="$1" k
    for ((k = id; k < ${#cases[@]}; k += jobs)); do
      local seed="${cases[$k]%% *}" bin="${cases[$k]#* }"
      local log="$out/logs/$(basename "$bin")-seed-${seed}.log" r
      read -r -a r < <(run_case "$bin" "$seed" "$log")
      local replay=""
      if [[ "${r[0]}" == fail ]]; then replay="$(replay_line "$log" "$seed")"; else rm -f "$log"; fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(basename "$bin")" "$seed" "${r[@]}" \
        "ITN_RC_SEED=$seed ITN_SCHED_SEED=$seed ITN_RACE_EXECUTIONS=500 $bin" "$replay" \
        >> "$records/$id.tsv"
    done
  }
  for ((i = 0; i < jobs; i++)); do seeded_worker "$i" & done
  wait
  names=()
  for s in "${suites[@]}"; do names+=("$(basename "$s")"); done
  status=0
  { cat "$records"/*.tsv 2>/dev/null || true; } | python3 scripts/soak_results.py write \
    --shard "$index" --shards "$shards" --first "$first" --count "$count" \
    --suites "$(IFS=,; echo "${names[*]}")" \
    --json "$out/$name.json" --junit "$out/$name.junit.xml" || status=$?
  rm -rf "$records"
  echo "soak: results in $out/$name.json and $out/$name.junit.xml"
  exit "$status"
fi

out="$(mktemp -d /tmp/itn-soak.XXXXXX)"
start=$SECONDS
deadline=$((start + minutes * 60))
echo "soak: ${minutes} min on ${jobs} workers, logs in ${out}"

worker() {  # worker <id>: runs suites round-robin with fresh seeds until the deadline
  set +e +o pipefail  # a run's failure is data here, not the end of the worker
  local id="$1" n=0
  while (( SECONDS < deadline )); do
    local bin="${suites[$(( (id + n) % ${#suites[@]} ))]}" seed="$RANDOM$RANDOM$id"
    local log="$out/w${id}-${n}.log" r
    n=$((n + 1))
    read -r -a r < <(run_case "$bin" "$seed" "$log")
    if [[ "${r[0]}" == pass ]]; then
      echo "ok ${r[1]} ${r[2]}" >> "$out/records.$id"
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
