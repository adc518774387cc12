//go:build cgo && duckdb

package duckdb

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

func ptr[T any](v T) *T { return &v }

// The values are the SQLite connector's round-trip values (every canonical
// kind, PostgreSQL's edges), less the ones DuckDB refuses, which
// TestRefusedValues checks one by one.

// everyType has one column per canonical kind (and a few parameters).
func everyType() *model.Table {
	return &model.Table{
		Namespace:  model.Namespace{Schema: "public", Table: "every_type"},
		PrimaryKey: []string{"id"},
		Columns: []model.Column{
			{Name: "id", Type: model.Type{Kind: model.KindInt64}},
			{Name: "b", Type: model.Type{Kind: model.KindBool}, Nullable: true},
			{Name: "i16", Type: model.Type{Kind: model.KindInt16}, Nullable: true},
			{Name: "i32", Type: model.Type{Kind: model.KindInt32}, Nullable: true},
			{Name: "i64", Type: model.Type{Kind: model.KindInt64}, Nullable: true},
			{Name: "dec", Type: model.Type{Kind: model.KindDecimal, Precision: 40, Scale: 9}, Nullable: true},
			{Name: "dec_any", Type: model.Type{Kind: model.KindDecimal}, Nullable: true},
			{Name: "f32", Type: model.Type{Kind: model.KindFloat32}, Nullable: true},
			{Name: "f64", Type: model.Type{Kind: model.KindFloat64}, Nullable: true},
			{Name: "txt", Type: model.Type{Kind: model.KindText}, Nullable: true},
			{Name: "vc", Type: model.Type{Kind: model.KindText, Length: 20}, Nullable: true},
			{Name: "byt", Type: model.Type{Kind: model.KindBytes}, Nullable: true},
			{Name: "js", Type: model.Type{Kind: model.KindJSON}, Nullable: true},
			{Name: "uu", Type: model.Type{Kind: model.KindUUID}, Nullable: true},
			{Name: "d", Type: model.Type{Kind: model.KindDate}, Nullable: true},
			{Name: "tm", Type: model.Type{Kind: model.KindTime}, Nullable: true},
			{Name: "ttz", Type: model.Type{Kind: model.KindTimeTZ}, Nullable: true},
			{Name: "ts", Type: model.Type{Kind: model.KindTimestamp}, Nullable: true},
			{Name: "tstz", Type: model.Type{Kind: model.KindTimestampTZ}, Nullable: true},
			{Name: "iv", Type: model.Type{Kind: model.KindInterval}, Nullable: true},
			{Name: "arr_i", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt64}}, Nullable: true},
			{Name: "arr_t", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}, Nullable: true},
			{Name: "arr_dec", Type: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}}, Nullable: true},
			{Name: "en", Type: model.Type{Kind: model.KindEnum}, Nullable: true},
			{Name: "inet", Type: model.Type{Kind: model.KindInet}, Nullable: true},
			{Name: "cidr", Type: model.Type{Kind: model.KindCIDR}, Nullable: true},
			{Name: "mac", Type: model.Type{Kind: model.KindMACAddr}, Nullable: false},
		},
	}
}

