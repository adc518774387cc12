#!/usr/bin/env bash
# A fleet on one pool of workers (issue 21): FLOWS flows from one fleet file
# (fake sources, half into SQLite files and half into PostgreSQL databases),
# started together on a Temporal development server and two workers. Each
# flow must end with a copy `ferry flow verify` finds equal; the report
# shows whether any flow was starved: each flow's share of the rows copied
# at the moment the first flow ended (a fair share is 1/FLOWS), and when
# each flow ended.
#
#   ./bench/scaleout-fleet.sh [FLOWS] [ROWS] [PARALLEL]
#
# FLOWS (default 20), ROWS per flow (default 200000, in 2 tables), PARALLEL
# (default 2) each flow's --parallel; each worker runs FLOWS*PARALLEL/4
# activities at once, so the flows' windows ask for twice what the workers
# can run. Run as root (the PostgreSQL server runs as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
flows=${1:-20}
rows=${2:-200000}
par=${3:-2}
bin=/usr/lib/postgresql/15/bin
[ -x "$bin/postgres" ] || { echo "needs PostgreSQL 15 server binaries (Debian package postgresql)"; exit 1; }
temporal=$(./scripts/temporal-cli)
. bench/lib.sh
bench_work sofleet
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_servers
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -o "$work/ferry" ./cmd/ferry
pa=$(port); start a "$pa"

tp=$(port)
"$temporal" server start-dev --headless --ip 127.0.0.1 --port "$tp" --db-filename "$work/temporal.db" --log-level error >"$work/temporal.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do "$temporal" operator cluster health --address "127.0.0.1:$tp" 2>/dev/null | grep -q SERVING && break; sleep 0.2; done

conns=()
echo "flows:" >"$work/fleet.yaml"
for i in $(seq "$flows"); do
  if ((i % 2)); then
    dst="sqlite://$work/f$i.db"
  else
    psql_a -c "CREATE DATABASE f$i"
    dst="postgres://postgres@127.0.0.1:$pa/f$i?sslmode=disable"
  fi
  conns+=(--connection "src$i=fake://?tables=2&rows=$((rows / 2))&seed=$i" --connection "dst$i=$dst")
  printf '  - name: fleet%d\n    source: src%d\n    destination: dst%d\n    mode: snapshot\n    parallel: %d\n    partition_rows: 10000\n' "$i" "$i" "$i" "$par" >>"$work/fleet.yaml"
done
conc=$(( (flows * par + 3) / 4 ))
for w in 1 2; do
  "$work/ferry" worker --temporal "127.0.0.1:$tp" --concurrency "$conc" --log-format json "${conns[@]}" 2>"$work/worker$w.log" &
  pids+=($!)
done
sleep 2
echo "== $flows flows of $rows rows (partitions of 10,000 rows), --parallel $par each, two workers of $conc slots, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(now)
"$work/ferry" run -f "$work/fleet.yaml" --temporal "127.0.0.1:$tp" >/dev/null

# rows_of NAME prints "STATUS ROWS" of a flow.
rows_of() {
  "$work/ferry" flow status "$1" --temporal "127.0.0.1:$tp" --json 2>/dev/null | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except Exception:
    print("unknown 0"); sys.exit()
st = s.get("state") or {}
n = sum(p.get("rows", 0) for p in st.get("partitions") or []) + sum(t.get("rows", 0) for t in st.get("table_partitions") or [])
print(s.get("status", "unknown"), n)'
}
declare -A ended=()
nended=0
shares=""
while ((nended < flows)); do
  snapshot=()
  for i in $(seq "$flows"); do
    [ -n "${ended[fleet$i]:-}" ] && { snapshot+=("$rows"); continue; }
    read -r status n < <(rows_of "fleet$i")
    snapshot+=("$n")
    if [ "$status" != Running ] && [ "$status" != unknown ]; then
      ended[fleet$i]="$(secs "$t0" "$(now)")s ($status)"
      nended=$((nended + 1))
    fi
  done
  if [ -z "$shares" ] && ((nended > 0)); then shares="${snapshot[*]}"; fi
  if python3 -c "import sys; sys.exit(0 if $(now) - $t0 > 1800 else 1)"; then echo "the fleet did not end in 30 minutes"; break; fi
  sleep 1
done
total=$(secs "$t0" "$(now)")

echo "== verify each flow"
bad=0
for i in $(seq "$flows"); do
  if ! out=$("$work/ferry" flow verify "fleet$i" --temporal "127.0.0.1:$tp" 2>&1); then bad=$((bad + 1)); echo "fleet$i: $out"; fi
done
echo
echo "== results ($flows flows, $rows rows each, $(nproc) cores)"
for i in $(seq "$flows"); do echo "fleet$i: ended after ${ended[fleet$i]:-never}"; done | sort -t: -k1,1V
python3 - "$flows" "$total" "$bad" "$shares" <<'PY'
import sys
flows, total, bad, shares = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = [int(x) for x in shares.split()]
if s and sum(s):
    share = [x / sum(s) for x in s]
    print(f"share of the rows copied when the first flow ended: min {min(share):.3f}, max {max(share):.3f} (fair: {1 / flows:.3f}); min/max {min(share) / max(share):.2f}")
print(f"all {flows} flows in {total:.1f}s; {flows - bad} verified equal, {bad} not")
PY
