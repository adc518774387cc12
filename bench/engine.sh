#!/usr/bin/env bash
# Measures the engine alone: fake -> null (no database in the way) and
# fake -> SQLite, through the real binary. Prints rows/s, MB/s and peak RSS,
# then the go test benchmarks of the same paths.
#
#   ./bench/engine.sh [ROWS_PER_TABLE] [TABLES]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}
tables=${2:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/ferry" ./cmd/ferry
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }

run() { # name, args...
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/time.txt" "$work/ferry" "$@" --state-dir "$work/state" --restart --progress none --log-format json 2>"$work/log.json" >/dev/null
  end=$(date +%s.%N)
  local secs rss total bytes
  secs=$(echo "$end - $start" | bc -l)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  total=$(grep '"flow finished"' "$work/log.json" | sed 's/.*"rows_copied":\([0-9]*\).*/\1/')
  bytes=$(grep '"flow finished"' "$work/log.json" | sed 's/.*"size":"\([^"]*\)".*/\1/')
  printf "%-28s %12s rows in %6.2fs  %10.0f rows/s  %s copied  peak RSS %d MB\n" "$name" "$total" "$secs" "$(echo "$total / $secs" | bc -l)" "$bytes" $((rss / 1024))
}

echo "engine benchmarks: $tables tables x $rows rows, $(nproc) cores"
run "fake -> null" sync "fake://?tables=$tables&rows=$rows" null:// --mode snapshot
run "fake -> null (width 0)" sync "fake://?tables=$tables&rows=$rows&width=0" null:// --mode snapshot
run "fake -> sqlite" sync "fake://?tables=$tables&rows=$((rows / 4))" "sqlite://$work/bench.db" --mode snapshot
echo
go test -run=NONE -bench=. -benchtime=3x ./engine/ 2>/dev/null | grep -E '^Benchmark'