func everyTypeRows() []model.Row {
	utc := func(y int, m time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, m, d, h, mi, s, ns, time.UTC)
	}
	negZero := math.Copysign(0, -1)
	nulls := make(model.Row, 27)
	nulls[0], nulls[26] = int64(2), "00:00:00:00:00:00"
	return []model.Row{
		{int64(1), true, int64(-32768), int64(2147483647), int64(math.MinInt64),
			"123456789012345678901234567890.123456789", "-0.000000000000000000000000000001",
			float64(float32(3.14159)), 2.718281828459045,
			"héllo 👋 wörld", "short", []byte{0, 1, 2, 0xff, 0},
			`{"b": [1, 2.50], "a": null}`, "123e4567-e89b-12d3-a456-426614174000",
			utc(1969, 7, 20, 0, 0, 0, 0), 13*time.Hour + 37*time.Minute + 1*time.Second + 123456*time.Microsecond,
			model.TimeTZ{Time: 23*time.Hour + 59*time.Minute, Offset: -(5*3600 + 30*60)},
			utc(2024, 2, 29, 23, 59, 59, 999999000), utc(2001, 9, 9, 1, 46, 40, 123000),
			model.Interval{Months: -14, Days: -3, Micros: -4500000},
			[]any{int64(1), nil, int64(-3)}, []any{"a", "", "b\"c", nil, "ünï"}, []any{"1.50", "-2.00"},
			"happy", "192.168.0.1", "10.0.0.0/8", "08:00:2b:01:02:03"},
		nulls,
		{int64(3), false, int64(0), int64(0), int64(0),
			"0", "1E+5",
			float64(float32(math.Inf(-1))), math.NaN(),
			"nul\x00inside", "", []byte{},
			`[]`, "00000000-0000-0000-0000-000000000000",
			utc(1, 1, 1, 0, 0, 0, 0), 24*time.Hour - time.Microsecond,
			model.TimeTZ{Time: 0, Offset: 14 * 3600},
			utc(1900, 1, 1, 0, 0, 0, 1000), utc(9999, 12, 31, 23, 59, 59, 999999000),
			model.Interval{Months: 0, Days: 0, Micros: 0},
			[]any{}, []any{}, []any{nil},
			"", "::1", "::/0", "ff:ff:ff:ff:ff:ff"},
		{int64(4), true, int64(32767), int64(-2147483648), int64(math.MaxInt64),
			"-99999999999999999999999999999.999999999", "NaN",
			negZero, math.Inf(1),
			"not bad utf8 \u00ff end", "12345678901234567890", []byte("\x00"),
			`"just a string"`, "ffffffff-ffff-ffff-ffff-ffffffffffff",
			utc(1600, 2, 29, 0, 0, 0, 0), time.Duration(0),
			model.TimeTZ{Time: 12 * time.Hour, Offset: 0},
			utc(1970, 1, 1, 0, 0, 0, 0), utc(1969, 12, 31, 23, 59, 59, 999999000),
			model.Interval{Months: 1, Days: -1, Micros: 1},
			[]any{int64(math.MaxInt64)}, []any{"x\x00y"}, []any{"0.01"},
			"with space", "10.1.2.3/32", "192.168.100.128/25", "00:00:00:00:00:00"},
		{int64(5), nil, nil, nil, nil, nil, nil,
			negZero, negZero, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
			"01:02:03:04:05:06"},
	}
}

// readAll discovers the file's tables, plans them and reads every
// partition, returning the discovered tables and the rows by table name.
func readAll(t testing.TB, c *Conn, opts connector.PlanOptions) (map[string]*model.Table, map[string][]model.Row) {
	t.Helper()
	ctx := context.Background()
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatalf("tables: %v", err)
	}
	plan, err := c.Plan(ctx, tables, opts)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	byName := map[string]*model.Table{}
	for _, tbl := range tables {
		byName[tbl.Namespace.Table] = tbl
	}
	rows := map[string][]model.Row{}
	for _, p := range plan.Partitions {
		tbl := plan.Table(p.Table)
		err := c.ReadPartition(ctx, tbl, p, "", func(b *model.RowBatch) error {
			rows[tbl.Namespace.Table] = append(rows[tbl.Namespace.Table], b.Rows...)
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", p.ID, err)
		}
	}
	return byName, rows
}

// sameValue compares two canonical values as verify would.
func sameValue(t testing.TB, typ model.Type, a, b any) bool {
	t.Helper()
	ea, err := model.AppendCanonical(nil, typ, a)
	if err != nil {
		t.Fatalf("canonical %s %#v: %v", typ, a, err)
	}
	eb, err := model.AppendCanonical(nil, typ, b)
	if err != nil {
		t.Fatalf("canonical %s %#v: %v", typ, b, err)
	}
	return bytes.Equal(ea, eb)
}

