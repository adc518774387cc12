package verify_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ferrydb/ferry/verify"
)

// A table compared in ranges of its buckets, the parts merged, gives the
// result of comparing it whole: the same counts and the same keys listed.
func TestRangesMergeIntoTheWholeTablesResult(t *testing.T) {
	ctx := context.Background()
	rows := `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 300) INSERT INTO t SELECT i, 'v' || i FROM n`
	a := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`, rows)
	b := sqliteWith(t, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`, rows,
		`DELETE FROM t WHERE id IN (3, 77, 150)`, `UPDATE t SET v = 'x' WHERE id IN (10, 200, 299)`, `INSERT INTO t VALUES (1000, 'extra')`)
	tables, err := a.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pairs := []verify.Pair{{Source: tables[0], Destination: tables[0].Namespace}}
	whole, err := verify.Tables(ctx, a, b, pairs, verify.Options{MaxDiffs: 5})
	if err != nil {
		t.Fatal(err)
	}
	nb := whole[0].Buckets
	var parts []*verify.Result
	for _, r := range []verify.Range{{Lo: 0, Hi: 3, Of: nb}, {Lo: 3, Hi: 9, Of: nb}, {Lo: 9, Hi: nb, Of: nb}} {
		res, err := verify.Tables(ctx, a, b, pairs, verify.Options{MaxDiffs: 5, Range: &r})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, res[0])
	}
	merged := verify.Merge(parts, 5)
	// Read through ferry, each range reads the table again: only the reads differ.
	merged.RowsRead, merged.BytesRead = whole[0].RowsRead, whole[0].BytesRead
	x, _ := json.Marshal(merged)
	y, _ := json.Marshal(whole[0])
	if string(x) != string(y) || whole[0].DifferentKeys != 7 || len(whole[0].Diffs) != 5 || !whole[0].MoreDiffs {
		t.Fatalf("merged ranges:\n%s\nwhole table:\n%s", x, y)
	}
}
