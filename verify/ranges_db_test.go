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
// only the range's buckets) the results are the same, reads included.
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
	x, _ := json.Marshal(verify.Merge(parts, 5))
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
