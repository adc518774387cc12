#!/usr/bin/env bash
# PostgreSQL to DuckDB initial copy: ferry (-tags duckdb) against the
# do-it-yourself way, COPY (SELECT ...) TO STDOUT (FORMAT csv) into files that
# DuckDB's read_csv loads (bench/duckdbload), on a private PostgreSQL 15
# instance with bench's dataset. The two run alternately, ROUNDS times each,
# and the script prints each time and the median ratio.
#
#   ./bench/duckdb.sh [SCALE] [PARALLEL] [ROUNDS]
#
# SCALE 1 (the default; fractions work: 0.05) is 5.2 million rows: 3M narrow
# rows with a primary key, 2M rows without one, 200k TOAST-heavy rows. The
# baseline exports the three tables side by side and loads them one by one;
# it makes no primary key and lets read_csv guess the types (ferry makes the
# keys and DuckDB's own types: DECIMAL(12,2), TIMESTAMPTZ, ...).
# Run as root (the server runs as the postgres user); needs gcc for cgo.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
par=${2:-4}
rounds=${3:-3}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=1
. bench/lib.sh
bench_work duckdb
cleanup() {
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building ferry and duckdbload with -tags duckdb"
go build -tags duckdb -o "$work/ferry" ./cmd/ferry
go build -tags duckdb -o "$work/duckdbload" ./bench/duckdbload
pa=$(port); start a "$pa"
src="postgres://postgres@127.0.0.1:$pa/src?sslmode=disable"
rows() { awk -v n="$1" -v s="$scale" 'BEGIN { printf "%d", n * s }'; }
pg_dataset "$(rows 3000000)" "$(rows 2000000)" "$(rows 200000)"

run_ferry() {
  rm -f "$work/ferry.duckdb" "$work/ferry.duckdb.wal"
  local t0
  t0=$(now)
  "$work/ferry" sync "$src" "duckdb://$work/ferry.duckdb" --mode snapshot --parallel "$par" \
    --state-dir "$work/state" --restart --progress none --log-format json 2>"$work/ferry.log" >/dev/null ||
    { tail -20 "$work/ferry.log"; exit 1; }
  secs "$t0" "$(now)"
}

run_csv() {
  rm -f "$work/csv.duckdb" "$work/csv.duckdb.wal" "$work"/*.csv
  local t0 t
  t0=$(now)
  for t in narrow events docs; do
    psql_a -d src -c "COPY (SELECT * FROM $t) TO STDOUT (FORMAT csv, HEADER)" >"$work/$t.csv" &
  done
  wait
  "$work/duckdbload" "$work/csv.duckdb" narrow="$work/narrow.csv" events="$work/events.csv" docs="$work/docs.csv" >/dev/null
  secs "$t0" "$(now)"
}

ferry_times=(); csv_times=()
for ((r = 1; r <= rounds; r++)); do
  f=$(run_ferry); c=$(run_csv)
  ferry_times+=("$f"); csv_times+=("$c")
  echo "round $r: ferry ${f}s, COPY csv + read_csv ${c}s"
done
"$work/ferry" verify "$src" "duckdb://$work/ferry.duckdb" | tail -1
python3 - "${ferry_times[*]}" "${csv_times[*]}" <<'PY'
import statistics, sys
f = [float(x) for x in sys.argv[1].split()]
c = [float(x) for x in sys.argv[2].split()]
print(f"median: ferry {statistics.median(f):.2f}s, COPY csv + read_csv {statistics.median(c):.2f}s, "
      f"ratio {statistics.median(c) / statistics.median(f):.2f}x (above 1: ferry is faster)")
PY