func TestTypeRoundTrip(t *testing.T) {
	for _, partRows := range []int64{0, 2} { // one partition; partitions bounded by every kind of key
		c := openPath(t, filepath.Join(t.TempDir(), "types.duckdb"))
		want := everyType()
		rows := everyTypeRows()
		writeTable(t, c, want, rows)

		tables, got := readAll(t, c, connector.PlanOptions{PartitionRows: partRows})
		gt := tables["every_type"]
		if gt == nil {
			t.Fatalf("every_type not discovered; got %v", tables)
		}
		if gt.Namespace != want.Namespace {
			t.Errorf("namespace = %v", gt.Namespace)
		}
		if !reflect.DeepEqual(gt.PrimaryKey, want.PrimaryKey) {
			t.Errorf("primary key = %v, want %v", gt.PrimaryKey, want.PrimaryKey)
		}
		for i, wc := range want.Columns {
			gc := gt.Columns[i]
			gc.Type.Native = ""
			if gc.Type.Elem != nil {
				e := *gc.Type.Elem
				e.Native = ""
				gc.Type.Elem = &e
			}
			wt := wc.Type
			if wt.Kind == model.KindText {
				wt.Length = 0 // DuckDB's VARCHAR has no length
			}
			if gc.Name != wc.Name || !reflect.DeepEqual(gc.Type, wt) || gc.Nullable != wc.Nullable {
				t.Errorf("column %d: discovered %+v (elem %v), wrote %+v", i, gc, gc.Type.Elem, wc)
			}
		}
		gotRows := got["every_type"]
		if len(gotRows) != len(rows) {
			t.Fatalf("read %d rows, wrote %d", len(gotRows), len(rows))
		}
		for r, wr := range rows {
			gr := gotRows[r]
			for i, col := range want.Columns {
				w, g := wr[i], gr[i]
				if !sameValue(t, col.Type, w, g) {
					t.Errorf("row %d column %s: wrote %#v, read %#v", r, col.Name, w, g)
					continue
				}
				switch wv := w.(type) {
				case string: // exact spelling, not just an equal value
					if g != wv {
						t.Errorf("row %d column %s: wrote %q, read %q", r, col.Name, wv, g)
					}
				case float64:
					gv := g.(float64)
					if math.Signbit(wv) != math.Signbit(gv) || math.IsNaN(wv) != math.IsNaN(gv) {
						t.Errorf("row %d column %s: wrote %v, read %v", r, col.Name, wv, gv)
					}
				}
			}
		}
	}
}

