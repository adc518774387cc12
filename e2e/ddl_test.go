package e2e

import (
	"strings"
	"testing"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// --ddl stop stops a flow at the source's schema change (exit 2, naming the
// table and the change) and at a truncate, with nothing after them applied;
// the same flow run with --ddl apply follows them, and a change the
// destination was given by hand meanwhile is harmless.
func TestDDLStopStopsAtASchemaChangeAndApplyGoesOn(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "ddlstopsrc"), srv.CreateDatabase(t, "ddlstopdst")
	pgShop(t, srv, src, 2000)
	dir := t.TempDir()
	args := []string{"sync", srv.URL(src), srv.URL(dst), "--name", "ddlstop", "--state-dir", dir, "--log-format", "json", "--progress", "none", "--until", "caught-up"}
	mustFerry(t, append(args, "--ddl", "stop")...)

	srv.Exec(t, src, `ALTER TABLE orders ADD COLUMN coupon text; INSERT INTO orders (id, customer, coupon) VALUES (90001, 1, 'after the change')`)
	r := ferry(t, append(args, "--ddl", "stop")...)
	if r.code != 2 || !strings.Contains(r.stderr, "public.orders") || !strings.Contains(r.stderr, "added coupon") || !strings.Contains(r.stderr, "--ddl apply") {
		t.Fatalf("--ddl stop at an added column: want exit 2 naming the table, the change and --ddl apply, got %s", r)
	}
	if n := queryRows(t, srv, dst, `SELECT id FROM orders WHERE id = 90001`); n != "" {
		t.Fatalf("a row after the change reached the destination: %q", n)
	}
	srv.Exec(t, dst, `ALTER TABLE orders ADD COLUMN coupon text`) // what a team applying its own DDL does
	mustFerry(t, append(args, "--ddl", "apply")...)
	if got := queryRows(t, srv, dst, `SELECT coupon FROM orders WHERE id = 90001`); got != "(\"after the change\")" {
		t.Fatalf("after --ddl apply: %q", got)
	}

	srv.Exec(t, src, `TRUNCATE lines; INSERT INTO lines VALUES (1, 1, 'after', 1)`)
	r = ferry(t, append(args, "--ddl", "stop")...)
	if r.code != 2 || !strings.Contains(r.stderr, "public.lines was truncated") {
		t.Fatalf("--ddl stop at a truncate: want exit 2, got %s", r)
	}
	mustFerry(t, append(args, "--ddl", "apply")...)
	samePG(t, srv, src, dst)
	if r := ferry(t, append(args, "--ddl", "sometimes")...); r.code != 2 || !strings.Contains(r.stderr, "unknown --ddl") {
		t.Fatalf("--ddl sometimes: %s", r)
	}
}
