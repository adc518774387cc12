package e2e

// Small input checks (issue 14): a --rename without a schema, column names
// a destination cannot tell apart, and source types a destination holds as
// text.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// noFlowLeftAtSource fails when the source database holds a replication
// slot or a publication: a refused flow must leave none behind.
func noFlowLeftAtSource(t *testing.T, srv *pgtest.Server, db string) {
	t.Helper()
	conn := srv.Connect(t, db)
	var slots, pubs int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()),
		(SELECT count(*) FROM pg_publication)`).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if slots != 0 || pubs != 0 {
		t.Fatalf("the refused flow left %d replication slot(s) and %d publication(s) at the source", slots, pubs)
	}
}

// TestPostgresRenameWithoutSchema: --rename a=b names public.a as --tables a
// would, and its rows (copied, then changed) land in public.b; a name two
// schemas hold is refused, listing both, before anything is written.
func TestPostgresRenameWithoutSchema(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "rensrc"), srv.CreateDatabase(t, "rendst")
	srv.Exec(t, src, `CREATE TABLE a (id int PRIMARY KEY, v text);
		INSERT INTO a SELECT g, 'row ' || g FROM generate_series(1, 50) g;
		CREATE SCHEMA other;
		CREATE TABLE public.c (id int PRIMARY KEY); CREATE TABLE other.c (id int PRIMARY KEY)`)
	dir := t.TempDir()

	t.Run("name in two schemas", func(t *testing.T) {
		for _, cmd := range [][]string{
			{"sync", srv.URL(src), srv.URL(dst), "--state-dir", dir, "--rename", "c=d"},
			{"plan", srv.URL(src), "--rename", "c=d"},
		} {
			r := ferry(t, cmd...)
			if r.code != 2 {
				t.Fatalf("ferry %s: want exit 2, got %s", cmd[0], r)
			}
			for _, w := range []string{"--rename c=d", "other.c, public.c", "--rename other.c=d"} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("ferry %s: stderr lacks %q:\n%s", cmd[0], w, r.stderr)
				}
			}
		}
		noFlowLeftAtSource(t, srv, src)
		var n int
		if err := srv.Connect(t, dst).QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
			WHERE n.nspname IN ('_ferry', 'other') OR c.relname IN ('a', 'c', 'd')`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("something was written at the destination (%d objects, %v)", n, err)
		}
	})

	t.Run("unqualified name", func(t *testing.T) {
		p := mustFerry(t, "plan", srv.URL(src), "--tables", "a", "--rename", "a=b")
		if !strings.Contains(p.stdout, "public.a") {
			t.Fatalf("plan: %s", p)
		}
		bg := startFerry(t, "sync", srv.URL(src), srv.URL(dst), "--state-dir", dir, "--tables", "a", "--rename", "a=b",
			"--log-format", "json", "--progress", "none")
		if !bg.waitFor(t, "change data capture starting", 60e9) {
			t.Fatalf("the flow did not reach CDC:\n%s", bg.stderr.String())
		}
		srv.Exec(t, src, `UPDATE a SET v = 'changed' WHERE id = 7; INSERT INTO a VALUES (51, 'new')`)
		bg.signal(t, os.Interrupt)
		mustFerry(t, "sync", srv.URL(src), srv.URL(dst), "--state-dir", dir, "--tables", "a", "--rename", "a=b", "--until", "caught-up")
		rows := readPGRows(t, srv, dst, `SELECT id::text, v FROM public.b`, 2)
		if len(rows) != 51 || rows["7"][1] != "changed" || rows["51"][1] != "new" || rows["1"][1] != "row 1" {
			t.Fatalf("public.b at the destination: %d rows, 7=%v 51=%v", len(rows), rows["7"], rows["51"])
		}
		v := mustFerry(t, "verify", srv.URL(src), srv.URL(dst), "--tables", "a", "--rename", "a=b")
		if !strings.Contains(v.stdout, "equal") {
			t.Fatalf("verify: %s", v)
		}
	})
}

// TestPostgresColumnsDifferingInCaseIntoSQLite: "ID" and "Id" are two
// PostgreSQL columns and one SQLite column; the flow is refused before
// anything is written, naming the table and the columns.
func TestPostgresColumnsDifferingInCaseIntoSQLite(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "casesrc")
	srv.Exec(t, src, `CREATE TABLE people ("ID" int PRIMARY KEY, "Id" text); INSERT INTO people VALUES (1, 'x');
		CREATE TABLE fine (id int PRIMARY KEY)`)
	dir := t.TempDir()
	db := filepath.Join(dir, "people.db")
	for _, cmd := range [][]string{
		{"sync", srv.URL(src), "sqlite://" + db, "--state-dir", dir},
		{"plan", srv.URL(src), "sqlite://" + db},
	} {
		r := ferry(t, cmd...)
		if r.code != 2 {
			t.Fatalf("ferry %s: want exit 2, got %s", cmd[0], r)
		}
		for _, w := range []string{"public.people", `columns "ID" and "Id"`, "SQLite", "--tables '!public.people'"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("ferry %s: stderr lacks %q:\n%s", cmd[0], w, r.stderr)
			}
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("ferry %s created the SQLite file", cmd[0])
		}
	}
	noFlowLeftAtSource(t, srv, src)
	// Without the table the flow runs.
	mustFerry(t, "sync", srv.URL(src), "sqlite://"+db, "--state-dir", dir, "--tables", "!people", "--mode", "snapshot")
}

