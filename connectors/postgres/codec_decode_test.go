package postgres

import (
	"bytes"
	"math"
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