// TestNativeTypes checks the DuckDB type each kind gets: a user querying
// the file sees DECIMAL, TIMESTAMPTZ, lists and UUIDs, not text.
func TestNativeTypes(t *testing.T) {
	c := openPath(t, filepath.Join(t.TempDir(), "types.duckdb"))
	writeTable(t, c, everyType(), nil)
	h, err := c.reader(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := h.db.QueryContext(t.Context(), `SELECT column_name, data_type, coalesce(comment, '') FROM duckdb_columns() WHERE table_name = 'every_type' ORDER BY column_index`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var n, d, cm string
		if err := rows.Scan(&n, &d, &cm); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimSpace(n+" "+d+" "+cm))
	}
	want := []string{"id BIGINT", "b BOOLEAN", "i16 SMALLINT", "i32 INTEGER", "i64 BIGINT", "dec VARCHAR ferry:decimal(40,9)", "dec_any VARCHAR ferry:decimal",
		"f32 FLOAT", "f64 DOUBLE", "txt VARCHAR", "vc VARCHAR", "byt BLOB", "js VARCHAR ferry:json", "uu UUID", "d DATE", "tm TIME",
		"ttz TIME WITH TIME ZONE", "ts TIMESTAMP", "tstz TIMESTAMP WITH TIME ZONE", "iv INTERVAL", "arr_i BIGINT[]", "arr_t VARCHAR[]",
		"arr_dec DECIMAL(10,2)[]", "en VARCHAR ferry:enum", "inet VARCHAR ferry:inet", "cidr VARCHAR ferry:cidr", "mac VARCHAR ferry:macaddr"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRefusedValues checks each value DuckDB cannot hold is refused at the
// row with the table, column, key and the reason, and nothing is written.
func TestRefusedValues(t *testing.T) {
	c := openPath(t, filepath.Join(t.TempDir(), "refused.duckdb"))
	k := func(kind model.Kind) model.Type { return model.Type{Kind: kind} }
	for _, tc := range []struct {
		name string
		typ  model.Type
		v    any
		want string
	}{
		{"time_24h", k(model.KindTime), 24 * time.Hour, "outside 00:00:00-23:59:59.999999"},
		{"time_ns", k(model.KindTime), time.Nanosecond, "nanoseconds"},
		{"ts_ns", k(model.KindTimestamp), time.Date(2020, 1, 1, 0, 0, 0, 1, time.UTC), "nanoseconds"},
		{"date_inf", k(model.KindDate), model.PosInfinity, "infinite"},
		{"tstz_neginf", k(model.KindTimestampTZ), model.NegInfinity, "infinite"},
		{"text_utf8", k(model.KindText), "bad \xff", "not valid UTF-8"},
		{"dec_nan", model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, "NaN", "no NaN"},
		{"dec_wide", model.Type{Kind: model.KindDecimal, Precision: 4, Scale: 2}, "123.45", "more than 4 digits"},
		{"dec_scale", model.Type{Kind: model.KindDecimal, Precision: 10, Scale: 2}, "1.234", "would round"},
		{"multidim", model.Type{Kind: model.KindArray, Elem: ptr(k(model.KindInt64))}, []any{[]any{int64(1)}}, "multi-dimensional"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := &model.Table{Namespace: model.Namespace{Schema: "main", Table: tc.name}, PrimaryKey: []string{"id"},
				Columns: []model.Column{{Name: "id", Type: k(model.KindInt64)}, {Name: "v", Type: tc.typ, Nullable: true}}}
			ctx := t.Context()
			if err := c.CreateTables(ctx, []*model.Table{tbl}); err != nil {
				t.Fatal(err)
			}
			w, err := c.OpenWriter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			err = w.WriteRows(ctx, &model.RowBatch{Table: tbl, Partition: "p", Rows: []model.Row{{int64(1), nil}, {int64(7), tc.v}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "column v, key (id=7)") || !strings.Contains(err.Error(), "table main."+tc.name) {
				t.Fatalf("write %#v: err = %v, want one naming table, column, key and %q", tc.v, err, tc.want)
			}
			var n int
			h, _ := c.reader(ctx)
			if err := h.db.QueryRowContext(ctx, "SELECT count(*) FROM main."+tc.name).Scan(&n); err != nil || n != 0 {
				t.Errorf("rows after a refused batch: %d (%v), want 0", n, err)
			}
		})
	}
	if _, err := c.CheckTables(t.Context(), []*model.Table{{Namespace: model.Namespace{Schema: "main", Table: "nested"}, Columns: []model.Column{
		{Name: "a", Type: model.Type{Kind: model.KindArray, Elem: ptr(model.Type{Kind: model.KindArray, Elem: ptr(k(model.KindInt64))})}}}}}); err == nil || !errors.As(err, new(*errs.ConfigError)) {
		t.Errorf("an array of arrays: %v, want a configuration error", err)
	}
}

// TestKeylessTable: a table without a primary key is appended, read back
// whole through rowid ranges, and its changes are refused.
func TestKeylessTable(t *testing.T) {
	c := openPath(t, filepath.Join(t.TempDir(), "keyless.duckdb"))
	tbl := &model.Table{Namespace: model.Namespace{Schema: "logs", Table: "events"}, Columns: []model.Column{
		{Name: "at", Type: model.Type{Kind: model.KindTimestampTZ}, Nullable: true},
		{Name: "what", Type: model.Type{Kind: model.KindText}, Nullable: true},
	}}
	var rows []model.Row
	for i := 0; i < 25; i++ {
		rows = append(rows, model.Row{time.Date(2024, 1, 1, 0, 0, i, 0, time.UTC), "same"}) // duplicates are rows too
	}
	writeTable(t, c, tbl, rows)
	_, got := readAll(t, c, connector.PlanOptions{PartitionRows: 4, BatchRows: 3})
	if n := len(got["events"]); n != 25 {
		t.Fatalf("read %d rows of a keyless table, wrote 25", n)
	}
	ap, err := c.OpenApplier(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer ap.Close()
	err = ap.ApplyChanges(t.Context(), &model.ApplyBatch{Tables: []*model.TableChanges{{Table: tbl, Upserts: []model.Row{rows[0]}}}})
	if err == nil || !strings.Contains(err.Error(), "no primary key") {
		t.Fatalf("changes to a keyless table: %v", err)
	}
}
