package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestUnloggedTablesLeftOutOfCDCAndCopiedBySnapshot: logical decoding cannot
// see an UNLOGGED table's changes, so a flow with change data capture leaves
// it out with a warning naming it (and ferry plan says so), while the other
// tables flow; --mode snapshot copies it.
func TestUnloggedTablesLeftOutOfCDCAndCopiedBySnapshot(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "unlogged_src")
	dstCDC, dstSnap := srv.CreateDatabase(t, "unlogged_cdc"), srv.CreateDatabase(t, "unlogged_snap")
	srv.Exec(t, src, `CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders SELECT g, 'o' FROM generate_series(1, 500) g;
		CREATE UNLOGGED TABLE sessions (id int PRIMARY KEY, v text); INSERT INTO sessions SELECT g, 's' FROM generate_series(1, 300) g`)
	dir := t.TempDir()

	p := mustFerry(t, "plan", srv.URL(src))
	if !strings.Contains(p.stdout, "leaves these tables out of a flow with change data capture") || !strings.Contains(p.stdout, "public.sessions: UNLOGGED") {
		t.Fatalf("ferry plan does not say the unlogged table is left out of CDC:\n%s", p)
	}

	r := mustFerry(t, "sync", srv.URL(src), srv.URL(dstCDC), "--state-dir", dir, "--until", "caught-up", "--progress", "none", "--log-format", "json")
	if !strings.Contains(r.stderr, "tables left out of the flow: change data capture cannot see their changes: public.sessions (UNLOGGED") {
		t.Fatalf("no warning naming the unlogged table:\n%s", r.stderr)
	}
	conn := srv.Connect(t, dstCDC)
	ctx := context.Background()
	var orders int
	var sessions *string
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&orders); err != nil || orders != 500 {
		t.Fatalf("orders at the destination: %d, %v; want 500", orders, err)
	}
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.sessions')::text`).Scan(&sessions); err != nil || sessions != nil {
		t.Fatalf("the unlogged table reached a CDC flow's destination (%v, %v)", sessions, err)
	}

	mustFerry(t, "sync", srv.URL(src), srv.URL(dstSnap), "--mode", "snapshot", "--state-dir", dir, "--progress", "none")
	var n int
	if err := srv.Connect(t, dstSnap).QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 300 {
		t.Fatalf("sessions copied by --mode snapshot: %d, %v; want 300", n, err)
	}
}

// TestUnloggedCreatedDuringCDC: a table created UNLOGGED while the flow
// streams, which --tables selects, is left out with the same warning as
// at the start, not copied and then silently never followed.
func TestUnloggedCreatedDuringCDC(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "unlcdc_src"), srv.CreateDatabase(t, "unlcdc_dst")
	srv.Exec(t, src, `CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders SELECT g, 'o' FROM generate_series(1, 200) g`)
	bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--name", "unlcdc", "--state-dir", t.TempDir(), "--progress", "none", "--log-format", "json")
	if !bg.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry did not reach CDC:\n%s", tail(bg.stderr.String(), 40))
	}
	// The marker, created after the unlogged table, tells the test the
	// stream went past the unlogged table's creation.
	srv.Exec(t, src, `CREATE UNLOGGED TABLE sessions (id int PRIMARY KEY, v text); INSERT INTO sessions SELECT g, 's' FROM generate_series(1, 50) g;
		CREATE TABLE marker (id int PRIMARY KEY); INSERT INTO marker VALUES (1)`)
	if !bg.waitFor(t, "table created at the source joined the flow", time.Minute) {
		t.Fatalf("the marker table did not join:\n%s", tail(bg.stderr.String(), 40))
	}
	if !strings.Contains(bg.stderr.String(), "tables left out of the flow: change data capture cannot see their changes: public.sessions (UNLOGGED") {
		t.Fatalf("no warning naming the unlogged table created during CDC:\n%s", tail(bg.stderr.String(), 40))
	}
	var sessions *string
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT to_regclass('public.sessions')::text`).Scan(&sessions); err != nil || sessions != nil {
		t.Fatalf("the unlogged table created during CDC reached the destination (%v, %v)", sessions, err)
	}
	bg.kill(t)
}

// TestUnloggedByAlterDuringCDC: a followed table made UNLOGGED stops the
// flow with exit 2 saying what to do (its changes from then on are not in
// the WAL); once it is logged again the flow goes on, and ferry snapshot,
// as the error says, brings the rows written while it was unlogged. PostgreSQL refuses SET
// UNLOGGED of a table named in a publication (as ferry's own publication
// names them), so the user's publication here is FOR TABLES IN SCHEMA,
// which PostgreSQL lets through; it takes ferry's schema too, so the DDL
// log reaches the stream.
func TestUnloggedByAlterDuringCDC(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "unlalt_src"), srv.CreateDatabase(t, "unlalt_dst")
	srv.Exec(t, src, `CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders SELECT g, 'o' FROM generate_series(1, 200) g;
		CREATE SCHEMA _ferry; CREATE PUBLICATION schemapub FOR TABLES IN SCHEMA public, _ferry WITH (publish_via_partition_root = true)`)
	args := []string{"sync", srv.URL(src) + "&publication=schemapub", srv.URL(dst), "--name", "unlalt", "--state-dir", t.TempDir(), "--progress", "none", "--log-format", "json"}
	bg := startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry did not reach CDC:\n%s", tail(bg.stderr.String(), 40))
	}
	srv.Exec(t, src, `ALTER TABLE orders SET UNLOGGED; INSERT INTO orders VALUES (201, 'lost to the WAL')`)
	if code := bg.waitExit(t, time.Minute); code != 2 || !strings.Contains(bg.stderr.String(), "was made UNLOGGED at the source") {
		t.Fatalf("ferry exited %d, want 2 naming the unlogged table:\n%s", code, tail(bg.stderr.String(), 20))
	}
	if !strings.Contains(bg.stderr.String(), "ALTER TABLE public.orders SET LOGGED") {
		t.Errorf("the error does not say how to go on:\n%s", tail(bg.stderr.String(), 10))
	}
	srv.Exec(t, src, `ALTER TABLE orders SET LOGGED; INSERT INTO orders VALUES (202, 'logged again')`)
	bg = startFerry(t, args...)
	if !bg.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry did not reach CDC again:\n%s", tail(bg.stderr.String(), 40))
	}
	mustFerry(t, "snapshot", args[1], args[2], "public.orders", "--name", "unlalt", "--state-dir", args[6])
	if !bg.waitFor(t, "incremental snapshot done", time.Minute) {
		t.Fatalf("the snapshot did not finish:\n%s", tail(bg.stderr.String(), 40))
	}
	bg.kill(t)
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE id IN (201, 202)`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("after SET LOGGED the destination has %d of rows 201 and 202 (%v), want both: the table was not copied again", n, err)
	}
}
