#!/usr/bin/env bash
# Compares this tree with an earlier revision on the same machine in the same
# run: bench/engine.sh and bench/pg-copy.sh of each, alternating, RUNS times
# each, then the median of every figure and the ratio this tree / REV (for
# times below 1 is faster, for rates above 1 is faster). A refactor that
# promises no change in speed shows ratios within its bound here.
#
#   ./bench/compare.sh REV [RUNS] [ENGINE_ROWS] [PG_SCALE]
#
# Defaults: 5 runs (3 left the engine figures within run-to-run noise of 15 %), 1,000,000 rows per table for engine.sh, scale 0.2 for
# pg-copy.sh (about a million rows). Run as root (pg-copy.sh needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/compare.sh REV [RUNS] [ENGINE_ROWS] [PG_SCALE]}
runs=${2:-5}
engine_rows=${3:-1000000}
pg_scale=${4:-0.2}
work=$(mktemp -d /tmp/ferry-compare-XXXXXX)
cleanup() { git worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git worktree add --detach -q "$work/old" "$rev"
# The earlier revision runs this tree's scripts, so both measure the same way.
cp bench/engine.sh bench/pg-copy.sh "$work/old/bench/"

for i in $(seq 1 "$runs"); do
  for side in old new; do
    dir=$PWD; [ "$side" = old ] && dir=$work/old
    echo "== run $i, $side ($( [ "$side" = old ] && echo "$rev" || git rev-parse --short HEAD))" >&2
    (cd "$dir" && ./bench/engine.sh "$engine_rows" 4) >"$work/engine-$side-$i.txt" 2>&1
    (cd "$dir" && ./bench/pg-copy.sh "$pg_scale" 4) >"$work/pg-$side-$i.txt" 2>&1
  done
done

python3 - "$work" "$runs" "$rev" <<'PY'
import re, statistics, sys, os
work, runs, rev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# figure name -> (file prefix, regex, unit, higher is better)
figures = [
    ("fake -> null rows/s", "engine", r"^fake -> null\s+\d+ rows in\s+[\d.]+s\s+(\d+) rows/s", True),
    ("fake -> null (width 0) rows/s", "engine", r"^fake -> null \(width 0\)\s+\d+ rows in\s+[\d.]+s\s+(\d+) rows/s", True),
    ("fake -> sqlite rows/s", "engine", r"^fake -> sqlite\s+\d+ rows in\s+[\d.]+s\s+(\d+) rows/s", True),
    ("fake -> null peak RSS MB", "engine", r"^fake -> null\s+.*peak RSS (\d+) MB", False),
    ("pg copy s", "pg", r"^ferry: ([\d.]+)s", False),
    ("pg copy peak RSS MB", "pg", r"^ferry: .*peak RSS (\d+) MB", False),
    ("pg CDC backlog s", "pg", r"^ferry drained \d+ changes in ([\d.]+)s", False),
    ("pg CDC one-row transactions s", "pg", r"^ferry drained \d+ one-row transactions in ([\d.]+)s", False),
    ("pg_dump | psql s (peer)", "pg", r"^pg_dump \| psql: ([\d.]+)s", False),
]
def values(prefix, side, rx):
    out = []
    for i in range(1, runs + 1):
        text = open(os.path.join(work, f"{prefix}-{side}-{i}.txt")).read()
        m = re.search(rx, text, re.M)
        if m: out.append(float(m.group(1)))
    return out
print(f"median of {runs} runs each; ratio = this tree / {rev}")
print(f"{'figure':34} {'old':>12} {'new':>12} {'ratio':>7}  runs old | new")
for name, prefix, rx, _ in figures:
    o, n = values(prefix, "old", rx), values(prefix, "new", rx)
    if not o or not n:
        print(f"{name:34} {'-':>12} {'-':>12}  (not measured)"); continue
    mo, mn = statistics.median(o), statistics.median(n)
    print(f"{name:34} {mo:12.2f} {mn:12.2f} {mn / mo:7.3f}  {' '.join(f'{x:g}' for x in o)} | {' '.join(f'{x:g}' for x in n)}")
for side in ("old", "new"):
    for f in sorted(os.listdir(work)):
        if f.endswith(".txt") and "DIFFER" in open(os.path.join(work, f)).read():
            print(f"{f}: source and destination DIFFER")
PY
