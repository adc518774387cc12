#!/usr/bin/env bash
# PostgreSQL to PostgreSQL on the mixed dataset of issue 18 (pg_mixed_dataset
# in bench/lib.sh: narrow orders with an enum, uuid-keyed profiles with
# arrays, jsonb and inet, TOASTed documents, an audit table without a key),
# against the peers a user would otherwise run, in the same run:
#
# 1. Initial copy at each --parallel of PARALLELS: ferry sync --mode
#    snapshot, raw binary COPY pipes with as many lanes (tables cut by ctid
#    range, the keys built after, as pg_dump's post-data does) and
#    pg_dump | psql. A CHECKPOINT on both servers before each run, and the
#    tools in alternating order over ROUNDS rounds: a run right after
#    another's load pays for its dirty buffers. Best of the rounds reported.
# 2. CDC backlog drain on the orders table: ferry and two native
#    subscriptions (binary = false and streaming = off, the defaults, and
#    binary = true) synced first, then stopped while pgbench writes TXNS
#    transactions (two updates and an insert each), then each drains the
#    backlog alone: ferry sync --until caught-up (the process's wall time),
#    each subscription enabled and timed until the backlog's last row (a
#    marker) is at its database. All three destinations are compared with the source.
#
#   ./bench/pg-mixed.sh [SCALE] [PARALLELS] [TXNS] [ROUNDS]
#
# Defaults: SCALE 1 (5.32 M rows, about 1 GB), PARALLELS "2 4", TXNS 128000,
# ROUNDS 2. TXNS 0 skips the CDC part. The pipes and pg_dump | psql talk to
# the servers over their Unix sockets, ferry over TCP to 127.0.0.1 unless
# SOCKET=1 (then the same sockets). Run as root (the servers run as the
# postgres user). PROFILE=1 writes ferry's CPU profiles (--cpuprofile): the first copy at each
# parallelism to /tmp/ferry-mixed-copy-P.pprof, the drain to
# /tmp/ferry-mixed-cdc.pprof. The CPU the machine used during each drain
# (every process) is printed with it.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
parallels=${2:-2 4}
txns=${3:-128000}
rounds=${4:-2}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
command -v pgbench >/dev/null || { echo "needs pgbench (Debian package postgresql-contrib or postgresql-client)"; exit 1; }
. bench/lib.sh
bench_work pgmixed
cleanup() {
  for d in a b c; do [ -d "$work/$d" ] && as_pg "$bin/pg_ctl" -D "$work/$d" stop -m immediate >/dev/null 2>&1 || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
# wal_retrieve_retry_interval: the launcher starts a subscription's worker
# that soon after it is enabled (5 s by default).
cdc_settings="-c wal_receiver_status_interval=1s -c max_logical_replication_workers=4 -c max_sync_workers_per_subscription=2 -c wal_retrieve_retry_interval=100ms"
cdc_servers "$cdc_settings"
pg_mixed_dataset "$scale"
psql_a -d src -At -c "SELECT 'source size: ' || pg_size_pretty(pg_database_size('src'))"
tables="orders profiles documents audit"
if [ -n "${SOCKET:-}" ]; then
  src="postgres://postgres@/src?host=$work&port=$pa&sslmode=disable"
  dst="postgres://postgres@/dst?host=$work&port=$pb&sslmode=disable"
fi
# copy_results prints each parallelism's best copy times and ratios.
copy_results() {
  echo "== results ($(nproc) cores, scale $scale, best of $rounds rounds$([ -n "${SOCKET:-}" ] && echo ", ferry over the Unix socket"))"
  local par
  for par in $parallels; do
    python3 -c '
import sys
p, f, r, d = sys.argv[1], *map(float, sys.argv[2:])
print(f"copy, parallel {p}: ferry {f:.2f}s, raw binary COPY pipes {r:.2f}s, pg_dump | psql {d:.2f}s; "
      f"ferry / pipes {f / r:.3f} (target <= 1.05), pg_dump | psql / ferry {d / f:.2f}x")
' "$par" "${best[ferry/$par]}" "${best[pipes/$par]}" "${best[dump/$par]}"
  done
}

fresh_dst() { psql_b -c "DROP DATABASE IF EXISTS dst" -c "CREATE DATABASE dst"; }
checkpoint() { psql_a -c CHECKPOINT; psql_b -c CHECKPOINT; }
run_ferry() { # PARALLEL ROUND
  local prof=()
  [ -n "${PROFILE:-}" ] && [ "$2" = 1 ] && prof=(--cpuprofile "/tmp/ferry-mixed-copy-$1.pprof")
  rm -rf "$work/state"
  /usr/bin/time -f "%U %S" -o "$work/copy-time.txt" "$work/ferry" sync "$src" "$dst" --mode snapshot --parallel "$1" --state-dir "$work/state" \
    --progress none --log-format json "${prof[@]}" 2>"$work/ferry.log" >/dev/null || { tail -20 "$work/ferry.log"; exit 1; }
}
run_pipes() { # PARALLEL
  local jobs="$work/pipes.txt" pages step i t
  : >"$jobs"
  for t in $tables; do
    pages=$(psql_a -d src -At -c "SELECT pg_relation_size('$t') / 8192 + 1")
    step=$(((pages + $1 - 1) / $1))
    for ((i = 0; i < $1; i++)); do echo "$t $((i * step)) $(((i + 1) * step))" >>"$jobs"; done
  done
  pg_dump -h "$work" -p "$pa" -U postgres --section=pre-data src | psql_b -d dst >/dev/null
  xargs -P "$1" -L 1 bash -c 'psql -X -h "'"$work"'" -p '"$pa"' -U postgres -d src -c "COPY (SELECT * FROM $0 WHERE ctid >= '"'"'($1,0)'"'"' AND ctid < '"'"'($2,0)'"'"') TO STDOUT (FORMAT binary)" | psql -X -h "'"$work"'" -p '"$pb"' -U postgres -d dst -c "COPY $0 FROM STDIN (FORMAT binary)" >/dev/null' <"$jobs"
  pg_dump -h "$work" -p "$pa" -U postgres --section=post-data src | psql_b -d dst >/dev/null
}
run_dump() { pg_dump -h "$work" -p "$pa" -U postgres src | psql_b -d dst >/dev/null; }
# timed TOOL PARALLEL ROUND: a fresh destination, a checkpoint, the run.
# It prints the seconds; $work/copy-cpu.txt says the CPU seconds the
# machine used (every process) and, for ferry, its own.
timed() {
  fresh_dst
  checkpoint
  local t0 c0
  t0=$(now)
  c0=$(cpu)
  case $1 in
  ferry) run_ferry "$2" "$3" ;;
  pipes) run_pipes "$2" ;;
  dump) run_dump ;;
  esac
  local t1
  t1=$(now)
  echo "machine CPU $(secs "$c0" "$(cpu)")s$([ "$1" = ferry ] && awk '{printf ", ferry'"'"'s %.2fs user %.2fs system", $1, $2}' "$work/copy-time.txt")" >"$work/copy-cpu.txt"
  secs "$t0" "$t1"
}
# A warm-up copy, not timed: the first load into a fresh server pays for
# creating its WAL segments, which later ones recycle (the first tool of
# the first round took 12 s where its best was 9).
timed pipes 2 0 >/dev/null
declare -A best
for par in $parallels; do
  for ((r = 1; r <= rounds; r++)); do
    order="ferry pipes dump"
    [ $((r % 2)) = 0 ] && order="dump pipes ferry"
    for tool in $order; do
      s=$(timed "$tool" "$par" "$r")
      echo "copy, parallel $par, round $r: $tool ${s}s ($(cat "$work/copy-cpu.txt"))"
      k="$tool/$par"
      if [ -z "${best[$k]:-}" ] || python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$s" "${best[$k]}"; then best[$k]=$s; fi
    done
  done
