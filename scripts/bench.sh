#!/usr/bin/env bash
# Runs the benchmark suite and publishes it: builds the `release` preset (seam compiled
# out) and `release-seam` (seam compiled in), runs every benchmark binary, writes the raw
# Google Benchmark JSON to docs/perf/, draws the PNG plots there with gnuplot and rewrites
# the generated table of docs/PERFORMANCE.md (bench/report.py). Installs what is missing.
#
#   ./scripts/bench.sh [--reps N] [--min-time S] [--out DIR]
#
# --reps N      repetitions of each benchmark; tables use their medians (default 5)
# --min-time S  minimum seconds per repetition (default 0.2)
# --out DIR     where the JSON and plots go (default docs/perf); the table is written into
#               docs/PERFORMANCE.md only when DIR is docs/perf
# A full run takes about 6 minutes on the 2-core reference machine, plus the builds.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
min_time=0.2
out=docs/perf
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --min-time) min_time="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "bench.sh: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

scripts/install_deps.sh
benches=(itree_bench notifier_bench mirror_bench memory_bench)
for preset in release release-seam; do
  cmake --preset "$preset" >/dev/null
done
cmake --build --preset release --target "${benches[@]}"
cmake --build --preset release-seam --target notifier_bench itree_bench sched_bench

mkdir -p "$out"
run() {  # run BINARY_DIR NAME JSON [extra args...]
  local dir="$1" name="$2" json="$3"
  shift 3
  echo "=== bench: $name -> $json"
  "$dir/bench/$name" --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
    --benchmark_min_time="$min_time" --benchmark_out="$json" --benchmark_out_format=json \
    "$@"
}
for b in itree_bench notifier_bench mirror_bench; do
  run build/release "$b" "$out/${b%_bench}.json"
done
# The deterministic scheduler's cost per execution (needs the seam).
run build/release-seam sched_bench "$out/sched.json"
# Memory figures are counts, not timings: one run.
run build/release memory_bench "$out/memory.json" --benchmark_repetitions=1

# The seam: the same itn benchmarks with the seam compiled out and in, alternated so that
# both builds see the same machine.
notifier_filter='ReadBeginRetry/itn/collide:0|InvalidateRange/itn/n:10000/k:1$|Find/itn/n:10000$'
itree_filter='Overlap/itn/100000$'
for round in 1 2; do
  for build in release release-seam; do
    seam=$([ "$build" = release ] && echo off || echo on)
    run "build/$build" notifier_bench "$out/seam_${seam}_notifier_$round.json" \
      --benchmark_filter="$notifier_filter"
    run "build/$build" itree_bench "$out/seam_${seam}_itree_$round.json" \
      --benchmark_filter="$itree_filter"
  done
done

# Whether each build carries the seam at all: its per-thread hook pointer, by symbol.
for build in release release-seam; do
  echo "$build $(nm -C "build/$build/bench/notifier_bench" | grep -c 'sched_internal::tl_hooks' || true)"
done >"$out/seam_symbols.txt"

table_args=()
if [ "$out" = docs/perf ]; then table_args=(--performance-md docs/PERFORMANCE.md); fi
python3 bench/report.py "$out" "${table_args[@]}"
