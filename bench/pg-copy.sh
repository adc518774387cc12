#!/usr/bin/env bash
# PostgreSQL to PostgreSQL initial copy: ferry against pg_dump | psql and
# against parallel raw binary COPY pipes at the same parallelism (and
# pgcopydb clone when installed), on two private PostgreSQL 15 instances.
# Then CDC: the time ferry takes to drain a backlog of changes.
#
#   ./bench/pg-copy.sh [SCALE] [PARALLEL]
#
# SCALE 1 (the default; fractions work: 0.1) is 5.2 million rows: 3M narrow rows with a primary
# key, 2M rows without one, 200k TOAST-heavy rows (about 4 kB each).
# Run as root (the servers run as the postgres user). Prints wall times,
# ratios and ferry's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
par=${2:-4}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)"; exit 1; }
. bench/lib.sh
bench_work pgbench
cleanup() {
  stop_servers
  rm -rf "$work"
}
trap cleanup EXIT
two_servers

rows() { awk -v n="$1" -v s="$scale" 'BEGIN { printf "%d", n * s }'; }
narrow=$(rows 3000000); nokey=$(rows 2000000); toast=$(rows 200000)
pg_dataset "$narrow" "$nokey" "$toast"
psql_a -d src -At -c "SELECT 'source size: ' || pg_size_pretty(pg_database_size('src'))"

fresh_dst() { psql_b -c "DROP DATABASE IF EXISTS dst" -c "CREATE DATABASE dst"; }

echo "== ferry sync --mode snapshot --parallel $par"
fresh_dst
t0=$(now)
/usr/bin/time -v -o "$work/time.txt" "$work/ferry" sync "$src" "$dst" --mode snapshot --parallel "$par" \
  --state-dir "$work/state" --progress none --log-format json 2>"$work/ferry.log" >/dev/null
t_ferry=$(secs "$t0" "$(now)")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
cpu=$(awk -F": " "/User time/ {u=\$2} /System time/ {s=\$2} END {print u + s}" "$work/time.txt")
echo "ferry: ${t_ferry}s, ferry CPU ${cpu}s, peak RSS $((rss / 1024)) MB"

echo "== pg_dump | psql"
fresh_dst
t0=$(now)
pg_dump -h "$work" -p "$pa" -U postgres src | psql_b -d dst >/dev/null
t_dump=$(secs "$t0" "$(now)")
echo "pg_dump | psql: ${t_dump}s"

echo "== $par parallel binary COPY pipes (schema created first, not timed)"
fresh_dst
pg_dump -h "$work" -p "$pa" -U postgres --schema-only src | psql_b -d dst >/dev/null
jobs_file="$work/pipes.txt"
: >"$jobs_file"
for t in narrow events docs; do
  pages=$(psql_a -d src -At -c "SELECT pg_relation_size('$t') / 8192")
  step=$(( (pages + par - 1) / par ))
  for ((i = 0; i < par; i++)); do
    echo "$t $((i * step)) $(((i + 1) * step))" >>"$jobs_file"
  done
done
t0=$(now)
xargs -P "$par" -L 1 bash -c 'psql -X -h "'"$work"'" -p '"$pa"' -U postgres -d src -c "COPY (SELECT * FROM $0 WHERE ctid >= '"'"'($1,0)'"'"' AND ctid < '"'"'($2,0)'"'"') TO STDOUT (FORMAT binary)" | psql -X -h "'"$work"'" -p '"$pb"' -U postgres -d dst -c "COPY $0 FROM STDIN (FORMAT binary)" >/dev/null' <"$jobs_file"
t_pipes=$(secs "$t0" "$(now)")
echo "binary COPY pipes: ${t_pipes}s"

if command -v pgcopydb >/dev/null; then
  echo "== pgcopydb clone --table-jobs $par"
  fresh_dst
  t0=$(now)
  pgcopydb clone --source "$src" --target "$dst" --table-jobs "$par" --index-jobs "$par" --dir "$work/pgcopydb" >/dev/null 2>&1 || echo "pgcopydb failed"
  echo "pgcopydb clone: $(secs "$t0" "$(now)")s"
fi

echo "== CDC: draining a backlog"
fresh_dst
"$work/ferry" sync "$src" "$dst" --name cdcbench --tables 'public.narrow' --state-dir "$work/state2" --until caught-up --parallel "$par" --progress none >/dev/null 2>&1
changes=$(rows 300000)
psql_a -d src -c "UPDATE narrow SET amount = amount + 1 WHERE id <= $((changes / 3))" \
  -c "DELETE FROM narrow WHERE id > $((narrow - changes / 3))" \
  -c "INSERT INTO narrow SELECT g, 1, 1, now(), 'new' FROM generate_series($((narrow + 1)), $((narrow + changes / 3))) g" >/dev/null
t0=$(now)
"$work/ferry" sync "$src" "$dst" --name cdcbench --tables 'public.narrow' --state-dir "$work/state2" --until caught-up --parallel "$par" --progress none >/dev/null 2>&1
t_cdc=$(secs "$t0" "$(now)")
echo "ferry drained $changes changes in ${t_cdc}s ($(python3 -c "print(int($changes / $t_cdc))") changes/s)"

small=$(rows 100000)
psql_a -d src -c "DO \$\$ BEGIN FOR i IN 1..$small LOOP UPDATE narrow SET amount = amount + 1 WHERE id = 1 + (i * 7919) % $narrow; COMMIT; END LOOP; END \$\$" >/dev/null
t0=$(now)
"$work/ferry" sync "$src" "$dst" --name cdcbench --tables 'public.narrow' --state-dir "$work/state2" --until caught-up --parallel "$par" --progress none >/dev/null 2>&1
t_small=$(secs "$t0" "$(now)")
echo "ferry drained $small one-row transactions in ${t_small}s ($(python3 -c "print(int($small / $t_small))") changes/s)"
a=$(psql_a -d src -At -c "SELECT md5(string_agg(n::text, ',' ORDER BY id)) FROM narrow n")
b=$(psql_b -d dst -At -c "SELECT md5(string_agg(n::text, ',' ORDER BY id)) FROM narrow n")
[ "$a" = "$b" ] && echo "narrow: source and destination equal" || echo "narrow: source and destination DIFFER"

echo
echo "== results ($(nproc) cores, parallel $par)"
python3 - "$t_ferry" "$t_dump" "$t_pipes" <<'PY'
import sys
f, d, p = map(float, sys.argv[1:])
print(f"ferry / raw binary COPY pipes: {f / p:.2f}x the wall time (target <= 1.10)")
print(f"pg_dump | psql / ferry:       {d / f:.2f}x faster (target >= 1.40)")
PY
