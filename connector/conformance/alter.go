package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// withColumns is tbl with its columns replaced.
func withColumns(tbl *model.Table, cols ...model.Column) *model.Table {
	out := *tbl
	out.Columns = cols
	return &out
}

func columnNames(tb *model.Table) []string {
	var out []string
	for _, c := range tb.Columns {
		out = append(out, c.Name)
	}
	return out
}

// alter applies ch to the table that was from, twice: the second time is a
// flow resumed before its checkpoint, handing the same change again with
// the old definition, which must change nothing.
func alter(t *testing.T, s connector.SchemaChanger, from *model.Table, ch model.SchemaChange, what string) {
	t.Helper()
	for i := range 2 {
		if err := s.AlterTable(ctxFor(t), from, ch); err != nil {
			t.Fatalf("AlterTable %s %s, time %d: %v", from.Namespace, what, i+1, err)
		}
	}
}

// checkShape compares the table's columns at the destination (when it can
// be read back as a source) with want's, names and kinds.
func checkShape(t *testing.T, h DestinationHarness, want *model.Table) {
	t.Helper()
	if h.ReadBack != nil {
		return
	}
	src, ok := openDest(t, h).(connector.Source)
	if !ok {
		return
	}
	got := lookupTable(t, src, want.Namespace)
	if !slices.Equal(columnNames(got), columnNames(want)) {
		t.Fatalf("%s has columns %v, want %v", want.Namespace, columnNames(got), columnNames(want))
	}
	for i, c := range want.Columns {
		if g := got.Columns[i].Type.Kind; g != c.Type.Kind {
			t.Fatalf("%s column %s is %s, want %s", want.Namespace, c.Name, g, c.Type.Kind)
		}
	}
}

// checkAlter: a SchemaChanger follows a source's schema changes exactly
// (added columns with the existing rows' values, drops, renames keeping
// values, widened types), each applied twice as a resumed flow would,
// and refuses what could lose values with the table unchanged.
func checkAlter(t *testing.T, h DestinationHarness) {
	if _, ok := openDest(t, h).(connector.SchemaChanger); !ok {
		t.Skip("not a SchemaChanger")
	}
	t.Run("AddNullable", func(t *testing.T) { checkAlterAddNullable(t, h) })
	t.Run("AddFilled", func(t *testing.T) { checkAlterAddFilled(t, h) })
	t.Run("DropAndRename", func(t *testing.T) { checkAlterDropRename(t, h) })
	t.Run("Widen", func(t *testing.T) { checkAlterWiden(t, h) })
	t.Run("RefuseLossy", func(t *testing.T) { checkAlterRefuse(t, h) })
	t.Run("NotNullIntoEmpty", func(t *testing.T) { checkAlterNotNullEmpty(t, h) })
}

// checkAlterAddNullable: a nullable column added is there for the rows
// written and applied after it and NULL in the rows before.
func checkAlterAddNullable(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s := d.(connector.SchemaChanger)
	from, _ := seed(t, h, d, "conf_alter", 10)

	id, v := from.Columns[0], from.Columns[1]
	w := model.Column{Name: "w", Type: model.Type{Kind: model.KindText}, Nullable: true}
	to := withColumns(from, id, v, w)
	alter(t, s, from, model.SchemaChange{Table: to}, "adding nullable column w")
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
	checkShape(t, h, to)
}

// checkAlterAddFilled: columns added with a value for the existing rows
// (a constant default at the source), of several kinds, NOT NULL or not,
// give those rows exactly that value; rows written later have their own.
func checkAlterAddFilled(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s := d.(connector.SchemaChanger)
	from, _ := seed(t, h, d, "conf_alter_fill", 3)

	ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
	text := `it's a "quote" \ and a backslash`
	cols := []model.Column{
		{Name: "n", Type: model.Type{Kind: model.KindInt32}},
		{Name: "s", Type: model.Type{Kind: model.KindText}, Nullable: true},
		{Name: "at", Type: model.Type{Kind: model.KindTimestamp}},
		{Name: "amount", Type: model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, Nullable: true},
	}
	fill := map[string]any{"n": int64(7), "s": text, "at": ts, "amount": "12.50"}
	to := withColumns(from, append(slices.Clone(from.Columns), cols...)...)
	alter(t, s, from, model.SchemaChange{Table: to, Filled: fill}, "adding columns n, s, at, amount with values for the existing rows")

	filled := fmt.Sprintf("7|%s|%s|12.50", text, ts)
	want := map[string]string{}
	for i := 1; i <= 3; i++ {
		want[fmt.Sprint(i)] = fmt.Sprintf("a%d|%s", i, filled)
	}
	later := ts.Add(time.Hour)
	write(t, d, &model.RowBatch{Table: to, Partition: "p1", Cursor: "c", Rows: []model.Row{
		{int64(4), "a4", int64(-8), nil, later, "-0.01"},
	}})
	want["4"] = fmt.Sprintf("a4|-8|<nil>|%s|-0.01", later)
	checkRows(t, h, d, to.Namespace, want)
	checkShape(t, h, to)
}

