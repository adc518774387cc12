package file

import (
	"bytes"
	"context"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

func openDir(t *testing.T, dir, format string) *Conn {
	t.Helper()
	u, err := url.Parse("file://" + dir + "?format=" + format)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), u)
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return c
}

func typ(k model.Kind) model.Type { return model.Type{Kind: k} }

// allKinds is a table with a column of every kind.
func allKinds(ns model.Namespace) *model.Table {
	i64, txt := typ(model.KindInt64), typ(model.KindText)
	f32 := typ(model.KindFloat32)
	return &model.Table{
		Namespace:  ns,
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: i64},
			{Name: "b", Type: typ(model.KindBool), Nullable: true},
			{Name: "i16", Type: typ(model.KindInt16), Nullable: true},
			{Name: "i32", Type: typ(model.KindInt32), Nullable: true},
			{Name: "i64", Type: i64, Nullable: true},
			{Name: "dec", Type: model.Type{Kind: model.KindDecimal, Precision: 30, Scale: 3}, Nullable: true},
			{Name: "f32", Type: f32, Nullable: true},
			{Name: "f64", Type: typ(model.KindFloat64), Nullable: true},
			{Name: "txt", Type: txt, Nullable: true},
			{Name: "byt", Type: typ(model.KindBytes), Nullable: true},
			{Name: "doc", Type: typ(model.KindJSON), Nullable: true},
			{Name: "uid", Type: typ(model.KindUUID), Nullable: true},
			{Name: "d", Type: typ(model.KindDate), Nullable: true},
			{Name: "tm", Type: typ(model.KindTime), Nullable: true},
			{Name: "ttz", Type: typ(model.KindTimeTZ), Nullable: true},
			{Name: "ts", Type: typ(model.KindTimestamp), Nullable: true},
			{Name: "tstz", Type: typ(model.KindTimestampTZ), Nullable: true},
			{Name: "iv", Type: typ(model.KindInterval), Nullable: true},
			{Name: "arr_i", Type: model.Type{Kind: model.KindArray, Elem: &i64}, Nullable: true},
			{Name: "arr_t", Type: model.Type{Kind: model.KindArray, Elem: &txt}, Nullable: true},
			{Name: "arr_f32", Type: model.Type{Kind: model.KindArray, Elem: &f32}, Nullable: true},
			{Name: "en", Type: model.Type{Kind: model.KindEnum, EnumValues: []string{"happy", "sad", ""}}, Nullable: true},
			{Name: "ip", Type: typ(model.KindInet), Nullable: true},
			{Name: "net", Type: typ(model.KindCIDR), Nullable: true},
			{Name: "mac", Type: typ(model.KindMACAddr), Nullable: true},
			{Name: "weird \"col\", name\n", Type: txt, Nullable: true},
		},
	}
}

// allKindsRows covers NULLs, empty strings, NaN and infinities, awkward
// text and bytes, exact decimals, microseconds, arrays and JSON documents.
func allKindsRows() []model.Row {
	at := func(y int, m time.Month, d, h, mi, s, us int) time.Time {
		return time.Date(y, m, d, h, mi, s, us*1000, time.UTC)
	}
	tod := func(h, m, s, us int) time.Duration {
		return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(us)*time.Microsecond
	}
	f32 := func(f float32) float64 { return float64(f) }
	nulls := make(model.Row, 26)
	nulls[0] = int64(1)
	return []model.Row{
		nulls,
		{
			int64(2), true, int64(-32768), int64(2147483647), int64(math.MinInt64), "-12.500",
			f32(3.14), math.Pi, "héllo, \"world\"\nline2 🎉 \u2028 <&>", []byte{0, 1, 2, 0xff, 0},
			`{"b":1,"a":[1,2.50,"x"],"n":null}`, "123e4567-e89b-12d3-a456-426614174000",
			at(2024, 2, 29, 0, 0, 0, 0), tod(13, 45, 56, 123456),
			model.TimeTZ{Time: tod(23, 59, 59, 999999), Offset: -(5*3600 + 30*60)},
			at(2024, 2, 29, 13, 45, 56, 123456), at(1969, 12, 31, 23, 59, 59, 1),
			model.Interval{Months: 14, Days: -3, Micros: -1500000},
			[]any{int64(1), nil, int64(-3)}, []any{"a,b", "", nil, "q\"uote\nnl"}, []any{f32(0.1), nil},
			"happy", "10.0.0.1/32", "10.0.0.0/8", "08:00:2b:01:02:03", "x",
		},
		{
			int64(3), false, int64(0), int64(0), int64(0), "0",
			math.NaN(), math.Inf(1), "", []byte{},
			"{\n  \"k\": \"v\\n\",\n  \"e\": []\n}", "00000000-0000-0000-0000-000000000000",
			at(1, 1, 1, 0, 0, 0, 0), tod(0, 0, 0, 0),
			model.TimeTZ{Time: tod(0, 0, 0, 1), Offset: 14 * 3600},
			at(9999, 12, 31, 23, 59, 59, 999999), at(2000, 1, 1, 0, 0, 0, 0),
			model.Interval{},
			[]any{}, []any{}, []any{math.NaN()},
			"", "::1", "::/0", "", "",
		},
		{
			int64(4), nil, nil, nil, int64(math.MaxInt64), "123456789012345678901234567.125",
			math.Inf(-1), math.Copysign(0, -1), "\x00a\x00\r\n  spaced  \t", []byte("\x00"),
			`"just a string"`, nil,
			nil, nil, nil, nil, nil, nil,
			[]any{nil}, []any{"NULL", `""`, ","}, nil,
			"sad", nil, nil, nil, "\"",
		},
		{
			int64(5), nil, nil, nil, nil, nil,
			nil, nil, "NULL", nil,
			`[1, 2, {"x": null}]`, nil,
			nil, nil, nil, nil, nil, nil,
			nil, nil, nil,
			nil, nil, nil, nil, ",",
		},
	}
}

