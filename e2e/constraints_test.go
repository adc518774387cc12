package e2e

import (
	"context"
	"errors"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// appConstraints is an application schema with a unique constraint, a
// partial and an expression unique index, a foreign key with an action
// and a check.
const appConstraints = `CREATE SCHEMA app;
	CREATE TABLE app.parent (id bigint PRIMARY KEY, code text, email text, CONSTRAINT parent_code_key UNIQUE (code));
	CREATE UNIQUE INDEX parent_email_live ON app.parent (email) WHERE email IS NOT NULL AND code <> 'gone';
	CREATE UNIQUE INDEX parent_email_lower ON app.parent (lower(email));
	CREATE TABLE app.child (id bigint PRIMARY KEY, parent_id bigint, qty int,
		CONSTRAINT child_parent_fkey FOREIGN KEY (parent_id) REFERENCES app.parent (id) ON DELETE CASCADE,
		CONSTRAINT child_qty_positive CHECK (qty > 0));
	INSERT INTO app.parent SELECT g, 'c' || g, 'e' || g || '@x' FROM generate_series(1, 2000) g;
	INSERT INTO app.child SELECT g, 1 + g % 2000, g FROM generate_series(1, 5000) g;`

// dumpConstraints is what pg_dump --schema-only prints of schema app's
// unique indexes and constraints (primary keys aside), one statement a
// line, sorted.
func dumpConstraints(t *testing.T, srv *pgtest.Server, db string) []string {
	t.Helper()
	out, err := exec.Command("/usr/lib/postgresql/15/bin/pg_dump", "--schema-only", "--no-owner", "--no-privileges",
		"--schema=app", "--dbname="+srv.URL(db)).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	var got []string
	for _, stmt := range strings.Split(string(out), ";\n") {
		if i := strings.Index(stmt, "CREATE TABLE"); i >= 0 {
			// Valid checks are printed inside the table's statement.
			for _, line := range strings.Split(stmt[i:], "\n") {
				if line = strings.TrimSpace(line); strings.HasPrefix(line, "CONSTRAINT ") {
					got = append(got, strings.TrimSuffix(line, ","))
				}
			}
			continue
		}
		flat := strings.Join(strings.Fields(stmt), " ")
		for _, start := range []string{"CREATE UNIQUE INDEX", "ALTER TABLE ONLY"} {
			if i := strings.Index(flat, start); i >= 0 && !strings.Contains(flat, "PRIMARY KEY") && !strings.Contains(flat, "OWNER TO") {
				got = append(got, flat[i:])
			}
		}
	}
	sort.Strings(got)
	return got
}

// A flow of that schema under changes, then ferry cutover: pg_dump prints
// the same unique indexes and constraints on both sides (a check added at
// the source while the flow ran included), and the destination refuses a
// row that breaks the foreign key or a unique index.
func TestCutoverBuildsTheSourcesConstraintsPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "consrc"), srv.CreateDatabase(t, "condst")
	srv.Exec(t, src, appConstraints)
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--tables", "app.*", "--name", "cons", "--state-dir", t.TempDir()}
	sync := startFerry(t, append([]string{"sync", "--log-format", "json", "--progress", "none"}, flowArgs...)...)
	if !sync.waitFor(t, "change data capture starting", time.Minute) {
		t.Fatalf("ferry sync did not reach CDC:\n%s", sync.stderr.String())
	}
	// While the flow runs: a unique value moves from one row to another (a
	// unique index at the destination would have stopped the flow), a
	// parent and its child arrive, a parent is deleted with its children,
	// and the source gains a check.
	srv.Exec(t, src, `BEGIN; UPDATE app.parent SET code = 'tmp' WHERE id = 1; UPDATE app.parent SET code = 'c1' WHERE id = 2;
		UPDATE app.parent SET code = 'c2' WHERE id = 1; COMMIT;
		INSERT INTO app.parent VALUES (3000, 'c3000', 'new@x'); INSERT INTO app.child VALUES (9000, 3000, 7);
		DELETE FROM app.parent WHERE id = 5;
		ALTER TABLE app.child ADD CONSTRAINT child_qty_small CHECK (qty < 100000);`)
	want := dumpConstraints(t, srv, src)
	if len(want) != 6 {
		t.Fatalf("the source's dump has %d constraint statements, want 6:\n%s", len(want), strings.Join(want, "\n"))
	}
	t.Logf("the source's constraints, as pg_dump prints them:\n%s", strings.Join(want, "\n"))
	r := mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if code := sync.waitExit(t, time.Minute); code != 0 {
		t.Fatalf("ferry sync exited %d after the cutover:\n%s", code, tail(sync.stderr.String(), 30))
	}
	if !strings.Contains(r.stdout+r.stderr, "6 constraint(s) built, 0 already there") {
		t.Fatalf("the report does not say the schema step built 6 constraints:\n%s", r)
	}
	if got := dumpConstraints(t, srv, dst); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("pg_dump of the destination:\n%s\nof the source:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	conn := srv.Connect(t, dst)
	ctx := context.Background()
	for _, c := range []struct{ q, state string }{
		{"INSERT INTO app.child VALUES (100000, 999999, 1)", "23503"},
		{"INSERT INTO app.parent VALUES (100000, 'c1', 'x@x')", "23505"},
		{"INSERT INTO app.parent VALUES (100000, 'c0', 'E10@X')", "23505"},
		{"INSERT INTO app.child VALUES (100000, 1, 0)", "23514"},
		{"INSERT INTO app.parent VALUES (100000, 'new', 'fresh@x')", ""},
		{"INSERT INTO app.child VALUES (100000, 100000, 1)", ""},
	} {
		_, err := conn.Exec(ctx, c.q)
		if got := pgState(err); got != c.state {
			t.Errorf("%s at the destination: %v, want SQLSTATE %q", c.q, err, c.state)
		}
	}
	// A second cutover finds everything there.
	r = mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if !strings.Contains(r.stdout+r.stderr, "0 constraint(s) built, 6 already there") {
		t.Fatalf("a second cutover:\n%s", r)
	}
}

