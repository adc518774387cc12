#!/usr/bin/env bash
# ferry verify of a PostgreSQL dataset against ferry's own copy time of the
# same data, per table: rows read through ferry (--no-pushdown) and hashed
# in both databases (pushdown), on two private PostgreSQL 15 instances.
#
#   ./bench/verify.sh [SCALE] [PARALLEL]
#
# SCALE 1 (the default; fractions work: 0.05) is 3.2 million rows: 2M
# narrow rows with a primary key, 1M rows without one, 200k TOAST-heavy rows.
# Run as root (the servers run as the postgres user). Prints, per table, the
# copy's and each verify's wall time and the bytes each verify read.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
par=${2:-4}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
. bench/lib.sh
bench_work verifybench
cleanup() {
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT
two_servers

rows() { awk -v n="$1" -v s="$scale" 'BEGIN { printf "%d", n * s }'; }
narrow=$(rows 2000000); nokey=$(rows 1000000); toast=$(rows 200000)
pg_dataset "$narrow" "$nokey" "$toast"
psql_b -c "CREATE DATABASE dst"

# read_json FILE FIELD: a field of the one table verify --json reports.
read_json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tables"][0][sys.argv[2]])' "$1" "$2"; }

printf '%-8s %10s %12s %14s %12s %14s\n' table copy_s verify_rows_s rows_bytes verify_push_s push_bytes
for t in narrow events docs; do
  t0=$(now)
  "$work/ferry" sync "$src" "$dst" --tables "public.$t" --mode snapshot --parallel "$par" --name "copy-$t" \
    --state-dir "$work/state" --progress none --log-format json 2>>"$work/ferry.log" >/dev/null
  t_copy=$(secs "$t0" "$(now)")
  t0=$(now)
  "$work/ferry" verify "$src" "$dst" --tables "public.$t" --parallel "$par" --no-pushdown --json >"$work/rows.json"
  t_rows=$(secs "$t0" "$(now)")
  t0=$(now)
  "$work/ferry" verify "$src" "$dst" --tables "public.$t" --parallel "$par" --json >"$work/push.json"
  t_push=$(secs "$t0" "$(now)")
  [ "$(read_json "$work/push.json" pushdown)" = True ] || { echo "$t: verify did not push down"; exit 1; }
  printf '%-8s %10s %12s %14s %12s %14s\n' "$t" "$t_copy" "$t_rows" "$(read_json "$work/rows.json" bytes_read)" \
    "$t_push" "$(read_json "$work/push.json" bytes_read)"
done
