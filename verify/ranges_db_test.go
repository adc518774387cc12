package verify_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/mysql"
	_ "github.com/ferrydb/ferry/connectors/postgres"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/verify"
)

// rangesEqualWhole compares the one table of src and dst whole, then in
// three ranges of its buckets merged: with pushdown (each database hashes
// only the range's buckets) the results are the same. (The reads differ:
// each range's totals are read first, and its buckets only when they
// differ.)
func rangesEqualWhole(t *testing.T, srcURL, dstURL string, differ int) {
	t.Helper()
	ctx := context.Background()
	open := func(u string) connector.Source {
		c, err := connector.Open(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(connector.Source)
	}
	src, dst := open(srcURL), open(dstURL)
	tables, err := src.Tables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables: %v %v", tables, err)
	}
	pairs := []verify.Pair{{Source: tables[0], Destination: tables[0].Namespace}}
	whole, err := verify.Tables(ctx, src, dst, pairs, verify.Options{MaxDiffs: 5})
	if err != nil {
		t.Fatal(err)
	}
	nb := whole[0].Buckets
	var parts []*verify.Result
	for _, r := range []verify.Range{{Lo: 0, Hi: 1, Of: nb}, {Lo: 1, Hi: nb / 2, Of: nb}, {Lo: nb / 2, Hi: nb, Of: nb}} {
		res, err := verify.Tables(ctx, src, dst, pairs, verify.Options{MaxDiffs: 5, Range: &r})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, res[0])
	}
	merged := verify.Merge(parts, 5)
	merged.RowsRead, merged.BytesRead = whole[0].RowsRead, whole[0].BytesRead
	x, _ := json.Marshal(merged)
	y, _ := json.Marshal(whole[0])
	if string(x) != string(y) || !whole[0].Pushdown || whole[0].DifferentKeys != differ {
		t.Fatalf("merged ranges:\n%s\nwhole table:\n%s", x, y)
	}
}

func TestPostgresRangesHashOnlyTheirBuckets(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "rgsrc"), srv.CreateDatabase(t, "rgdst")
	schema := `CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 3000) g`
	srv.Exec(t, src, schema)
	srv.Exec(t, dst, schema+`; DELETE FROM t WHERE id IN (3, 1500); UPDATE t SET v = 'x' WHERE id IN (10, 2999); INSERT INTO t VALUES (5000, 'extra')`)
	rangesEqualWhole(t, srv.URL(src), srv.URL(dst), 5)
}

func TestMariaDBRangesHashOnlyTheirBuckets(t *testing.T) {
	if !mysqltest.Available() {
		t.Skip("MariaDB is not installed (Debian package mariadb-server)")
	}
	s := mysqltest.Shared(t)
	src, dst := s.CreateDatabase(t, "rgsrc"), s.CreateDatabase(t, "rgdst")
	for _, db := range []string{src, dst} {
		s.Exec(t, "CREATE TABLE `"+db+"`.t (id bigint PRIMARY KEY, v varchar(20))",
			"INSERT INTO `"+db+"`.t SELECT seq, CONCAT('v', seq) FROM `"+db+"`.seq_1_to_3000")
	}
	s.Exec(t, "DELETE FROM `"+dst+"`.t WHERE id IN (3, 1500)", "UPDATE `"+dst+"`.t SET v = 'x' WHERE id IN (10, 2999)",
		"INSERT INTO `"+dst+"`.t VALUES (5000, 'extra')")
	rangesEqualWhole(t, s.URL(src), s.URL(dst), 5)
}

// totalsAgreeWithBuckets checks, on src's one table, that each database's
// total of a range of buckets is the sum of those buckets (what verify's
// shortcut for equal tables relies on), and that verifying two equal
// tables reads the totals alone: one hash sum a side, no bucket.
func totalsAgreeWithBuckets(t *testing.T, srcURL, dstURL string) {
	t.Helper()
	ctx := context.Background()
	c, err := connector.Open(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tables, err := c.(connector.Source).Tables(ctx)
	if err != nil || len(tables) != 1 {
		t.Fatalf("tables: %v %v", tables, err)
	}
	tb := tables[0]
	var cols []string
	for _, col := range tb.Columns {
		cols = append(cols, col.Name)
	}
	h, th := c.(connector.RowHasher), c.(connector.TotalHasher)
	const n = 64
	for _, r := range [][2]int{{0, n}, {0, 1}, {5, 40}, {63, 64}} {
		buckets, err := h.HashBuckets(ctx, tb, cols, tb.PrimaryKey, n, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		var want connector.BucketHash
		for _, b := range buckets {
			want.Rows += b.Rows
			want.Sum1 += b.Sum1
			want.Sum2 += b.Sum2
		}
		got, err := th.HashTotal(ctx, tb, cols, tb.PrimaryKey, n, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if got != want || r == [2]int{0, n} && got.Rows != 3000 {
			t.Fatalf("buckets %v: total %+v, the buckets sum to %+v", r, got, want)
		}
	}
	d, err := connector.Open(ctx, dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := verify.Tables(ctx, c.(connector.Source), d.(connector.Source), []verify.Pair{{Source: tb, Destination: tb.Namespace}}, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !r.Pushdown || !r.Equal() || r.SourceRows != 3000 || r.DestinationRows != 3000 || r.RowsRead != 2 {
		t.Fatalf("equal tables: %+v (want pushdown, equal, 3000 rows a side, one total read a side)", r)
	}
}

func TestPostgresTotalsAgreeWithBuckets(t *testing.T) {
	srv := pgtest.Shared(t)
	src, dst := srv.CreateDatabase(t, "totsrc"), srv.CreateDatabase(t, "totdst")
	schema := `CREATE TABLE t (id bigint PRIMARY KEY, v text, f float8, j jsonb); INSERT INTO t SELECT g, 'v' || g, g / 3.0, jsonb_build_object('g', g) FROM generate_series(1, 3000) g`
	srv.Exec(t, src, schema)
	srv.Exec(t, dst, schema)
	totalsAgreeWithBuckets(t, srv.URL(src), srv.URL(dst))
}

func TestMariaDBTotalsAgreeWithBuckets(t *testing.T) {
	if !mysqltest.Available() {
		t.Skip("MariaDB is not installed (Debian package mariadb-server)")
	}
	s := mysqltest.Shared(t)
	src, dst := s.CreateDatabase(t, "totsrc"), s.CreateDatabase(t, "totdst")
	for _, db := range []string{src, dst} {
		s.Exec(t, "CREATE TABLE `"+db+"`.t (id bigint PRIMARY KEY, v varchar(20), f double)",
			"INSERT INTO `"+db+"`.t SELECT seq, CONCAT('v', seq), seq / 3 FROM `"+db+"`.seq_1_to_3000")
	}
	totalsAgreeWithBuckets(t, s.URL(src), s.URL(dst))
}
