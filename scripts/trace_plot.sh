#!/usr/bin/env bash
# Draws a trace written by itn::trace (sync/trace.h; e.g. driver_prototype --trace) as a
# PNG timeline: one row per thread, a box per span (stacked by nesting, coloured by
# category, labelled by name where it is wide enough), a point per instant, and each
# async span (an invalidation, from its start to its end) as a thin bar under the row of
# the thread that started it.
#
#   scripts/trace_plot.sh TRACE.json OUT.png [--from US] [--to US] [--max-events N]
#                         [--threads REGEX] [--title TEXT]
#
# --from/--to: the time window, in microseconds since the recording's start (default: all
# of it); --max-events N ends the window at the N-th recorded event after --from (a quick
# way to get a short, readable window); --threads keeps the threads whose name matches.
# Needs python3 and gnuplot (Debian: gnuplot-nox; scripts/install_deps.sh).
set -euo pipefail

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ $# -ge 2 ] || usage
trace="$1" out="$2"
shift 2
from="" to="" max_events="" threads="" title=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --to) to="$2"; shift 2 ;;
    --max-events) max_events="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --title) title="$2"; shift 2 ;;
    *) usage ;;
  esac
done
command -v gnuplot >/dev/null || { echo "trace_plot: gnuplot is missing (scripts/install_deps.sh)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/itn-trace-plot.XXXXXX")"
trap 'rm -rf "$work"' EXIT

python3 - "$trace" "$work" "$from" "$to" "$max_events" "$threads" "$title" "$out" <<'PY'
import json
import re
import sys

trace, work, lo, hi, max_events, threads, title, out = sys.argv[1:]
with open(trace, encoding="utf-8") as f:
    doc = json.load(f)
events = doc["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in events
         if e.get("ph") == "M" and e.get("name") == "thread_name"}
recorded = [e for e in events if e.get("ph") in ("B", "E", "i", "b", "e")]
lo = float(lo) if lo else 0.0
if max_events:
    after = [e["ts"] for e in recorded if e["ts"] >= lo][: int(max_events)]
    hi = after[-1] if after else lo
hi = float(hi) if hi else max((e["ts"] for e in recorded), default=lo)
if hi <= lo:
    sys.exit("trace_plot: the window is empty")
keep = re.compile(threads) if threads else None

COLOURS = {"notifier": 0x3B6FB6, "hw": 0xE08A1E, "srcu": 0x3A9A4A, "example": 0xA0A0A0}
OTHER = 0x8E5BB0

# Pair the spans: per thread a stack of begins; async ones by id.
spans, async_spans, instants = [], [], []
stacks, open_async = {}, {}
for e in recorded:
    ph, tid = e["ph"], e["tid"]
    if ph == "B":
        stacks.setdefault(tid, []).append(e)
    elif ph == "E" and stacks.get(tid):
        b = stacks[tid].pop()
        spans.append((tid, len(stacks[tid]), b["ts"], e["ts"], b.get("cat", ""), b["name"]))
    elif ph == "b":
        open_async[e.get("id")] = e
    elif ph == "e" and e.get("id") in open_async:
        b = open_async.pop(e["id"])
        async_spans.append((b["tid"], b["ts"], e["ts"], b.get("cat", ""), b["name"]))
    elif ph == "i":
        instants.append((tid, e["ts"], e.get("cat", ""), e["name"]))


def visible(start, end):
    return end >= lo and start <= hi


def shown(tid):
    return keep is None or keep.search(names.get(tid, f"tid {tid}")) is not None


tids = sorted({s[0] for s in spans if visible(s[2], s[3]) and shown(s[0])}
              | {a[0] for a in async_spans if visible(a[1], a[2]) and shown(a[0])}
              | {i[0] for i in instants if lo <= i[1] <= hi and shown(i[0])})
if not tids:
    sys.exit("trace_plot: no event in the window")
row = {tid: n for n, tid in enumerate(reversed(tids))}  # the first thread on top
span_h = 0.15
depth_max = 3  # deeper spans are drawn at this depth


def clip(t):
    return min(max(t, lo), hi)


with open(f"{work}/spans.dat", "w") as f:
    for tid, depth, start, end, cat, name in spans:
        if tid in row and visible(start, end):
            y = row[tid] + 0.38 - min(depth, depth_max) * (span_h + 0.02)
            f.write(f"{clip(start)} {clip(end)} {y} {COLOURS.get(cat, OTHER)}\n")
with open(f"{work}/async.dat", "w") as f:
    for tid, start, end, cat, name in async_spans:
        if tid in row and visible(start, end):
            f.write(f"{clip(start)} {clip(end)} {row[tid] - 0.45} {COLOURS.get(cat, OTHER)}\n")
# Labels where they fit (a span wider than a twenty-second of the window).
with open(f"{work}/labels.dat", "w") as f:
    for tid, depth, start, end, cat, name in spans:
        if tid in row and visible(start, end) and clip(end) - clip(start) > (hi - lo) / 22:
            y = row[tid] + 0.38 - min(depth, depth_max) * (span_h + 0.02)
            f.write(f'{clip(start) + (hi - lo) / 400} {y} "{name}"\n')
with open(f"{work}/instants.dat", "w") as f:
    for tid, ts, cat, name in instants:
        if tid in row and lo <= ts <= hi:
            f.write(f"{ts} {row[tid] - 0.34} {COLOURS.get(cat, OTHER)}\n")
for name in ("spans", "async", "labels", "instants"):  # gnuplot wants at least one line
    with open(f"{work}/{name}.dat", "a") as f:
        f.write("NaN NaN NaN NaN\n" if name != "labels" else 'NaN NaN ""\n')

ytics = ", ".join(f'"{names.get(tid, "tid %d" % tid)}" {row[tid]}' for tid in tids)
key = "".join(
    f"set object {n + 1} rect from graph {0.01 + n * 0.12}, screen 0.015 to graph "
    f"{0.03 + n * 0.12}, screen 0.035 fc rgb '#{c:06x}' fs solid noborder\n"
    f"set label {n + 1} '{cat}' at graph {0.035 + n * 0.12}, screen 0.025 font ',9'\n"
    for n, (cat, c) in enumerate(list(COLOURS.items()) + [("other", OTHER)]))
height = max(320, 90 + 64 * len(tids))
heading = title or f"{trace}: {lo:.1f} to {hi:.1f} us"
script = f"""set terminal pngcairo size 1400,{height} font ',9' noenhanced
set output '{out}'
set title "{heading}"
set xlabel 'microseconds since the recording started (thin bars: invalidations, start to end; points: instants)'
set xrange [{lo}:{hi}]
set yrange [-0.6:{len(tids) - 0.4}]
set ytics ({ytics})
set grid xtics
set bmargin 5
unset key
{key}
plot '{work}/spans.dat' using (($1+$2)/2):3:(($2-$1)/2):({span_h / 2}):4 with boxxyerror fs solid 0.6 noborder lc rgb variable, \\
     '{work}/async.dat' using (($1+$2)/2):3:(($2-$1)/2):(0.02):4 with boxxyerror fs solid 1 noborder lc rgb variable, \\
     '{work}/labels.dat' using 1:2:3 with labels left font ',7' tc rgb '#202020', \\
     '{work}/instants.dat' using 1:2:3 with points pt 9 ps 0.8 lc rgb variable
"""
with open(f"{work}/plot.gp", "w") as f:
    f.write(script)
print(f"trace_plot: {len(tids)} threads, {lo:.1f} to {hi:.1f} us")
PY
gnuplot "$work/plot.gp"
echo "trace_plot: wrote $out"
