package sqlite

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

func ptr[T any](v T) *T { return &v }

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
			utc(1, 1, 1, 0, 0, 0, 0), 24 * time.Hour,
			model.TimeTZ{Time: 0, Offset: 14 * 3600},
			utc(1900, 1, 1, 0, 0, 0, 1000), utc(9999, 12, 31, 23, 59, 59, 999999000),
			model.Interval{Months: 0, Days: 0, Micros: 0},
			[]any{}, []any{}, []any{nil},
			"", "::1", "::/0", "ff:ff:ff:ff:ff:ff"},
		{int64(4), true, int64(32767), int64(-2147483648), int64(math.MaxInt64),
			"-99999999999999999999999999999.999999999", "NaN",
			negZero, math.Inf(1),
			"bad utf8 \xff\xfe end", "12345678901234567890", []byte("\x00"),
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

func TestTypeRoundTrip(t *testing.T) {
	c, _ := newFile(t)
	want := everyType()
	rows := everyTypeRows()
	writeTable(t, c, want, rows)

	tables, got, _ := readAll(t, c, connector.PlanOptions{})
	gt := tables["every_type"]
	if gt == nil {
		t.Fatalf("every_type not discovered; got %v", tables)
	}
	if gt.Namespace != (model.Namespace{Schema: "main", Table: "every_type"}) {
		t.Errorf("namespace = %v", gt.Namespace)
	}
	if !reflect.DeepEqual(gt.PrimaryKey, want.PrimaryKey) {
		t.Errorf("primary key = %v, want %v", gt.PrimaryKey, want.PrimaryKey)
	}
	if gt.EstimatedRows != int64(len(rows)) || gt.EstimatedBytes <= 0 {
		t.Errorf("estimates: rows %d bytes %d", gt.EstimatedRows, gt.EstimatedBytes)
	}
	if len(gt.Columns) != len(want.Columns) {
		t.Fatalf("discovered %d columns, want %d", len(gt.Columns), len(want.Columns))
	}
	for i, wc := range want.Columns {
		gc := gt.Columns[i]
		gc.Type.Native = ""
		if gc.Type.Elem != nil {
			e := *gc.Type.Elem
			e.Native = ""
			gc.Type.Elem = &e
		}
		if gc.Name != wc.Name || !reflect.DeepEqual(gc.Type, wc.Type) || gc.Nullable != wc.Nullable {
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
			case []byte:
				if g == nil {
					t.Errorf("row %d column %s: wrote %q, read NULL", r, col.Name, wv)
				}
			}
		}
	}
}

// TestDeclTypes checks every kind's declared type maps back to the kind and
// has the affinity the mapping table promises.
func TestDeclTypes(t *testing.T) {
	tests := []struct {
		typ  model.Type
		decl string
		aff  aff
	}{
		{model.Type{Kind: model.KindBool}, "BOOLEAN", affNumeric},
		{model.Type{Kind: model.KindInt16}, "SMALLINT", affInteger},
		{model.Type{Kind: model.KindInt32}, "INT32", affInteger},
		{model.Type{Kind: model.KindInt64}, "INTEGER", affInteger},
		{model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 3}, "DECIMAL_TEXT(12,3)", affText},
		{model.Type{Kind: model.KindDecimal}, "DECIMAL_TEXT", affText},
		{model.Type{Kind: model.KindFloat32}, "FLOAT32_BLOB", affBlob},
		{model.Type{Kind: model.KindFloat64}, "FLOAT64_BLOB", affBlob},
		{model.Type{Kind: model.KindText}, "TEXT", affText},
		{model.Type{Kind: model.KindText, Length: 7}, "VARCHAR(7)", affText},
		{model.Type{Kind: model.KindBytes}, "BLOB", affBlob},
		{model.Type{Kind: model.KindBytes, Length: 16}, "BLOB(16)", affBlob},
		{model.Type{Kind: model.KindJSON}, "JSON_TEXT", affText},
		{model.Type{Kind: model.KindUUID}, "UUID_TEXT", affText},
		{model.Type{Kind: model.KindDate}, "DATE_TEXT", affText},
		{model.Type{Kind: model.KindTime}, "TIME_TEXT", affText},
		{model.Type{Kind: model.KindTimeTZ}, "TIMETZ_TEXT", affText},
		{model.Type{Kind: model.KindTimestamp}, "TIMESTAMP_TEXT", affText},
		{model.Type{Kind: model.KindTimestampTZ}, "TIMESTAMPTZ_TEXT", affText},
		{model.Type{Kind: model.KindInterval}, "INTERVAL_TEXT", affInteger},
		{model.Type{Kind: model.KindEnum}, "ENUM_TEXT", affText},
		{model.Type{Kind: model.KindInet}, "INET_TEXT", affText},
		{model.Type{Kind: model.KindCIDR}, "CIDR_TEXT", affText},
		{model.Type{Kind: model.KindMACAddr}, "MACADDR_TEXT", affText},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}, "ARRAY_TEXT OF TEXT", affText},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt64}}, "ARRAY_TEXT OF INTEGER", affInteger},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindDecimal, Precision: 5, Scale: 1}}}, "ARRAY_TEXT OF ARRAY_TEXT OF DECIMAL_TEXT(5,1)", affText},
	}
	for _, tt := range tests {
		decl, err := declType(tt.typ)
		if err != nil {
			t.Errorf("%s: %v", tt.typ, err)
			continue
		}
		if decl != tt.decl {
			t.Errorf("%s: declared %q, want %q", tt.typ, decl, tt.decl)
		}
		if a := affinity(decl); a != tt.aff {
			t.Errorf("%s: affinity %s, want %s", decl, a, tt.aff)
		}
		back := parseDeclType(strings.ToLower(decl))
		if back.String() != tt.typ.String() || back.Length != tt.typ.Length {
			t.Errorf("%s: parsed back as %s (length %d)", decl, back, back.Length)
		}
	}
	if _, err := declType(model.Type{Kind: model.KindArray}); err == nil {
		t.Error("array without element type: no error")
	}
	if _, err := declType(model.Type{Kind: model.KindUnknown}); err == nil {
		t.Error("unknown kind: no error")
	}
}

