#!/usr/bin/env bash
# PostgreSQL to PostgreSQL change data capture: ferry against PostgreSQL's
# native logical replication (CREATE PUBLICATION / CREATE SUBSCRIPTION), on
# private PostgreSQL 15 instances: A the source, B ferry's destination, C the
# native subscriber.
#
#   ./bench/pg-cdc.sh [TRANSACTIONS] [LOAD_SECONDS] [RATE]
#
# 1. Backlog: after an initial sync of both, ferry is stopped and the
#    subscription disabled; pgbench writes TRANSACTIONS (default 75000)
#    transactions of the TPC-B-like kind (3 updates and an insert) plus
#    deletes, 4 to 5 changes each, then a marker row. ferry drains the
#    backlog with --until caught-up (wall time of the process); the
#    subscription is enabled and timed until the marker row is at C (and,
#    reported too, until its slot's confirmed_flush_lsn reaches the backlog's
#    end). Both destinations are then compared with the source.
# 2. Steady load: ferry runs, the subscription is enabled, and pgbench writes
#    RATE (default 1000) transactions a second for LOAD_SECONDS (default 60),
#    each also inserting a tick row stamped with clock_timestamp(). B and C
#    have an extra column on the ticks table defaulting to clock_timestamp(),
#    filled when the row is applied: apply time minus source time is each
#    tick's replication lag, end to end. Prints p50/p99/max for both. Both
#    replicate at once, on the same cores. LAGSERIES=1 also prints each
#    second's worst lag at both; LAGBURSTS=1 how each burst of WAL the
#    source flushed was applied at both (LAGBURSTS=DIR keeps the ticks'
#    times there); LOADSYNC=1 commits the load with synchronous_commit =
#    on, so the WAL comes as each transaction commits, not in bursts.
#    PROFILE=1 writes ferry's CPU profile of
#    the drain to /tmp/ferry-cdc-drain.pprof. Each drain also prints the
#    CPU the servers used in it (the native one's includes the backends of
#    the psql polls that time it, a few ms each, 20 a second).
#
# Run as root (the servers run as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
txns=${1:-75000}
load_secs=${2:-60}
rate=${3:-1000}
writers=${WRITERS:-4}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
command -v pgbench >/dev/null || { echo "needs pgbench (Debian package postgresql-contrib or postgresql-client)"; exit 1; }
. bench/lib.sh
bench_work pgcdc
ferry_pid=
cleanup() {
  [ -n "$ferry_pid" ] && kill "$ferry_pid" 2>/dev/null || true
  for d in a b c; do [ -d "$work/$d" ] && as_pg "$bin/pg_ctl" -D "$work/$d" stop -m immediate >/dev/null 2>&1 || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

cdc_settings="-c wal_receiver_status_interval=1s -c max_logical_replication_workers=4"
cdc_servers "$cdc_settings"

accounts=200000
echo "== source: $accounts accounts, 100 tellers, 10 branches, 100000 history rows"
psql_a -c "CREATE DATABASE src"
psql_a -d src <<SQL
CREATE TABLE branches (bid int PRIMARY KEY, bbalance int NOT NULL, filler char(88));
CREATE TABLE tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler char(84));
CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
CREATE TABLE history (hid bigserial PRIMARY KEY, tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE ticks (id bigserial PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE marker (id int PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO branches SELECT g, 0, '' FROM generate_series(1, 10) g;
INSERT INTO tellers SELECT g, 1 + (g - 1) / 10, 0, '' FROM generate_series(1, 100) g;
INSERT INTO accounts SELECT g, 1 + (g - 1) / 20000, 0, '' FROM generate_series(1, $accounts) g;
INSERT INTO history (tid, bid, aid, delta, mtime) SELECT 1 + g % 100, 1 + g % 10, 1 + g % $accounts, g % 1000, now() FROM generate_series(1, 100000) g;
CREATE PUBLICATION native FOR ALL TABLES;
VACUUM ANALYZE;
SQL

echo "== initial sync: ferry to B, native subscription to C"
psql_b -c "CREATE DATABASE dst"
ferry_sync() { "$work/ferry" sync "$src" "$dst" --name cdcbench --state-dir "$work/state" --writers "$writers" --progress none --log-format json "$@"; }
ferry_sync --until caught-up 2>"$work/ferry-initial.log" >/dev/null
psql_c -c "CREATE DATABASE dst"
pg_dump -h "$work" -p "$pa" -U postgres --schema-only --no-publications src | psql_c -d dst >/dev/null
psql_c -d dst -c "CREATE SUBSCRIPTION native CONNECTION 'host=127.0.0.1 port=$pa user=postgres dbname=src' PUBLICATION native" 2>/dev/null
for _ in $(seq 600); do
  pending=$(psql_c -d dst -At -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")
  [ "$pending" = 0 ] && break
  sleep 0.5
done
[ "$pending" = 0 ] || { echo "the native subscription's initial sync did not finish"; exit 1; }
psql_c -d dst -c "ALTER SUBSCRIPTION native DISABLE"
# The apply worker exits asynchronously; wait for its slot to be free.
for _ in $(seq 100); do
  [ "$(psql_a -d src -At -c "SELECT active FROM pg_replication_slots WHERE slot_name = 'native'")" = f ] && break
  sleep 0.2
done

echo "== backlog: $txns transactions while neither replicates"
cat >"$work/tpcb.sql" <<'SQL'
\set aid random(1, 200000)
\set bid random(1, 10)
\set tid random(1, 100)
\set delta random(-5000, 5000)
BEGIN;
UPDATE accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM accounts WHERE aid = :aid;
UPDATE tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
SQL
cat >"$work/delete.sql" <<'SQL'
\set h random(1, 100000)
DELETE FROM history WHERE hid = :h;
SQL
start_lsn=$(psql_a -d src -At -c "SELECT pg_current_wal_insert_lsn()")
t0=$(now)
pgbench -n -h "$work" -p "$pa" -U postgres -c 4 -j 2 -t $((txns / 4)) -f "$work/tpcb.sql@9" -f "$work/delete.sql@1" src >"$work/pgbench-backlog.txt" 2>&1
psql_a -d src -c "INSERT INTO marker VALUES (1, clock_timestamp())"
end_lsn=$(psql_a -d src -At -c "SELECT pg_current_wal_insert_lsn()")
changes=$(psql_a -d src -At -c "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('native', NULL, NULL, 'proto_version', '1', 'publication_names', 'native') WHERE substr(data, 1, 1) IN ('\\x49', '\\x55', '\\x44')")
wal=$(psql_a -d src -At -c "SELECT pg_size_pretty(pg_wal_lsn_diff('$end_lsn', '$start_lsn'))")
echo "written in $(secs "$t0" "$(now)")s: $changes row changes, $wal of WAL ($(grep -o 'tps = [0-9.]*' "$work/pgbench-backlog.txt" | head -1))"

echo "== ferry drains the backlog (--until caught-up, --writers $writers)"
a0=$(cluster_cpu a); b0=$(cluster_cpu b)
t0=$(now)
prof=()
[ -n "${PROFILE:-}" ] && prof=(--cpuprofile /tmp/ferry-cdc-drain.pprof)
/usr/bin/time -v -o "$work/time-drain.txt" "$work/ferry" sync "$src" "$dst" --name cdcbench --state-dir "$work/state" --writers "$writers" --progress none --log-format json --until caught-up "${prof[@]}" 2>"$work/ferry-drain.log" >/dev/null
t_ferry=$(secs "$t0" "$(now)")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-drain.txt")
cpu=$(awk -F": " "/User time/ {u=\$2} /System time/ {s=\$2} END {print u + s}" "$work/time-drain.txt")
echo "ferry: ${t_ferry}s ($(python3 -c "print(int($changes / $t_ferry))") changes/s), CPU ${cpu}s, peak RSS $((rss / 1024)) MB"
apply_shares "$work/ferry-drain.log"
sleep 0.2 # the postmasters reap the backends ferry closed
echo "servers' CPU in ferry's drain: source $(secs "$a0" "$(cluster_cpu a)")s, destination $(secs "$b0" "$(cluster_cpu b)")s"

echo "== native subscription drains the backlog"
a0=$(cluster_cpu a); c0=$(cluster_cpu c)
t0=$(now)
psql_c -d dst -c "ALTER SUBSCRIPTION native ENABLE"
t_marker=
t_flush=
for _ in $(seq 12000); do
  if [ -z "$t_marker" ] && [ "$(psql_c -d dst -At -c "SELECT count(*) FROM marker")" = 1 ]; then t_marker=$(secs "$t0" "$(now)"); fi
  if [ -z "$t_flush" ] && [ "$(psql_a -d src -At -c "SELECT confirmed_flush_lsn >= '$end_lsn' FROM pg_replication_slots WHERE slot_name = 'native'")" = t ]; then t_flush=$(secs "$t0" "$(now)"); fi
  [ -n "$t_marker" ] && [ -n "$t_flush" ] && break
  sleep 0.05
done
echo "native: ${t_marker}s until the marker row is applied ($(python3 -c "print(int($changes / $t_marker))") changes/s), ${t_flush}s until its slot confirmed the backlog's end"
echo "servers' CPU in the native drain: source $(secs "$a0" "$(cluster_cpu a)")s, subscriber $(secs "$c0" "$(cluster_cpu c)")s"

same() {
  for t in accounts tellers branches history marker; do
    q="SELECT md5(string_agg(x::text, ',' ORDER BY x::text)) FROM $t x"
    a=$(psql_a -d src -At -c "$q")
    b=$(psql_b -d dst -At -c "$q")
    c=$(psql_c -d dst -At -c "$q")
    [ "$a" = "$b" ] || echo "$t: ferry's destination DIFFERS from the source"
    [ "$a" = "$c" ] || echo "$t: the native subscriber DIFFERS from the source"
  done
}
same

echo "== steady load: $rate transactions/s for ${load_secs}s, ferry and native replicating"
psql_b -d dst -c "ALTER TABLE ticks ADD COLUMN seen timestamptz DEFAULT clock_timestamp()"
psql_c -d dst -c "ALTER TABLE ticks ADD COLUMN seen timestamptz DEFAULT clock_timestamp()"
sed 's/^END;$/INSERT INTO ticks (at) VALUES (clock_timestamp());\nEND;/' "$work/tpcb.sql" >"$work/tick.sql"
"$work/ferry" sync "$src" "$dst" --name cdcbench --state-dir "$work/state" --writers "$writers" --progress none --log-format json --ui 127.0.0.1:0 2>"$work/ferry-load.log" >/dev/null &
ferry_pid=$!
for _ in $(seq 100); do grep -q "change data capture starting" "$work/ferry-load.log" && break; sleep 0.1; done
load_opts=
# The servers run with synchronous_commit = off: the source's WAL reaches
# the walsenders in bursts, every wal_writer_delay (200 ms). LOADSYNC=1
# commits the load's transactions with synchronous_commit = on (a
# production server's default), each flushed and sent as it commits.
[ -n "${LOADSYNC:-}" ] && load_opts="-c synchronous_commit=on"
PGOPTIONS="$load_opts" pgbench -n -h "$work" -p "$pa" -U postgres -c 4 -j 2 -R "$rate" -T "$load_secs" -f "$work/tick.sql" src >"$work/pgbench-load.txt" 2>&1
ticks=$(psql_a -d src -At -c "SELECT count(*) FROM ticks")
for _ in $(seq 600); do
  [ "$(psql_b -d dst -At -c "SELECT count(*) FROM ticks")" = "$ticks" ] && [ "$(psql_c -d dst -At -c "SELECT count(*) FROM ticks")" = "$ticks" ] && break
  sleep 0.1
done
kill -INT "$ferry_pid"; wait "$ferry_pid" || true; ferry_pid=
echo "written: $ticks ticks ($(grep -o 'tps = [0-9.]*' "$work/pgbench-load.txt" | head -1))"
lag() { # psql function, name, [seconds skipped at the start]
  "$1" -d dst -At -F ' ' -c "SELECT count(*),
      round((1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM seen - at)))::numeric, 1),
      round((1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM seen - at)))::numeric, 1),
      round((1000 * max(extract(epoch FROM seen - at)))::numeric, 1)
      FROM ticks WHERE seen IS NOT NULL AND at > (SELECT min(at) FROM ticks) + interval '${3:-0} seconds'" |
    awk -v n="$2" -v s="${3:-0}" '{printf "%s lag%s: %d ticks, p50 %s ms, p99 %s ms, max %s ms\n", n, (s > 0 ? " after the first " s " s" : ""), $1, $2, $3, $4}'
}
lag psql_b ferry
lag psql_c native
# The first second or two include ferry's stream starting up, at the moment
# the load starts (ferry's slot was idle since the drain run; the
# subscriber's kept streaming). Steady state, apart:
lag psql_b ferry 2
lag psql_c native 2
if [ -n "${LAGSERIES:-}" ]; then
  # Each second of the load: the worst lag of a tick made in it, at each.
  series() { "$1" -d dst -At -F ' ' -c "SELECT extract(epoch FROM date_trunc('second', at) - (SELECT date_trunc('second', min(at)) FROM ticks))::int,
      round(1000 * max(extract(epoch FROM seen - at))) FROM ticks WHERE seen IS NOT NULL GROUP BY 1 ORDER BY 1"; }
  echo "second: worst lag ms, ferry / native"
  join <(series psql_b | sort) <(series psql_c | sort) | sort -n | awk '{printf "%s: %s / %s%s\n", $1, $2, $3, ($2 > 1.2 * $3 ? "  <- ferry" : "")}'
fi
if [ -n "${LAGBURSTS:-}" ]; then
  # The source flushes its WAL (synchronous_commit = off) every
  # wal_writer_delay, and the walsenders send only flushed WAL: ticks
  # reach both replicas in bursts. A burst is a run of ticks the
  # subscriber applied less than 30 ms apart; for each, when the first and
  # the last of its ticks were applied at each replica, from the burst's
  # last tick made at the source. LAGBURSTS=DIR also keeps each tick's
  # times at both in DIR (ticks-ferry.txt, ticks-native.txt: id, made,
  # applied, in epoch seconds).
  ticks_of() { "$1" -d dst -At -F ' ' -c "SELECT id, extract(epoch FROM at), extract(epoch FROM seen) FROM ticks WHERE seen IS NOT NULL AND at > (SELECT min(at) FROM ticks) + interval '2 seconds'"; }
  ticks_of psql_b >"$work/ticks-ferry.txt"
  ticks_of psql_c >"$work/ticks-native.txt"
  [ "$LAGBURSTS" = 1 ] || cp "$work/ticks-ferry.txt" "$work/ticks-native.txt" "$LAGBURSTS"/
  python3 - "$work/ticks-ferry.txt" "$work/ticks-native.txt" <<'PY'
import statistics as st, sys
def load(p):
    return {int(i): (float(a), float(s)) for i, a, s in (l.split() for l in open(p))}
f, n = load(sys.argv[1]), load(sys.argv[2])
ids = sorted(set(f) & set(n), key=lambda i: n[i][1])
bursts, cur = [], [ids[0]]
for a, b in zip(ids, ids[1:]):
    if n[b][1] - n[a][1] > 0.030:
        bursts.append(cur); cur = []
    cur.append(b)
bursts.append(cur)
rows = []
for b in bursts:
    made = max(n[i][0] for i in b)
    rows.append((len(b),
                 1000 * (min(n[i][1] for i in b) - made), 1000 * (max(n[i][1] for i in b) - made),
                 1000 * (min(f[i][1] for i in b) - made), 1000 * (max(f[i][1] for i in b) - made)))
def q(k, p):
    v = sorted(r[k] for r in rows)
    return v[min(len(v) - 1, int(p * len(v)))]
print(f"{len(rows)} bursts of {st.median(r[0] for r in rows):.0f} ticks (median); ms from the burst's last tick made to its first / last applied:")
for name, a, z in (("native", 1, 2), ("ferry", 3, 4)):
    print(f"  {name}: first p50 {q(a, .5):.1f} p90 {q(a, .9):.1f}; last p50 {q(z, .5):.1f} p90 {q(z, .9):.1f} p99 {q(z, .99):.1f}")
d = sorted(r[4] - r[2] for r in rows)
print(f"  ferry's last minus native's last: p10 {d[len(d) // 10]:.1f} p50 {d[len(d) // 2]:.1f} p90 {d[9 * len(d) // 10]:.1f} ms")
# The burst's earliest tick waited longest for the flush: the p99 ticks
# are those, so how soon each replica applies it decides the p99.
first = [min(b, key=lambda i: n[i][0]) for b in bursts]
d = sorted(1000 * (f[i][1] - n[i][1]) for i in first)
print(f"  the burst's earliest tick, ferry minus native: p10 {d[len(d) // 10]:.1f} p50 {d[len(d) // 2]:.1f} p90 {d[9 * len(d) // 10]:.1f} ms")
PY
fi
same

echo
echo "== results ($(nproc) cores, ferry --writers $writers)"
python3 - "$t_ferry" "$t_marker" <<'PY'
import sys
f, n = map(float, sys.argv[1:])
print(f"backlog drain, native / ferry: {n / f:.2f}x faster (target >= 1.50)")
PY
