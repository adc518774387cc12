#!/usr/bin/env bash
# The cost of --apply-mode transactional: the same CDC backlog drained by
# the default (parallel) apply and by the transactional one, PostgreSQL to
# PostgreSQL, on private PostgreSQL 15 instances (A the source, B both
# destinations).
#
#   ./bench/txapply.sh [TRANSACTIONS]
#
# Both flows are synced first (each has its own slot), then stopped;
# pgbench writes TRANSACTIONS (default 40000) TPC-B-like transactions (3
# updates and an insert, 4 changes each) while neither replicates; each
# flow then drains the backlog with --until caught-up, one after the
# other, timed as the process's wall time. Prints changes/s for both and
# their ratio.
#
# Then the huge-transaction case: one source transaction inserting HUGE
# (default 5000000; HUGE=0 skips it) rows while neither replicates, drained
# by each flow; prints the wall time and ferry's peak resident memory
# (/usr/bin/time -v): the transactional apply sends it to PostgreSQL in
# parts of one destination transaction, so its memory holds a part.
# Run as root (the servers run as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
txns=${1:-40000}
writers=${WRITERS:-4}
huge=${HUGE:-5000000}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
command -v pgbench >/dev/null || { echo "needs pgbench (Debian package postgresql-contrib or postgresql-client)"; exit 1; }
. bench/lib.sh
bench_work txapply
cleanup() {
  stop_servers
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/ferry" ./cmd/ferry

pa=$(port); start a "$pa"
pb=$(port); start b "$pb"
src="postgres://postgres@127.0.0.1:$pa/src?sslmode=disable"

psql_a -c "CREATE DATABASE src"
psql_a -d src <<SQL
CREATE TABLE branches (bid int PRIMARY KEY, bbalance int NOT NULL, filler char(88));
CREATE TABLE tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler char(84));
CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
CREATE TABLE history (hid bigserial PRIMARY KEY, tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE huge (id int PRIMARY KEY, v int NOT NULL, filler char(40));
INSERT INTO branches SELECT g, 0, '' FROM generate_series(1, 10) g;
INSERT INTO tellers SELECT g, 1 + (g - 1) / 10, 0, '' FROM generate_series(1, 100) g;
INSERT INTO accounts SELECT g, 1 + (g - 1) / 20000, 0, '' FROM generate_series(1, 200000) g;
VACUUM ANALYZE;
SQL
psql_b -c "CREATE DATABASE dst_parallel" -c "CREATE DATABASE dst_transactional"
flow() { # MODE [flags]
  local mode=$1; shift
  "$work/ferry" sync "$src" "postgres://postgres@127.0.0.1:$pb/dst_$mode?sslmode=disable" --name "tx-$mode" --state-dir "$work/state" \
    --apply-mode "$mode" --progress none --log-format json "$@"
}
echo "== initial sync of both flows"
flow parallel --writers "$writers" --until caught-up 2>"$work/initial-parallel.log" >/dev/null
flow transactional --until caught-up 2>"$work/initial-transactional.log" >/dev/null

echo "== backlog: $txns transactions while neither replicates"
cat >"$work/tpcb.sql" <<'SQL'
\set aid random(1, 200000)
\set bid random(1, 10)
\set tid random(1, 100)
\set delta random(-5000, 5000)
BEGIN;
UPDATE accounts SET abalance = abalance + :delta WHERE aid = :aid;
UPDATE tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
SQL
pgbench -n -h "$work" -p "$pa" -U postgres -c 4 -j 2 -t $((txns / 4)) -f "$work/tpcb.sql" src >"$work/pgbench.txt" 2>&1
changes=$((txns / 4 * 4 * 4))
echo "$changes row changes"

declare -A rate
for mode in parallel transactional; do
  extra=()
  [ "$mode" = parallel ] && extra=(--writers "$writers")
  t0=$(now)
  flow "$mode" "${extra[@]}" --until caught-up 2>"$work/drain-$mode.log" >/dev/null
  t=$(secs "$t0" "$(now)")
  rate[$mode]=$(python3 -c "print(int($changes / $t))")
  echo "$mode: ${t}s, ${rate[$mode]} changes/s"
done
for t in accounts tellers branches history; do
  a=$(psql_a -d src -At -c "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM $t t")
  for mode in parallel transactional; do
    b=$(psql_b -d "dst_$mode" -At -c "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM $t t")
    [ "$a" = "$b" ] || { echo "table $t differs at dst_$mode"; exit 1; }
  done
done
echo "ratio transactional/parallel: $(python3 -c "print(f'{${rate[transactional]} / ${rate[parallel]}:.2f}')") (--writers $writers)"

[ "$huge" -gt 0 ] || exit 0
[ -x /usr/bin/time ] || { echo "the huge-transaction case needs /usr/bin/time (Debian package time)"; exit 1; }
echo "== one transaction of $huge inserted rows while neither replicates"
psql_a -d src -c "INSERT INTO huge SELECT g, g, '' FROM generate_series(1, $huge) g"
for mode in parallel transactional; do
  extra=()
  [ "$mode" = parallel ] && extra=(--writers "$writers")
  t0=$(now)
  /usr/bin/time -v -o "$work/time-$mode.txt" "$work/ferry" sync "$src" "postgres://postgres@127.0.0.1:$pb/dst_$mode?sslmode=disable" --name "tx-$mode" \
    --state-dir "$work/state" --apply-mode "$mode" --progress none --log-format json "${extra[@]}" --until caught-up 2>"$work/huge-$mode.log" >/dev/null
  t=$(secs "$t0" "$(now)")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%d", $2 / 1024}' "$work/time-$mode.txt")
  n=$(psql_b -d "dst_$mode" -At -c "SELECT count(*) FROM huge")
  [ "$n" = "$huge" ] || { echo "dst_$mode has $n rows of huge, want $huge"; exit 1; }
  held=$( (grep -o '"held_peak":[0-9]*' "$work/huge-$mode.log" || true) | tail -1 | cut -d: -f2)
  echo "huge $mode: ${t}s, peak RSS ${rss} MiB${held:+, at most $held changes held at once}"
done
