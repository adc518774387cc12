package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// constraintsSchema has one of each constraint the cutover builds.
const constraintsSchema = `CREATE SCHEMA app;
	CREATE TABLE app.parent (id bigint PRIMARY KEY, code text, email text, CONSTRAINT parent_code_key UNIQUE (code));
	CREATE UNIQUE INDEX parent_email_live ON app.parent (email) WHERE email IS NOT NULL AND code <> 'gone';
	CREATE UNIQUE INDEX parent_email_lower ON app.parent (lower(email));
	CREATE TABLE app.child (id bigint PRIMARY KEY, parent_id bigint, qty int,
		CONSTRAINT child_parent_fkey FOREIGN KEY (parent_id) REFERENCES app.parent (id) ON DELETE CASCADE DEFERRABLE,
		CONSTRAINT child_qty_positive CHECK (qty > 0));
	INSERT INTO app.parent SELECT g, 'c' || g, 'e' || g || '@x' FROM generate_series(1, 50) g;
	INSERT INTO app.child SELECT g, 1 + g % 50, g FROM generate_series(1, 200) g;`

// constraintDefs lists the unique indexes (valid or not) and the
// constraints but the primary keys of schema app as the server defines
// them, sorted.
func constraintDefs(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var out string
	err := conn.QueryRow(context.Background(), `SELECT COALESCE(string_agg(d, E'\n' ORDER BY d), '') FROM (
		SELECT pg_get_indexdef(i.indexrelid) AS d FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
			WHERE x.relnamespace = 'app'::regnamespace AND i.indisunique AND NOT i.indisprimary
		UNION ALL SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
			WHERE connamespace = 'app'::regnamespace AND contype <> 'p') s`).Scan(&out)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copiedWithoutConstraints copies constraintsSchema's tables with a flow
// (which builds no constraint) and returns the destination and the
// source's constraints.
func copiedWithoutConstraints(t *testing.T) (*pair, *postgres.Conn, []model.Constraint) {
	t.Helper()
	p := newPair(t)
	p.srv.Exec(t, p.src, constraintsSchema)
	cfg := flow.Config{Source: p.srcURL(), Destination: p.dstURL(), Mode: flow.ModeSnapshot, StateDir: t.TempDir(), Tables: []string{"app.*"}}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	cons, err := open(t, p.srcURL()).Constraints(context.Background(), []model.Namespace{{Schema: "app", Table: "parent"}, {Schema: "app", Table: "child"}})
	if err != nil {
		t.Fatal(err)
	}
	return p, open(t, p.dstURL()), cons
}

// A flow copies the tables without their constraints; BuildConstraints
// then builds the source's unique constraint, partial and expression
// unique indexes, foreign key and check as the source defines them, a
// second build finds them there, and the destination refuses rows that
// break them.
func TestBuildConstraintsMatchesTheSourcesSchema(t *testing.T) {
	p, dst, cons := copiedWithoutConstraints(t)
	ctx := context.Background()
	if len(cons) != 5 {
		t.Fatalf("source constraints: %+v, want 5", cons)
	}
	want := constraintDefs(t, p.srv.Connect(t, p.src))
	if strings.Count(want, "\n") != 5 {
		t.Fatalf("source definitions:\n%s", want)
	}
	done, err := dst.BuildConstraints(ctx, cons)
	if err != nil || done.Built != 5 || done.Present != 0 {
		t.Fatalf("BuildConstraints: %+v, %v", done, err)
	}
	conn := p.srv.Connect(t, p.dst)
	if got := constraintDefs(t, conn); got != want {
		t.Fatalf("destination:\n%s\nsource:\n%s", got, want)
	}
	if done, err := dst.BuildConstraints(ctx, cons); err != nil || done.Built != 0 || done.Present != 5 {
		t.Fatalf("second BuildConstraints: %+v, %v; want all 5 present", done, err)
	}
	for _, q := range []string{
		"INSERT INTO app.parent VALUES (100, 'c1', 'new@x')",
		"INSERT INTO app.parent VALUES (100, 'c100', 'E1@X')",
		"INSERT INTO app.child VALUES (1000, 999, 1)",
		"INSERT INTO app.child VALUES (1000, 1, 0)",
	} {
		if _, err := conn.Exec(ctx, q); err == nil {
			t.Errorf("%s: accepted, want it refused", q)
		}
	}
	mustExec(t, conn, "DELETE FROM app.parent WHERE id = 1")
	if n := count(t, conn, "SELECT count(*) FROM app.child WHERE parent_id = 1"); n != 0 {
		t.Errorf("ON DELETE CASCADE: %d children left", n)
	}
}

// A row at the destination that breaks a constraint is refused before
// anything is built: the error names the table, the constraint and the
// key, and no index or constraint is left behind.
func TestBuildConstraintsRefusesAViolationAndBuildsNothing(t *testing.T) {
	p, dst, cons := copiedWithoutConstraints(t)
	ctx := context.Background()
	conn := p.srv.Connect(t, p.dst)
	before := constraintDefs(t, conn)
	for _, c := range []struct{ bad, want string }{
		{"INSERT INTO app.parent VALUES (777, 'c7', 'dup@x')", `table app.parent: constraint parent_code_key cannot be built: (code)=(c7) is held by more than one row`},
		{"INSERT INTO app.child VALUES (777, 4242, 5)", `table app.child: constraint child_parent_fkey cannot be built: the row (id)=(777) has (parent_id)=(4242), which app.parent does not have`},
		{"INSERT INTO app.child VALUES (778, 2, -3)", `table app.child: constraint child_qty_positive cannot be built: the row (id)=(778) fails (qty > 0)`},
	} {
		mustExec(t, conn, c.bad)
		_, err := dst.BuildConstraints(ctx, cons)
		if !errs.IsConfigError(err) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("after %s: %v, want a configuration error containing %q", c.bad, err, c.want)
		}
		if after := constraintDefs(t, conn); after != before {
			t.Fatalf("after a refused build:\n%s\nbefore:\n%s", after, before)
		}
		mustExec(t, conn, "DELETE FROM app.child WHERE id >= 777; DELETE FROM app.parent WHERE id = 777")
	}
}

