# Shared by the bench scripts that run private PostgreSQL 15 instances
# (source it after setting bin=/usr/lib/postgresql/15/bin): a work
# directory the postgres user can use, starting a server in it, psql on
# the two servers a script starts, and timing; at the end, private MariaDB
# servers for the scripts that read from MySQL/MariaDB.

# bench_work makes $work, a fresh directory /tmp/ferry-NAME-XXXXXX.
bench_work() {
  work=$(mktemp -d "/tmp/ferry-$1-XXXXXX")
  chmod 755 "$work"
  chown postgres: "$work"
}

as_pg() { runuser -u postgres -- "$@"; }

# port prints a free TCP port.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start DIR PORT [SETTINGS]: a server in $work/DIR on PORT, tuned for
# benchmarks (no fsync) with logical decoding on; SETTINGS are more -c flags.
start() {
  as_pg "$bin/initdb" -D "$work/$1" -A trust --no-sync -U postgres >/dev/null
  as_pg "$bin/pg_ctl" -D "$work/$1" -l "$work/$1.log" -w -o "-p $2 -k $work -c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10 -c fsync=off -c shared_buffers=256MB -c max_wal_size=4GB -c synchronous_commit=off ${3:-}" start >/dev/null
}

# psql_a, psql_b: psql on the servers started on ports $pa and $pb.
psql_a() { psql -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$pa" -U postgres "$@"; }
psql_b() { psql -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$pb" -U postgres "$@"; }

# now prints the time in seconds; secs FROM TO the seconds between two.
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }

# build_ferry puts ferry at $work/ferry: the binary FERRY_BIN names (to
# compare two builds, run after run), or one built from this tree.
build_ferry() {
  if [ -n "${FERRY_BIN:-}" ]; then cp "$FERRY_BIN" "$work/ferry"; else go build -o "$work/ferry" ./cmd/ferry; fi
}

# apply_shares LOG prints how a drain's changes were applied (changes,
# writer shares, a share's mean time) from ferry's "caught up" line in LOG
# (--log-format json).
apply_shares() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("msg") == "caught up" and "apply_shares" in r:
        print(f"ferry applied {r['changes_applied']:,} changes in {r['apply_shares']:,} writer shares "
              f"({r['changes_applied'] / max(r['apply_shares'], 1):,.0f} a share, {r['apply_share_avg_ms']} ms each)")
PY
}

# cpu prints the CPU seconds the whole machine has used (every process).
cpu() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat; }

# cluster_cpu DIR prints the CPU seconds the server in $work/DIR has used
# so far: its postmaster's (with the children it reaped) and its live
# children's. Two readings around a step are the server's CPU for it.
cluster_cpu() {
  python3 - "$(head -1 "$work/$1/postmaster.pid")" <<'PY'
import os, sys
pm = sys.argv[1]
tick = os.sysconf("SC_CLK_TCK")
def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
total = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        st = stat(pid)
    except OSError:
        continue
    if pid == pm:
        total += sum(int(x) for x in st[11:15])  # utime stime cutime cstime
    elif st[1] == pm:
        total += int(st[11]) + int(st[12])
print(f"{total / tick:.2f}")
PY
}

# stop_servers stops the servers in $work/a and $work/b, if started.
stop_servers() {
  for d in a b; do [ -d "$work/$d" ] && as_pg "$bin/pg_ctl" -D "$work/$d" stop -m immediate >/dev/null 2>&1 || true; done
}

# two_servers builds ferry into $work/ferry and starts servers a and b on
# free ports ($pa, $pb); $src and $dst are the URLs of databases src on a
# and dst on b (the script creates them).
two_servers() {
  build_ferry
  pa=$(port); start a "$pa"
  pb=$(port); start b "$pb"
  src="postgres://postgres@127.0.0.1:$pa/src?sslmode=disable"
  dst="postgres://postgres@127.0.0.1:$pb/dst?sslmode=disable"
}

