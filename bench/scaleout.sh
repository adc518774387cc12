#!/usr/bin/env bash
# Scale-out mode against single-process mode on one machine: the same
# PostgreSQL to PostgreSQL initial copy through `ferry sync` and through a
# Temporal development server, two `ferry worker` processes and `ferry run`.
# Reports the throughput ratio (target >= 0.85).
#
#   ./bench/scaleout.sh [SCALE] [PARALLEL]
#
# SCALE 1 (the default; fractions work) is 3.2 million rows: 3M narrow rows
# and 200k TOAST-heavy rows (about 4 kB each). PARALLEL (default 4) is
# --parallel for both: partitions copied at once, across both workers in
# scale-out mode. Run as root (the servers run as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${1:-1}
par=${2:-4}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
temporal=$(./scripts/temporal-cli)
. bench/lib.sh
bench_work sobench
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_servers
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
two_servers

rows() { awk -v n="$1" -v s="$scale" 'BEGIN { printf "%d", n * s }'; }
narrow=$(rows 3000000); toast=$(rows 200000)
echo "== generating $((narrow + toast)) rows ($narrow narrow, $toast TOAST-heavy)"
psql_a -c "CREATE DATABASE src"
psql_a -d src <<SQL
CREATE TABLE narrow (id bigint PRIMARY KEY, customer int NOT NULL, amount numeric(12,2), placed timestamptz, note text);
INSERT INTO narrow SELECT g, g % 1000, g * 0.01, '2024-01-01'::timestamptz + g * interval '1 second', 'note ' || g FROM generate_series(1, $narrow) g;
CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
INSERT INTO docs SELECT g, 'doc ' || g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 128) i) FROM generate_series(1, $toast) g;
VACUUM ANALYZE;
SQL
psql_a -d src -At -c "SELECT 'source size: ' || pg_size_pretty(pg_database_size('src'))"

fresh_dst() { psql_b -c "DROP DATABASE IF EXISTS dst" -c "CREATE DATABASE dst"; }

echo "== Temporal dev server and two workers (not timed)"
tp=$(port)
"$temporal" server start-dev --headless --ip 127.0.0.1 --port "$tp" --db-filename "$work/temporal.db" --log-level error >"$work/temporal.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do "$temporal" operator cluster health --address "127.0.0.1:$tp" 2>/dev/null | grep -q SERVING && break; sleep 0.2; done
for w in 1 2; do
  "$work/ferry" worker --temporal "127.0.0.1:$tp" --concurrency "$par" --log-format json --connection "src=$src" --connection "dst=$dst" 2>"$work/worker$w.log" &
  pids+=($!)
done
sleep 2

# The machine may be shared: the two modes alternate, ROUNDS times each
# (default 2), and the best time of each counts.
best() { python3 -c "import sys; print(min(map(float, sys.argv[1:])))" "$@"; }
syncs=(); runs=()
for round in $(seq "${ROUNDS:-2}"); do
  echo "== round $round: ferry sync --mode snapshot --parallel $par (one process)"
  fresh_dst
  t0=$(now)
  "$work/ferry" sync "$src" "$dst" --mode snapshot --parallel "$par" --state-dir "$work/state$round" --progress none 2>"$work/sync$round.log" >/dev/null
  syncs+=("$(secs "$t0" "$(now)")")
  echo "ferry sync: ${syncs[-1]}s"

  echo "== round $round: ferry run --mode snapshot --parallel $par (two workers)"
  fresh_dst
  t0=$(now)
  "$work/ferry" run --temporal "127.0.0.1:$tp" --source src --destination dst --name "bench$round" --mode snapshot --parallel "$par" --progress none 2>"$work/run$round.log" >/dev/null
  runs+=("$(secs "$t0" "$(now)")")
  echo "ferry run on two workers: ${runs[-1]}s"
done
t_sync=$(best "${syncs[@]}")
t_so=$(best "${runs[@]}")
a=$(psql_a -d src -At -c "SELECT count(*) FROM narrow")
b=$(psql_b -d dst -At -c "SELECT count(*) FROM narrow")
[ "$a" = "$b" ] && echo "narrow: $b rows at the destination" || echo "narrow: source $a rows, destination $b rows: DIFFER"

echo
echo "== results ($(nproc) cores, parallel $par)"
python3 - "$t_sync" "$t_so" <<'PY'
import sys
s, o = map(float, sys.argv[1:])
print(f"best times: ferry sync {s:.2f}s, ferry run on two workers {o:.2f}s")
print(f"scale-out throughput / single-process throughput: {s / o:.2f} (target >= 0.85)")
PY
