#!/usr/bin/env python3
"""Results of seeded soak runs (scripts/soak.sh --seeds): one shard's, or several merged.

  soak_results.py write --shard I --shards N --first F --count C --suites a,b \\
                        --json FILE --junit FILE  < records
      Reads soak.sh's records (tab-separated: suite, seed, result, cases, schedules,
      seconds, rerun command, replay line) and writes the shard's JSON summary and JUnit
      XML. Exit status 1 if a run failed.
  soak_results.py merge SHARD.json ... [--json FILE] [--junit FILE] [--list]
      Checks that the files are distinct shards of one campaign (same N, seed range and
      suites) and that none is missing, sums them and lists every failure with its replay
      line; --list prints one line per run (suite, seed, result, cases, schedules) in
      seed order, the same for any sharding of a seed range. Exit status 1 if a run
      failed, 2 if the shards do not make up one whole campaign.
"""
import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET

# Characters XML 1.0 cannot carry at all (escaping does not help): shown as \xNN.
NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text):
    return NOT_XML.sub(lambda m: "\\x%02x" % ord(m.group()), text)


FIELDS = ("suite", "seed", "result", "cases", "schedules", "seconds", "rerun", "replay")


def sort_key(run):
    return (run["seed"], run["suite"])


def summary(campaign, runs):
    """The JSON document of a shard (or of the merge, shard = "merged")."""
    doc = dict(campaign)
    doc.update({
        "runs": len(runs),
        "failures": sum(r["result"] == "fail" for r in runs),
        "cases": sum(r["cases"] for r in runs),
        "schedules": sum(r["schedules"] for r in runs),
        "seconds": round(sum(r["seconds"] for r in runs), 2),
        "results": sorted(runs, key=sort_key),
    })
    return doc


def write_junit(doc, path):
    name = "itn-soak-shard-%s-of-%s" % (doc["shard"], doc["shards"])
    root = ET.Element("testsuites", tests=str(doc["runs"]), failures=str(doc["failures"]),
                      time="%.2f" % doc["seconds"])
    suite = ET.SubElement(root, "testsuite", name=name, tests=str(doc["runs"]),
                          failures=str(doc["failures"]), time="%.2f" % doc["seconds"])
    for r in doc["results"]:
        case = ET.SubElement(suite, "testcase", classname=r["suite"],
                             name="seed %d" % r["seed"], time="%.2f" % r["seconds"])
        if r["result"] == "fail":
            failure = ET.SubElement(case, "failure", message=xml_text(r["replay"] or "failed"))
            failure.text = xml_text("rerun: %s\nreplay: %s\n" %
                                    (r["rerun"], r["replay"] or "(none printed)"))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_outputs(doc, json_path, junit_path):
    if json_path:
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    if junit_path:
        write_junit(doc, junit_path)


def print_failures(doc):
    print("soak: shard %s of %s: %d runs, %d cases, %d schedules, %d failures" %
          (doc["shard"], doc["shards"], doc["runs"], doc["cases"], doc["schedules"],
           doc["failures"]))
    for r in doc["results"]:
        if r["result"] == "fail":
            print("FAILED %s seed %d\n  rerun:  %s\n  replay: %s" %
                  (r["suite"], r["seed"], r["rerun"], r["replay"] or "(none printed)"))


def write(args):
    runs = []
    for line in sys.stdin:
        values = line.rstrip("\n").split("\t")
        if len(values) != len(FIELDS):
            sys.exit("soak_results: a record without %d fields: %r" % (len(FIELDS), line))
        r = dict(zip(FIELDS, values))
        for k in ("seed", "cases", "schedules"):
            r[k] = int(r[k])
        r["seconds"] = float(r["seconds"])
        runs.append(r)
    campaign = {"shard": args.shard, "shards": args.shards, "first_seed": args.first,
                "seed_count": args.count, "suites": args.suites.split(",")}
    doc = summary(campaign, runs)
    write_outputs(doc, args.json, args.junit)
    print_failures(doc)
    return 1 if doc["failures"] else 0


def merge(args):
    docs = []
    for path in args.shards:
        with open(path, encoding="utf-8") as f:
            docs.append(json.load(f))
    for path, doc in zip(args.shards, docs):
        if not isinstance(doc.get("shard"), int):
            print("soak merge: %s is not one shard's results (a merged summary?)" % path)
            return 2
    keys = ("shards", "first_seed", "seed_count", "suites")
    campaign = {k: docs[0][k] for k in keys}
    for path, doc in zip(args.shards, docs):
        if any(doc[k] != campaign[k] for k in keys):
            print("soak merge: %s is of another campaign than %s" % (path, args.shards[0]))
            return 2
    seen = sorted(doc["shard"] for doc in docs)
    if seen != list(range(campaign["shards"])):
        missing = sorted(set(range(campaign["shards"])) - set(seen))
        print("soak merge: shards %s of %d given; missing %s, or one given twice" %
              (seen, campaign["shards"], missing))
        return 2
    runs = [r for doc in docs for r in doc["results"]]
    expected = campaign["seed_count"] * len(campaign["suites"])
    if len(runs) != expected or len({sort_key(r) for r in runs}) != expected:
        print("soak merge: %d runs, %d expected (each suite once per seed)" % (len(runs), expected))
        return 2
    doc = summary(dict(campaign, shard="merged"), runs)
    write_outputs(doc, args.json, args.junit)
    if args.list:
        for r in doc["results"]:
            print("%s %d %s %d %d" % (r["suite"], r["seed"], r["result"], r["cases"],
                                       r["schedules"]))
    print_failures(doc)
    return 1 if doc["failures"] else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("--shard", type=int, required=True)
    w.add_argument("--shards", type=int, required=True)
    w.add_argument("--first", type=int, required=True)
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--suites", required=True)
    w.add_argument("--json")
    w.add_argument("--junit")
    m = sub.add_parser("merge")
    m.add_argument("shards", nargs="+")
    m.add_argument("--json")
    m.add_argument("--junit")
    m.add_argument("--list", action="store_true")
    args = parser.parse_args()
    return write(args) if args.command == "write" else merge(args)


if __name__ == "__main__":
    sys.exit(main())
