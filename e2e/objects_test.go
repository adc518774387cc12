package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// appObjects is an application schema with an audit trigger (a plpgsql
// function writing to an audit table), a view calling a SQL function, a
// view over that view, a materialized view with an index, and comments.
const appObjects = `CREATE SCHEMA app;
	CREATE TABLE app.orders (id bigint PRIMARY KEY, qty integer NOT NULL, price numeric(10,2) NOT NULL);
	CREATE TABLE app.audit (id bigserial PRIMARY KEY, order_id bigint NOT NULL, op text NOT NULL);
	CREATE FUNCTION app.log_order() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO app.audit (order_id, op) VALUES (NEW.id, TG_OP); RETURN NEW; END $$;
	COMMENT ON FUNCTION app.log_order() IS 'keeps the audit';
	CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.log_order();
	CREATE FUNCTION app.line_total(qty integer, price numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT qty * price $$;
	CREATE VIEW app.big_orders AS SELECT id, qty, app.line_total(qty, price) AS total FROM app.orders WHERE qty > 2;
	COMMENT ON VIEW app.big_orders IS 'orders worth a look';
	CREATE VIEW app.big_totals AS SELECT qty, sum(total) AS total, count(*) AS n FROM app.big_orders GROUP BY qty;
	CREATE MATERIALIZED VIEW app.daily AS SELECT qty, count(*) AS n FROM app.orders GROUP BY qty;
	CREATE UNIQUE INDEX daily_qty ON app.daily (qty);
	INSERT INTO app.orders SELECT g, g % 7, g * 1.25 FROM generate_series(1, 500) g;`

// A flow of that schema under changes, then ferry cutover: the functions,
// views, materialized view and trigger are created (a view added while the
// flow ran included), pg_dump -s prints the same on both sides, the audit
// table holds exactly the source's audit rows (the trigger fired for no
// copied or applied row), the views return the source's rows, the
// materialized view holds the rows, and the trigger fires for an insert
// made at the destination after the cutover.
func TestCutoverCreatesFunctionsViewsAndTriggersPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "objsrc"), srv.CreateDatabase(t, "objdst")
	srv.Exec(t, src, appObjects)
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--tables", "app.*", "--name", "objects", "--state-dir", t.TempDir()}
	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	// While the flow runs: inserts and updates (each audited at the
	// source), a delete, and a new view.
	srv.Exec(t, src, `INSERT INTO app.orders SELECT g, g % 7, g * 1.25 FROM generate_series(501, 600) g;
		UPDATE app.orders SET qty = qty + 1 WHERE id % 10 = 0;
		DELETE FROM app.orders WHERE id % 13 = 0;
		CREATE VIEW app.recent AS SELECT id FROM app.orders WHERE id > 550;`)
	r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	if want := "2 function(s), 0 procedure(s), 3 view(s), 1 materialized view(s), 1 trigger(s) created, 0 already there"; !strings.Contains(r.stdout, want) {
		t.Fatalf("the report does not say %q:\n%s", want, r)
	}
	t.Logf("the cutover's report:\n%s", r.stdout)
	// The source's materialized view was filled when it was made; the
	// destination's at the cutover, from the copied rows.
	srv.Exec(t, src, `REFRESH MATERIALIZED VIEW app.daily`)
	sameSchema(t, srv, src, dst, "app")
	ctx := context.Background()
	rows := func(db, q string) string { return queryRows(t, srv, db, q) }
	for _, q := range []string{"SELECT * FROM app.audit", "SELECT * FROM app.big_totals", "SELECT * FROM app.daily", "SELECT * FROM app.recent"} {
		if a, b := rows(src, q), rows(dst, q); a != b || b == "" {
			t.Fatalf("%s differs:\n--- source\n%s\n--- destination\n%s", q, a, b)
		}
	}
	// The application moves to the destination: its insert is audited.
	dconn := srv.Connect(t, dst)
	if _, err := dconn.Exec(ctx, `INSERT INTO app.orders VALUES (100000, 3, 2.5)`); err != nil {
		t.Fatal(err)
	}
	var op string
	if err := dconn.QueryRow(ctx, `SELECT op FROM app.audit WHERE order_id = 100000`).Scan(&op); err != nil || op != "INSERT" {
		t.Fatalf("the audit row of an insert at the destination: %q, %v", op, err)
	}
	// A second cutover finds everything there.
	r = mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if want := "0 function(s), 0 procedure(s), 0 view(s), 0 materialized view(s), 0 trigger(s) created, 7 already there"; !strings.Contains(r.stdout, want) {
		t.Fatalf("a second cutover does not say %q:\n%s", want, r)
	}
}