// TestHandMadeTypes checks the declared types of tables ferry did not make.
func TestHandMadeTypes(t *testing.T) {
	tests := map[string]model.Type{
		"INT":              {Kind: model.KindInt64},
		"integer":          {Kind: model.KindInt64},
		"BIGINT":           {Kind: model.KindInt64},
		"UNSIGNED BIG INT": {Kind: model.KindInt64},
		"tinyint":          {Kind: model.KindInt16},
		"varchar(255)":     {Kind: model.KindText, Length: 255},
		"NVARCHAR(10)":     {Kind: model.KindText, Length: 10},
		"CLOB":             {Kind: model.KindText},
		"REAL":             {Kind: model.KindFloat64},
		"double precision": {Kind: model.KindFloat64},
		"FLOAT":            {Kind: model.KindFloat64},
		"BLOB":             {Kind: model.KindBytes},
		"BOOLEAN":          {Kind: model.KindBool},
		"NUMERIC":          {Kind: model.KindDecimal},
		"DECIMAL(10, 5)":   {Kind: model.KindDecimal, Precision: 10, Scale: 5},
		"DATE":             {Kind: model.KindDate},
		"DATETIME":         {Kind: model.KindTimestamp},
		"TIMESTAMP":        {Kind: model.KindTimestamp},
		"":                 {Kind: model.KindText},
		"MONEY":            {Kind: model.KindText},
		"MYINTEGERISH":     {Kind: model.KindInt64},
		"STRING_TEXTY":     {Kind: model.KindText},
		"FLOATING":         {Kind: model.KindFloat64},
		"PICTURE BLOB":     {Kind: model.KindBytes},
	}
	for decl, want := range tests {
		got := parseDeclType(decl)
		got.Native = ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %+v, want %+v", decl, got, want)
		}
	}
}

func TestToSQLiteRejects(t *testing.T) {
	tests := []struct {
		typ model.Type
		v   any
	}{
		{model.Type{Kind: model.KindInt64}, "12"},
		{model.Type{Kind: model.KindBool}, int64(1)},
		{model.Type{Kind: model.KindText}, []byte("x")},
		{model.Type{Kind: model.KindTimestamp}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{model.Type{Kind: model.KindDate}, time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{model.Type{Kind: model.KindTime}, 25 * time.Hour},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}, []any{"bad \xff"}},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt64}}, []any{"1"}},
		{model.Type{Kind: model.KindArray, Elem: ptr(model.Type{Kind: model.KindInt64})}, "[1]"},
	}
	for _, tt := range tests {
		if v, err := toSQLite(tt.typ, tt.v); err == nil {
			t.Errorf("%s %#v: stored as %#v, want an error", tt.typ, tt.v, v)
		}
	}
}
