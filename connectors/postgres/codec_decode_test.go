package postgres

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

func canon(t *testing.T, ty model.Type, v any) string {
	t.Helper()
	b, err := model.AppendCanonical(nil, ty, v)
	if err != nil {
		t.Fatalf("%s %#v: %v", ty, v, err)
	}
	return string(b)
}

// PostgreSQL's text output (under ferry's session settings) decodes to the
// canonical value; the canonical value encodes to input PostgreSQL reads
// back as the same value.
func TestDecodeAndEncode(t *testing.T) {
	i64 := model.Type{Kind: model.KindInt64}
	txt := model.Type{Kind: model.KindText}
	cases := []struct {
		t      model.Type
		out    string // PostgreSQL's output
		want   any
		encode string // ferry's input text ("" = same as out)
	}{
		{model.Type{Kind: model.KindBool}, "t", true, ""},
		{i64, "-9223372036854775808", int64(math.MinInt64), ""},
		{model.Type{Kind: model.KindFloat64}, "-Infinity", math.Inf(-1), ""},
		{model.Type{Kind: model.KindFloat64}, "1e-300", 1e-300, ""},
		{model.Type{Kind: model.KindFloat32}, "3.4028235e+38", float64(float32(3.4028235e38)), ""},
		{model.Type{Kind: model.KindDecimal, Native: "money"}, "-$92,233,720,368,547,758.08", "-92233720368547758.08", "-92233720368547758.08"},
		{model.Type{Kind: model.KindBytes}, `\x00ff00`, []byte{0, 255, 0}, ""},
		{model.Type{Kind: model.KindDate}, "4714-11-24 BC", time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC), ""},
		{model.Type{Kind: model.KindDate}, "infinity", model.PosInfinity, ""},
		{model.Type{Kind: model.KindDate}, "5874897-12-31", time.Date(5874897, 12, 31, 0, 0, 0, 0, time.UTC), ""},
		{model.Type{Kind: model.KindTime}, "24:00:00", 24 * time.Hour, ""},
		{model.Type{Kind: model.KindTimeTZ}, "13:04:05.123456+05:30", model.TimeTZ{Time: 13*time.Hour + 4*time.Minute + 5*time.Second + 123456*time.Microsecond, Offset: 19800}, ""},
		{model.Type{Kind: model.KindTimeTZ}, "00:00:00-15:59:01", model.TimeTZ{Offset: -(15*3600 + 59*60 + 1)}, ""},
		{model.Type{Kind: model.KindTimestamp}, "0044-03-15 12:00:00 BC", time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), ""},
		{model.Type{Kind: model.KindTimestamp}, "294276-12-31 23:59:59.999999", time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC), ""},
		{model.Type{Kind: model.KindTimestampTZ}, "2000-01-01 00:00:00.000001+00", time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC), ""},
		{model.Type{Kind: model.KindTimestampTZ}, "-infinity", model.NegInfinity, ""},
		{model.Type{Kind: model.KindInterval}, "P-1Y-2M3DT-4H-5M-6.000001S", model.Interval{Months: -14, Days: 3, Micros: -(4*3600+5*60+6)*1e6 - 1}, "-14 mons 3 days -4:05:06.000001"},
		{model.Type{Kind: model.KindInterval}, "PT0S", model.Interval{}, "0 mons 0 days +0:00:00"},
		{model.Type{Kind: model.KindArray, Elem: &i64}, "{1,NULL,-3}", []any{int64(1), nil, int64(-3)}, `{"1",NULL,"-3"}`},
		{model.Type{Kind: model.KindArray, Elem: &txt}, `{"a,b","",NULL,"\"q\"","NULL","back\\slash",plain}`, []any{"a,b", "", nil, `"q"`, "NULL", `back\slash`, "plain"},
			`{"a,b","",NULL,"\"q\"","NULL","back\\slash","plain"}`},
		{model.Type{Kind: model.KindArray, Elem: &txt}, "{}", []any{}, ""},
		{model.Type{Kind: model.KindTimestamp}, "infinity", model.PosInfinity, ""},
		{model.Type{Kind: model.KindDate}, "-infinity", model.NegInfinity, ""},
		{model.Type{Kind: model.KindArray, Elem: &i64}, "{{1,2},{NULL,4}}", []any{[]any{int64(1), int64(2)}, []any{nil, int64(4)}}, `{{"1","2"},{NULL,"4"}}`},
		{model.Type{Kind: model.KindArray, Elem: &txt}, `{{{"a}",b}},{{NULL,"{"}}}`, []any{[]any{[]any{"a}", "b"}}, []any{[]any{nil, "{"}}}, `{{{"a}","b"}},{{NULL,"{"}}}`},
	}
	for _, c := range cases {
		dec, err := decoderFor(c.t)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec(c.out)
		if err != nil {
			t.Fatalf("decode %s %q: %v", c.t, c.out, err)
		}
		if canon(t, c.t, got) != canon(t, c.t, c.want) {
			t.Errorf("decode %s %q = %#v, want %#v", c.t, c.out, got, c.want)
		}
		enc, err := appendText(nil, c.t, c.want)
		if err != nil {
			t.Fatalf("encode %s %#v: %v", c.t, c.want, err)
		}
		want := c.encode
		if want == "" {
			want = c.out
		}
		if string(enc) != want {
			t.Errorf("encode %s %#v = %q, want %q", c.t, c.want, enc, want)
		}
	}
	for _, bad := range []struct {
		t model.Type
		s string
	}{{model.Type{Kind: model.KindArray, Elem: &i64}, "{{1,2},3}"}, {model.Type{Kind: model.KindArray, Elem: &i64}, "{{{{{{{1}}}}}}}"}, {model.Type{Kind: model.KindArray, Elem: &i64}, "{{1,2}"}, {model.Type{Kind: model.KindArray, Elem: &i64}, "[0:1]={1,2}"}, {model.Type{Kind: model.KindDate}, "2024-13"}, {model.Type{Kind: model.KindInterval}, "1 day"}} {
		dec, _ := decoderFor(bad.t)
		if _, err := dec(bad.s); err == nil {
			t.Errorf("decode %s %q: accepted", bad.t, bad.s)
		}
	}
}

