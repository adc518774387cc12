package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// existingSchema is what a user's migrations made at the destination: a
// child table with a foreign key to its parent and a trigger that writes
// every change to an audit table.
const existingSchema = `CREATE TABLE parent (id int PRIMARY KEY, name text);
	CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id), v text);
	CREATE TABLE plain (id int PRIMARY KEY, v text);
	CREATE TABLE audit (n serial PRIMARY KEY, what text);
	CREATE FUNCTION audit_child() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO audit (what) VALUES (TG_OP || ' ' || NEW.id); RETURN NEW; END $$;
	CREATE TRIGGER child_audit AFTER INSERT OR UPDATE ON child FOR EACH ROW EXECUTE FUNCTION audit_child();
	CREATE FUNCTION audit_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO audit (what) VALUES ('TRUNCATE'); RETURN NULL; END $$;
	CREATE TRIGGER child_emptied AFTER TRUNCATE ON child FOR EACH STATEMENT EXECUTE FUNCTION audit_truncate()`

// tableNamed reads a destination table's schema through the connector.
func tableNamed(t testing.TB, c *postgres.Conn, name string) *model.Table {
	t.Helper()
	tables, err := c.Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range tables {
		if x.Namespace.Table == name {
			return x
		}
	}
	t.Fatalf("no table %s", name)
	return nil
}