// checkAlterDropRename: a dropped column goes with its values; a renamed
// one keeps them; a column the source drops that the destination no longer
// has is no error.
func checkAlterDropRename(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s := d.(connector.SchemaChanger)
	from, _ := seed(t, h, d, "conf_alter_rename", 5)
	// The engine keeps its appliers open across a schema change.
	var cw connector.ChangeWriter
	if a, ok := d.(connector.ChangeApplier); ok {
		cw = openApplier(t, a)
	}
	id, v := from.Columns[0], from.Columns[1]
	w := model.Column{Name: "w", Type: model.Type{Kind: model.KindText}, Nullable: true}
	wide := withColumns(from, id, v, w)
	alter(t, s, from, model.SchemaChange{Table: wide, Filled: map[string]any{"w": "x"}}, "adding column w")

	renamed := v
	renamed.Name = "label"
	to := withColumns(from, id, renamed, w)
	alter(t, s, wide, model.SchemaChange{Table: to, Renamed: map[string]string{"label": "v"}}, "renaming column v to label")
	want := map[string]string{}
	for i := 1; i <= 5; i++ {
		want[fmt.Sprint(i)] = fmt.Sprintf("a%d|x", i)
	}
	checkRows(t, h, d, to.Namespace, want)
	checkShape(t, h, to)
	// Rows written with the new definition land in the renamed column.
	write(t, d, &model.RowBatch{Table: to, Partition: "p1", Cursor: "c", Rows: []model.Row{{int64(6), "l6", "y"}}})
	want["6"] = "l6|y"

	dropped := withColumns(to, id, w)
	alter(t, s, to, model.SchemaChange{Table: dropped}, "dropping column label")
	for k, val := range want {
		want[k] = val[strings.Index(val, "|")+1:]
	}
	checkRows(t, h, d, to.Namespace, want)
	checkShape(t, h, dropped)
	if cw != nil {
		b := &model.ApplyBatch{Tables: []*model.TableChanges{{Table: dropped, Upserts: []model.Row{{int64(2), "z2"}}}}}
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges to %s after a drop and a rename: %v", to.Namespace, err)
		}
		want["2"] = "z2"
		checkRows(t, h, d, to.Namespace, want)
	}
}

// checkAlterWiden: int32 to int64 keeps the rows and then holds values an
// int32 cannot; a longer varchar keeps its text.
func checkAlterWiden(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s := d.(connector.SchemaChanger)
	id := model.Column{Name: "id", Type: model.Type{Kind: model.KindInt64}}
	n := model.Column{Name: "n", Type: model.Type{Kind: model.KindInt32}, Nullable: true}
	name := model.Column{Name: "name", Type: model.Type{Kind: model.KindText, Length: 10}, Nullable: true}
	from := &model.Table{Namespace: model.Namespace{Schema: h.Schema, Table: "conf_alter_widen"}, PrimaryKey: []string{"id"},
		Columns: []model.Column{id, n, name}}
	create(t, d, from)
	write(t, d, &model.RowBatch{Table: from, Partition: "p0", Cursor: "c", Rows: []model.Row{
		{int64(1), int64(2147483647), "ten chars!"}, {int64(2), int64(-2147483648), nil},
	}})
	finish(t, d, from)
	var cw connector.ChangeWriter
	if a, ok := d.(connector.ChangeApplier); ok {
		cw = openApplier(t, a)
		b := &model.ApplyBatch{Tables: []*model.TableChanges{{Table: from, Upserts: []model.Row{{int64(4), int64(4), "four"}}}}}
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges to %s: %v", from.Namespace, err)
		}
	}

	n64, title := n, name
	n64.Type.Kind = model.KindInt64
	title.Type.Length = 40
	title.Name = "title"
	to := withColumns(from, id, n64, title)
	alter(t, s, from, model.SchemaChange{Table: to, Renamed: map[string]string{"title": "name"}},
		"widening n from int32 to int64, and name from text(10) to text(40) renaming it title")
	long := strings.Repeat("forty characters long ", 2)[:40]
	write(t, d, &model.RowBatch{Table: to, Partition: "p1", Cursor: "c", Rows: []model.Row{{int64(3), int64(1) << 40, long}}})
	want := map[string]string{
		"1": "2147483647|ten chars!", "2": "-2147483648|<nil>", "3": fmt.Sprintf("%d|%s", int64(1)<<40, long),
	}
	if cw != nil {
		// An applier opened before the change writes the wider values.
		b := &model.ApplyBatch{Tables: []*model.TableChanges{{Table: to, Upserts: []model.Row{{int64(4), int64(-1) << 35, long}}}}}
		if err := cw.ApplyChanges(ctxFor(t), b); err != nil {
			t.Fatalf("ApplyChanges to %s after widening: %v", to.Namespace, err)
		}
		want["4"] = fmt.Sprintf("%d|%s", int64(-1)<<35, long)
	}
	checkRows(t, h, d, to.Namespace, want)
	checkShape(t, h, to)
}

