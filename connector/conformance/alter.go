package conformance

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// withColumns is tbl with its columns replaced.
func withColumns(tbl *model.Table, cols ...model.Column) *model.Table {
	out := *tbl
	out.Columns = cols
	return &out
}

// checkAlter: a nullable column added by AlterTable is there for the rows
// written and applied after it and NULL in the rows before; a change it
// cannot apply exactly (a dropped or retyped column) is an error that
// changes nothing.
func checkAlter(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s, ok := d.(connector.SchemaChanger)
	if !ok {
		t.Skip("not a SchemaChanger")
	}
	from, _ := seed(t, h, d, "conf_alter", 10)

	id, v := from.Columns[0], from.Columns[1]
	w := model.Column{Name: "w", Type: model.Type{Kind: model.KindText}, Nullable: true}
	to := withColumns(from, id, v, w)
	if err := s.AlterTable(ctxFor(t), from, model.SchemaChange{Table: to}); err != nil {
		t.Fatalf("AlterTable %s adding nullable column w: %v", from.Namespace, err)
	}
	want := map[string]string{}
	for i := 1; i <= 10; i++ {
		want[fmt.Sprint(i)] = fmt.Sprintf("a%d|<nil>", i)
	}
	var rows []model.Row
	for i := int64(11); i <= 20; i++ {
		rows = append(rows, model.Row{i, fmt.Sprintf("a%d", i), fmt.Sprintf("w%d", i)})
		want[fmt.Sprint(i)] = fmt.Sprintf("a%d|w%d", i, i)
	}
	write(t, d, &model.RowBatch{Table: to, Partition: "p1", Rows: rows, Cursor: "c"})
	if a, ok := d.(connector.ChangeApplier); ok {
		cw := openApplier(t, a)
		b := &model.ApplyBatch{Tables: []*model.TableChanges{{Table: to,
			Upserts: []model.Row{{int64(1), "b1", "x1"}, {int64(21), "b21", "x21"}, {int64(11), "b11", nil}}}}}
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges to %s with its new column: %v", to.Namespace, err)
		}
		want["1"], want["21"], want["11"] = "b1|x1", "b21|x21", "b11|<nil>"
	}
	checkRows(t, h, d, to.Namespace, want)
	names := func(tb *model.Table) []string {
		var out []string
		for _, c := range tb.Columns {
			out = append(out, c.Name)
		}
		return out
	}

	retyped := v
	retyped.Type = model.Type{Kind: model.KindInt64}
	x := model.Column{Name: "x", Type: model.Type{Kind: model.KindText}, Nullable: true}
	for _, bad := range []struct {
		what string
		to   *model.Table
	}{
		{"column v dropped", withColumns(to, id, w)},
		{"column v dropped and column x added", withColumns(to, id, w, x)},
		{"column v retyped from text to int64", withColumns(to, id, retyped, w)},
	} {
		if err := s.AlterTable(ctxFor(t), to, model.SchemaChange{Table: bad.to}); err == nil {
			t.Fatalf("AlterTable %s with %s: no error, but it cannot apply that", to.Namespace, bad.what)
		}
		// The refusal stops the flow with the table as it was.
		checkRows(t, h, d, to.Namespace, want)
		if src, ok := openDest(t, h).(connector.Source); ok {
			if got := names(lookupTable(t, src, to.Namespace)); !slices.Equal(got, names(to)) {
				t.Fatalf("after a refused AlterTable with %s, %s has columns %v, want %v", bad.what, to.Namespace, got, names(to))
			}
		}
	}
}