# cdc_servers SETTINGS builds ferry into $work/ferry and starts servers a,
# b and c with logical replication settings (more -c flags in SETTINGS):
# a the source ($src, database src), b ferry's destination ($dst, database
# dst), c a native subscriber (psql_c). The script creates the databases.
cdc_servers() {
  build_ferry
  pa=$(port); start a "$pa" "$1"
  pb=$(port); start b "$pb" "$1"
  pc=$(port); start c "$pc" "$1"
  src="postgres://postgres@127.0.0.1:$pa/src?sslmode=disable"
  dst="postgres://postgres@127.0.0.1:$pb/dst?sslmode=disable"
}
psql_c() { psql -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$pc" -U postgres "$@"; }

# pg_dataset NARROW NOKEY TOAST creates database src on server a with the
# bench tables: NARROW narrow rows with a key, NOKEY rows without one, and
# TOAST rows of about 4 KB of text each.
pg_dataset() {
  echo "== generating $(($1 + $2 + $3)) rows ($1 narrow, $2 without key, $3 TOAST-heavy)"
  psql_a -c "CREATE DATABASE src"
  psql_a -d src <<SQL
CREATE TABLE narrow (id bigint PRIMARY KEY, customer int NOT NULL, amount numeric(12,2), placed timestamptz, note text);
INSERT INTO narrow SELECT g, g % 1000, g * 0.01, '2024-01-01'::timestamptz + g * interval '1 second', 'note ' || g FROM generate_series(1, $1) g;
CREATE TABLE events (at timestamp, kind text, value double precision, payload jsonb);
INSERT INTO events SELECT '2024-01-01'::timestamp + g * interval '1 ms', 'k' || (g % 7), g / 3.0, jsonb_build_object('g', g) FROM generate_series(1, $2) g;
CREATE TABLE docs (id int PRIMARY KEY, title text, body text);
INSERT INTO docs SELECT g, 'doc ' || g, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 128) i) FROM generate_series(1, $3) g;
VACUUM ANALYZE;
SQL
}

# pg_mixed_dataset SCALE creates database src on server a with the mixed
# dataset of issue 18, which is not bench's own narrow/events/docs: at
# SCALE 1, 5 M narrow rows (bigint key, int, numeric(12,2), smallint, an
# enum, a short text NULL one time in five, date, timestamptz, float8:
# about 120 bytes a row), 200 k rows with a uuid key and text, varchar,
# text[], jsonb, timestamptz, numeric, boolean and inet, 20 k rows of about
# 13 KB of text and 1.6 KB of bytea (TOASTed), 100 k rows without a key
# (timestamptz, two texts, json).
pg_mixed_dataset() {
  local n w t k
  n=$(awk -v s="$1" 'BEGIN { printf "%d", 5000000 * s }')
  w=$(awk -v s="$1" 'BEGIN { printf "%d", 200000 * s }')
  t=$(awk -v s="$1" 'BEGIN { printf "%d", 20000 * s }')
  k=$(awk -v s="$1" 'BEGIN { printf "%d", 100000 * s }')
  echo "== generating the mixed dataset: $n narrow, $w wide (uuid key), $t TOAST-heavy, $k without key"
  psql_a -c "CREATE DATABASE src"
  psql_a -d src <<SQL
CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped', 'delivered', 'returned');
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, total numeric(12,2) NOT NULL, items smallint NOT NULL,
  status order_status NOT NULL, coupon text, ordered date NOT NULL, updated timestamptz NOT NULL, weight float8);
INSERT INTO orders SELECT g, (g::bigint * 7919) % 250000, ((g * 31) % 100000) / 100.0, (g % 12)::smallint,
  (ARRAY['new','paid','shipped','delivered','returned']::order_status[])[1 + g % 5],
  CASE WHEN g % 5 = 0 THEN NULL ELSE 'C' || (g % 9973) END, DATE '2020-01-01' + (g % 1800),
  TIMESTAMPTZ '2020-01-01 00:00:00+00' + g * interval '17 seconds', (g % 1000) * 0.37
FROM generate_series(1, $n) g;
CREATE TABLE profiles (id uuid PRIMARY KEY, name text NOT NULL, email varchar(120), tags text[], attrs jsonb,
  seen timestamptz, balance numeric, active boolean, addr inet);
