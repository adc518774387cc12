package verify_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/sqlite"
	"github.com/ferrydb/ferry/verify"
)

// sqliteWith creates a SQLite file by running stmts, and opens it as a source.
func sqliteWith(t *testing.T, stmts ...string) connector.Source {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	db.Close()
	c, err := connector.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(connector.Source)
}

func compare(t *testing.T, a, b connector.Source) *verify.Result {
	t.Helper()
	ctx := context.Background()
	tables, err := a.Tables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables: %v %v", tables, err)
	}
	res, err := verify.Tables(ctx, a, b, []verify.Pair{{Source: tables[0], Destination: tables[0].Namespace}}, verify.Options{MaxDiffs: 5})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestTablesWithoutKeyCompareAsMultisets(t *testing.T) {
	a := sqliteWith(t, `CREATE TABLE t (v TEXT, n INTEGER)`, `INSERT INTO t VALUES ('x', 1), ('x', 1), ('y', 2)`)
	same := sqliteWith(t, `CREATE TABLE t (v TEXT, n INTEGER)`, `INSERT INTO t VALUES ('y', 2), ('x', 1), ('x', 1)`)
	if r := compare(t, a, same); !r.Equal() {
		t.Fatalf("same multiset in another order: %+v", r)
	}
	oneLess := sqliteWith(t, `CREATE TABLE t (v TEXT, n INTEGER)`, `INSERT INTO t VALUES ('x', 1), ('y', 2)`)
	r := compare(t, a, oneLess)
	if r.Equal() || len(r.Diffs) != 1 || r.Diffs[0].Kind != "missing" || r.Diffs[0].Key != "v=x, n=1" {
		t.Fatalf("a duplicate row missing at the destination: %+v", r)
	}
}

func TestDestinationTypesAreReadInTheSourcesTypes(t *testing.T) {
	// The source declares a decimal; the destination stores the same values
	// as plain text with other spellings: equal values must compare equal.
	a := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, price DECIMAL_TEXT(10,2))`, `INSERT INTO t VALUES (1, '1.50'), (2, '3')`)
	b := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, price TEXT)`, `INSERT INTO t VALUES (1, '1.5'), (2, '3.00')`)
	if r := compare(t, a, b); !r.Equal() {
		t.Fatalf("equal decimals spelled differently: %+v", r)
	}
	c := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, price TEXT)`, `INSERT INTO t VALUES (1, '1.51'), (2, '3')`)
	r := compare(t, a, c)
	if r.Equal() || len(r.Diffs) != 1 || r.Diffs[0].Key != "id=1" || r.Diffs[0].Kind != "different" || r.Diffs[0].Columns[0] != "price" {
		t.Fatalf("a changed decimal: %+v", r)
	}
}

func TestMissingTableOrColumnIsAProblem(t *testing.T) {
	a := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`, `INSERT INTO t VALUES (1, 'a')`)
	noCol := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY)`, `INSERT INTO t VALUES (1)`)
	if r := compare(t, a, noCol); r.Equal() || r.Problem != "columns missing at the destination: v" {
		t.Fatalf("missing column: %+v", r)
	}
	noTable := sqliteWith(t, `CREATE TABLE other (id INTEGER PRIMARY KEY)`)
	if r := compare(t, a, noTable); r.Equal() || r.Problem != "table is missing at the destination" {
		t.Fatalf("missing table: %+v", r)
	}
}

func TestDiffListIsBounded(t *testing.T) {
	a := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY)`, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 100) INSERT INTO t SELECT i FROM n`)
	b := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY)`)
	r := compare(t, a, b)
	if len(r.Diffs) != 5 || !r.MoreDiffs || r.SourceRows != 100 || r.DestinationRows != 0 {
		t.Fatalf("100 missing rows with MaxDiffs 5: %d diffs, more=%v, rows %d/%d", len(r.Diffs), r.MoreDiffs, r.SourceRows, r.DestinationRows)
	}
}
