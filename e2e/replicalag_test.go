package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestMaxReplicaLagPausesTheCopy: the source's replicas' lag is what the
// user's --replica-lag-query reads from a one-row table the test sets.
// With the lag above --max-replica-lag the copy backs off and writes
// nothing more, even across a later reading of the lag (the test holds
// that reading on a lock, so it knows one happened); once the lag is 0
// the copy resumes and every row arrives.
func TestMaxReplicaLagPausesTheCopy(t *testing.T) {
	pg := pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "lagsrc"), pg.CreateDatabase(t, "lagdst")
	const rows = 5000
	pg.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
		INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 5000) g;
		CREATE SCHEMA ops; CREATE TABLE ops.lagctl (lag float8); INSERT INTO ops.lagctl VALUES (100)`)
	const query = `SELECT lag FROM ops.lagctl`

	bg := startFerry(t, "sync", pg.URL(src), pg.URL(dst), "--name", "replicalag", "--state-dir", t.TempDir(), "--mode", "snapshot",
		"--tables", "public.*", "--batch-rows", "100", "--parallel", "2",
		"--max-replica-lag", "5s", "--replica-lag-query", query, "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "backing off: the source's replicas lag past --max-replica-lag; table reads pause until they catch up", time.Minute) {
		t.Fatalf("ferry did not back off:\n%s", tail(bg.stderr.String(), 40))
	}
	ctx := context.Background()
	count := func() int {
		var n int
		if err := pg.Connect(t, dst).QueryRow(ctx, `SELECT CASE WHEN to_regclass('public.items') IS NULL THEN 0 ELSE (SELECT count(*) FROM public.items) END`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()

	// Hold the next reading of the lag: once ferry waits on the lock, at
	// least one more reading's interval has passed with the gate closed.
	ctl := pg.Connect(t, src)
	tx, err := ctl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE ops.lagctl IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	watch := pg.Connect(t, src)
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		if err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = $1)`, query).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry did not read the lag again while backing off:\n%s", tail(bg.stderr.String(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	during := count()
	if during != before || during >= rows {
		t.Fatalf("the copy went on while the replicas lagged: %d rows at the destination, then %d (of %d)", before, during, rows)
	}

	if _, err := tx.Exec(ctx, `UPDATE ops.lagctl SET lag = 0`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if code := bg.waitExit(t, 2*time.Minute); code != 0 {
		t.Fatalf("ferry exited %d:\n%s", code, tail(bg.stderr.String(), 40))
	}
	if got := count(); got != rows {
		t.Fatalf("the destination has %d rows after the replicas caught up, want %d", got, rows)
	}
	if !strings.Contains(bg.stderr.String(), `"msg":"resuming: the source's replicas caught up"`) {
		t.Errorf("no log line says the copy resumed:\n%s", tail(bg.stderr.String(), 20))
	}
}

// TestReplicaLagQueryRefusedWithExit2: a query the source cannot run is a
// configuration error, exit 2, before anything is copied; a MySQL-style
// flow without a query is covered by the connector's own error.
func TestReplicaLagQueryRefusedWithExit2(t *testing.T) {
	pg := pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "lagbadsrc"), pg.CreateDatabase(t, "lagbaddst")
	pg.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1)`)
	r := ferry(t, "sync", pg.URL(src), pg.URL(dst), "--name", "replicalagbad", "--state-dir", t.TempDir(), "--mode", "snapshot",
		"--max-replica-lag", "5s", "--replica-lag-query", "SELECT lag FROM no_such_table", "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, "--replica-lag-query") {
		t.Fatalf("want exit 2 naming --replica-lag-query, got %s", r)
	}
}

// TestReplicaLagDefaultQueryPostgres: with no --replica-lag-query a
// PostgreSQL source's lag is the largest replay_lag of its streaming
// replicas; the shared server has none, so the lag is 0 and the copy
// never backs off.
func TestReplicaLagDefaultQueryPostgres(t *testing.T) {
	pg := pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "lagdefsrc"), pg.CreateDatabase(t, "lagdefdst")
	pg.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 300)`)
	r := mustFerry(t, "sync", pg.URL(src), pg.URL(dst), "--name", "replicalagdef", "--state-dir", t.TempDir(), "--mode", "snapshot",
		"--max-replica-lag", "1ms", "--log-format", "json", "--progress", "none")
	if r.logLine("backing off: the source's replicas lag past --max-replica-lag; table reads pause until they catch up") != nil {
		t.Fatalf("backed off with no replica:\n%s", r)
	}
	var n int
	if err := pg.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 300 {
		t.Fatalf("the destination has %d rows (%v), want 300", n, err)
	}
}

// TestMaxReplicaLagPausesIncrementalSnapshots: while the flow streams, an
// incremental snapshot (ferry snapshot) reads no chunk while the
// replicas lag past --max-replica-lag, across a later reading of the lag
// the test holds on a lock; at 0 it finishes with every row. CDC itself
// is never paused.
func TestMaxReplicaLagPausesIncrementalSnapshots(t *testing.T) {
	pg := pgtest.Shared(t)
	src, dst := pg.CreateDatabase(t, "lagsnapsrc"), pg.CreateDatabase(t, "lagsnapdst")
	pg.Exec(t, src, `CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL);
		INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 3000) g;
		CREATE SCHEMA ops; CREATE TABLE ops.lagctl (lag float8); INSERT INTO ops.lagctl VALUES (0)`)
	const query = `SELECT lag FROM ops.lagctl`
	dir := t.TempDir()
	bg := startFerry(t, "sync", pg.URL(src), pg.URL(dst), "--name", "lagsnap", "--state-dir", dir, "--tables", "public.*",
		"--batch-rows", "300", "--max-replica-lag", "5s", "--replica-lag-query", query, "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry did not reach CDC:\n%s", tail(bg.stderr.String(), 40))
	}
	pg.Exec(t, src, `UPDATE ops.lagctl SET lag = 100`)
	mustFerry(t, "snapshot", pg.URL(src), pg.URL(dst), "public.items", "--name", "lagsnap", "--state-dir", dir)
	if !bg.waitFor(t, "backing off: the source's replicas lag past --max-replica-lag; table reads pause until they catch up", time.Minute) {
		t.Fatalf("the incremental snapshot did not back off:\n%s", tail(bg.stderr.String(), 40))
	}
	ctx := context.Background()
	ctl := pg.Connect(t, src)
	tx, err := ctl.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE ops.lagctl IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	watch := pg.Connect(t, src)
	deadline := time.Now().Add(time.Minute)
	for {
		var waiting bool
		if err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query = $1)`, query).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ferry did not read the lag again while backing off:\n%s", tail(bg.stderr.String(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
	dconn := pg.Connect(t, dst)
	if rows, _, ok := resnapshotProgress(t, dconn, "lagsnap", `"public"."items"`); ok && rows > 0 {
		t.Fatalf("the incremental snapshot copied %d rows while the replicas lagged", rows)
	}
	if _, err := tx.Exec(ctx, `UPDATE ops.lagctl SET lag = 0`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if !bg.waitFor(t, "incremental snapshot done", 2*time.Minute) {
		t.Fatalf("the snapshot did not finish once the replicas caught up:\n%s", tail(bg.stderr.String(), 40))
	}
	bg.kill(t)
	if rows, done, ok := resnapshotProgress(t, dconn, "lagsnap", `"public"."items"`); !ok || !done || rows != 3000 {
		t.Fatalf("snapshot progress: %d rows, done %v (found %v); want 3000, done", rows, done, ok)
	}
}