// FuzzArrayRoundTrip checks that an array literal ferry writes reads back
// as the same elements, and that the parser never panics.
func FuzzArrayRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a,b", `"q"`, `back\slash`, "NULL", "{x}", " spaced "} {
		f.Add(s, "second")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		parseArray(a) //nolint:errcheck // must not panic on anything
		txt := model.Type{Kind: model.KindText}
		typ := model.Type{Kind: model.KindArray, Elem: &txt}
		if bytes.IndexByte([]byte(a+b), 0) >= 0 {
			return
		}
		for _, v := range [][]any{{a, nil, b}, {[]any{a, b}, []any{nil, a}}} {
			lit, err := appendText(nil, typ, v)
			if err != nil {
				t.Fatal(err)
			}
			back, err := arrayDecoder(decodeText)(string(lit))
			if err != nil {
				t.Fatalf("%q: %v", lit, err)
			}
			if canon(t, typ, back) != canon(t, typ, v) {
				t.Fatalf("%q read back as %#v", lit, back)
			}
		}
	})
}

// TestDecoders: each decoder reads PostgreSQL's text output (under ferry's
// session settings) as the canonical value, and refuses what is not that
// output.
func TestDecoders(t *testing.T) {
	utc := func(y int, m time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, m, d, h, mi, s, ns, time.UTC)
	}
	for _, c := range []struct {
		name string
		dec  decoder
		in   string
		want any // nil: refused
	}{
		{"bool true", decodeBool, "true", true},
		{"bool f", decodeBool, "f", false},
		{"bool yes", decodeBool, "yes", nil},
		{"int", decodeInt, "-42", int64(-42)},
		{"int with spaces", decodeInt, " 42", nil},
		{"float -0", decodeFloat64, "-0", math.Copysign(0, -1)},
		{"float NaN", decodeFloat64, "NaN", math.NaN()},
		{"float infinity", decodeFloat32, "Infinity", math.Inf(1)},
		{"float junk", decodeFloat64, "1,5", nil},
		{"money", decodeMoney, "$1,234.56", "1234.56"},
		{"negative money", decodeMoney, "-$0.01", "-0.01"},
		{"money in parentheses", decodeMoney, "($5.00)", "-5.00"},
		{"money without digits", decodeMoney, "$", nil},
		{"bytea", decodeBytea, `\x00ff`, []byte{0, 0xff}},
		{"bytea escape format", decodeBytea, `\000`, nil},
		{"date", decodeDate, "2024-02-29", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"date 1 BC", decodeDate, "0001-01-01 BC", utc(0, 1, 1, 0, 0, 0, 0)},
		{"date with time", decodeDate, "2024-02-29 00:00:00", nil},
		{"time", decodeTime, "23:59:59.999999", 24*time.Hour - time.Microsecond},
		{"time with zone", decodeTime, "12:00:00+01", nil},
		{"time fraction too long", decodeTime, "12:00:00.1234567891", nil},
		{"timetz east", decodeTimeTZ, "12:00:00+05:30", model.TimeTZ{Time: 12 * time.Hour, Offset: 19800}},
		{"timetz west seconds", decodeTimeTZ, "12:00:00-00:00:30", model.TimeTZ{Time: 12 * time.Hour, Offset: -30}},
		{"timetz bad offset", decodeTimeTZ, "12:00:00+5", nil},
		{"timestamptz to UTC", decodeTimestampTZ, "2024-01-01 00:30:00+01", utc(2023, 12, 31, 23, 30, 0, 0)},
		{"timestamptz BC", decodeTimestampTZ, "0044-03-15 12:00:00+00 BC", utc(-43, 3, 15, 12, 0, 0, 0)},
		{"timestamp with a zone", decodeTimestamp, "2024-01-01 00:00:00+00", nil},
		{"timestamp infinity", decodeTimestamp, "infinity", model.PosInfinity},
		{"interval weeks", decodeInterval, "P2W", model.Interval{Days: 14}},
		{"interval fractional seconds", decodeInterval, "PT-0.5S", model.Interval{Micros: -500000}},
		{"interval all parts", decodeInterval, "P1Y-1M2DT3H-4M5S", model.Interval{Months: 11, Days: 2, Micros: (3*3600 - 4*60 + 5) * 1e6}},
		{"interval two T", decodeInterval, "PT1HT1M", nil},
		{"interval minutes outside time", decodeInterval, "P1Y2M3", nil},
		{"interval months overflow", decodeInterval, "P999999999Y", nil},
	} {
		got, err := c.dec(c.in)
		if c.want == nil {
			if err == nil {
				t.Errorf("%s: %q decoded as %#v, want an error", c.name, c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %q: %v", c.name, c.in, err)
			continue
		}
		if f, ok := c.want.(float64); ok {
			g, _ := got.(float64)
			if !(math.IsNaN(f) && math.IsNaN(g)) && (g != f || math.Signbit(g) != math.Signbit(f)) {
				t.Errorf("%s: %q = %v, want %v", c.name, c.in, got, c.want)
			}
			continue
		}
		if gotT, ok := got.(time.Time); ok {
			if !gotT.Equal(c.want.(time.Time)) {
				t.Errorf("%s: %q = %v, want %v", c.name, c.in, got, c.want)
			}
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q = %#v, want %#v", c.name, c.in, got, c.want)
		}
	}
}

// TestTableDecodersNameTheColumn: a column ferry cannot read is refused
// with the table and column named.
func TestTableDecodersNameTheColumn(t *testing.T) {
	tbl := &model.Table{Namespace: model.Namespace{Schema: "shop", Table: "odd"}, Columns: []model.Column{
		{Name: "id", Type: model.Type{Kind: model.KindInt64}},
		{Name: "shape", Type: model.Type{Kind: model.KindUnknown, Native: "point"}},
	}}
	_, err := tableDecoders(tbl)
	if err == nil || !strings.Contains(err.Error(), "shop.odd") || !strings.Contains(err.Error(), "shape") {
		t.Fatalf("tableDecoders: %v, want an error naming shop.odd and shape", err)
	}
	if _, err := decoderFor(model.Type{Kind: model.KindArray}); err == nil {
		t.Fatal("an array without an element type was accepted")
	}
}
