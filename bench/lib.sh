# Shared by the bench scripts that run private PostgreSQL 15 instances
# (source it after setting bin=/usr/lib/postgresql/15/bin): a work
# directory the postgres user can use, starting a server in it, psql on
# the two servers a script starts, and timing.

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

# stop_servers stops the servers in $work/a and $work/b, if started.
stop_servers() {
  for d in a b; do [ -d "$work/$d" ] && as_pg "$bin/pg_ctl" -D "$work/$d" stop -m immediate >/dev/null 2>&1 || true; done
}

# two_servers builds ferry into $work/ferry and starts servers a and b on
# free ports ($pa, $pb); $src and $dst are the URLs of databases src on a
# and dst on b (the script creates them).
two_servers() {
  go build -o "$work/ferry" ./cmd/ferry
  pa=$(port); start a "$pa"
  pb=$(port); start b "$pb"
  src="postgres://postgres@127.0.0.1:$pa/src?sslmode=disable"
  dst="postgres://postgres@127.0.0.1:$pb/dst?sslmode=disable"
}

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
