#!/usr/bin/env bash
# MariaDB CDC backlog drain (issue 18): ferry streaming a MariaDB binlog into
# PostgreSQL against a MariaDB replica applying the same backlog, on private
# servers started on free ports (none touches a server already running on
# this machine): MariaDB 10.11 source A (binlog on, ROW format, FULL row
# images, server_id 1; MariaDB's GTIDs are always on), MariaDB replica R
# (server_id 2, GTID replication) and PostgreSQL 15 destination B.
#
#   ./bench/mysql-cdc.sh [SCALE] [TXNS] [WRITERS]
#
# 1. A gets an orders table of SCALE million rows (default 1: bigint key,
#    int, decimal(12,2), smallint, enum, varchar NULL one time in five,
#    date, datetime(6), double), written without binlogging it.
# 2. Initial sync: ferry sync --until caught-up copies it into B and reads
#    the binlog up to its head; R loads mariadb-dump --gtid --master-data=1
#    of A, replicates from A until it has A's GTID position, then
#    STOP SLAVE stops both of its threads, the IO thread too: when started
#    again R must fetch the backlog from A's binlog as well as apply it, as
#    ferry does (a replica whose relay log already held the backlog would
#    be timed on half the work).
# 3. Backlog: TXNS transactions (default 128000) of two updates and an
#    insert each, written by 4 mariadb clients in parallel from generated
#    SQL files (the updated keys in order, so no deadlock), then a marker
#    row (id 0).
# 4. Drains, one after the other: ferry sync --until caught-up (the
#    process's wall time, its own CPU and peak RSS from /usr/bin/time), then
#    START SLAVE on R, timed until the marker is at R. The machine's CPU
#    (every process, from /proc/stat) is printed with each.
# 5. orders is compared on A, B and R: count and a sum of per-row md5s of
#    the same text in both dialects.
#
# WRITERS (default 4) is both ferry's --writers and R's
# slave_parallel_threads (parallel replication, optimistic mode, MariaDB's
# default mode; 0 is single-threaded replication). R keeps no binlog of its
# own (no log_slave_updates): the replica at its cheapest. Run as root
# (PostgreSQL runs as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
txns=${2:-128000}
writers=${3:-4}
bin=/usr/lib/postgresql/15/bin
. bench/lib.sh
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
[ -x "$mariadbd" ] || { echo "needs MariaDB (Debian package mariadb-server)"; exit 1; }
command -v mariadb-dump >/dev/null || { echo "needs mariadb-dump (Debian package mariadb-client)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
bench_work mycdc
cleanup() {
  stop_servers
  my_cleanup
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/ferry" ./cmd/ferry

pa=$(port)
my_start my-a "$pa" --server-id=1 --log-bin="$work/my-a/data/binlog" --binlog-format=ROW --binlog-row-image=FULL \
  --sync-binlog=0 --max-connections=300
pr=$(port)
my_start my-r "$pr" --server-id=2 --skip-log-bin --relay-log="$work/my-r/data/relay" --skip-slave-start \
  --slave-parallel-threads="$writers" --slave-parallel-mode=optimistic
pb=$(port)
start b "$pb"
my_a() { my_on "$pa" "$@"; }
my_r() { my_on "$pr" "$@"; }
psql_b -c "CREATE DATABASE dst"
src="mysql://bench:bench@127.0.0.1:$pa/shop"
dst="postgres://postgres@127.0.0.1:$pb/dst?sslmode=disable"

n=$(awk -v s="$scale" 'BEGIN { printf "%d", 1000000 * s }')
echo "== generating $n orders in MariaDB"
my_a -e "CREATE USER bench@'%' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO bench@'%';"
my_a >/dev/null <<SQL
SET sql_log_bin = 0;
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE orders (
  id bigint NOT NULL PRIMARY KEY,
  customer int NOT NULL,
  total decimal(12,2) NOT NULL,
  items smallint NOT NULL,
  status enum('new','paid','shipped','delivered','returned') NOT NULL,
  coupon varchar(20),
  ordered date NOT NULL,
  updated datetime(6) NOT NULL,
  weight double
);
INSERT INTO orders SELECT seq, (seq * 7919) % 250000, ((seq * 31) % 100000) / 100, seq % 12,
  ELT(1 + seq % 5, 'new','paid','shipped','delivered','returned'),
  IF(seq % 5 = 0, NULL, CONCAT('C', seq % 9973)), DATE '2020-01-01' + INTERVAL seq % 1800 DAY,
  TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq * 17 SECOND + INTERVAL seq % 1000000 MICROSECOND, (seq % 1000) * 0.37
  FROM seq_1_to_$n;
ANALYZE TABLE orders;
SQL
my_a -N -e "SELECT CONCAT('source size: ', ROUND(SUM(data_length + index_length) / 1048576), ' MB') FROM information_schema.tables WHERE table_schema = 'shop'"

echo "== initial sync: ferry into PostgreSQL, a dump of A into the replica"
name=mycdc
ferry_sync() { # LOG: ferry sync until caught up, its log in $work/LOG
  "$work/ferry" sync "$src" "$dst" --name "$name" --tables shop.orders --state-dir "$work/state" --until caught-up \
    --writers "$writers" --progress none --log-format json 2>"$work/$1" >/dev/null || { tail -20 "$work/$1"; exit 1; }
}
t0=$(now)
ferry_sync ferry-sync.log
echo "ferry: copied and caught up in $(secs "$t0" "$(now)")s"
t0=$(now)
mariadb-dump --no-defaults -h 127.0.0.1 -P "$pa" -u root --single-transaction --gtid --master-data=1 --databases shop >"$work/dump.sql"
my_r <"$work/dump.sql"
my_r -e "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$pa, MASTER_USER='bench', MASTER_PASSWORD='bench', MASTER_USE_GTID=slave_pos; START SLAVE"
# caught_up: R has applied everything A has binlogged.
caught_up() { [ "$(my_r -N -e 'SELECT @@gtid_slave_pos')" = "$(my_a -N -e 'SELECT @@gtid_binlog_pos')" ]; }
for _ in $(seq 600); do caught_up && break; sleep 0.1; done
caught_up || { my_r -e 'SHOW SLAVE STATUS\G'; exit 1; }
my_r -e "STOP SLAVE"
echo "replica: dumped, loaded and caught up in $(secs "$t0" "$(now)")s at GTID $(my_r -N -e 'SELECT @@gtid_slave_pos'); both its threads stopped"

per=$((txns / 4))
changes=$((per * 4 * 3 + 1))
echo "== backlog: $((per * 4)) transactions of two updates and an insert, 4 clients"
awk -v n="$n" -v per="$per" -v dir="$work" 'BEGIN {
  srand(18)
  for (c = 0; c < 4; c++) {
    f = dir "/backlog" c ".sql"
    for (i = 0; i < per; i++) {
      a = 1 + int(rand() * n); b = 1 + int(rand() * n)
      if (a > b) { t = a; a = b; b = t }
      printf "BEGIN; UPDATE orders SET total = total + 1, updated = NOW(6) WHERE id = %d; UPDATE orders SET items = items + 1, status = \047paid\047 WHERE id = %d; INSERT INTO orders VALUES (%d, %d, 9.99, 1, \047new\047, NULL, CURDATE(), NOW(6), 1.5); COMMIT;\n", a, b, n + 1 + c * per + i, a % 250000 > f
    }
    close(f)
  }
}'
t0=$(now)
pids=()
for c in 0 1 2 3; do
  my_a shop <"$work/backlog$c.sql" &
  pids+=("$!")
done
for p in "${pids[@]}"; do wait "$p"; done
my_a shop -e "INSERT INTO orders VALUES (0, 0, 0, 0, 'new', 'marker', CURDATE(), NOW(6), 0)"
echo "backlog: $changes row changes written in $(secs "$t0" "$(now)")s; A's binlog now $(my_a -N -e "SHOW BINARY LOGS" | awk '{ s += $2 } END { printf "%.1f", s / 1048576 }') MB"

my_flush "$pa"
psql_b -c CHECKPOINT

echo "== drain: ferry sync --until caught-up (--writers $writers)"
c0=$(cpu)
t0=$(now)
/usr/bin/time -v -o "$work/time.txt" "$work/ferry" sync "$src" "$dst" --name "$name" --tables shop.orders --state-dir "$work/state" \
  --until caught-up --writers "$writers" --progress none --log-format json 2>"$work/ferry-drain.log" >/dev/null ||
  { tail -20 "$work/ferry-drain.log"; exit 1; }
t_ferry=$(secs "$t0" "$(now)")
c_ferry_all=$(secs "$c0" "$(cpu)")
c_ferry=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$work/time.txt")
rss_ferry=$(awk -F': ' '/Maximum resident set size/ {printf "%d", $2 / 1024}' "$work/time.txt")
[ "$(psql_b -d dst -At -c "SELECT count(*) FROM shop.orders WHERE id = 0")" = 1 ] || { echo "ferry stopped before the marker"; exit 1; }
applied=$(sed -nE '/"msg":"flow finished"/ s/.*"changes":([0-9]+).*/\1/p' "$work/ferry-drain.log")
echo "ferry drained the backlog ($applied changes by its count) in ${t_ferry}s: CPU ${c_ferry_all}s in all, ${c_ferry}s of it ferry's, peak RSS $rss_ferry MB"

psql_b -c CHECKPOINT
my_flush "$pa"
echo "== drain: START SLAVE on the replica (slave_parallel_threads $writers)"
c0=$(cpu)
t0=$(now)
my_r -e "START SLAVE"
until [ "$(my_r -N -e "SELECT count(*) FROM shop.orders WHERE id = 0")" = 1 ]; do sleep 0.05; done
t_rep=$(secs "$t0" "$(now)")
c_rep_all=$(secs "$c0" "$(cpu)")
echo "the replica fetched and applied the backlog in ${t_rep}s: CPU ${c_rep_all}s in all"
for _ in $(seq 600); do caught_up && break; sleep 0.1; done

echo "== orders compared on A, B and R"
# The same text for a row in both dialects (decimal with its scale, the
# enum's label, NULL as \N, datetime(6) with its six digits, doubles in
# their shortest form), md5'd; the sum of the md5s' first 60 bits and the
# count, independent of row order.
my_sum="SELECT CONCAT(COUNT(*), ' ', SUM(CAST(CONV(SUBSTR(MD5(CONCAT_WS('|', id, customer, total, items, status, IFNULL(coupon, '\\\\N'),
  ordered, DATE_FORMAT(updated, '%Y-%m-%d %H:%i:%s.%f'), IFNULL(weight, '\\\\N'))), 1, 15), 16, 10) AS UNSIGNED))) FROM shop.orders"
