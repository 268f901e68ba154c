#!/usr/bin/env bash
# L5 mutation checks: applies each named mutation (proptests/mutants/<name>.patch, listed
# in mutants.txt) to a scratch copy of the committed tree, rebuilds, runs the tests that
# should catch it (up to the first that fails) and prints a table: mutation, the test that
# caught it, how fast (the failing schedule or RapidCheck case where the test reports it,
# the sanitizer report, else the first run) and the seconds the tests took.
#   proptests/mutants/run_mutants.sh [name-regex]      (default: every mutation)
# Takes a while (one incremental build per mutation): not part of CI. Exit status 1 if a
# mutation survived.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
only="${1:-.}"
scratch="${ITN_MUTANTS_DIR:-/tmp/itn-mutants}"
list="$repo/proptests/mutants/mutants.txt"

rm -rf "$scratch/src"
mkdir -p "$scratch"
git clone -q "$repo" "$scratch/src"
cd "$scratch/src"
"$repo/scripts/install_deps.sh" >/dev/null

declare -A configured
table="$scratch/table.md"
echo "| mutation | preset | caught by | detection | test seconds |" > "$table"
echo "|---|---|---|---|---|" >> "$table"
survivors=0
while IFS=';' read -r name preset tests what; do
  name="$(echo "$name" | xargs)"; preset="$(echo "$preset" | xargs)"
  tests="$(echo "$tests" | sed 's/^ *//; s/ *$//')"
  [[ -z "$name" || "$name" == \#* ]] && continue
  [[ "$name" =~ $only ]] || continue
  if [[ -z "${configured[$preset]:-}" ]]; then
    # ctest's --timeout does not override a test's own TIMEOUT: lower the property tests'.
    cmake --preset "$preset" -DITN_PROPERTY_TEST_TIMEOUT=120 >/dev/null
    configured[$preset]=1
  fi
  git checkout -q -- .
  patch -s -p1 < "$repo/proptests/mutants/$name.patch"
  echo "=== $name ($preset): building" >&2
  if ! cmake --build "build/$preset" >"$scratch/$name.build.log" 2>&1; then
    echo "| \`$name\` | $preset | (does not build: see $name.build.log) | | |" >> "$table"
    continue
  fi
  start=$SECONDS
  set +e
  ctest --test-dir "build/$preset" -R "$tests" --output-on-failure --timeout 120 --stop-on-failure \
    >"$scratch/$name.test.log" 2>&1
  status=$?
  set -e
  seconds=$((SECONDS - start))
  if [[ $status -eq 0 ]]; then
    survivors=$((survivors + 1))
    echo "| \`$name\` | $preset | SURVIVED | | $seconds |" >> "$table"
  else
    # Every test that failed, and how fast each test that reports it found the bug.
    caught="$(sed -n '/The following tests FAILED/,$p' "$scratch/$name.test.log" |
      grep -oE '[0-9]+ - [^ ]+' | sed -E 's/^[0-9]+ - //' | paste -sd, - | sed 's/,/, /g' || true)"
    detail="$(grep -oE 'FAILED in execution [0-9]+|Falsifiable after [0-9]+ tests|ERROR: AddressSanitizer: [a-z-]+|DEADLOCK' \
      "$scratch/$name.test.log" | sed -E 's/FAILED in execution/schedule/; s/Falsifiable after ([0-9]+) tests/case \1/; s/ERROR: AddressSanitizer: //' |
      sort | uniq | paste -sd, - | sed 's/,/, /g' || true)"
    echo "| \`$name\` | $preset | $caught | ${detail:-first run of each} | $seconds |" >> "$table"
  fi
  echo "=== $name: $(tail -1 "$table")" >&2
done < "$list"
git checkout -q -- .
cat "$table"
echo "(logs in $scratch)"
[[ $survivors -eq 0 ]]