// TestPostgresTextFormTypesIntoSQLite: hstore and citext have no SQLite
// type; they become TEXT holding their text form, and both the flow's log
// and ferry plan say so per column.
func TestPostgresTextFormTypesIntoSQLite(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "hstoresrc")
	srv.Exec(t, src, `CREATE EXTENSION hstore; CREATE EXTENSION citext;
		CREATE TABLE tags (id int PRIMARY KEY, attrs hstore, email citext, note text);
		INSERT INTO tags VALUES (1, 'a=>1, b=>2', 'Ann@Example.com', 'plain')`)
	dir := t.TempDir()
	db := filepath.Join(dir, "tags.db")
	wants := []string{"public.tags, column attrs: hstore becomes TEXT", "public.tags, column email: citext becomes TEXT"}

	p := mustFerry(t, "plan", srv.URL(src), "sqlite://"+db)
	for _, w := range wants {
		if !strings.Contains(p.stdout, w) {
			t.Errorf("ferry plan lacks %q:\n%s", w, p.stdout)
		}
	}
	if strings.Contains(p.stdout, "column note") || strings.Contains(p.stdout, "column id") {
		t.Errorf("ferry plan warns of a column that keeps its type:\n%s", p.stdout)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("ferry plan created the SQLite file")
	}
	pj := mustFerry(t, "plan", srv.URL(src), "sqlite://"+db, "--json")
	if !strings.Contains(pj.stdout, `"conversions"`) || !strings.Contains(pj.stdout, `"from": "hstore"`) {
		t.Errorf("ferry plan --json lacks the conversions:\n%s", pj.stdout)
	}

	r := mustFerry(t, "sync", srv.URL(src), "sqlite://"+db, "--state-dir", dir, "--mode", "snapshot", "--log-format", "json")
	found := map[string]bool{}
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, "text form") {
			for _, col := range []string{`"column":"attrs","type":"hstore","becomes":"TEXT"`, `"column":"email","type":"citext","becomes":"TEXT"`} {
				if strings.Contains(line, col) && strings.Contains(line, `"table":"public.tags"`) {
					found[col] = true
				}
			}
		}
	}
	if len(found) != 2 {
		t.Errorf("the log warns of %d of the 2 columns:\n%s", len(found), r.stderr)
	}
	var attrs, email string
	if err := openSQLite(t, db).QueryRow(`SELECT attrs, email FROM tags WHERE id = 1`).Scan(&attrs, &email); err != nil {
		t.Fatal(err)
	}
	if attrs != `"a"=>"1", "b"=>"2"` || email != "Ann@Example.com" {
		t.Fatalf("SQLite holds attrs %q, email %q", attrs, email)
	}
}

// TestPostgresAddedTextFormColumnIntoSQLite: an hstore column added at the
// source during CDC becomes TEXT at SQLite, and the log says so as it does
// for the flow's first tables.
func TestPostgresAddedTextFormColumnIntoSQLite(t *testing.T) {
	srv := pgtest.Shared(t)
	src := srv.CreateDatabase(t, "addhstoresrc")
	srv.Exec(t, src, `CREATE EXTENSION hstore; CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one')`)
	dir := t.TempDir()
	db := filepath.Join(dir, "items.db")
	bg := startFerry(t, "sync", srv.URL(src), "sqlite://"+db, "--state-dir", dir, "--log-format", "json", "--progress", "none")
	if !bg.waitFor(t, "change data capture starting", 60*time.Second) {
		t.Fatalf("CDC never started:\n%s", bg.stderr.String())
	}
	srv.Exec(t, src, `ALTER TABLE items ADD COLUMN attrs hstore; UPDATE items SET attrs = 'k=>v' WHERE id = 1`)
	if !bg.waitFor(t, "applied schema change", 30*time.Second) {
		t.Fatalf("the added column was not applied:\n%s", bg.stderr.String())
	}
	warned := func() bool {
		return strings.Contains(bg.stderr.String(), `"table":"public.items","column":"attrs","type":"hstore","becomes":"TEXT"`)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !warned() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !warned() {
		t.Errorf("no warning for the added hstore column:\n%s", bg.stderr.String())
	}
	if strings.Contains(bg.stderr.String(), `"column":"name","type"`) {
		t.Errorf("a warning for a column that keeps its type:\n%s", bg.stderr.String())
	}
	bg.signal(t, os.Interrupt)
}
