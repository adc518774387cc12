#!/usr/bin/env bash
# MySQL/MariaDB to PostgreSQL initial load: ferry (--mode snapshot) against
# pgloader on the same generated data, the same machine and the same run, on
# a private MariaDB 10.11 and a private PostgreSQL 15 (neither touches a
# server already running on this machine).
#
#   ./bench/mysql-to-pg.sh [SCALE] [PARALLEL] [ROUNDS]
#
# SCALE 1 (the default; fractions work: 0.05) is 2.2 million rows in three
# tables: 1.2M orders (bigint key, decimal, enum, datetime(6), varchar),
# 600k order lines (composite key) and 400k events (timestamp(6), json,
# varbinary, tinyint(1), double). PARALLEL (default 4, pgloader's default
# number of workers) is ferry's --parallel and pgloader's workers. ROUNDS
# (default 1) runs both that many times, alternating, and reports each
# tool's best wall time and highest peak RSS (a shared machine is noisy).
# Run as root (PostgreSQL runs as the postgres user). Installs pgloader with
# apt-get when it is missing. Prints wall time, rows/s, peak RSS and the
# tool's own CPU time (the servers' is not included) of each, and the ratios (target: ferry at least 2x faster with at most 1/3 of
# pgloader's peak memory).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
par=${2:-4}
rounds=${3:-1}
pgbin=/usr/lib/postgresql/15/bin
. bench/lib.sh
[ -x "$pgbin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
[ -x "$mariadbd" ] || { echo "needs MariaDB (Debian package mariadb-server)"; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
if ! command -v pgloader >/dev/null; then
  echo "== installing pgloader"
  apt-get install -y pgloader >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y pgloader >/dev/null; }
fi

work=$(mktemp -d /tmp/ferry-mybench-XXXXXX)
chmod 755 "$work"
mkdir "$work/pg"
chown postgres: "$work/pg"
cleanup() {
  [ -d "$work/pg/data" ] && as_pg "$pgbin/pg_ctl" -D "$work/pg/data" stop -m immediate >/dev/null 2>&1 || true
  my_cleanup
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/ferry" ./cmd/ferry

# MariaDB (my_start in bench/lib.sh): a fresh data directory, the data set
# held in the buffer pool (both tools read the same warm server), no binlog
# (a snapshot does not need it).
myport=$(port)
my_start my "$myport" --skip-log-bin
my() { my_on "$myport" "$@"; }

# PostgreSQL.
pgport=$(port)
as_pg "$pgbin/initdb" -D "$work/pg/data" -A trust --no-sync -U postgres -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $pgport -k $work/pg -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB -c max_wal_size=4GB" start >/dev/null
pg() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }

rows() { awk -v n="$1" -v s="$scale" 'BEGIN { printf "%d", n * s }'; }
n_orders=$(rows 1200000); n_items=$(rows 600000); n_events=$(rows 400000)
total=$((n_orders + n_items + n_events))
echo "== generating $total rows in MariaDB ($n_orders orders, $n_items order lines, $n_events events)"
my -e "CREATE USER bench@'%' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO bench@'%';"
my >/dev/null <<SQL
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE orders (
  id bigint NOT NULL PRIMARY KEY,
  customer int NOT NULL,
  amount decimal(12,2),
  status enum('new','paid','shipped','returned'),
  created datetime(6),
  note varchar(100)
);
INSERT INTO orders SELECT seq, seq % 9973, (seq % 100000) * 0.37, ELT(1 + seq % 4, 'new','paid','shipped','returned'),
  '2024-01-01' + INTERVAL seq SECOND + INTERVAL seq % 1000 MICROSECOND, CONCAT('note for order ', seq, IF(seq % 11 = 0, ' 😀', ''))
  FROM seq_1_to_$n_orders;
CREATE TABLE items (
  order_id bigint NOT NULL,
  line smallint NOT NULL,
  sku char(8) NOT NULL,
  qty smallint unsigned,
  price decimal(10,2),
  PRIMARY KEY (order_id, line)
);
INSERT INTO items SELECT 1 + seq DIV 2, seq % 2, CONCAT('SKU', LPAD(seq % 100000, 5, '0')), seq % 50, seq % 1000 + 0.99
  FROM seq_0_to_$((n_items - 1));
CREATE TABLE events (
  id bigint NOT NULL PRIMARY KEY,
  at timestamp(6) NULL DEFAULT NULL,
  kind varchar(20),
  payload json,
  raw varbinary(16),
  flag tinyint(1),
  ratio double
);
INSERT INTO events SELECT seq, FROM_UNIXTIME(1700000000 + seq), CONCAT('kind', seq % 7),
  JSON_OBJECT('n', seq, 'tag', CONCAT('t', seq % 10), 'ok', seq % 3 = 0), UNHEX(MD5(seq)), seq % 2, seq / 7
  FROM seq_1_to_$n_events;
ANALYZE TABLE orders, items, events;
SQL
# Let InnoDB write the generated pages out before anything is timed, so
# neither tool pays for the generation.
my_flush "$myport"
my -N -e "SELECT CONCAT('source size: ', ROUND(SUM(data_length + index_length) / 1048576), ' MB') FROM information_schema.tables WHERE table_schema = 'shop'"

rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%d", $2 / 1024}' "$1"; }
cpu_s() { awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.2f", u + s}' "$1"; }
loaded() { # database: rows in shop.orders + shop.items + shop.events
  pg -d "$1" -At -c "SELECT (SELECT count(*) FROM shop.orders) + (SELECT count(*) FROM shop.items) + (SELECT count(*) FROM shop.events)"
}
fresh() { pg -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" -c "CHECKPOINT"; }

src="mysql://bench:bench@127.0.0.1:$myport/shop"
cat >"$work/load.pgl" <<EOF
LOAD DATABASE
  FROM mysql://bench:bench@127.0.0.1:$myport/shop
  INTO postgresql://postgres@127.0.0.1:$pgport/pgloader
  WITH include drop, create tables, create indexes, reset sequences, workers = $par, concurrency = 1;
EOF

# run TOOL: loads the data set with TOOL into a fresh database named TOOL and
# appends "TOOL seconds peak-RSS-MB cpu-seconds" to results.txt.
run() {
  fresh "$1"
  local t0 t got
  t0=$(now)
  case $1 in
  ferry)
    /usr/bin/time -v -o "$work/time.txt" "$work/ferry" sync "$src" "postgres://postgres@127.0.0.1:$pgport/ferry?sslmode=disable" \
      --mode snapshot --parallel "$par" --state-dir "$work/state" --restart --progress none --log-format json 2>"$work/ferry.log" >/dev/null ||
      { tail -5 "$work/ferry.log"; exit 1; } ;;
  pgloader)
    /usr/bin/time -v -o "$work/time.txt" pgloader "$work/load.pgl" >"$work/pgloader.log" 2>&1 ||
      { tail -20 "$work/pgloader.log"; exit 1; } ;;
  esac
  t=$(secs "$t0" "$(now)")
  got=$(loaded "$1")
  [ "$got" = "$total" ] || { echo "$1 loaded $got rows, want $total"; exit 1; }
  echo "$1: ${t}s, peak RSS $(rss_mb "$work/time.txt") MB, CPU $(cpu_s "$work/time.txt")s, $got rows at the destination"
  echo "$1 $t $(rss_mb "$work/time.txt") $(cpu_s "$work/time.txt")" >>"$work/results.txt"
}

: >"$work/results.txt"
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r of $rounds: ferry sync --mode snapshot --parallel $par, then pgloader (workers = $par, concurrency = 1)"
  run ferry
  run pgloader
done

echo "== ferry verify (not timed)"
"$work/ferry" verify "$src" "postgres://postgres@127.0.0.1:$pgport/ferry?sslmode=disable" --log-format json 2>/dev/null | tail -1

echo
echo "== results: $total rows, $(nproc) cores, parallel $par, best of $rounds round(s)"
python3 - "$total" "$work/results.txt" <<'PY'
import sys
n = int(sys.argv[1])
best = {}
for line in open(sys.argv[2]):
    tool, t, rss, cpu = line.split()
    t, rss, cpu = float(t), float(rss), float(cpu)
    w, r, c = best.get(tool, (t, rss, cpu))
    best[tool] = (min(w, t), max(r, rss), min(c, cpu))
print(f"{'':10} {'wall':>9} {'rows/s':>10} {'peak RSS':>10} {'own CPU':>9}")
for tool in ("ferry", "pgloader"):
    w, r, c = best[tool]
    print(f"{tool:10} {w:8.2f}s {n / w:10,.0f} {r:7.0f} MB {c:8.2f}s")
(tf, rf, _), (tp, rp, _) = best["ferry"], best["pgloader"]
print(f"ferry is {tp / tf:.2f}x faster than pgloader (target >= 2.00)")
print(f"ferry uses {rf / rp:.2f} of pgloader's peak memory (target <= 0.33)")
PY