// A view the destination cannot create (a table of its name was made
// there) fails the cutover with the view and the server's error, and
// nothing of the step is left: no function, view or trigger. Once the
// table is gone, the cutover goes through.
func TestCutoverRefusesAViewItCannotCreatePostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "objbadsrc"), srv.CreateDatabase(t, "objbaddst")
	srv.Exec(t, src, appObjects)
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--tables", "app.*", "--name", "objbad", "--state-dir", t.TempDir()}
	mustFerry(t, append([]string{"sync", "--until", "caught-up", "--progress", "none"}, flowArgs...)...)
	srv.Exec(t, dst, `CREATE TABLE app.big_totals (qty integer)`)
	r := ferry(t, append([]string{"cutover"}, flowArgs...)...)
	if r.code != 1 {
		t.Fatalf("ferry cutover exited %d over a table named as a view, want 1:\n%s", r.code, r)
	}
	for _, want := range []string{`create view app.big_totals: ERROR: relation "big_totals" already exists`, "nothing of this step was created"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("ferry cutover exited %d without %q:\n%s", r.code, want, r)
		}
	}
	var n int
	if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'app'::regnamespace)
		+ (SELECT count(*) FROM pg_class WHERE relnamespace = 'app'::regnamespace AND relkind IN ('v', 'm'))
		+ (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass)`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d functions, views and triggers left at the destination (%v), want none", n, err)
	}
	srv.Exec(t, dst, `DROP TABLE app.big_totals`)
	r = mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if want := "2 function(s), 0 procedure(s), 2 view(s), 1 materialized view(s), 1 trigger(s) created"; !strings.Contains(r.stdout, want) {
		t.Fatalf("the cutover after the fix does not say %q:\n%s", want, r)
	}
}

// ferry plan says what the cutover will create, and lists up front a
// function the destination cannot create as the source has it (its
// language is not installed there), with what to run; ferry sync logs it
// when the flow starts.
func TestPlanListsObjectsNotMadeAsTheSources(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "objplansrc"), srv.CreateDatabase(t, "objplandst")
	srv.Exec(t, src, appObjects+`
		CREATE FUNCTION public.fake_handler() RETURNS language_handler AS 'plpgsql', 'plpgsql_call_handler' LANGUAGE c;
		CREATE LANGUAGE fakelang HANDLER public.fake_handler;
		CREATE FUNCTION app.odd() RETURNS int LANGUAGE fakelang AS $$ whatever $$;`)
	r := mustFerry(t, "plan", srv.URL(src), srv.URL(dst), "--tables", "app.*")
	for _, want := range []string{
		"at cutover: 3 function(s), 2 view(s), 1 materialized view(s), 1 trigger(s) created at the destination",
		"function app.odd() (not created): its language fakelang is not installed at the destination; to fix: install language fakelang on the destination server (its package), then CREATE EXTENSION fakelang and run ferry cutover again",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("ferry plan does not say %q:\n%s", want, r)
		}
	}
	// ferry sync says it when the flow starts, too.
	r = mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--tables", "app.*", "--state-dir", t.TempDir(), "--until", "caught-up", "--log-format", "json", "--progress", "none")
	w := r.logLine("at cutover this object will not be created as the source's; run the fix at the destination before")
	if w == nil || w["object"] != "function app.odd()" || !strings.Contains(w["fix"].(string), "CREATE EXTENSION fakelang") {
		t.Fatalf("ferry sync did not warn of function app.odd():\n%s", r)
	}
}
