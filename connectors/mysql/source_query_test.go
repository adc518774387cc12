package mysql

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/mysqltest"
	"github.com/ferrydb/ferry/model"
)

// TestQueryReader describes a join's result with the types discovery
// gives a table, bounds its watermark and reads it in batches that never
// split one watermark value.
func TestQueryReader(t *testing.T) {
	s := mysqltest.Shared(t)
	db := newDB(t, s, "query")
	s.Exec(t, "CREATE TABLE `"+db+"`.kinds (id int PRIMARY KEY, label enum('x','y') NOT NULL)",
		"CREATE TABLE `"+db+"`.rows_ (id bigint unsigned PRIMARY KEY, kind int NOT NULL, amount decimal(9,3), flag tinyint(1), at datetime(6) NOT NULL, day date NOT NULL, n int NOT NULL)",
		"INSERT INTO `"+db+"`.kinds VALUES (1, 'x'), (2, 'y')",
		"INSERT INTO `"+db+"`.rows_ WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < 60) SELECT g, 1 + g % 2, g / 8, g % 2, TIMESTAMP('2026-01-01') + INTERVAL ((g - 1) DIV 4) SECOND, DATE('2026-01-01') + INTERVAL (g DIV 10) DAY, g FROM s")
	c := openConn(t, s.URL(db))
	ctx := context.Background()
	q := connector.Query{Name: model.Namespace{Table: "out"}, Watermark: "at",
		SQL: "SELECT r.id, k.label, r.amount, r.flag, r.at, r.day, r.n, r.n * 2 AS twice FROM rows_ r JOIN kinds k ON k.id = r.kind;"}
	tb, err := c.DescribeQuery(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.Kind{model.KindDecimal, model.KindEnum, model.KindDecimal, model.KindBool, model.KindTimestamp, model.KindDate, model.KindInt32, model.KindInt64}
	if len(tb.Columns) != len(want) {
		t.Fatalf("described %d columns, want %d", len(tb.Columns), len(want))
	}
	for i, col := range tb.Columns {
		if col.Type.Kind != want[i] {
			t.Errorf("column %s: %s (%s), want %s", col.Name, col.Type.Kind, col.Type.Native, want[i])
		}
	}
	if ty := tb.Columns[2].Type; ty.Precision != 9 || ty.Scale != 3 {
		t.Errorf("amount is %+v, want decimal(9,3)", ty)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lo, hi, err := c.QueryBounds(ctx, q, tb, base.Add(2*time.Second))
	if err != nil || !lo.(time.Time).Equal(base.Add(3*time.Second)) || !hi.(time.Time).Equal(base.Add(14*time.Second)) {
		t.Fatalf("bounds above 2s: %v..%v (%v), want 3s..14s", lo, hi, err)
	}
	n := 0
	err = c.ReadQuery(ctx, q, tb, connector.QueryRange{After: base.Add(2 * time.Second), UpTo: base.Add(9 * time.Second)}, 3, func(b *connector.QueryBatch) error {
		if len(b.Rows)%4 != 0 {
			t.Errorf("a batch of %d rows splits a watermark value", len(b.Rows))
		}
		n += len(b.Rows)
		return nil
	})
	if err != nil || n != 28 {
		t.Fatalf("read %d rows of seconds 3..9 (%v), want 28", n, err)
	}
	q.Watermark = "day"
	n = 0
	err = c.ReadQuery(ctx, q, tb, connector.QueryRange{UpTo: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}, 100, func(b *connector.QueryBatch) error {
		n += len(b.Rows)
		return nil
	})
	if err != nil || n != 19 {
		t.Fatalf("read %d rows up to the second day (%v), want 19", n, err)
	}
	_, err = c.DescribeQuery(ctx, connector.Query{Name: q.Name, SQL: "SELECT nope FROM rows_", Watermark: "nope"})
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "query out does not run") {
		t.Fatalf("a bad query: %v, want a configuration error naming it", err)
	}
}
