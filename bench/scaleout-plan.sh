#!/usr/bin/env bash
# Scale-out simulation without databases: a fake source into null, one row a
# partition, through a real Temporal development server and two workers, to
# measure what Temporal and ferry cost per partition (issue 21, docs/scaling.md).
#
#   ./bench/scaleout-plan.sh PARTITIONS [MINUTES] [PARALLEL]
#
# PARTITIONS: the plan's size (10 tables of PARTITIONS/10 one-row partitions).
# MINUTES (default: none): stop the copy after this long, report the rate and
# extrapolate the end; 0 stops once the plan is stored (planned, chunk
# workflows started), before any copy is waited for. PARALLEL (default 64) is
# --parallel; each worker runs up to PARALLEL/2 activities at once.
#
# Reports: wall time of planning and of the copy, partitions per second,
# Temporal's CPU seconds per partition, history runs and the longest run's
# events, the dev server's database size, and the peak memory (VmHWM) of
# both workers, `ferry run` and the Temporal server.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
parts=${1:?PARTITIONS}
minutes=${2:-}
par=${3:-64}
temporal=$(./scripts/temporal-cli)
work=$(mktemp -d /tmp/ferry-soplan-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
go build -o "$work/ferry" ./cmd/ferry
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
hwm() { awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
rss() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
cpu() { awk '{printf "%.1f", ($14+$15)/100}' "/proc/$1/stat" 2>/dev/null || echo 0; }

tp=$(port)
"$temporal" server start-dev --headless --ip 127.0.0.1 --port "$tp" --db-filename "$work/temporal.db" --log-level error >"$work/temporal.log" 2>&1 &
tpid=$!; pids+=($tpid)
for _ in $(seq 150); do "$temporal" operator cluster health --address "127.0.0.1:$tp" 2>/dev/null | grep -q SERVING && break; sleep 0.2; done
# The dev server runs as a child of the CLI: measure the process that serves.
spid=$(pgrep -P "$tpid" | head -1 || true); spid=${spid:-$tpid}

tables=10
rows=$((parts / tables))
wpids=()
for w in 1 2; do
  "$work/ferry" worker --temporal "127.0.0.1:$tp" --concurrency $((par / 2)) --log-format json \
    --connection "src=fake://?tables=$tables&rows=$rows&seed=3" --connection "dst=null://" 2>"$work/worker$w.log" &
  wpids+=($!); pids+=($!)
done
sleep 2
cpu0=$(cpu "$spid")
echo "== $parts partitions ($tables tables of $rows one-row partitions), --parallel $par, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(now)
"$work/ferry" run --temporal "127.0.0.1:$tp" --source src --destination dst --name sim --mode snapshot \
  --partition-rows 1 --parallel "$par" --progress none --log-format json >"$work/run.out" 2>"$work/run.log" &
rpid=$!; pids+=($rpid)

status() { "$work/ferry" flow status sim --temporal "127.0.0.1:$tp" --json 2>/dev/null || true; }
# done_total prints "DONE TOTAL CHUNKS" from the flow's status.
done_total() {
  status | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except Exception:
    print("0 0 0"); sys.exit()
st = s.get("state") or {}
done = sum(t.get("done", 0) for t in st.get("table_partitions") or [])
total = sum(t.get("partitions", 0) for t in st.get("table_partitions") or [])
parts = st.get("partitions") or []
done += sum(1 for p in parts if p.get("state") == "done")
if not total: total = len(parts)
ch = st.get("plan_chunks") or {}
print(done, total, ch.get("count", 0))'
}

# Planning ends when the status counts the whole plan.
planned=""
while :; do
  read -r d total chunks < <(done_total)
  if [ "${total:-0}" -ge "$parts" ]; then planned=$(now); break; fi
  if ! kill -0 "$rpid" 2>/dev/null; then echo "ferry run ended before the plan was stored:"; tail -5 "$work/run.log"; exit 1; fi
  sleep 1
done
plan_s=$(python3 -c "print(f'{$planned - $t0:.1f}')")
echo "planned and stored: $total partitions in $((chunks + 1)) chunks, ${plan_s}s; worker peak RSS $(hwm "${wpids[0]}") / $(hwm "${wpids[1]}") MiB"

deadline=""
[ -n "$minutes" ] && deadline=$(python3 -c "print($planned + $minutes * 60)")
# ferry run's peak is read while it runs (its /proc entry goes with it).
run_hwm=0
i=0
while kill -0 "$rpid" 2>/dev/null; do
  if [ -n "$deadline" ] && python3 -c "import sys; sys.exit(0 if $(now) >= $deadline else 1)"; then break; fi
  h=$(hwm "$rpid"); [ "$h" != "?" ] && [ "$h" -gt "$run_hwm" ] && run_hwm=$h
  sleep 1
  i=$((i + 1))
  if ((i % 60 == 0)); then
    s0=$(now)
    read -r d total chunks < <(done_total)
    st_ms=$(python3 -c "print(f'{($(now) - $s0) * 1000:.0f}')")
    el=$(python3 -c "print(f'{$(now) - $planned:.0f}')")
    echo "  ${el}s: $d of $total partitions done (ferry flow status took ${st_ms} ms); RSS workers $(rss "${wpids[0]}")/$(rss "${wpids[1]}") MiB, run $(rss "$rpid") MiB, temporal $(rss "$spid") MiB; load $(cut -d' ' -f1 /proc/loadavg)"
  fi
done
t1=$(now)
read -r d total chunks < <(done_total)
finished=no
if ! kill -0 "$rpid" 2>/dev/null; then wait "$rpid" && finished=yes || { echo "ferry run failed:"; tail -20 "$work/run.log"; }; fi
cpu1=$(cpu "$spid")
mem="peak RSS: workers $(hwm "${wpids[0]}") and $(hwm "${wpids[1]}") MiB, ferry run $run_hwm MiB, Temporal server $(hwm "$spid") MiB"
runs=$("$temporal" workflow list --address "127.0.0.1:$tp" --query "WorkflowId = 'sim'" --output json --limit 100000 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
events=$("$temporal" workflow show -w sim --address "127.0.0.1:$tp" --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
[ "$finished" = yes ] || "$work/ferry" flow cancel sim --temporal "127.0.0.1:$tp" >/dev/null 2>&1 || true
db=$(du -m "$work/temporal.db" | cut -f1)
echo
echo "== results ($parts partitions, --parallel $par, $(nproc) cores)"
python3 - "$parts" "$plan_s" "$planned" "$t1" "$d" "$finished" "$cpu0" "$cpu1" "$runs" "$events" "$db" <<'PY'
import sys
parts, plan_s, planned, t1, done, finished, c0, c1, runs, events, db = sys.argv[1:]
parts, done = int(parts), int(done)
copy_s = float(t1) - float(planned)
rate = done / copy_s if copy_s > 0 else 0
print(f"plan: {plan_s}s to plan and store {parts} partitions")
if done:
    print(f"copy: {done} partitions in {copy_s:.0f}s ({'finished' if finished == 'yes' else 'stopped'}): {rate:.1f} partitions/s")
    print(f"Temporal server CPU: {(float(c1) - float(c0)) / done * 1000:.1f} ms a partition")
    if finished != "yes" and rate:
        print(f"extrapolated end of the copy at this rate: {(parts - done) / rate / 3600:.1f} h more ({parts / rate / 3600:.1f} h in all)")
print(f"history: {runs} runs (continue-as-new), the last one {events} events; Temporal database {db} MiB")
PY
echo "$mem"
