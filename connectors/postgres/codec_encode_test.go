package postgres

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

// TestAppendText: each canonical value's PostgreSQL input text, as the
// destination's input functions read it exactly.
func TestAppendText(t *testing.T) {
	ty := func(k model.Kind) model.Type { return model.Type{Kind: k} }
	i32 := ty(model.KindInt32)
	for _, c := range []struct {
		t    model.Type
		v    any
		want string
	}{
		{ty(model.KindBool), false, "f"},
		{ty(model.KindInt16), int64(-32768), "-32768"},
		{ty(model.KindFloat32), float64(float32(0.1)), "0.1"},
		{ty(model.KindFloat64), 0.1, "0.1"},
		{ty(model.KindFloat64), math.Copysign(0, -1), "-0"},
		{ty(model.KindFloat64), math.NaN(), "NaN"},
		{ty(model.KindFloat32), math.Inf(1), "Infinity"},
		{ty(model.KindBytes), []byte{}, `\x`},
		{ty(model.KindBytes), []byte("AZ"), `\x415a`},
		{ty(model.KindDate), time.Date(0, 2, 29, 0, 0, 0, 0, time.UTC), "0001-02-29 BC"},
		{ty(model.KindDate), time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC), "12345-01-01"},
		{ty(model.KindTime), 13*time.Hour + 500*time.Millisecond, "13:00:00.5"},
		{ty(model.KindTime), time.Nanosecond, "00:00:00.000000001"},
		{ty(model.KindTimeTZ), model.TimeTZ{Time: time.Hour, Offset: -(3*3600 + 30*60 + 15)}, "01:00:00-03:30:15"},
		{ty(model.KindTimeTZ), model.TimeTZ{Offset: 0}, "00:00:00+00:00"},
		{ty(model.KindTimestamp), time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.FixedZone("x", 3600)), "2024-02-29 22:59:59.123456"},
		{ty(model.KindTimestampTZ), time.Date(2024, 1, 1, 0, 30, 0, 0, time.FixedZone("x", 3600)), "2023-12-31 23:30:00+00"},
		{ty(model.KindTimestampTZ), time.Date(-43, 3, 15, 12, 0, 0, 0, time.UTC), "0044-03-15 12:00:00+00 BC"},
		{ty(model.KindTimestamp), model.NegInfinity, "-infinity"},
		{ty(model.KindInterval), model.Interval{Micros: 90061_000_001}, "0 mons 0 days +25:01:01.000001"},
		{ty(model.KindInterval), model.Interval{Months: -1, Days: 40, Micros: -1}, "-1 mons 40 days -0:00:00.000001"},
		{model.Type{Kind: model.KindArray, Elem: &i32}, []any{}, "{}"},
		{model.Type{Kind: model.KindArray, Elem: &i32}, []any{[]any{int64(1)}, []any{nil}}, `{{"1"},{NULL}}`},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindText}}, []any{`a"b\c`, "{,}"}, `{"a\"b\\c","{,}"}`},
	} {
		got, err := appendText(nil, c.t, c.v)
		if err != nil {
			t.Fatalf("%s %#v: %v", c.t, c.v, err)
		}
		if string(got) != c.want {
			t.Errorf("%s %#v = %q, want %q", c.t, c.v, got, c.want)
		}
	}
}

// TestAppendTextRefuses: a value of another Go type than the kind's, and
// text PostgreSQL cannot store, are errors naming the problem.
func TestAppendTextRefuses(t *testing.T) {
	i64 := model.Type{Kind: model.KindInt64}
	for _, c := range []struct {
		t model.Type
		v any
	}{
		{model.Type{Kind: model.KindBool}, "t"},
		{i64, 5},
		{i64, "5"},
		{model.Type{Kind: model.KindText}, "nul \x00 inside"},
		{model.Type{Kind: model.KindJSON}, []byte("{}")},
		{model.Type{Kind: model.KindDate}, "2024-01-01"},
		{model.Type{Kind: model.KindInterval}, time.Hour},
		{model.Type{Kind: model.KindInterval}, model.Interval{Micros: math.MinInt64}},
		{model.Type{Kind: model.KindArray}, []any{int64(1)}}, // no element type
		{model.Type{Kind: model.KindArray, Elem: &i64}, []any{"x"}},
		{model.Type{Kind: model.KindUnknown}, "x"},
	} {
		if got, err := appendText(nil, c.t, c.v); err == nil {
			t.Errorf("%s %#v: accepted as %q", c.t, c.v, got)
		}
	}
}

// TestAppendCopyEscaped: a field in COPY's text format escapes exactly the
// characters COPY gives a meaning to.
func TestAppendCopyEscaped(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"plain, text; ok": "plain, text; ok",
		"tab\there":       `tab\there`,
		"a\tb\nc\rd":      `a\tb\nc\rd`,
		`back\slash \N`:   `back\\slash \\N`,
	} {
		if got := string(appendCopyEscaped([]byte(">"), []byte(in))); got != ">"+want {
			t.Errorf("appendCopyEscaped(%q) = %q, want %q", in, got, ">"+want)
		}
	}
}

// textParam is appendText's output, for every kind (without the copy where
// the text is the string itself).
func TestTextParamIsAppendText(t *testing.T) {
	txt := model.Type{Kind: model.KindText}
	values := []struct {
		t model.Type
		v any
	}{
		{txt, "plain"}, {txt, ""}, {txt, "with \x00 NUL"}, {txt, int64(3)},
		{model.Type{Kind: model.KindJSON}, `{"a": [1, "b"]}`},
		{model.Type{Kind: model.KindDecimal}, "-12.50"},
		{model.Type{Kind: model.KindUUID}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{model.Type{Kind: model.KindEnum}, "red"},
		{model.Type{Kind: model.KindInet}, "10.0.0.1/32"},
		{model.Type{Kind: model.KindCIDR}, "10.0.0.0/8"},
		{model.Type{Kind: model.KindMACAddr}, "08:00:2b:01:02:03"},
		{model.Type{Kind: model.KindBytes}, []byte{0, 1, 0xff}},
		{model.Type{Kind: model.KindInt64}, int64(-7)},
		{model.Type{Kind: model.KindBool}, true},
		{model.Type{Kind: model.KindArray, Elem: &txt}, []any{"a", nil, `q"uote`}},
	}
	for _, c := range values {
		want, werr := appendText(nil, c.t, c.v)
		got, gerr := textParam(c.t, c.v)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Errorf("%s %#v: textParam %q, %v; appendText %q, %v", c.t, c.v, got, gerr, want, werr)
		}
		// nil is what the driver sends as NULL.
		if gerr == nil && got == nil {
			t.Errorf("%s %#v: textParam is nil, a NULL", c.t, c.v)
		}
	}
}