// A partitioned destination table (here one the user created before the
// flow) gets its constraints too: the unique constraint and index built
// per partition and tied to the table's (PostgreSQL refuses CONCURRENTLY
// and USING INDEX on a partitioned table), the foreign key and the check
// without NOT VALID.
func TestBuildConstraintsOnAPartitionedTable(t *testing.T) {
	p := newPair(t)
	const tables = `CREATE SCHEMA app;
		CREATE TABLE app.parent (id bigint PRIMARY KEY);
		CREATE TABLE app.events (id bigint, tenant int, code text, parent_id bigint, qty int, PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
		CREATE TABLE app.events_1 PARTITION OF app.events FOR VALUES IN (1);
		CREATE TABLE app.events_2 PARTITION OF app.events FOR VALUES IN (2);`
	p.srv.Exec(t, p.src, tables+`
		ALTER TABLE app.events ADD CONSTRAINT events_code_key UNIQUE (tenant, code);
		CREATE UNIQUE INDEX events_qty_code ON app.events (tenant, qty, code);
		ALTER TABLE app.events ADD CONSTRAINT events_parent_fkey FOREIGN KEY (parent_id) REFERENCES app.parent (id);
		ALTER TABLE app.events ADD CONSTRAINT events_qty_positive CHECK (qty > 0);`)
	p.srv.Exec(t, p.dst, tables+`CREATE INDEX events_code_key ON app.events (tenant, code);
		INSERT INTO app.parent VALUES (1); INSERT INTO app.events VALUES (1, 1, 'a', 1, 1), (2, 2, 'a', 1, 1);`)
	cons, err := open(t, p.srcURL()).Constraints(context.Background(), []model.Namespace{{Schema: "app", Table: "events"}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := open(t, p.dstURL()).BuildConstraints(context.Background(), cons)
	if err != nil || done.Built != 4 {
		t.Fatalf("BuildConstraints: %+v, %v; want 4 built", done, err)
	}
	want := constraintDefs(t, p.srv.Connect(t, p.src))
	if got := constraintDefs(t, p.srv.Connect(t, p.dst)); got != want {
		t.Fatalf("destination:\n%s\nsource:\n%s", got, want)
	}
}

// A check the source holds NOT VALID (old rows break it) is copied NOT
// VALID, rows and all, instead of refused.
func TestBuildConstraintsKeepsNotValidAsTheSource(t *testing.T) {
	p := newPair(t)
	p.srv.Exec(t, p.src, `CREATE SCHEMA app; CREATE TABLE app.t (id bigint PRIMARY KEY, qty int);
		INSERT INTO app.t VALUES (1, -1); ALTER TABLE app.t ADD CONSTRAINT t_qty_positive CHECK (qty > 0) NOT VALID;`)
	cfg := flow.Config{Source: p.srcURL(), Destination: p.dstURL(), Mode: flow.ModeSnapshot, StateDir: t.TempDir(), Tables: []string{"app.t"}}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	cons, err := open(t, p.srcURL()).Constraints(context.Background(), []model.Namespace{{Schema: "app", Table: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, p.dstURL()).BuildConstraints(context.Background(), cons); err != nil {
		t.Fatal(err)
	}
	want := constraintDefs(t, p.srv.Connect(t, p.src))
	if got := constraintDefs(t, p.srv.Connect(t, p.dst)); got != want || !strings.HasSuffix(want, "NOT VALID") {
		t.Fatalf("destination:\n%s\nsource:\n%s", got, want)
	}
}
