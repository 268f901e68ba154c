#!/usr/bin/env bash
# scripts/soak.sh --shard and scripts/soak_results.py merge: the shards of a seed range,
# merged, are the same runs as one unsharded run of that range, each failure listed with
# its replay line, and the JSON and JUnit files parse and agree with what ran. A fake
# suite that fails exactly for even seeds (printing a replay line) stands in for a bug.
#   soak_shards_test.sh <repo> <a property test binary>
set -euo pipefail
repo="$1" real="$2"
work="$(mktemp -d /tmp/itn-soak-test.XXXXXX)"
trap 'rm -rf "$work"' EXIT
fake="$work/fake_suite"
cat > "$fake" <<'FAKE'
#!/usr/bin/env bash
echo "Using configuration: max_success=7 seed=$ITN_RC_SEED"
if (( ITN_RC_SEED % 2 == 0 )); then
  # An exploration's schedule of an unshrunk case first, then the shrunk case's RC_PARAMS
  # (what reproduces it), with a character XML cannot carry.
  echo "replay: ITN_SCHEDULE='v1:unshrunk'"
  printf 'RC_PARAMS="reproduce=fake%s <&\x1b"\n' "$ITN_RC_SEED"
  exit 1
fi
FAKE
chmod +x "$fake"
soak() { "$repo/scripts/soak.sh" --seeds 3:5 --suites "$real $fake" --jobs 2 "$@"; }
fail() { echo "soak_shards_test: $*" >&2; exit 1; }

for i in 0 1 2; do soak --shard "$i/3" --out "$work/sharded" > "$work/shard$i.out" || true; done
soak --out "$work/whole" > "$work/whole.out" || true
merge="$repo/scripts/soak_results.py merge"

rc=0; $merge "$work"/sharded/*.json --list --json "$work/merged.json" --junit "$work/merged.xml" \
  > "$work/merged.list" || rc=$?
[[ "$rc" == 1 ]] || fail "the merge exited $rc, not 1 (runs failed) $(cat "$work/merged.list")"
$merge "$work/whole/soak-shard-0-of-1.json" --list > "$work/whole.list" || true
diff <(grep -v '^ \|^soak\|^FAILED' "$work/merged.list") \
     <(grep -v '^ \|^soak\|^FAILED' "$work/whole.list") ||
  fail "three shards merged differ from the unsharded run"
[[ "$(grep -c "^$(basename "$real") " "$work/whole.list")" == 5 ]] || fail "not one real run per seed"
grep -q "^$(basename "$real") 4 pass [1-9][0-9]* 0" "$work/whole.list" || fail "the real suite's cases not counted"

# Every failure, and only those, with its replay line: seeds 4 and 6 of 3..7.
[[ "$(grep -c '^FAILED' "$work/merged.list")" == 2 ]] || fail "not exactly two failures listed"
for seed in 4 6; do
  grep -A2 "^FAILED fake_suite seed $seed\$" "$work/merged.list" |
    grep -q "replay: ITN_SCHED_SEED=$seed RC_PARAMS=\"reproduce=fake$seed" ||
    fail "the failure of seed $seed lacks its replay line (RC_PARAMS with the scheduler seed)"
done

# Disjoint blocks: 3..7 in three shards is 3 | 4 5 | 6 7.
for i in 0 1 2; do
  [[ -s "$work/sharded/soak-shard-$i-of-3.junit.xml" ]] || fail "shard $i wrote no JUnit file"
done
python3 - "$work" <<'CHECK' || fail "the JSON or JUnit files disagree with the runs"
import json, sys, xml.etree.ElementTree as ET
work = sys.argv[1]
blocks = {0: [3], 1: [4, 5], 2: [6, 7]}
for i, seeds in blocks.items():
    doc = json.load(open(f"{work}/sharded/soak-shard-{i}-of-3.json"))
    assert sorted({r["seed"] for r in doc["results"]}) == seeds, (i, doc["results"])
    suite = ET.parse(f"{work}/sharded/soak-shard-{i}-of-3.junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 2 * len(seeds) == int(suite.get("tests")), i
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [f"seed {s}" for s in seeds if s % 2 == 0], (i, failed)
merged = json.load(open(f"{work}/merged.json"))
assert merged["runs"] == 10 and merged["failures"] == 2, merged
assert merged["cases"] == sum(r["cases"] for r in merged["results"])
root = ET.parse(f"{work}/merged.xml").getroot()
assert root.get("failures") == "2" and root.get("tests") == "10"
CHECK

# A missing shard, or a shard given twice, is no campaign.
rc=0; $merge "$work/sharded/soak-shard-0-of-3.json" "$work/sharded/soak-shard-2-of-3.json" \
  > "$work/missing.out" || rc=$?
[[ "$rc" == 2 ]] && grep -q "missing \[1\]" "$work/missing.out" || fail "a missing shard was not reported"

# A merged summary among the shards (merging into the shards' own folder, twice).
rc=0; $merge "$work"/sharded/*.json "$work/merged.json" > "$work/remerge.out" || rc=$?
[[ "$rc" == 2 ]] && grep -q "merged.json is not one shard" "$work/remerge.out" ||
  fail "a merged summary given as a shard was not reported ($rc)"

# More shards than seeds: the empty shard passes with no runs, and the three still merge.
for i in 0 1 2; do
  "$repo/scripts/soak.sh" --seeds 3:2 --shard "$i/3" --suites "$real" --out "$work/sparse" \
    > "$work/sparse$i.out" || fail "shard $i of 3 over two seeds failed: $(cat "$work/sparse$i.out")"
done
$merge "$work"/sparse/*.json --list > "$work/sparse.list" || fail "the sparse shards do not merge"
[[ "$(grep -c "^$(basename "$real") " "$work/sparse.list")" == 2 ]] || fail "not one run per seed"

# Two suites of one file name would share logs and JUnit names.
rc=0; mkdir -p "$work/other" && cp "$fake" "$work/other/fake_suite"
"$repo/scripts/soak.sh" --seeds 3:1 --suites "$fake $work/other/fake_suite" --out "$work/dup" \
  > "$work/dup.out" 2>&1 || rc=$?
[[ "$rc" == 2 ]] && grep -q "two suites are named fake_suite" "$work/dup.out" ||
  fail "suites of one file name were accepted ($rc)"
echo "soak_shards_test: ok"
