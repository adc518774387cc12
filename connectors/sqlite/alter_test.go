package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// TestAlterTableFilledStoresWhatWritesStore: the value an added column gives
// the existing rows is stored exactly as ferry's writes store the same
// value (storage class and bytes), for each kind of constant.
func TestAlterTableFilledStoresWhatWritesStore(t *testing.T) {
	c, _ := newFile(t)
	ctx := context.Background()
	from, rows := intTable("items", 2)
	writeTable(t, c, from, rows)
	added := []model.Column{
		{Name: "f", Type: model.Type{Kind: model.KindFloat64}},
		{Name: "f32", Type: model.Type{Kind: model.KindFloat32}, Nullable: true},
		{Name: "b", Type: model.Type{Kind: model.KindBytes}, Nullable: true},
		{Name: "ok", Type: model.Type{Kind: model.KindBool}},
		{Name: "day", Type: model.Type{Kind: model.KindDate}, Nullable: true},
		{Name: "s", Type: model.Type{Kind: model.KindText}, Nullable: true},
	}
	fill := []any{float64(2), float64(-0.5), []byte{0, 1, '\''}, true, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "it's"}
	to := from.Clone()
	to.Columns = append(to.Columns, added...)
	filled := map[string]any{}
	for i, col := range added {
		filled[col.Name] = fill[i]
	}
	for range 2 {
		if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to, Filled: filled}); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: to, Rows: []model.Row{append(model.Row{int64(1 << 40), "new"}, fill...)}}); err != nil {
		t.Fatal(err)
	}
	db, err := c.writer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var q []string
	for _, col := range added {
		q = append(q, "typeof("+col.Name+") || ':' || quote("+col.Name+")")
	}
	r, err := db.QueryContext(ctx, "SELECT "+strings.Join(q, " || ' ' || ")+" FROM items ORDER BY id = ?", int64(1<<40))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	r.Close()
	if len(got) != 3 || got[0] != got[2] || got[1] != got[2] {
		t.Fatalf("stored values of the rows filled, then of the row written:\n%s", strings.Join(got, "\n"))
	}
}

// TestAlterTableRebuild: a widening SQLite cannot make in place (the
// declared type is what ferry reads back) and a column becoming nullable
// make the table again with its rows; a table with an index of the user's
// is not made again behind their back.
func TestAlterTableRebuild(t *testing.T) {
	c, _ := newFile(t)
	ctx := context.Background()
	from := &model.Table{Namespace: model.Namespace{Schema: "main", Table: "items"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "n", Type: model.Type{Kind: model.KindInt16}},
		{Name: "s", Type: model.Type{Kind: model.KindText, Length: 5}, Nullable: true},
	}}
	writeTable(t, c, from, []model.Row{{int64(1), int64(-32768), "abcde"}, {int64(2), int64(7), nil}})
	to := from.Clone()
	to.Columns[1].Type.Kind = model.KindInt32
	to.Columns[1].Nullable = true
	to.Columns[2].Type.Length = 0
	for range 2 {
		if err := c.AlterTable(ctx, from, model.SchemaChange{Table: to}); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := c.OpenWriter(ctx)
	if err := w.WriteRows(ctx, &model.RowBatch{Table: to, Rows: []model.Row{{int64(3), nil, "longer than five"}}}); err != nil {
		t.Fatal(err)
	}
	tables, rows, _ := readAll(t, c, connector.PlanOptions{})
	got := tables["items"]
	if got.Columns[1].Type.Kind != model.KindInt32 || !got.Columns[1].Nullable || got.Columns[2].Type.Length != 0 {
		t.Fatalf("columns after the rebuild: %+v", got.Columns)
	}
	if len(rows["items"]) != 3 {
		t.Fatalf("%d rows after the rebuild, want 3", len(rows["items"]))
	}

	db, _ := c.writer(ctx)
	if _, err := db.ExecContext(ctx, "CREATE INDEX items_s ON items (s)"); err != nil {
		t.Fatal(err)
	}
	wider := to.Clone()
	wider.Columns[1].Type.Kind = model.KindInt64
	err := c.AlterTable(ctx, to, model.SchemaChange{Table: wider})
	if err == nil || !strings.Contains(err.Error(), "indexes or triggers") {
		t.Fatalf("a rebuild of a table with the user's index: %v", err)
	}
	if tables, _, _ := readAll(t, c, connector.PlanOptions{}); tables["items"].Columns[1].Type.Kind != model.KindInt32 {
		t.Fatalf("the refused change changed the table")
	}
}