done
# The last copy (of any tool) is checked against the source.
for t in orders profiles documents; do
  a=$(psql_a -d src -At -c "SELECT md5(string_agg(x::text, ',' ORDER BY id)) FROM $t x")
  b=$(psql_b -d dst -At -c "SELECT md5(string_agg(x::text, ',' ORDER BY id)) FROM $t x")
  [ "$a" = "$b" ] || echo "copy: $t DIFFERS"
done

if [ "$txns" = 0 ]; then
  echo
  copy_results
  exit 0
fi
echo "== CDC: ferry and two native subscriptions synced on orders"
fresh_dst
cdc_name=mixedcdc
"$work/ferry" sync "$src" "$dst" --name "$cdc_name" --tables public.orders --state-dir "$work/cdcstate" --until caught-up \
  --parallel 2 --progress none --log-format json 2>"$work/cdc.log" >/dev/null || { tail -20 "$work/cdc.log"; exit 1; }
psql_a -d src -c "CREATE PUBLICATION mixed FOR TABLE orders"
for sub in text bin; do
  psql_c -c "CREATE DATABASE sub_$sub"
  pg_dump -h "$work" -p "$pa" -U postgres --schema-only src | psql_c -d "sub_$sub" >/dev/null
  binary=false; [ $sub = bin ] && binary=true
  psql_c -d "sub_$sub" -c "CREATE SUBSCRIPTION sub_$sub CONNECTION 'host=$work port=$pa user=postgres dbname=src' PUBLICATION mixed WITH (binary = $binary)"