INSERT INTO profiles SELECT md5('p' || g)::uuid, 'name ' || g || ' ' || md5(g::text), 'user' || g || '@example.com',
  ARRAY['t' || g % 7, 't' || g % 11, 'tag ' || g % 13], jsonb_build_object('g', g, 'plan', 'p' || g % 4, 'score', g % 1000 / 7.0, 'ok', g % 2 = 0),
  TIMESTAMPTZ '2021-01-01 00:00:00+00' + g * interval '1 minute', g * 1.125, g % 3 <> 0, ('10.' || g % 256 || '.' || (g / 256) % 256 || '.' || g % 199)::inet
FROM generate_series(1, $w) g;
CREATE TABLE documents (id int PRIMARY KEY, title text NOT NULL, body text, blob bytea);
INSERT INTO documents SELECT g, 'document ' || g,
  (SELECT string_agg(md5(g::text || '.' || i), ' ') FROM generate_series(1, 400) i),
  (SELECT decode(string_agg(md5(i::text || '/' || g), ''), 'hex') FROM generate_series(1, 100) i)
FROM generate_series(1, $t) g;
CREATE TABLE audit (at timestamptz, actor text, action text, detail json);
INSERT INTO audit SELECT TIMESTAMPTZ '2022-01-01 00:00:00+00' + g * interval '3 seconds', 'actor' || g % 97, 'action ' || g % 13,
  json_build_object('g', g, 'path', '/api/v1/items/' || g, 'ms', g % 500)
FROM generate_series(1, $k) g;
VACUUM ANALYZE;
SQL
}

# MariaDB 10.11 (Debian package mariadb-server) for the scripts that read
# from MySQL/MariaDB: private servers in $work/NAME on free ports, which
# my_cleanup kills (their process ids are in my_pids; the data sets are
# thrown away). Set mariadbd (default /usr/sbin/mariadbd, or $MARIADBD)
# before sourcing to use another server binary.
mariadbd=${MARIADBD:-/usr/sbin/mariadbd}
my_pids=()

# my_start NAME PORT [OPTIONS]: a fresh server in $work/NAME on PORT, tuned
# for benchmarks (a 1 GB buffer pool that holds the data set, the redo log
# flushed once a second, no doublewrite, utf8mb4); OPTIONS are more mariadbd
# options (--skip-log-bin, or the binlog's and --server-id). Returns once
# the server answers.
my_start() {
  local name=$1 p=$2
  shift 2
  mkdir -p "$work/$name/tmp"
  mariadb-install-db --no-defaults --datadir="$work/$name/data" --user=root --auth-root-authentication-method=normal \
    --skip-test-db --skip-log-bin >"$work/$name-install.log" 2>&1 || { tail -20 "$work/$name-install.log"; exit 1; }
  "$mariadbd" --no-defaults --user=root --datadir="$work/$name/data" --port="$p" --bind-address=127.0.0.1 \
    --socket="$work/$name/mysqld.sock" --pid-file="$work/$name/mysqld.pid" --tmpdir="$work/$name/tmp" --skip-name-resolve \
    --innodb-buffer-pool-size=1G --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2 \
    --innodb-doublewrite=0 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --skip-performance-schema "$@" >"$work/$name.log" 2>&1 &
  my_pids+=("$!")
  disown "$!"
  for _ in $(seq 100); do my_on "$p" -e 'SELECT 1' >/dev/null 2>&1 && return; sleep 0.2; done
  tail -20 "$work/$name.log"
  exit 1
}

# my_on PORT [ARGS]: the mariadb client as root on the server on PORT.
my_on() {
  local p=$1
  shift
  mariadb --no-defaults -h 127.0.0.1 -P "$p" -u root --default-character-set=utf8mb4 "$@"
}

# my_flush PORT: waits until InnoDB has written its dirty pages out, so that
# what is timed next does not pay for what came before (a data set's
# generation, a backlog).
my_flush() {
  local dirty
  my_on "$1" -e "SET GLOBAL innodb_max_dirty_pages_pct = 0"
  for _ in $(seq 600); do
    dirty=$(my_on "$1" -N -e "SELECT variable_value FROM information_schema.global_status WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'")
    [ "$dirty" = 0 ] && break
    sleep 0.5
  done
  my_on "$1" -e "SET GLOBAL innodb_max_dirty_pages_pct = DEFAULT"
}

# my_cleanup kills the servers my_start started.
my_cleanup() {
  local p
  for p in "${my_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
