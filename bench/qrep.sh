#!/usr/bin/env bash
# Query replication (ferry sync --query) against a plain binary COPY of the
# same query's rows, on two private PostgreSQL 15 instances: the first run
# (every row of a join) and an incremental run (the rows updated since),
# each alternated with its peer, ROUNDS times.
#
#   ./bench/qrep.sh [ORDERS] [UPDATED] [ROUNDS]
#
# ORDERS (default 1,000,000) orders joined to 10,000 customers; UPDATED
# (default 100,000) of them get a new updated_at before the incremental
# runs. Run as root (the servers run as the postgres user). Prints each
# time and the ratios ferry / COPY.
set -euo pipefail
cd "$(dirname "$0")/.."
orders=${1:-1000000}
updated=${2:-100000}
rounds=${3:-2}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
. bench/lib.sh
bench_work qrepbench
cleanup() {
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT
two_servers

echo "== generating $orders orders and 10,000 customers"
psql_a -c "CREATE DATABASE src"
psql_a -d src <<SQL
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, country text NOT NULL);
INSERT INTO customers SELECT g, 'customer ' || g, (ARRAY['FR','DE','US','JP'])[1 + g % 4] FROM generate_series(1, 10000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(12,2) NOT NULL,
  status text NOT NULL, updated_at timestamptz NOT NULL);
INSERT INTO orders SELECT g, 1 + g % 10000, (g % 100000) * 0.01, CASE WHEN g % 50 = 0 THEN 'void' ELSE 'paid' END,
  '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, $orders) g;
CREATE INDEX ON orders (updated_at);
VACUUM ANALYZE;
SQL
query="SELECT o.id, c.name AS customer, c.country, o.total, o.updated_at FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status <> 'void'"
psql_b -c "CREATE DATABASE dst"

# ferry_run NAME [ARGS]: one run of the query flow into table NAME.
ferry_run() {
  local name=$1
  shift
  "$work/ferry" sync "$src" "$dst" --query "$name=$query" --watermark updated_at --key id --parallel 2 \
    --name "q-$name" --state-dir "$work/state" --progress none --log-format json "$@" 2>>"$work/ferry.log" >/dev/null
}
# copy_rows TABLE WHERE: the query's rows (WHERE added) piped by binary COPY
# into TABLE, created empty first (not timed).
copy_table() {
  psql_b -d dst -c "DROP TABLE IF EXISTS $1; CREATE TABLE $1 (id bigint PRIMARY KEY, customer text, country text, total numeric(12,2), updated_at timestamptz)"
}
copy_rows() {
  psql -X -q -h "$work" -p "$pa" -U postgres -d src -c "COPY (SELECT * FROM ($query) q $2) TO STDOUT (FORMAT binary)" |
    psql -X -q -h "$work" -p "$pb" -U postgres -d dst -c "COPY $1 FROM STDIN (FORMAT binary)"
}
checkpoint() { psql_a -c CHECKPOINT; psql_b -c CHECKPOINT; }

full_f=() full_c=() inc_f=() inc_c=()
for r in $(seq "$rounds"); do
  psql_b -d dst -c "DROP TABLE IF EXISTS ferry_$r"
  checkpoint
  t0=$(now); ferry_run "ferry_$r"; full_f+=("$(secs "$t0" "$(now)")")
  copy_table "copy_$r"
  checkpoint
  t0=$(now); copy_rows "copy_$r" ""; full_c+=("$(secs "$t0" "$(now)")")
  # The rows the incremental run reads: updated after the first run.
  mark=$(psql_a -d src -Atc "SELECT now()")
  psql_a -d src -c "UPDATE orders SET total = total + 1, updated_at = now() WHERE id % ($orders / $updated) = $r % ($orders / $updated)"
  checkpoint
  t0=$(now); ferry_run "ferry_$r"; inc_f+=("$(secs "$t0" "$(now)")")
  copy_table "inc_$r"
  checkpoint
  t0=$(now); copy_rows "inc_$r" "WHERE updated_at > '$mark'"; inc_c+=("$(secs "$t0" "$(now)")")
  n=$(psql_b -d dst -Atc "SELECT count(*) FROM inc_$r")
  same=$(psql_b -d dst -Atc "SELECT count(*) = 0 FROM (SELECT * FROM ferry_$r EXCEPT SELECT * FROM copy_$r WHERE id NOT IN (SELECT id FROM inc_$r) EXCEPT SELECT * FROM inc_$r) d")
  [ "$same" = t ] || { echo "round $r: ferry's table differs from the query's rows"; exit 1; }
  echo "round $r: first run ferry ${full_f[-1]}s, COPY ${full_c[-1]}s; incremental ($n rows) ferry ${inc_f[-1]}s, COPY ${inc_c[-1]}s"
done
python3 - "${full_f[*]}" "${full_c[*]}" "${inc_f[*]}" "${inc_c[*]}" <<'PY'
import statistics, sys
ff, fc, inf, inc = ([float(x) for x in a.split()] for a in sys.argv[1:5])
print(f"first run: ferry / COPY {statistics.median(ff) / statistics.median(fc):.2f}x (medians {statistics.median(ff):.2f} / {statistics.median(fc):.2f} s)")
print(f"incremental: ferry / COPY {statistics.median(inf) / statistics.median(inc):.2f}x (medians {statistics.median(inf):.2f} / {statistics.median(inc):.2f} s)")
PY
