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
