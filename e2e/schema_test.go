package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// appInsert is the application's insert, relying on every default.
const appInsert = `INSERT INTO app.orders (contact, price, qty) VALUES ('a@example.com', ROW(12.50, 'EUR'), 3)
	RETURNING id, ext, line, big, order_no`

// A PostgreSQL destination ferry creates is the source's schema: pg_dump -s
// prints the same on both sides, the rows are equal (the generated column
// computed by the destination), and after the cutover sets the sequences
// the application's inserts relying on each default succeed with fresh
// numbers.
func TestPostgresDestinationSchemaIsTheSources(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "schsrc"), srv.CreateDatabase(t, "schdst")
	srv.Exec(t, src, pgtest.AppSchema("app")+`
		INSERT INTO app.orders (contact, price, qty, status) SELECT g || '@example.com', ROW(g, 'EUR')::app.price, g % 7, 'paid' FROM generate_series(1, 300) g;`)
	ctx := context.Background()
	sconn, dconn := srv.Connect(t, src), srv.Connect(t, dst)
	dir := t.TempDir()
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--name", "schema", "--state-dir", dir}
	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	// Changes during CDC: inserts relying on the defaults, an update that
	// changes a generated value, a delete.
	for i := 0; i < 20; i++ {
		if _, err := sconn.Exec(ctx, appInsert); err != nil {
			t.Fatal(err)
		}
	}
	srv.Exec(t, src, `UPDATE app.orders SET qty = qty + 1, note = 'changed' WHERE id % 3 = 0; DELETE FROM app.orders WHERE id % 11 = 0`)

	if r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...); !reportPosition.MatchString(r.stdout) {
		t.Fatalf("cutover report:\n%s", r)
	}
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}

	sameSchema(t, srv, src, dst, "app")
	rows := func(db string) string {
		var s string
		if err := srv.Connect(t, db).QueryRow(ctx, `SELECT string_agg(o::text, E'\n' ORDER BY id) FROM app.orders o`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if a, b := rows(src), rows(dst); a != b || !strings.Contains(b, "changed") {
		t.Fatalf("rows differ:\n--- source\n%s\n--- destination\n%s", a, b)
	}

	// The application moves to the destination: each default hands out a
	// number the source has not used.
	var maxID, maxExt, maxLine, maxBig, maxNo int64
	if err := sconn.QueryRow(ctx, `SELECT max(id), max(ext), max(line), max(big), max(order_no) FROM app.orders`).Scan(&maxID, &maxExt, &maxLine, &maxBig, &maxNo); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		var id, ext, line, big, no int64
		if err := dconn.QueryRow(ctx, appInsert).Scan(&id, &ext, &line, &big, &no); err != nil {
			t.Fatalf("the application's insert at the destination: %v", err)
		}
		if id <= maxID || ext <= maxExt || line <= maxLine || big <= maxBig || no <= maxNo {
			t.Fatalf("the destination handed out id %d, ext %d, line %d, big %d, order_no %d; the source had up to %d, %d, %d, %d, %d",
				id, ext, line, big, no, maxID, maxExt, maxLine, maxBig, maxNo)
		}
	}
	var total string
	if err := dconn.QueryRow(ctx, `SELECT total::text FROM app.orders ORDER BY id DESC LIMIT 1`).Scan(&total); err != nil || total != "37.50" {
		t.Fatalf("the generated column of the application's row: %q, %v; want 37.50", total, err)
	}
}

// ferry plan lists a definition the destination cannot make as the
// source's (its function's language is not installed there, so the
// function is not created before the table), with the statement that
// makes it so, and ferry sync logs it.
func TestPlanListsDefinitionsNotMadeAsTheSources(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "unmadesrc"), srv.CreateDatabase(t, "unmadedst")
	srv.Exec(t, src, `CREATE FUNCTION fake_handler() RETURNS language_handler AS 'plpgsql', 'plpgsql_call_handler' LANGUAGE c;
		CREATE LANGUAGE fakelang HANDLER fake_handler;
		CREATE FUNCTION next_label() RETURNS text LANGUAGE fakelang AS $$ BEGIN RETURN 'L'; END $$;
		CREATE TABLE items (id integer PRIMARY KEY, label text DEFAULT public.next_label());
		INSERT INTO items (id) VALUES (1), (2);`)
	fix := "create public.next_label() at the destination, then ALTER TABLE public.items ALTER COLUMN label SET DEFAULT public.next_label()"
	if r := mustFerry(t, "plan", srv.URL(src), srv.URL(dst)); !strings.Contains(r.stdout, fix) {
		t.Fatalf("ferry plan does not give %q:\n%s", fix, r)
	}
	r := mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--state-dir", t.TempDir(), "--until", "caught-up", "--log-format", "json", "--progress", "none")
	if w := r.logLine("the destination column is not created as the source's"); w == nil || w["fix"] != fix {
		t.Fatalf("ferry sync did not log the fix:\n%s", r)
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM items WHERE label = 'L'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows with the source's labels at the destination: %d, %v", n, err)
	}
}