// equalValue compares as a user would: the canonical encoding (which sees
// through JSON whitespace and NaN payloads), plus a decimal's exact spelling.
func equalValue(t model.Type, a, b any) bool {
	ca, err1 := model.AppendCanonical(nil, t, a)
	cb, err2 := model.AppendCanonical(nil, t, b)
	if err1 != nil || err2 != nil || !bytes.Equal(ca, cb) {
		return false
	}
	if t.Kind == model.KindDecimal && a != nil {
		return a.(string) == b.(string)
	}
	return true
}

func compareRows(t *testing.T, cols []model.Column, want, got []model.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(cols) {
			t.Fatalf("row %d has %d values, want %d", i, len(got[i]), len(cols))
		}
		for j, c := range cols {
			if !equalValue(c.Type, want[i][j], got[i][j]) {
				t.Errorf("row %d column %q (%s): got %#v, want %#v", i, c.Name, c.Type, got[i][j], want[i][j])
			}
		}
	}
}

// readAll reads every partition of every table of src, by table.
func readAll(t *testing.T, src *Conn, opts connector.PlanOptions) (map[string][]model.Row, []*model.Table, *model.Plan) {
	t.Helper()
	ctx := context.Background()
	tables, err := src.Tables(ctx)
	if err != nil {
		t.Fatalf("tables: %v", err)
	}
	plan, err := src.Plan(ctx, tables, opts)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	out := map[string][]model.Row{}
	for _, p := range plan.Partitions {
		tbl := plan.Table(p.Table)
		err := src.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error {
			if b.Partition != p.ID || b.Table != tbl {
				t.Errorf("batch of %s names partition %s", p.ID, b.Partition)
			}
			out[p.Table.String()] = append(out[p.Table.String()], b.Rows...)
			return nil
		})
		if err != nil {
			t.Fatalf("read partition %s: %v", p.ID, err)
		}
	}
	return out, tables, plan
}

// dirNames lists a directory recursively, relative names, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	t.Logf("error: %v", err)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

var errStop = errors.New("stop")

// withDecimalScale spells the decimals of rows with their column's scale, as
// a Parquet DECIMAL column reads them back.
func withDecimalScale(tbl *model.Table, rows []model.Row) []model.Row {
	out := make([]model.Row, len(rows))
	for i, row := range rows {
		out[i] = append(model.Row{}, row...)
		for j, c := range tbl.Columns {
			s, ok := row[j].(string)
			if !ok || c.Type.Kind != model.KindDecimal || c.Type.Precision == 0 {
				continue
			}
			u, err := unscaledDecimal(s, c.Type.Precision, c.Type.Scale)
			if err != nil {
				panic(err)
			}
			out[i][j] = scaledDecimal(u, c.Type.Scale)
		}
	}
	return out
}

var connectorPlanDefaults = connector.PlanOptions{}

func mustTime(s string) time.Time {
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return ts.UTC()
}
