package file

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// writeParquet writes rows of tbl into dir as one partition and assembles
// the table's file.
func writeParquet(t *testing.T, dir string, tbl *model.Table, rows []model.Row) {
	t.Helper()
	ctx := context.Background()
	dst := openDir(t, dir, formatParquet)
	if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
		t.Fatal(err)
	}
	w, err := dst.OpenWriter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: tbl.Namespace.String() + "/0000", Rows: rows}); err != nil {
		t.Fatal(err)
	}
	if err := dst.FinishTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
}

// TestParquetSchemaOnDisk pins the Parquet types each kind becomes, in
// column order (docs/connectors.md lists them).
func TestParquetSchemaOnDisk(t *testing.T) {
	dir := t.TempDir()
	tbl := allKinds(model.Namespace{Table: "t"})
	tbl.Columns = append(tbl.Columns,
		model.Column{Name: "dec9", Type: model.Type{Kind: model.KindDecimal, Precision: 9, Scale: 2}},
		model.Column{Name: "dec18", Type: model.Type{Kind: model.KindDecimal, Precision: 18, Scale: 4}, Nullable: true},
		model.Column{Name: "num", Type: model.Type{Kind: model.KindDecimal}, Nullable: true},
		model.Column{Name: "req_arr", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindDate}}},
	)
	rows := allKindsRows()
	for i := range rows {
		rows[i] = append(rows[i], "1.50", nil, "NaN", []any{})
	}
	writeParquet(t, dir, tbl, rows)
	f, pf, err := openParquet(filepath.Join(dir, "t.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := `message ferry {
	required int64 id (INT(64,true));
	optional boolean b;
	optional int32 i16 (INT(16,true));
	optional int32 i32 (INT(32,true));
	optional int64 i64 (INT(64,true));
	optional fixed_len_byte_array(13) dec (DECIMAL(30,3));
	optional float f32;
	optional double f64;
	optional binary txt (STRING);
	optional binary byt;
	optional binary doc (JSON);
	optional fixed_len_byte_array(16) uid (UUID);
	optional int32 d (DATE);
	optional int64 tm (TIME(isAdjustedToUTC=false,unit=MICROS));
	optional binary ttz (STRING);
	optional int64 ts (TIMESTAMP(isAdjustedToUTC=false,unit=MICROS));
	optional int64 tstz (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
	optional binary iv (STRING);
	optional group arr_i (LIST) {
		repeated group list {
			optional int64 element (INT(64,true));
		}
	}
	optional group arr_t (LIST) {
		repeated group list {
			optional binary element (STRING);
		}
	}
	optional group arr_f32 (LIST) {
		repeated group list {
			optional float element;
		}
	}
	optional binary en (STRING);
	optional binary ip (STRING);
	optional binary net (STRING);
	optional binary mac (STRING);
	optional binary weird "col", name
 (STRING);
	required int32 dec9 (DECIMAL(9,2));
	optional int64 dec18 (DECIMAL(18,4));
	optional binary num (STRING);
	required group req_arr (LIST) {
		repeated group list {
			optional int32 element (DATE);
		}
	}
}`
	if got := pf.Schema().String(); got != want {
		t.Errorf("schema is\n%s\nwant\n%s", got, want)
	}
	if pf.NumRows() != int64(len(rows)) {
		t.Errorf("file has %d rows, want %d", pf.NumRows(), len(rows))
	}
	got, _, _ := readAll(t, openDir(t, dir, formatParquet), connectorPlanDefaults)
	compareRows(t, tbl.Columns, withDecimalScale(tbl, rows), got["t"])
}

// TestParquetRefusals: values a Parquet column cannot hold exactly fail the
// batch with the column and the row's key, before anything is written.
func TestParquetRefusals(t *testing.T) {
	ctx := context.Background()
	dec := model.Type{Kind: model.KindDecimal, Precision: 5, Scale: 2}
	arr := model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt64}}
	tbl := &model.Table{Namespace: model.Namespace{Table: "t"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: typ(model.KindInt64)},
		{Name: "d", Type: dec, Nullable: true},
		{Name: "ts", Type: typ(model.KindTimestamp), Nullable: true},
		{Name: "a", Type: arr, Nullable: true},
		{Name: "r", Type: typ(model.KindText)},
	}}
	for _, tc := range []struct {
		row  model.Row
		want string
	}{
		{model.Row{int64(1), "1.234", nil, nil, "x"}, "more than 2 fractional digits"},
		{model.Row{int64(2), "1234.5", nil, nil, "x"}, "does not fit decimal(5,2)"},
		{model.Row{int64(3), "NaN", nil, nil, "x"}, "NaN has no Parquet DECIMAL form"},
		{model.Row{int64(4), nil, mustTime("2024-01-01T00:00:00.0000001Z"), nil, "x"}, "fraction of a microsecond"},
		{model.Row{int64(5), nil, nil, []any{[]any{int64(1)}}, "x"}, "--tables '!t'"},
		{model.Row{int64(6), nil, nil, nil, nil}, "NULL in a column that is not nullable"},
	} {
		dst := openDir(t, t.TempDir(), formatParquet)
		if err := dst.CreateTables(ctx, []*model.Table{tbl}); err != nil {
			t.Fatal(err)
		}
		w, _ := dst.OpenWriter(ctx)
		err := w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "t/0000", Rows: []model.Row{tc.row}})
		mustContain(t, err, "table t", "row with key", tc.want)
		if names := dirNames(t, dst.Dir()); strings.Contains(strings.Join(names, " "), "part-") {
			t.Errorf("a refused batch left a part file: %q", names)
		}
	}
}
