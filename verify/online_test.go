package verify_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/verify"
)

// stepFlow plays the flow between re-checks: each WaitPassed runs the next
// statement at a side (the flow's repair, or the application's write).
type stepFlow struct {
	t     *testing.T
	db    *sql.DB
	steps []string
	waits int
}

func (f *stepFlow) Head(context.Context) (model.Position, error) { return "head", nil }

func (f *stepFlow) WaitPassed(_ context.Context, _ string, _ int, pos model.Position) error {
	if pos != "head" {
		f.t.Fatalf("waited for %q, not the head read before", pos)
	}
	if f.waits < len(f.steps) {
		if _, err := f.db.Exec(f.steps[f.waits]); err != nil {
			f.t.Fatal(err)
		}
	}
	f.waits++
	return nil
}

func sqliteFile(t *testing.T, stmts ...string) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.sqlite")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path, db
}

func openSource(t *testing.T, path string) connector.Source {
	c, err := connector.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(connector.Source)
}

func verifyOnline(t *testing.T, src, dst connector.Source, f verify.Flow) *verify.Result {
	t.Helper()
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Tables(ctx, src, dst, []verify.Pair{{Source: tables[0], Destination: tables[0].Namespace}},
		verify.Options{MaxDiffs: 5, Online: f, Rechecks: 3})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func TestOnlineRecheckSortsDifferences(t *testing.T) {
	schema := `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`
	srcPath, srcDB := sqliteFile(t, schema, `INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')`)
	dstPath, dstDB := sqliteFile(t, schema, `INSERT INTO t VALUES (1, 'a'), (2, 'old'), (3, 'wrong')`)
	src, dst := openSource(t, srcPath), openSource(t, dstPath)

	// Key 2 is behind: the flow applies it before the first re-check. Key 3
	// was changed at the destination behind the flow's back: it persists.
	f := &stepFlow{t: t, db: dstDB, steps: []string{`UPDATE t SET v = 'b' WHERE id = 2`}}
	r := verifyOnline(t, src, dst, f)
	if r.Equal() || r.DifferentKeys != 1 || len(r.Diffs) != 1 || r.Diffs[0].Key != "id=3" || r.PendingKeys != 0 {
		t.Fatalf("one key behind, one changed at the destination: %+v", r)
	}
	if r.Rechecks != 3 || r.RowsRead == 0 {
		t.Fatalf("a persistent difference is re-checked 3 times, rows counted: %+v", r)
	}

	// Key 3 keeps changing at the source at every re-check: pending, not a
	// difference.
	if _, err := dstDB.Exec(`UPDATE t SET v = 'c' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if _, err := srcDB.Exec(`UPDATE t SET v = 'c0' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	f = &stepFlow{t: t, db: srcDB, steps: []string{`UPDATE t SET v = 'c1' WHERE id = 3`, `UPDATE t SET v = 'c2' WHERE id = 3`, `UPDATE t SET v = 'c3' WHERE id = 3`}}
	r = verifyOnline(t, src, dst, f)
	if !r.Equal() || r.PendingKeys != 1 || len(r.Pending) != 1 || r.Pending[0].Key != "id=3" {
		t.Fatalf("a key changing at every re-check is pending: %+v", r)
	}

	// Everything repaired by the flow: equal, nothing pending.
	f = &stepFlow{t: t, db: dstDB, steps: []string{`UPDATE t SET v = 'c3' WHERE id = 3`}}
	r = verifyOnline(t, src, dst, f)
	if !r.Equal() || r.PendingKeys != 0 || r.Rechecks != 1 {
		t.Fatalf("a difference the flow repairs is not reported: %+v", r)
	}
}

// A re-check reads the differing keys at both sides, not the tables: a
// re-check of 3 keys reads the rows those keys have, counted in RowsRead.
func TestOnlineRecheckReadsOnlyTheKeys(t *testing.T) {
	schema := `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`
	rows := `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000) INSERT INTO t SELECT i, 'v' || i FROM n`
	srcPath, _ := sqliteFile(t, schema, rows)
	dstPath, dstDB := sqliteFile(t, schema, rows,
		`UPDATE t SET v = 'x' WHERE id = 5`, `DELETE FROM t WHERE id = 7`, `INSERT INTO t VALUES (2000, 'extra')`)
	src, dst := openSource(t, srcPath), openSource(t, dstPath)
	r := verifyOnline(t, src, dst, &stepFlow{t: t, db: dstDB})
	if r.DifferentKeys != 3 || r.Rechecks != 3 || r.PendingKeys != 0 {
		t.Fatalf("3 keys changed at the destination: %+v", r)
	}
	// Each side's table twice (bucket sums, then the differing buckets),
	// then per re-check the rows of the 3 keys: 2 at the source (5, 7),
	// 2 at the destination (5, 2000).
	if want := int64(2*2000 + 3*4); r.RowsRead != want {
		t.Fatalf("read %d rows, want %d (the tables twice, then 4 rows per re-check)", r.RowsRead, want)
	}
}
