#!/usr/bin/env bash
# Incremental snapshot (ferry snapshot) of a big table while a steady write
# load streams, against the initial copy of the same table, on private
# PostgreSQL 15 instances (A the source, B the destination).
#
#   ./bench/resnapshot.sh [ROWS] [RATE]
#
# 1. The initial copy: ferry sync --until caught-up of ROWS rows (default
#    5000000) of a narrow table; its rows per second.
# 2. Lag without a snapshot: ferry streams while pgbench writes RATE
#    (default 500) transactions a second for 20 s, each updating a random row
#    of the big table and inserting a tick stamped with clock_timestamp(); the
#    destination's ticks have a column defaulting to clock_timestamp() at
#    apply: p50/p99 of the end-to-end lag.
# 3. The same load while ferry snapshot copies the big table again: the
#    snapshot's rows per second (from its own log line), and the lag of the
#    ticks written meanwhile. The tables are compared at the end.
#
# Run as root (the servers run as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-5000000}
rate=${2:-500}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
command -v pgbench >/dev/null || { echo "needs pgbench (Debian package postgresql-contrib or postgresql-client)"; exit 1; }
. bench/lib.sh
bench_work resnap
ferry_pid=
cleanup() {
  [ -n "$ferry_pid" ] && kill "$ferry_pid" 2>/dev/null || true
  stop_servers
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
two_servers

echo "== source: $rows rows"
psql_a -c "CREATE DATABASE src"
psql_a -d src <<SQL
CREATE TABLE big (id bigint PRIMARY KEY, customer int NOT NULL, amount numeric(12,2), placed timestamptz, note text);
INSERT INTO big SELECT g, g % 1000, g * 0.01, '2024-01-01'::timestamptz + g * interval '1 second', 'note ' || g FROM generate_series(1, $rows) g;
CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL);
VACUUM ANALYZE;
SQL
psql_b -c "CREATE DATABASE dst"
ferry_sync() { "$work/ferry" sync "$src" "$dst" --name resnap --state-dir "$work/state" --progress none --log-format json "$@"; }

echo "== the initial copy"
t0=$(now)
ferry_sync --until caught-up 2>"$work/ferry-copy.log" >/dev/null
t_copy=$(secs "$t0" "$(now)")
echo "initial copy: ${t_copy}s ($(python3 -c "print(int($rows / $t_copy))") rows/s)"

psql_b -d dst -c "ALTER TABLE ticks ADD COLUMN seen timestamptz DEFAULT clock_timestamp()"
cat >"$work/load.sql" <<SQL
\set id random(1, $rows)
BEGIN;
UPDATE big SET amount = amount + 1 WHERE id = :id;
INSERT INTO ticks (at) VALUES (clock_timestamp());
END;
SQL
"$work/ferry" sync "$src" "$dst" --name resnap --state-dir "$work/state" --progress none --log-format json 2>"$work/ferry-load.log" >/dev/null &
ferry_pid=$!
for _ in $(seq 100); do grep -q "change data capture starting" "$work/ferry-load.log" && break; sleep 0.1; done
sleep 1

lag() { # from to name
  psql_b -d dst -At -F ' ' -c "SELECT count(*),
      round((1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM seen - at)))::numeric, 1),
      round((1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM seen - at)))::numeric, 1)
      FROM ticks WHERE at >= to_timestamp($1) AND at < to_timestamp($2)" |
    awk -v n="$3" '{printf "%s: %d ticks, lag p50 %s ms, p99 %s ms\n", n, $1, $2, $3}'
}

echo "== steady load ($rate tx/s) without a snapshot"
a0=$(now)
pgbench -n -h "$work" -p "$pa" -U postgres -c 2 -j 2 -R "$rate" -T 20 -f "$work/load.sql" src >"$work/pgbench-quiet.txt" 2>&1
a1=$(now)

echo "== the same load while ferry snapshot copies big again"
b0=$(now)
pgbench -n -h "$work" -p "$pa" -U postgres -c 2 -j 2 -R "$rate" -T 3600 -f "$work/load.sql" src >"$work/pgbench-snap.txt" 2>&1 &
bench_pid=$!
"$work/ferry" snapshot "$src" "$dst" public.big --name resnap --state-dir "$work/state" >/dev/null
for _ in $(seq 36000); do grep -q '"incremental snapshot done"' "$work/ferry-load.log" && break; sleep 0.1; done
b1=$(now)
kill -TERM "$bench_pid"; wait "$bench_pid" || true
ticks=$(psql_a -d src -At -c "SELECT count(*) FROM ticks")
for _ in $(seq 600); do [ "$(psql_b -d dst -At -c "SELECT count(*) FROM ticks")" = "$ticks" ] && break; sleep 0.1; done
kill -INT "$ferry_pid"; wait "$ferry_pid" || true; ferry_pid=
took=$(python3 - "$work/ferry-load.log" <<'PY'
import json, re, sys
unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if d.get("msg") == "incremental snapshot done":
        took = d["took"]  # nanoseconds in JSON logs, a Go duration in text ones
        if isinstance(took, (int, float)):
            print(took / 1e9)
        else:
            print(sum(float(n) * unit[u] for n, u in re.findall(r"([0-9.]+)(ms|us|µs|h|m|s)", took)))
PY
)
echo "incremental snapshot: ${took}s ($(python3 -c "print(int($rows / float('$took')))") rows/s)"
lag "$a0" "$a1" "without a snapshot"
lag "$b0" "$b1" "during the snapshot"
q="SELECT md5(string_agg(x::text, ',' ORDER BY id)) FROM big x"
[ "$(psql_a -d src -At -c "$q")" = "$(psql_b -d dst -At -c "$q")" ] && echo "big: equal" || echo "big: DIFFERS"

echo
echo "== results ($(nproc) cores)"
python3 - "$t_copy" "$took" <<'PY'
import sys
c, s = map(float, sys.argv[1:])
print(f"incremental snapshot rows/s / initial copy rows/s: {c / s:.2f}")
PY
