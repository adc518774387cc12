package e2e

import (
	"context"
	"strings"
	"testing"

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
