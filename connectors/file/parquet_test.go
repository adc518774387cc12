package file

import (
	"context"
	"math"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/connectors/fake"
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
		{model.Row{int64(7), nil, time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC), nil, "x"}, "outside the range"},
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

// TestParquetEdgeValues round-trips the values a type's range ends with:
// NULLs, NUL bytes, unicode, the widest decimals, integers at their limits,
// dates and timestamps before 1970 and before 1 AD, infinities, midnight at
// both ends of a day, lists with NULL elements and empty lists.
func TestParquetEdgeValues(t *testing.T) {
	dec := func(p, s int) model.Type { return model.Type{Kind: model.KindDecimal, Precision: p, Scale: s} }
	elemDate := typ(model.KindDate)
	elemDec := dec(38, 10)
	tbl := &model.Table{Namespace: model.Namespace{Schema: "edge", Table: "values"}, PrimaryKey: []string{"id"}, Columns: []model.Column{
		{Name: "id", Type: typ(model.KindInt64)},
		{Name: "i16", Type: typ(model.KindInt16), Nullable: true},
		{Name: "i32", Type: typ(model.KindInt32), Nullable: true},
		{Name: "i64", Type: typ(model.KindInt64), Nullable: true},
		{Name: "d38", Type: dec(38, 10), Nullable: true},
		{Name: "d38_0", Type: dec(38, 0), Nullable: true},
		{Name: "d9", Type: dec(9, 9), Nullable: true},
		{Name: "d18", Type: dec(18, 0), Nullable: true},
		{Name: "num", Type: typ(model.KindDecimal), Nullable: true},
		{Name: "txt", Type: typ(model.KindText), Nullable: true},
		{Name: "byt", Type: typ(model.KindBytes), Nullable: true},
		{Name: "d", Type: typ(model.KindDate), Nullable: true},
		{Name: "ts", Type: typ(model.KindTimestamp), Nullable: true},
		{Name: "tstz", Type: typ(model.KindTimestampTZ), Nullable: true},
		{Name: "tm", Type: typ(model.KindTime), Nullable: true},
		{Name: "dates", Type: model.Type{Kind: model.KindArray, Elem: &elemDate}, Nullable: true},
		{Name: "decs", Type: model.Type{Kind: model.KindArray, Elem: &elemDec}, Nullable: true},
	}}
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	rows := []model.Row{
		{int64(1), nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
		{
			int64(2), int64(math.MaxInt16), int64(math.MaxInt32), int64(math.MaxInt64),
			"9999999999999999999999999999.9999999999", "99999999999999999999999999999999999999", "0.999999999", "999999999999999999",
			"0.000000000000000000000000000000000000000001", "\x00 nul \x00, 東京 🚢, \"q\"\n", []byte{0, 0xff, 0, 'a'},
			day(1969, 12, 31), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(1900, 1, 1, 0, 0, 0, 1000, time.UTC),
			24 * time.Hour, []any{day(1, 1, 1), nil, day(-4712, 1, 1)}, []any{"-0.0000000001", nil, "12.5000000000"},
		},
		{
			int64(3), int64(math.MinInt16), int64(math.MinInt32), int64(math.MinInt64),
			"-9999999999999999999999999999.9999999999", "-99999999999999999999999999999999999999", "-0.000000001", "-999999999999999999",
			"-123456789012345678901234567890.123456789012345678901234567890", "", []byte{},
			day(-4712, 1, 1), model.NegInfinity, model.PosInfinity,
			time.Duration(0), []any{}, []any{nil},
		},
		{
			int64(4), int64(0), int64(0), int64(0),
			"0.0000000000", "0", "0.000000000", "0",
			"NaN", "NULL", []byte("\x00"),
			model.PosInfinity, model.PosInfinity, model.NegInfinity,
			time.Microsecond, []any{model.PosInfinity, model.NegInfinity}, nil,
		},
		{
			int64(5), nil, nil, nil, nil, nil, nil, nil, "Infinity", nil, nil,
			model.NegInfinity, time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
			nil, nil, nil,
		},
	}
	dir := t.TempDir()
	writeParquet(t, dir, tbl, rows)
	got, _, _ := readAll(t, openDir(t, dir, formatParquet), connector.PlanOptions{})
	compareRows(t, tbl.Columns, rows, got[tbl.Namespace.String()])
}

// TestParquetFromFake copies every table of the fake source (a column of
// each canonical type it generates) into Parquet in several partitions with
// checkpoints, reads the files back and compares value by value; each
// partition is a row group of its own.
func TestParquetFromFake(t *testing.T) {
	ctx := context.Background()
	u, _ := url.Parse("fake://?tables=2&rows=2500&seed=7")
	fc, err := fake.Open(u)
	if err != nil {
		t.Fatal(err)
	}
	src := fc.(connector.Source)
	defer src.Close()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: 1000, BatchRows: 300})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := openDir(t, dir, formatParquet)
	if err := dst.CreateTables(ctx, tables); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.LoadCheckpoints(ctx, "fake"); err != nil {
		t.Fatal(err)
	}
	w, _ := dst.OpenWriter(ctx)
	want := map[string][]model.Row{}
	parts := map[string]int{}
	for _, p := range plan.Partitions {
		tbl := plan.Table(p.Table)
		parts[p.Table.String()]++
		err := src.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error {
			want[p.Table.String()] = append(want[p.Table.String()], b.Rows...)
			b.Table, b.Partition = tbl, p.ID // as the engine sets them
			b.Checkpoint = &model.Checkpoint{Flow: "fake", Key: "partition/" + p.ID, Value: string(b.Cursor)}
			return w.WriteRows(ctx, b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tbl := range tables {
		if err := dst.FinishTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
	}
	got, back, _ := readAll(t, openDir(t, dir, formatParquet), connector.PlanOptions{PartitionRows: 1000})
	if len(back) != len(tables) {
		t.Fatalf("read back %d tables, want %d", len(back), len(tables))
	}
	for _, tbl := range tables {
		ns := tbl.Namespace.String()
		if len(want[ns]) != 2500 {
			t.Fatalf("fake gave %d rows of %s", len(want[ns]), ns)
		}
		compareRows(t, tbl.Columns, withDecimalScale(tbl, want[ns]), got[ns])
		f, pf, err := openParquet(filepath.Join(dir, dst.dataFile(tbl.Namespace)))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(pf.RowGroups()); n != parts[ns] {
			t.Errorf("%s has %d row groups, want one per partition: %d", ns, n, parts[ns])
		}
		f.Close()
	}
	// A plan of the files cuts at row groups: three partitions per table.
	_, _, p2 := readAll(t, openDir(t, dir, formatParquet), connector.PlanOptions{PartitionRows: 1000})
	if len(p2.Partitions) != 6 {
		t.Errorf("plan of the files has %d partitions, want 6", len(p2.Partitions))
	}
	for _, p := range p2.Partitions {
		lo, _ := strconv.Atoi(p.Lower)
		hi, _ := strconv.Atoi(p.Upper)
		if hi-lo != int(p.EstimatedRows) || p.EstimatedRows == 0 {
			t.Errorf("partition %s: rows [%s, %s) estimated %d", p.ID, p.Lower, p.Upper, p.EstimatedRows)
		}
	}
}

// TestParquetWithoutSidecar reads a Parquet file whose schema sidecar is
// gone: the columns and their kinds come from the file's logical types.
func TestParquetWithoutSidecar(t *testing.T) {
	dir := t.TempDir()
	tbl := allKinds(model.Namespace{Table: "t"})
	rows := allKindsRows()
	writeParquet(t, dir, tbl, rows)
	if err := os.Remove(filepath.Join(dir, "t.schema.json")); err != nil {
		t.Fatal(err)
	}
	got, tables, _ := readAll(t, openDir(t, dir, formatParquet), connector.PlanOptions{})
	var kinds []string
	for _, c := range tables[0].Columns {
		kinds = append(kinds, c.Name+" "+c.Type.String())
	}
	want := "id int64, b bool, i16 int16, i32 int32, i64 int64, dec decimal(30,3), f32 float32, f64 float64, txt text, " +
		"byt bytes, doc json, uid uuid, d date, tm time, ttz text, ts timestamp, tstz timestamptz, iv text, " +
		"arr_i int64[], arr_t text[], arr_f32 float32[], en text, ip text, net text, mac text, weird \"col\", name\n text"
	if s := strings.Join(kinds, ", "); s != want {
		t.Fatalf("inferred columns\n%s\nwant\n%s", s, want)
	}
	// Text forms read back as text: compare them so.
	for i, row := range withDecimalScale(tbl, rows) {
		for j, c := range tbl.Columns {
			v := row[j]
			if tables[0].Columns[j].Type.Kind == model.KindText && c.Type.Kind != model.KindText && v != nil {
				if _, ok := v.(string); !ok {
					s, err := model.FormatText(c.Type, v)
					if err != nil {
						t.Fatal(err)
					}
					v = s
				}
			}
			if !equalValue(tables[0].Columns[j].Type, v, got["t"][i][j]) {
				t.Errorf("row %d column %q: got %#v, want %#v", i, c.Name, got["t"][i][j], v)
			}
		}
	}
}

// FuzzParquetDecimal: a decimal's unscaled integer and its two's complement
// bytes read back as the same decimal.
func FuzzParquetDecimal(f *testing.F) {
	f.Add(int64(0), uint8(0))
	f.Add(int64(-1), uint8(3))
	f.Add(int64(math.MinInt64), uint8(10))
	f.Add(int64(math.MaxInt64), uint8(38))
	f.Add(int64(-5), uint8(1))
	f.Fuzz(func(t *testing.T, u int64, s uint8) {
		scale := int(s % 39)
		text := scaledDecimal(bigInt(u), scale)
		back, err := unscaledDecimal(text, 38, scale)
		if scale+19 > 38 && err != nil {
			return // does not fit decimal(38, scale)
		}
		if err != nil {
			t.Fatalf("%d at scale %d spells %q, which reads back as %v", u, scale, text, err)
		}
		if back.Int64() != u {
			t.Fatalf("%d at scale %d spells %q, which reads back as %s", u, scale, text, back)
		}
		if b := fromTwosComplement(twosComplement(back, decimalBytes(38))); b.Int64() != u {
			t.Fatalf("%d through two's complement is %s", u, b)
		}
	})
}

func bigInt(i int64) *big.Int { return big.NewInt(i) }