pg_sum="SELECT count(*) || ' ' || sum(('x' || substr(md5(concat_ws('|', id, customer, total, items, status, coalesce(coupon, '\\N'),
  ordered, to_char(updated, 'YYYY-MM-DD HH24:MI:SS.US'), coalesce(weight::text, '\\N'))), 1, 15))::bit(60)::bigint) FROM shop.orders"
sum_a=$(my_a -N -e "$my_sum")
sum_r=$(my_r -N -e "$my_sum")
sum_b=$(psql_b -d dst -At -c "$pg_sum")
echo "A (source):      $sum_a"
echo "B (ferry):       $sum_b"
echo "R (replica):     $sum_r"
[ "$sum_b" = "$sum_a" ] || echo "ferry's orders DIFFER from the source"
[ "$sum_r" = "$sum_a" ] || echo "the replica's orders DIFFER from the source"

echo
echo "== results ($(nproc) cores, scale $scale: $n rows, $changes changes, writers $writers)"
python3 - "$changes" "$t_ferry" "$t_rep" "$c_ferry_all" "$c_rep_all" <<'PY'
import sys
c = int(sys.argv[1]); f, r, cf, cr = map(float, sys.argv[2:])
print(f"CDC drain of {c} changes: ferry into PostgreSQL {c / f:,.0f}/s ({f:.2f}s, machine CPU {cf:.2f}s), "
      f"MariaDB replica {c / r:,.0f}/s ({r:.2f}s, machine CPU {cr:.2f}s); ferry / replica {r / f:.2f}x (target >= 1.00)")
PY