done
for sub in text bin; do
  until [ "$(psql_c -d "sub_$sub" -At -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ]; do sleep 1; done
  psql_c -d "sub_$sub" -c "ALTER SUBSCRIPTION sub_$sub DISABLE"
done
# A disabled subscription's walsender may linger a moment: wait for its slot to be free.
until [ "$(psql_a -d src -At -c "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'sub_%' AND active")" = 0 ]; do sleep 0.5; done

echo "== backlog: $txns transactions of two updates and an insert"
n=$(psql_a -d src -At -c "SELECT max(id) FROM orders")
psql_a -d src -c "CREATE SEQUENCE new_orders START $((n + 1))"
cat >"$work/backlog.sql" <<SQL
\set a random(1, $n)
\set b random(1, $n)
BEGIN;
UPDATE orders SET total = total + 1, updated = now() WHERE id = :a;
UPDATE orders SET items = items + 1, status = 'paid' WHERE id = :b;
INSERT INTO orders VALUES (nextval('new_orders'), :a % 250000, 9.99, 1, 'new', NULL, current_date, now(), 1.5);
END;
SQL
chmod 644 "$work/backlog.sql"
pgbench -n -h "$work" -p "$pa" -U postgres -c 4 -j 2 -t $((txns / 4)) -f "$work/backlog.sql" src >/dev/null
# The backlog ends with a marker row (id 0): a subscription has drained it
# when the marker is at its database.
psql_a -d src -c "INSERT INTO orders VALUES (0, 0, 0, 0, 'new', 'marker', current_date, now(), 0)"
changes=$((txns / 4 * 4 * 3 + 1))
echo "backlog: $changes row changes"

psql_a -c CHECKPOINT
prof=()
[ -n "${PROFILE:-}" ] && prof=(--cpuprofile /tmp/ferry-mixed-cdc.pprof)
c0=$(cpu)
t0=$(now)
/usr/bin/time -v -o "$work/time.txt" "$work/ferry" sync "$src" "$dst" --name "$cdc_name" --tables public.orders --state-dir "$work/cdcstate" --until caught-up \
  --parallel 2 --progress none --log-format json "${prof[@]}" 2>"$work/cdc.log" >/dev/null || { tail -20 "$work/cdc.log"; exit 1; }
t_ferry=$(secs "$t0" "$(now)")
c_all=$(secs "$c0" "$(cpu)")
c_ferry=$(awk -F": " "/User time/ {u=\$2} /System time/ {s=\$2} END {print u + s}" "$work/time.txt")
echo "ferry drained the backlog in ${t_ferry}s: CPU ${c_all}s in all, ${c_ferry}s of it ferry's, peak RSS $(($(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt") / 1024)) MB"
apply_shares "$work/cdc.log"
declare -A t_sub
for sub in text bin; do
  psql_a -c CHECKPOINT
  c0=$(cpu)
  t0=$(now)
  psql_c -d "sub_$sub" -c "ALTER SUBSCRIPTION sub_$sub ENABLE"
  until [ "$(psql_c -d "sub_$sub" -At -c "SELECT count(*) FROM orders WHERE id = 0")" = 1 ]; do sleep 0.05; done
  t_sub[$sub]=$(secs "$t0" "$(now)")
  c_all=$(secs "$c0" "$(cpu)")
  psql_c -d "sub_$sub" -c "ALTER SUBSCRIPTION sub_$sub DISABLE"
  echo "native subscription (binary = $([ $sub = bin ] && echo true || echo false)) drained it in ${t_sub[$sub]}s: CPU ${c_all}s in all"
done
a=$(psql_a -d src -At -c "SELECT md5(string_agg(x::text, ',' ORDER BY id)) FROM orders x")
[ "$(psql_b -d dst -At -c "SELECT md5(string_agg(x::text, ',' ORDER BY id)) FROM orders x")" = "$a" ] || echo "CDC: ferry's orders DIFFER"
for sub in text bin; do
  [ "$(psql_c -d "sub_$sub" -At -c "SELECT md5(string_agg(x::text, ',' ORDER BY id)) FROM orders x")" = "$a" ] || echo "CDC: sub_$sub's orders DIFFER"
done

echo
copy_results
python3 - "$changes" "$t_ferry" "${t_sub[text]}" "${t_sub[bin]}" <<'PY'
import sys
c = int(sys.argv[1]); f, t, b = map(float, sys.argv[2:])
print(f"CDC drain of {c} changes: ferry {c / f:,.0f}/s, native (binary = false) {c / t:,.0f}/s, native (binary = true) {c / b:,.0f}/s; "
      f"ferry / native {t / f:.2f}x (target >= 1.5), against binary {b / f:.2f}x")
PY
