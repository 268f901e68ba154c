#!/usr/bin/env python3
"""Checks a Trace Event Format file written by itn::trace (sync/trace.h).

    scripts/trace_check.py TRACE.json [--expect NAME,NAME,...] [--allow-unfinished] [--quiet]

Checks that the file is JSON in the object form ({"traceEvents": [...],
"displayTimeUnit": "ns", "otherData": {...}}); that every event has the keys of its phase
(ph, pid, tid, ts, name, cat; id for async events; args an object); that timestamps never
go back on one thread; that every "B" has its "E" on the same thread, nested like scopes
(an "E" closes the innermost open "B", with the same name), and every "b" its "e" (same
id, category and name); that the counts in otherData agree with the events; and that each
name given with --expect occurs. A span still open when the recording stopped is closed by
the writer with the argument "unfinished": 1; that is a problem too (an end went missing),
unless --allow-unfinished (a recording stopped while threads were still in spans). Prints a summary (events per category and name) unless
--quiet. Exit status: 0 if the file passes, 1 if not (each problem printed), 2 for bad
arguments or an unreadable file.
"""
import argparse
import collections
import json
import sys

PHASES = {"B", "E", "i", "b", "e", "M"}


def check(doc, expect, allow_unfinished=False):
    problems = []

    def bad(msg):
        if len(problems) < 50:
            problems.append(msg)

    if not isinstance(doc, dict):
        return ["the top level is not an object"], {}
    for key in ("traceEvents", "displayTimeUnit", "otherData"):
        if key not in doc:
            bad(f"missing top-level key {key!r}")
    if doc.get("displayTimeUnit") not in (None, "ns", "ms"):
        bad(f"displayTimeUnit is {doc.get('displayTimeUnit')!r}")
    events = doc.get("traceEvents", [])
    if not isinstance(events, list):
        return problems + ["traceEvents is not an array"], {}
    other = doc.get("otherData", {})
    if not isinstance(other, dict):
        bad("otherData is not an object")
        other = {}

    stacks = collections.defaultdict(list)  # tid -> open "B" events
    open_async = {}  # id -> "b" event
    last_ts = {}
    counts = collections.Counter()
    recorded = 0
    unfinished = 0
    for n, e in enumerate(events):
        where = f"event {n}"
        if not isinstance(e, dict):
            bad(f"{where} is not an object")
            continue
        ph = e.get("ph")
        if ph not in PHASES:
            bad(f"{where}: unknown phase {ph!r}")
            continue
        for key in ("pid", "tid", "name"):
            if key not in e:
                bad(f"{where} ({ph}): no {key!r}")
        if not isinstance(e.get("name", ""), str):
            bad(f"{where}: name is not a string")
        if "args" in e and not isinstance(e["args"], dict):
            bad(f"{where}: args is not an object")
        if ph == "M":
            if e.get("name") in ("thread_name", "process_name") and not isinstance(
                e.get("args", {}).get("name"), str
            ):
                bad(f"{where}: {e.get('name')} without args.name")
            continue
        recorded += 1
        name, tid, cat = e.get("name"), e.get("tid"), e.get("cat")
        if not isinstance(cat, str):
            bad(f"{where} ({ph} {name}): no category")
        ts = e.get("ts")
        if not isinstance(ts, (int, float)) or ts < 0:
            bad(f"{where} ({ph} {name}): ts {ts!r} is not a non-negative number")
            continue
        if ts < last_ts.get(tid, 0):
            bad(f"{where} ({ph} {name}): ts {ts} goes back on tid {tid} (last {last_ts[tid]})")
        last_ts[tid] = ts
        if e.get("args", {}).get("unfinished") == 1:
            unfinished += 1
            recorded -= 1  # closed by the writer, not recorded
            if not allow_unfinished:
                bad(f"{where}: {ph} {name!r} on tid {tid} was closed by the writer (no end recorded)")
        if ph == "B":
            stacks[tid].append(e)
            counts[(cat, name)] += 1
        elif ph == "E":
            if not stacks[tid]:
                bad(f"{where}: E {name!r} on tid {tid} with no open B")
            else:
                begin = stacks[tid].pop()
                if name is not None and begin.get("name") != name:
                    bad(
                        f"{where}: E {name!r} on tid {tid} closes B {begin.get('name')!r} "
                        "(not nested like scopes)"
                    )
                if ts < begin["ts"]:
                    bad(f"{where}: E {name!r} before its B")
        elif ph == "i":
            counts[(cat, name)] += 1
        elif ph == "b":
            if "id" not in e:
                bad(f"{where}: b {name!r} without id")
            elif e["id"] in open_async:
                bad(f"{where}: b {name!r} reuses the open id {e['id']}")
            else:
                open_async[e["id"]] = e
            counts[(cat, name)] += 1
        elif ph == "e":
            begin = open_async.pop(e.get("id"), None)
            if begin is None:
                bad(f"{where}: e {name!r} id {e.get('id')!r} with no open b")
            elif (begin.get("cat"), begin.get("name")) != (cat, name):
                bad(f"{where}: e {cat}/{name} closes b {begin.get('cat')}/{begin.get('name')}")
    for tid, stack in stacks.items():
        for b in stack:
            bad(f"B {b.get('name')!r} on tid {tid} at ts {b.get('ts')} has no E")
    for id_, b in open_async.items():
        bad(f"b {b.get('name')!r} id {id_} has no e")
    if "events" in other and other["events"] != recorded:
        bad(f"otherData.events is {other['events']}, the file holds {recorded} recorded events")
    if "unfinished_spans" in other and other["unfinished_spans"] != unfinished:
        bad(f"otherData.unfinished_spans is {other['unfinished_spans']}, found {unfinished}")
    names = {name for (_, name) in counts}
    for want in expect:
        if want not in names:
            bad(f"no event named {want!r}")
    return problems, counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--expect", default="", help="comma-separated event names that must occur")
    p.add_argument("--allow-unfinished", action="store_true",
                   help="accept spans the writer closed because they were open at stop()")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    try:
        with open(a.trace, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError) as err:
        print(f"trace_check: cannot read {a.trace}: {err}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as err:
        print(f"trace_check: {a.trace} is not JSON: {err}", file=sys.stderr)
        return 1
    expect = [n for n in a.expect.split(",") if n]
    problems, counts = check(doc, expect, a.allow_unfinished)
    if not a.quiet:
        other = doc.get("otherData", {}) if isinstance(doc, dict) else {}
        print(
            f"trace_check: {a.trace}: {sum(counts.values())} spans and instants, "
            f"{other.get('dropped_events', '?')} dropped, "
            f"{other.get('unfinished_spans', '?')} unfinished"
        )
        for (cat, name), n in sorted(counts.items()):
            print(f"  {cat:<9} {name:<24} {n}")
    for msg in problems:
        print(f"trace_check: {msg}", file=sys.stderr)
    if problems:
        print(f"trace_check: FAILED ({a.trace})", file=sys.stderr)
        return 1
    if not a.quiet:
        print("trace_check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
