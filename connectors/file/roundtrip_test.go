package file

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// TestRoundTrip writes a table with a column of every kind through
// WriteRows and FinishTable, reads it back through Tables, Plan and
// ReadPartition, and compares every value.
func TestRoundTrip(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "out") // created by CreateTables
			ns := model.Namespace{Schema: "shop.eu", Table: "all/kinds ✓"}
			tbl := allKinds(ns)
			rows := allKindsRows()

			dst := openDir(t, dir, format)
			if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
				t.Fatal(err)
			}
			if _, err := dst.LoadCheckpoints(ctx, "flow1"); err != nil {
				t.Fatal(err)
			}
			w, err := dst.OpenWriter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pid := ns.String() + "/0000"
			for i, batch := range [][]model.Row{rows[:2], rows[2:]} {
				cur := model.Cursor([]string{"2", "5"}[i])
				err := w.WriteRows(ctx, &model.RowBatch{
					Table: tbl, Partition: pid, Rows: batch, Cursor: cur,
					Checkpoint: &model.Checkpoint{Flow: "flow1", Key: "partition/" + pid, Value: string(cur)},
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := dst.FinishTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}

			base := "shop%2Eeu.all%2Fkinds ✓"
			want := []string{
				".ferry/", ".ferry/flow1/", ".ferry/flow1/partition%2Fshop.eu.all%2Fkinds ✓%2F0000.json",
				base + "." + format, base + ".schema.json",
			}
			if got := dirNames(t, dir); !reflect.DeepEqual(got, want) {
				t.Errorf("directory holds\n%q\nwant\n%q", got, want)
			}

			src := openDir(t, dir, format)
			got, tables, _ := readAll(t, src, connector.PlanOptions{})
			if len(tables) != 1 || tables[0].Namespace != ns {
				t.Fatalf("tables: %+v", tables)
			}
			wantCols, _ := json.Marshal(tbl.Columns)
			gotCols, _ := json.Marshal(tables[0].Columns)
			if string(wantCols) != string(gotCols) || !reflect.DeepEqual(tables[0].PrimaryKey, tbl.PrimaryKey) {
				t.Errorf("schema changed in the round trip:\n%s\n%s", gotCols, wantCols)
			}
			if format == formatParquet {
				// A Parquet DECIMAL has the column's scale: "0" reads back as "0.000".
				rows = withDecimalScale(tbl, rows)
			}
			compareRows(t, tbl.Columns, rows, got[ns.String()])
		})
	}
}

// TestCSVNullAndEmpty pins the CSV convention down on disk.
func TestCSVNullAndEmpty(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	txt := typ(model.KindText)
	tbl := &model.Table{Namespace: model.Namespace{Table: "t"}, Columns: []model.Column{{Name: "a", Type: txt}, {Name: "b", Type: txt}, {Name: "c", Type: txt}}}
	dst := openDir(t, dir, formatCSV)
	if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := dst.OpenWriter(ctx)
	rows := []model.Row{{nil, "", "x,y"}, {"a\"b", nil, "line\nbreak"}, {nil, nil, nil}}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "t.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "a,b,c\n,\"\",\"x,y\"\n\"a\"\"b\",,\"line\nbreak\"\n,,\n"
	if string(b) != want {
		t.Errorf("t.csv is\n%q\nwant\n%q", b, want)
	}
	got, _, _ := readAll(t, openDir(t, dir, formatCSV), connector.PlanOptions{})
	compareRows(t, tbl.Columns, rows, got["t"])
}

// TestJSONLOnDisk pins the JSON Lines form down: key order, no HTML
// escaping, embedded documents.
func TestJSONLOnDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tbl := &model.Table{Namespace: model.Namespace{Table: "t"}, Columns: []model.Column{
		{Name: "z", Type: typ(model.KindInt64)}, {Name: "a", Type: typ(model.KindText)},
		{Name: "m", Type: typ(model.KindJSON)}, {Name: "f", Type: typ(model.KindFloat64)},
	}}
	dst := openDir(t, dir, formatJSONL)
	if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := dst.OpenWriter(ctx)
	rows := []model.Row{{int64(1), "<a&b>\x00", `{"y":1, "x":2}`, 1.5}, {int64(2), nil, nil, nil}}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "t.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"z":1,"a":"<a&b>\u0000","m":{"y":1, "x":2},"f":1.5}` + "\n" + `{"z":2,"a":null,"m":null,"f":null}` + "\n"
	if string(b) != want {
		t.Errorf("t.jsonl is\n%s\nwant\n%s", b, want)
	}
}

func TestJSONLRefusesInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	tbl := &model.Table{Namespace: model.Namespace{Table: "t"}, Columns: []model.Column{{Name: "a", Type: typ(model.KindText)}}}
	rows := []model.Row{{"ok"}, {"bad \xff byte"}}
	for _, format := range formats {
		dir := t.TempDir()
		dst := openDir(t, dir, format)
		if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
			t.Fatal(err)
		}
		w, _ := dst.OpenWriter(ctx)
		err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: rows})
		if format != formatCSV {
			mustContain(t, err, "table t", "row 1", `column "a"`, "not valid UTF-8")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.FinishTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		got, _, _ := readAll(t, openDir(t, dir, format), connector.PlanOptions{})
		compareRows(t, tbl.Columns, rows, got["t"])
	}
}

func TestWriteRowsRefusesWrongValues(t *testing.T) {
	ctx := context.Background()
	dst := openDir(t, t.TempDir(), formatJSONL)
	tbl := &model.Table{Namespace: model.Namespace{Table: "t"}, Columns: []model.Column{{Name: "n", Type: typ(model.KindInt64)}}}
	if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, _ := dst.OpenWriter(ctx)
	err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: []model.Row{{int64(1)}, {"one"}}})
	mustContain(t, err, "partition t/0000", "row 1", `column "n"`, "string")
	err = w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: []model.Row{{int64(1), int64(2)}}})
	mustContain(t, err, "row 0 has 2 values")
	err = w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: []model.Row{{model.Unchanged}}})
	mustContain(t, err, "unchanged")
	// Nothing reached the part file.
	b, err := os.ReadFile(filepath.Join(dst.Dir(), "t.jsonl.part-t%2F0000"))
	if err == nil && len(b) > 0 || err != nil && !os.IsNotExist(err) {
		t.Errorf("part file holds %q (%v)", b, err)
	}
	if strings.Contains(string(b), "1") {
		t.Errorf("a refused batch was partly written: %q", b)
	}
}