// A role that may not set session_replication_role is refused, before
// anything is written, for existing tables whose triggers or foreign keys
// would fire, with the tables, what fires, and the GRANT that fixes it;
// granted SET ON PARAMETER, the same role writes rows no trigger or
// foreign key sees.
func TestExistingTablesWithTriggersNeedTheReplicaRole(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	mustExec(t, db, existingSchema)
	role := p.srv.CreateUser(t, "writer", "pw")
	mustExec(t, db, `GRANT ALL ON DATABASE `+p.dst+` TO `+role+`;
		GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role+`;
		GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+role+`;
		GRANT CREATE ON SCHEMA public TO `+role)
	ctx := context.Background()
	url := p.srv.UserURL(role, "pw", p.dst)

	c := open(t, url)
	child, parent, plain := tableNamed(t, c, "child"), tableNamed(t, c, "parent"), tableNamed(t, c, "plain")
	_, err := c.CheckTables(ctx, []*model.Table{plain, child, parent})
	var ce *errs.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("CheckTables: %v, want a configuration error", err)
	}
	for _, want := range []string{"public.child (triggers child_audit, child_emptied; foreign keys child_parent_id_fkey)", "public.parent (foreign keys child_parent_id_fkey)", "may not set session_replication_role", role} {
		if !strings.Contains(ce.Msg, want) {
			t.Errorf("message lacks %q:\n%s", want, ce.Msg)
		}
	}
	if strings.Contains(ce.Msg, "plain") {
		t.Errorf("message names a table with nothing to fire:\n%s", ce.Msg)
	}
	if want := "GRANT SET ON PARAMETER session_replication_role TO " + role; !strings.Contains(ce.Fix, want) {
		t.Errorf("fix lacks %q:\n%s", want, ce.Fix)
	}
	if _, err := c.CheckTables(ctx, []*model.Table{plain}); err != nil {
		t.Fatalf("a table without triggers or foreign keys: %v", err)
	}

	p.srv.Exec(t, p.dst, `GRANT SET ON PARAMETER session_replication_role TO `+role)
	c = open(t, url)
	if _, err := c.CheckTables(ctx, []*model.Table{plain, child, parent}); err != nil {
		t.Fatalf("CheckTables after the GRANT: %v", err)
	}
	// A child before its parent, as parallel writers may bring them.
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteRows(ctx, &model.RowBatch{Table: child, Partition: "p1", Rows: []model.Row{{int64(1), int64(7), "c"}}}); err != nil {
		t.Fatalf("copy a child before its parent: %v", err)
	}
	a, err := c.OpenApplier(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.ApplyChanges(ctx, &model.ApplyBatch{Tables: []*model.TableChanges{{Table: child, Upserts: []model.Row{{int64(2), int64(8), "d"}, {int64(1), int64(7), "c2"}}}}}); err != nil {
		t.Fatalf("apply children before their parents: %v", err)
	}
	if n := count(t, db, `SELECT count(*) FROM child`); n != 2 {
		t.Fatalf("%d children, want 2", n)
	}
	if n := count(t, db, `SELECT count(*) FROM audit`); n != 0 {
		t.Fatalf("the trigger fired %d times for ferry's rows", n)
	}
	// A flow started over empties the table: its ON TRUNCATE trigger stays silent too.
	if err := c.EmptyTables(ctx, []*model.Table{child}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT (SELECT count(*) FROM child) + (SELECT count(*) FROM audit)`); n != 0 {
		t.Fatalf("after EmptyTables: %d children and audit rows", n)
	}
}

// UniqueTables names the tables with a unique index or an exclusion
// constraint besides the primary key, and only those.
func TestUniqueTablesNamesTablesWithOtherUniqueConstraints(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	mustExec(t, db, `CREATE EXTENSION IF NOT EXISTS btree_gist;
		CREATE TABLE keyonly (id int PRIMARY KEY, v text);
		CREATE TABLE indexed (id int PRIMARY KEY, v text);
		CREATE INDEX ON indexed (v);
		CREATE TABLE uniq (id int PRIMARY KEY, email text UNIQUE);
		CREATE TABLE uidx (id int PRIMARY KEY, a int, b int);
		CREATE UNIQUE INDEX ON uidx (a, b) WHERE a > 0;
		CREATE TABLE excl (id int PRIMARY KEY, r int4range, EXCLUDE USING gist (r WITH &&))`)
	c := open(t, p.dstURL())
	var tables []*model.Table
	for _, n := range []string{"keyonly", "indexed", "uniq", "uidx", "excl"} {
		tables = append(tables, tableNamed(t, c, n))
	}
	got, err := c.UniqueTables(context.Background(), tables)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ns := range got {
		names = append(names, ns.String())
	}
	if strings.Join(names, " ") != "public.uniq public.uidx public.excl" {
		t.Fatalf("UniqueTables: %v", names)
	}
}

// A DEFERRABLE unique constraint is deferred to the commit of the apply
// transaction: two runs that swap a value, each breaking it until the
// other, apply; a non-deferrable one refuses the same. The role may not set
// session_replication_role: in replica mode PostgreSQL skips the deferred
// uniqueness recheck altogether.
func TestApplyDefersDeferrableConstraints(t *testing.T) {
	p := newPair(t)
	db := p.srv.Connect(t, p.dst)
	role := p.srv.CreateUser(t, "owner", "pw")
	mustExec(t, db, `GRANT ALL ON DATABASE `+p.dst+` TO `+role+`;
		GRANT ALL ON SCHEMA public TO `+role+`;
		SET ROLE `+role+`;
		CREATE TABLE d (id int PRIMARY KEY, u text UNIQUE DEFERRABLE);
		CREATE TABLE n (id int PRIMARY KEY, u text UNIQUE);
		INSERT INTO d VALUES (1, 'a'), (2, 'b');
		INSERT INTO n VALUES (1, 'a'), (2, 'b');
		RESET ROLE`)
	c := open(t, p.srv.UserURL(role, "pw", p.dst))
	ctx := context.Background()
	swap := func(tb *model.Table) error {
		a, err := c.OpenApplier(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		return a.ApplyChanges(ctx, &model.ApplyBatch{Tables: []*model.TableChanges{
			{Table: tb, Upserts: []model.Row{{int64(1), "b"}}},
			{Table: tb, Upserts: []model.Row{{int64(2), "a"}}},
		}})
	}
	if err := swap(tableNamed(t, c, "d")); err != nil {
		t.Fatalf("deferrable: %v", err)
	}
	if got := count(t, db, `SELECT count(*) FROM d WHERE (id, u) IN ((1, 'b'), (2, 'a'))`); got != 2 {
		t.Fatalf("deferrable: %d rows swapped", got)
	}
	if err := swap(tableNamed(t, c, "n")); err == nil || !strings.Contains(err.Error(), "unique") {
		t.Fatalf("non-deferrable: %v, want a unique violation", err)
	}
}

// Changes of a table with a unique column besides its key are applied at
// most once: a run resumed from an earlier position (a crash after writer
// 0, which applies them all, committed but before writer 1 did) must not
// replay an old value into the unique column, which another row holds by
// now. A table that becomes such a table between runs (a unique index
// added at the destination) was applied across writers before: its
// changes after the resume position are applied again, not dropped.
func TestUniqueTableChangesApplyOnceAcrossResumes(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	const ddl = `CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE);
		CREATE TABLE later (id int PRIMARY KEY, code text NOT NULL)`
	mustExec(t, src, ddl+`; INSERT INTO accounts SELECT g, 'e' || g FROM generate_series(1, 100) g;
		INSERT INTO later SELECT g, 'c' || g FROM generate_series(1, 100) g`)
	mustExec(t, dst, `CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL UNIQUE)`)
	cfg := flow.Config{Name: "uniqonce", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up", Writers: 3}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	var before string
	if err := dst.QueryRow(context.Background(), `SELECT value FROM _ferry.checkpoints WHERE flow = 'uniqonce' AND key = 'cdc/1'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	// Replayed, the first insert would take x1 back from 2002.
	mustExec(t, src, `INSERT INTO accounts VALUES (2001, 'x1');
		UPDATE accounts SET email = 'x2' WHERE id = 2001;
		INSERT INTO accounts VALUES (2002, 'x1');
		UPDATE later SET code = 'changed' WHERE id = 7`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	// As if writer 1 had not committed: its checkpoint back, and later's
	// change (applied by key before the index came) lost with it.
	mustExec(t, dst, `UPDATE _ferry.checkpoints SET value = $1 WHERE flow = 'uniqonce' AND key = 'cdc/1'`, before)
	mustExec(t, dst, `UPDATE later SET code = 'c7' WHERE id = 7; CREATE UNIQUE INDEX ON later (code)`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatalf("resumed from an earlier position: %v", err)
	}
	sameTable(t, src, dst, "accounts", "id")
	sameTable(t, src, dst, "later", "id")
}