// A row the destination holds that breaks a constraint (written there
// directly) fails the cutover with the table, the constraint and the key,
// and nothing is left half-built: no index, INVALID or not, no constraint.
func TestCutoverRefusesAConstraintViolationPostgres(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "conbadsrc"), srv.CreateDatabase(t, "conbaddst")
	srv.Exec(t, src, appConstraints)
	flowArgs := []string{srv.URL(src) + "&heartbeat=1s", srv.URL(dst), "--tables", "app.*", "--name", "conbad", "--state-dir", t.TempDir()}
	mustFerry(t, append([]string{"sync", "--until", "caught-up", "--progress", "none"}, flowArgs...)...)
	srv.Exec(t, dst, `INSERT INTO app.parent VALUES (5000, 'c42', 'dup@x')`)
	before := catalogOf(t, srv, dst)
	r := ferry(t, append([]string{"cutover"}, flowArgs...)...)
	if r.code == 0 {
		t.Fatalf("ferry cutover exited 0 over a duplicate at the destination:\n%s", r)
	}
	if want := "table app.parent: constraint parent_code_key cannot be built: (code)=(c42) is held by more than one row"; !strings.Contains(r.stderr, want) {
		t.Fatalf("ferry cutover exited %d without %q:\n%s", r.code, want, r)
	}
	if after := catalogOf(t, srv, dst); after != before {
		t.Fatalf("indexes and constraints after the refused cutover:\n%s\nbefore:\n%s", after, before)
	}
	// Fixed at the destination, the cutover goes through.
	srv.Exec(t, dst, `DELETE FROM app.parent WHERE id = 5000`)
	r = mustFerry(t, append([]string{"cutover"}, flowArgs...)...)
	if !strings.Contains(r.stdout+r.stderr, "5 constraint(s) built") {
		t.Fatalf("the cutover after the fix:\n%s", r)
	}
}

// catalogOf lists schema app's indexes (valid or not, unique or not) and
// constraints.
func catalogOf(t *testing.T, srv *pgtest.Server, db string) string {
	t.Helper()
	var out string
	err := srv.Connect(t, db).QueryRow(context.Background(), `SELECT string_agg(x, E'\n' ORDER BY x) FROM (
		SELECT 'index ' || c.relname || ' valid=' || i.indisvalid || ' unique=' || i.indisunique AS x
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 'app'::regnamespace
		UNION ALL SELECT 'constraint ' || conname FROM pg_constraint WHERE connamespace = 'app'::regnamespace) s`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgState is the SQLSTATE of a server error, "" for none.
func pgState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
