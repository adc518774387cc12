package conformance

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// checkQuery checks a QueryReader on the source's table through a query
// whose watermark has ten rows to a value (bucket = id - id % 10): the
// result is described without a row read, bounds are the bucket's, a read
// in batches smaller than a value's rows never splits one value, and a
// read resumed after any batch's Last reads exactly the rows after it.
func checkQuery(t *testing.T, qr connector.QueryReader, ns model.Namespace) {
	ctx := context.Background()
	name := ns.Table
	if ns.Schema != "" {
		name = ns.Schema + "." + ns.Table
	}
	q := connector.Query{Name: model.Namespace{Schema: "conf", Table: "query"}, Watermark: "bucket",
		SQL: fmt.Sprintf("SELECT id, v, id - id %% 10 AS bucket FROM %s WHERE id > 5", name)}
	tb, err := qr.DescribeQuery(ctx, q)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if tb.Namespace != q.Name || len(tb.Columns) != 3 || !tb.Columns[0].Type.Kind.IsInteger() || tb.Columns[1].Type.Kind != model.KindText || !tb.Columns[2].Type.Kind.IsInteger() {
		t.Fatalf("described %s as %+v, want (id integer, v text, bucket integer)", tb.Namespace, tb.Columns)
	}
	lo, hi, err := qr.QueryBounds(ctx, q, tb, nil)
	if err != nil || lo != int64(0) || hi != int64(sourceRows) {
		t.Fatalf("bounds %v..%v (%v), want 0..%d", lo, hi, err, sourceRows)
	}
	if lo, hi, err = qr.QueryBounds(ctx, q, tb, int64(sourceRows)); lo != nil || hi != nil || err != nil {
		t.Fatalf("bounds past the last value: %v..%v (%v), want none", lo, hi, err)
	}
	read := func(after any) (ids []int64, lasts []any) {
		t.Helper()
		var prev any
		err := qr.ReadQuery(ctx, q, tb, connector.QueryRange{After: after, UpTo: int64(sourceRows)}, 7, func(b *connector.QueryBatch) error {
			if prev != nil && connector.SameWatermark(b.Rows[0][2], prev) {
				t.Errorf("watermark %v is split between two batches", prev)
			}
			for _, r := range b.Rows {
				ids = append(ids, r[0].(int64))
			}
			prev = b.Rows[len(b.Rows)-1][2]
			if !connector.SameWatermark(prev, b.Last) {
				t.Errorf("a batch's Last is %v, its last row's watermark %v", b.Last, prev)
			}
			lasts = append(lasts, b.Last)
			return nil
		})
		if err != nil {
			t.Fatalf("read after %v: %v", after, err)
		}
		return ids, lasts
	}
	all, lasts := read(nil)
	if len(all) != sourceRows-5 {
		t.Fatalf("read %d rows, want %d", len(all), sourceRows-5)
	}
	for _, k := range []int{0, len(lasts) / 2, len(lasts) - 2} {
		after := lasts[k].(int64)
		rest, _ := read(after)
		want := 0
		for _, id := range all {
			if id-id%10 > after {
				want++
			}
		}
		if len(rest) != want {
			t.Fatalf("resumed after %d: %d rows, want %d", after, len(rest), want)
		}
		for _, id := range rest {
			if id-id%10 <= after {
				t.Fatalf("resumed after %d: read id %d again", after, id)
			}
		}
	}
}