// checkAlterRefuse: a type change that could lose values (a narrowing,
// text to a number) is an error naming the table and column, the table is
// left as it was, and nothing else of that change is applied.
func checkAlterRefuse(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s := d.(connector.SchemaChanger)
	from, rows := seed(t, h, d, "conf_alter_refuse", 5)
	id, v := from.Columns[0], from.Columns[1]
	n := model.Column{Name: "n", Type: model.Type{Kind: model.KindInt64}, Nullable: true}
	tbl := withColumns(from, id, v, n)
	alter(t, s, from, model.SchemaChange{Table: tbl}, "adding column n")
	want := map[string]string{}
	for _, r := range rows {
		want[fmt.Sprint(r[0])] = fmt.Sprint(r[1]) + "|<nil>"
	}

	n32 := n
	n32.Type.Kind = model.KindInt32
	vInt := v
	vInt.Type = model.Type{Kind: model.KindInt64}
	x := model.Column{Name: "x", Type: model.Type{Kind: model.KindText}, Nullable: true}
	y := model.Column{Name: "y", Type: model.Type{Kind: model.KindInt64}}
	for _, bad := range []struct {
		what, column, how string
		to                *model.Table
	}{
		{"column n narrowed from int64 to int32", "n", "--ddl stop", withColumns(tbl, id, v, n32)},
		{"column v retyped from text to int64, column x added", "v", "--ddl stop", withColumns(tbl, id, vInt, n, x)},
		{"column y added NOT NULL without a value for the rows there", "y", "by hand", withColumns(tbl, id, v, n, y)},
	} {
		err := s.AlterTable(ctxFor(t), tbl, model.SchemaChange{Table: bad.to})
		if err == nil {
			t.Fatalf("AlterTable %s with %s: no error, but it could lose values", tbl.Namespace, bad.what)
		}
		for _, part := range []string{tbl.Namespace.Table, "column " + bad.column, bad.how} {
			if !strings.Contains(err.Error(), part) {
				t.Fatalf("AlterTable %s with %s: error %q does not say %q", tbl.Namespace, bad.what, err, part)
			}
		}
		// The refusal stops the flow with the table as it was.
		checkRows(t, h, d, tbl.Namespace, want)
		checkShape(t, h, tbl)
	}
}

// checkAlterNotNullEmpty: a NOT NULL column without a value for existing
// rows can be added to an empty table (the source could only add it to
// one), and then holds the values written.
func checkAlterNotNullEmpty(t *testing.T, h DestinationHarness) {
	d := openDest(t, h)
	s := d.(connector.SchemaChanger)
	from, _ := seed(t, h, d, "conf_alter_empty", 0)
	y := model.Column{Name: "y", Type: model.Type{Kind: model.KindInt64}}
	to := withColumns(from, append(slices.Clone(from.Columns), y)...)
	alter(t, s, from, model.SchemaChange{Table: to}, "adding NOT NULL column y to an empty table")
	write(t, d, &model.RowBatch{Table: to, Partition: "p1", Cursor: "c", Rows: []model.Row{{int64(1), "a1", int64(42)}}})
	checkRows(t, h, d, to.Namespace, map[string]string{"1": "a1|42"})
	checkShape(t, h, to)
}
