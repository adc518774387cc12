package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// TestQueryReader describes a join's result, bounds its watermark and
// reads it in batches that never split one watermark value.
func TestQueryReader(t *testing.T) {
	p := newPair(t)
	p.srv.Exec(t, p.src, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TABLE customers (id int PRIMARY KEY, name varchar(40) NOT NULL, m mood);
		CREATE TABLE orders (id bigint PRIMARY KEY, customer int REFERENCES customers, total numeric(10,2), at timestamptz NOT NULL, seq int NOT NULL);
		INSERT INTO customers SELECT g, 'c' || g, 'ok' FROM generate_series(1, 10) g;
		-- 5 orders per second of at, so batches of 3 rows must grow to whole seconds
		INSERT INTO orders SELECT g, 1 + g % 10, g * 1.5, '2026-01-01T00:00:00Z'::timestamptz + ((g - 1) / 5) * interval '1 second', g FROM generate_series(1, 100) g`)
	c := open(t, p.srcURL())
	ctx := context.Background()
	q := connector.Query{Name: model.Namespace{Schema: "rep", Table: "order_view"}, Watermark: "at",
		SQL: `SELECT o.id, c.name, c.m, o.total, o.at, o.seq, o.total * 2 AS doubled FROM orders o JOIN customers c ON c.id = o.customer WHERE o.seq > 0;`}
	tb, err := c.DescribeQuery(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]model.Kind{"id": model.KindInt64, "name": model.KindText, "m": model.KindEnum, "total": model.KindDecimal,
		"at": model.KindTimestampTZ, "seq": model.KindInt32, "doubled": model.KindDecimal}
	if len(tb.Columns) != len(want) || tb.Namespace != q.Name {
		t.Fatalf("described %s with %d columns, want %d", tb.Namespace, len(tb.Columns), len(want))
	}
	for _, col := range tb.Columns {
		if col.Type.Kind != want[col.Name] {
			t.Errorf("column %s: %s, want %s", col.Name, col.Type.Kind, want[col.Name])
		}
	}
	if ty := tb.Columns[1].Type; ty.Length != 40 {
		t.Errorf("name is %+v, want varchar(40)", ty)
	}
	if ty := tb.Columns[3].Type; ty.Precision != 10 || ty.Scale != 2 {
		t.Errorf("total is %+v, want numeric(10,2)", ty)
	}

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lo, hi, err := c.QueryBounds(ctx, q, tb, nil)
	if err != nil || !lo.(time.Time).Equal(base) || !hi.(time.Time).Equal(base.Add(19*time.Second)) {
		t.Fatalf("bounds %v..%v (%v), want %v..%v", lo, hi, err, base, base.Add(19*time.Second))
	}
	lo, _, err = c.QueryBounds(ctx, q, tb, base.Add(10*time.Second))
	if err != nil || !lo.(time.Time).Equal(base.Add(11*time.Second)) {
		t.Fatalf("bounds above 10s start at %v (%v), want 11s", lo, err)
	}
	if lo, hi, err = c.QueryBounds(ctx, q, tb, base.Add(time.Hour)); lo != nil || hi != nil || err != nil {
		t.Fatalf("bounds past the last row: %v %v %v, want none", lo, hi, err)
	}

	// (2s, 12s]: seconds 3..12, 50 rows, in batches of at least 3 rows
	// that end where the second ends.
	var seen []int64
	var last time.Time
	err = c.ReadQuery(ctx, q, tb, connector.QueryRange{After: base.Add(2 * time.Second), UpTo: base.Add(12 * time.Second)}, 3, func(b *connector.QueryBatch) error {
		if len(b.Rows)%5 != 0 {
			t.Errorf("a batch of %d rows splits a watermark value", len(b.Rows))
		}
		for _, r := range b.Rows {
			at := r[4].(time.Time)
			if at.Before(last) {
				t.Errorf("rows out of watermark order: %v after %v", at, last)
			}
			last = at
			seen = append(seen, r[0].(int64))
		}
		if !b.Last.(time.Time).Equal(last) {
			t.Errorf("batch Last %v, its last row %v", b.Last, last)
		}
		return nil
	})
	if err != nil || len(seen) != 50 {
		t.Fatalf("read %d rows (%v), want the 50 of seconds 3..12", len(seen), err)
	}
	lowest, highest := seen[0], seen[0]
	for _, id := range seen {
		lowest, highest = min(lowest, id), max(highest, id)
	}
	if lowest != 16 || highest != 65 {
		t.Fatalf("read ids %d..%d, want 16..65", lowest, highest)
	}

	// An integer watermark, unbounded below.
	q.Watermark = "seq"
	n := 0
	err = c.ReadQuery(ctx, q, tb, connector.QueryRange{UpTo: int64(7)}, 100, func(b *connector.QueryBatch) error {
		n += len(b.Rows)
		if b.Last.(int64) != 7 {
			t.Errorf("last seq %v, want 7", b.Last)
		}
		return nil
	})
	if err != nil || n != 7 {
		t.Fatalf("read %d rows up to seq 7 (%v), want 7", n, err)
	}

	// A query that does not run is the user's to fix, named.
	_, err = c.DescribeQuery(ctx, connector.Query{Name: q.Name, SQL: "SELEC id FROM orders", Watermark: "id"})
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "rep.order_view") || !strings.Contains(err.Error(), "syntax") {
		t.Fatalf("a bad query: %v, want a configuration error naming it", err)
	}
}
