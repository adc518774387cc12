package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestCreateTablesKeepsDefinitions: a table created from a PostgreSQL
// source's definitions dumps (pg_dump -s) as the source's does.
func TestCreateTablesKeepsDefinitions(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, pgtest.AppSchema("shop"))
	src, dst := open(t, p.srcURL()), open(t, p.dstURL())
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.CreateTables(ctx, tables); err != nil {
		t.Fatal(err)
	}
	want, got := p.srv.SchemaDump(t, p.src, "shop"), p.srv.SchemaDump(t, p.dst, "shop")
	if got != want {
		t.Fatalf("the destination's schema differs from the source's:\n--- source\n%s\n--- destination\n%s", want, got)
	}
}

// TestIdentityAlwaysColumnsTakeCopiesAndChanges: an identity ALWAYS column
// refuses values an INSERT or UPDATE gives it unless told otherwise; the
// copy and every change reach it with the source's values, in and out of
// the key.
func TestIdentityAlwaysColumnsTakeCopiesAndChanges(t *testing.T) {
	p := newPair(t)
	src, dst := p.srv.Connect(t, p.src), p.srv.Connect(t, p.dst)
	mustExec(t, src, `CREATE SCHEMA shop;
		CREATE TABLE shop.keyed (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
		CREATE TABLE shop.unkeyed (k text PRIMARY KEY, n bigint GENERATED ALWAYS AS IDENTITY, v text);
		INSERT INTO shop.keyed (v) SELECT 'old' FROM generate_series(1, 50);
		INSERT INTO shop.unkeyed (k, v) SELECT 'k' || g, 'old' FROM generate_series(1, 50) g;`)
	// Outside the key the column is made BY DEFAULT, and ferry plan says so
	// with the statement to run after the cutover.
	tables, err := open(t, p.srcURL()).Tables(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conv, err := open(t, p.dstURL()).CheckTables(context.Background(), tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(conv) != 1 || conv[0].Column != "n" || conv[0].Fix != "after the cutover: ALTER TABLE shop.unkeyed ALTER COLUMN n SET GENERATED ALWAYS" {
		t.Fatalf("CheckTables: %v, want shop.unkeyed.n made BY DEFAULT", conv)
	}
	cfg := flow.Config{Name: "identity", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	mustExec(t, src, `INSERT INTO shop.keyed (v) VALUES ('new'), ('new');
		UPDATE shop.keyed SET v = 'changed' WHERE id <= 5;
		UPDATE shop.keyed SET id = DEFAULT WHERE id = 7;
		INSERT INTO shop.unkeyed (k, v) VALUES ('new1', 'new'), ('new2', 'new');
		UPDATE shop.unkeyed SET v = 'changed' WHERE k IN ('k1', 'k2');
		UPDATE shop.unkeyed SET n = DEFAULT WHERE k = 'k3';
		DELETE FROM shop.unkeyed WHERE k = 'k4';`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "shop.keyed", "id")
	sameTable(t, src, dst, "shop.unkeyed", "k")
}

// TestDefinitionsNeedingMissingFunctions: a default and a generated column
// calling a function the destination lacks and cannot create before the
// table (its language is not installed there), and a collation it lacks,
// are left out of the table, which is still created and copied into;
// CheckTables (ferry plan, and the log) lists each with the statement that makes it the source's, and once the
// user has run them pg_dump -s prints the same on both sides.
func TestDefinitionsNeedingMissingFunctions(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	fn := `CREATE SCHEMA IF NOT EXISTS app;
		CREATE FUNCTION public.fake_handler() RETURNS language_handler AS 'plpgsql', 'plpgsql_call_handler' LANGUAGE c;
		CREATE LANGUAGE fakelang HANDLER public.fake_handler;
		CREATE FUNCTION app.code(n integer) RETURNS text LANGUAGE fakelang IMMUTABLE AS $$ BEGIN RETURN 'C-' || n; END $$;
		CREATE COLLATION app.german (provider = icu, locale = 'de');`
	p.srv.Exec(t, p.src, fn+`
		CREATE TABLE app.items (id integer PRIMARY KEY, label text DEFAULT app.code(0),
			name text COLLATE app.german, code text GENERATED ALWAYS AS (app.code(id)) STORED);
		INSERT INTO app.items (id) SELECT generate_series(1, 20);`)
	tables, err := open(t, p.srcURL()).Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dst := open(t, p.dstURL())
	conv, err := dst.CheckTables(ctx, tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(conv) != 3 {
		t.Fatalf("CheckTables: %v, want label, code and name", conv)
	}
	cfg := flow.Config{Name: "funcs", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up"}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	src, dconn := p.srv.Connect(t, p.src), p.srv.Connect(t, p.dst)
	sameTable(t, src, dconn, "app.items", "id")
	mustExec(t, dconn, fn)
	for _, c := range conv {
		_, stmt, ok := strings.Cut(c.Fix, ", then ")
		if !ok {
			t.Fatalf("%s: no statement", c)
		}
		mustExec(t, dconn, stmt)
	}
	if want, got := p.srv.SchemaDump(t, p.src, "app"), p.srv.SchemaDump(t, p.dst, "app"); got != want {
		t.Fatalf("after the listed statements the schemas differ:\n--- source\n%s\n--- destination\n%s", want, got)
	}
	// A new session: the statements changed the table's row type.
	sameTable(t, src, p.srv.Connect(t, p.dst), "app.items", "id")
}

// TestRenamedTableKeepsItsSequences: a table moved to another schema by
// --rename takes its serial's and identity's sequences along, its defaults
// point at them, and they are where the cutover sets them (by owner, in the
// table's destination schema), so the application's next insert there
// collides with no copied row.
func TestRenamedTableKeepsItsSequences(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.srv.Exec(t, p.src, `CREATE SCHEMA shop;
		CREATE TABLE shop.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, line serial, v text);
		INSERT INTO shop.orders (v) SELECT 'old' FROM generate_series(1, 30);`)
	cfg := flow.Config{Name: "moved", Source: p.srcURL(), Destination: p.dstURL(), StateDir: t.TempDir(), Until: "caught-up",
		Rename: []string{"shop.*=archive.*"}}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	dconn := p.srv.Connect(t, p.dst)
	var idSeq, lineSeq string
	if err := dconn.QueryRow(ctx, `SELECT pg_get_serial_sequence('archive.orders', 'id'), pg_get_serial_sequence('archive.orders', 'line')`).Scan(&idSeq, &lineSeq); err != nil {
		t.Fatal(err)
	}
	if idSeq != "archive.orders_id_seq" || lineSeq != "archive.orders_line_seq" {
		t.Fatalf("the destination's sequences are %q and %q, want them in schema archive", idSeq, lineSeq)
	}
	seqs, err := open(t, p.srcURL()).Sequences(ctx, []string{"shop"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seqs {
		// As engine.destinationSequences names an owned sequence.
		seqs[i].Owner.Schema, seqs[i].Name.Schema = "archive", "archive"
	}
	missing, err := open(t, p.dstURL()).SetSequences(ctx, seqs)
	if err != nil || len(missing) > 0 || len(seqs) != 2 {
		t.Fatalf("SetSequences of %v: missing %v, %v", seqs, missing, err)
	}
	var id, line int64
	if err := dconn.QueryRow(ctx, `INSERT INTO archive.orders (v) VALUES ('app') RETURNING id, line`).Scan(&id, &line); err != nil || id != 31 || line != 31 {
		t.Fatalf("the application's insert got id %d, line %d (%v); want 31, 31", id, line, err)
	}
}
