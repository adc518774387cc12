package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleValues() []struct {
	t Type
	v any
} {
	i64 := Type{Kind: KindInt64}
	txt := Type{Kind: KindText}
	return []struct {
		t Type
		v any
	}{
		{Type{Kind: KindBool}, true},
		{Type{Kind: KindInt16}, int64(-32768)},
		{Type{Kind: KindInt32}, int64(2147483647)},
		{i64, int64(math.MinInt64)},
		{Type{Kind: KindDecimal, Precision: 40, Scale: 9}, "123456789012345678901234567890.123456789"},
		{Type{Kind: KindFloat32}, float64(float32(3.14159))},
		{Type{Kind: KindFloat64}, math.Inf(-1)},
		{Type{Kind: KindFloat64}, 1e-300},
		{txt, "emoji 🚢, quotes \" and newline\n and NUL \x00"},
		{Type{Kind: KindBytes}, []byte{0, 1, 2, 255}},
		{Type{Kind: KindJSON}, `{"a":[1,2.50,{"b":null}],"c":"ü"}`},
		{Type{Kind: KindUUID}, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{Type{Kind: KindDate}, time.Date(1901, 2, 3, 0, 0, 0, 0, time.UTC)},
		{Type{Kind: KindTime}, 13*time.Hour + 4*time.Minute + 5*time.Second + 123456*time.Microsecond},
		{Type{Kind: KindTimeTZ}, TimeTZ{Time: 23 * time.Hour, Offset: -(5*3600 + 30*60)}},
		{Type{Kind: KindTimestamp}, time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{Type{Kind: KindTimestampTZ}, time.Date(2024, 2, 29, 12, 0, 0, 1000, time.UTC)},
		{Type{Kind: KindInterval}, Interval{Months: -14, Days: 3, Micros: -4_000_001}},
		{Type{Kind: KindArray, Elem: &i64}, []any{int64(1), nil, int64(-3)}},
		{Type{Kind: KindArray, Elem: &txt}, []any{"a,b", "", "\"q\""}},
		{Type{Kind: KindArray, Elem: &i64}, []any{[]any{int64(1), int64(2)}, []any{nil, int64(4)}}},
		{Type{Kind: KindArray, Elem: &txt}, []any{[]any{[]any{"a,b", nil}}, []any{[]any{"{", "}"}}}},
		{Type{Kind: KindDate}, PosInfinity},
		{Type{Kind: KindDate}, NegInfinity},
		{Type{Kind: KindTimestamp}, PosInfinity},
		{Type{Kind: KindTimestampTZ}, NegInfinity},
		{Type{Kind: KindDate}, time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Type{Kind: KindDate}, time.Date(5874897, 12, 31, 0, 0, 0, 0, time.UTC)},
		{Type{Kind: KindDate}, time.Date(-4, 2, 29, 0, 0, 0, 0, time.UTC)},
		{Type{Kind: KindTimestamp}, time.Date(-4713, 11, 24, 1, 2, 3, 4000, time.UTC)},
		{Type{Kind: KindTimestampTZ}, time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{Type{Kind: KindTimestampTZ}, time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Type{Kind: KindEnum}, "happy"},
		{Type{Kind: KindInet}, "192.168.0.1/24"},
	}
}

func canon(t *testing.T, ty Type, v any) string {
	t.Helper()
	b, err := AppendCanonical(nil, ty, v)
	if err != nil {
		t.Fatalf("%s %v: %v", ty, v, err)
	}
	return string(b)
}

func TestTextAndJSONRoundTrip(t *testing.T) {
	for _, c := range sampleValues() {
		s, err := FormatText(c.t, c.v)
		if err != nil {
			t.Fatalf("FormatText(%s, %v): %v", c.t, c.v, err)
		}
		back, err := ParseText(c.t, s)
		if err != nil {
			t.Fatalf("ParseText(%s, %q): %v", c.t, s, err)
		}
		if canon(t, c.t, back) != canon(t, c.t, c.v) {
			t.Errorf("text round trip of %s: %#v -> %q -> %#v", c.t, c.v, s, back)
		}
		j, err := ToJSON(c.t, c.v)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var decoded any
		if err := dec.Decode(&decoded); err != nil {
			t.Fatal(err)
		}
		if c.t.Kind == KindJSON {
			decoded = json.RawMessage(raw)
		}
		back, err = FromJSON(c.t, decoded)
		if err != nil {
			t.Fatalf("FromJSON(%s, %s): %v", c.t, raw, err)
		}
		if canon(t, c.t, back) != canon(t, c.t, c.v) {
			t.Errorf("JSON round trip of %s: %#v -> %s -> %#v", c.t, c.v, raw, back)
		}
	}
}

func TestCanonicalEquality(t *testing.T) {
	dec := Type{Kind: KindDecimal}
	js := Type{Kind: KindJSON}
	f := Type{Kind: KindFloat64}
	same := [][2]any{{"1.50", "1.5"}, {"-0.0", "0"}, {"100", "100.000"}}
	for _, p := range same {
		if canon(t, dec, p[0]) != canon(t, dec, p[1]) {
			t.Errorf("decimals %v and %v should be equal", p[0], p[1])
		}
	}
	if canon(t, dec, "1.5") == canon(t, dec, "1.05") {
		t.Error("1.5 and 1.05 encode equal")
	}
	if canon(t, js, `{"b":2, "a":[1, 2.0]}`) != canon(t, js, `{"a":[1,2],"b":2}`) {
		t.Error("equivalent JSON documents encode differently")
	}
	if canon(t, f, math.NaN()) != canon(t, f, -math.NaN()) {
		t.Error("NaNs encode differently")
	}
	if canon(t, Type{Kind: KindText}, nil) == canon(t, Type{Kind: KindText}, "") {
		t.Error("NULL and the empty string encode equal")
	}
	// Adjacent values must not run together: ("ab","c") != ("a","bc").
	cols := []Column{{Name: "a", Type: Type{Kind: KindText}}, {Name: "b", Type: Type{Kind: KindText}}}
	x, _ := AppendRow(nil, cols, Row{"ab", "c"})
	y, _ := AppendRow(nil, cols, Row{"a", "bc"})
	if bytes.Equal(x, y) {
		t.Error("row encoding is ambiguous")
	}
}

func TestCoerce(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600))
	cases := []struct {
		t    Type
		in   any
		want any
	}{
		{Type{Kind: KindInt32}, int32(5), int64(5)},
		{Type{Kind: KindInt64}, "42", int64(42)},
		{Type{Kind: KindBool}, int64(1), true},
		{Type{Kind: KindBool}, "f", false},
		{Type{Kind: KindFloat64}, "NaN", math.NaN()},
		{Type{Kind: KindDecimal}, []byte("12.30"), "12.30"},
		{Type{Kind: KindUUID}, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{Type{Kind: KindTimestampTZ}, ts, ts.UTC()},
		{Type{Kind: KindTimestamp}, ts, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)},
		{Type{Kind: KindDate}, "2024-05-06", time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)},
		{Type{Kind: KindText}, []byte("x"), "x"},
	}
	for _, c := range cases {
		got, err := Coerce(c.t, c.in)
		if err != nil {
			t.Fatalf("Coerce(%s, %#v): %v", c.t, c.in, err)
		}
		if canon(t, c.t, got) != canon(t, c.t, c.want) {
			t.Errorf("Coerce(%s, %#v) = %#v, want %#v", c.t, c.in, got, c.want)
		}
	}
	for _, bad := range []struct {
		t  Type
		in any
	}{{Type{Kind: KindInt64}, "x"}, {Type{Kind: KindDecimal}, "1.2.3"}, {Type{Kind: KindUUID}, "nope"}, {Type{Kind: KindBool}, "maybe"}} {
		if _, err := Coerce(bad.t, bad.in); err == nil {
			t.Errorf("Coerce(%s, %#v) accepted bad input", bad.t, bad.in)
		}
	}
}

// TestInfiniteAndFarDates pins the text forms of infinite dates, BC dates
// and years past 9999: what ferry writes in files, it reads back.
func TestInfiniteAndFarDates(t *testing.T) {
	date, ts, tstz := Type{Kind: KindDate}, Type{Kind: KindTimestamp}, Type{Kind: KindTimestampTZ}
	cases := []struct {
		t    Type
		v    any
		text string
	}{
		{date, PosInfinity, "infinity"},
		{date, NegInfinity, "-infinity"},
		{ts, PosInfinity, "infinity"},
		{tstz, NegInfinity, "-infinity"},
		{date, time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC), "-4712-01-01"},
		{date, time.Date(0, 12, 31, 0, 0, 0, 0, time.UTC), "0000-12-31"},
		{date, time.Date(5874897, 12, 31, 0, 0, 0, 0, time.UTC), "5874897-12-31"},
		{ts, time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC), "-4713-11-24T00:00:00"},
		{tstz, time.Date(294276, 12, 31, 23, 59, 59, 999999000, time.UTC), "294276-12-31T23:59:59.999999Z"},
	}
	for _, c := range cases {
		got, err := FormatText(c.t, c.v)
		if err != nil || got != c.text {
			t.Errorf("FormatText(%s, %v) = %q, %v; want %q", c.t, c.v, got, err, c.text)
		}
		back, err := ParseText(c.t, c.text)
		if err != nil {
			t.Errorf("ParseText(%s, %q): %v", c.t, c.text, err)
			continue
		}
		if canon(t, c.t, back) != canon(t, c.t, c.v) {
			t.Errorf("ParseText(%s, %q) = %#v, want %#v", c.t, c.text, back, c.v)
		}
		// A driver's string (SQLite, MySQL) goes through Coerce.
		co, err := Coerce(c.t, c.text)
		if err != nil || canon(t, c.t, co) != canon(t, c.t, c.v) {
			t.Errorf("Coerce(%s, %q) = %#v, %v; want %#v", c.t, c.text, co, err, c.v)
		}
	}
	// Infinity is neither a date nor NULL, and the signs differ.
	if canon(t, date, PosInfinity) == canon(t, date, NegInfinity) ||
		canon(t, date, PosInfinity) == canon(t, date, time.Date(5874898, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		canon(t, date, NegInfinity) == canon(t, date, nil) {
		t.Error("infinity encodes like another value")
	}
	for _, bad := range []string{"-0005-02-29", "2023-02-29", "12345-13-01", "+-1-01-01", "infinityx"} {
		if v, err := ParseText(date, bad); err == nil {
			t.Errorf("ParseText(date, %q) = %v, want an error", bad, v)
		}
	}
	// Infinity is not a value of other kinds.
	if _, err := ParseText(Type{Kind: KindInt64}, "infinity"); err == nil {
		t.Error("an integer parsed infinity")
	}
}

func TestMultiDimArrays(t *testing.T) {
	i64 := Type{Kind: KindInt64}
	arr := Type{Kind: KindArray, Elem: &i64}
	two := []any{[]any{int64(1), int64(2)}, []any{nil, int64(4)}}
	s, err := FormatText(arr, two)
	if err != nil || s != "[[1,2],[null,4]]" {
		t.Fatalf("FormatText = %q, %v", s, err)
	}
	// A 2-D array differs from the 1-D arrays with the same elements.
	if canon(t, arr, two) == canon(t, arr, []any{int64(1), int64(2), nil, int64(4)}) {
		t.Error("a 2-D array encodes like its flattened elements")
	}
	if canon(t, arr, []any{[]any{int64(1)}}) == canon(t, arr, []any{int64(1)}) {
		t.Error("{{1}} encodes like {1}")
	}
	co, err := Coerce(arr, []any{[]any{int32(1), "2"}})
	if err != nil || canon(t, arr, co) != canon(t, arr, []any{[]any{int64(1), int64(2)}}) {
		t.Errorf("Coerce of a 2-D array = %#v, %v", co, err)
	}
	// json[]: the 1-D form keeps documents that are JSON arrays, a 2-D
	// array is refused instead of read back as one.
	js := Type{Kind: KindJSON}
	jarr := Type{Kind: KindArray, Elem: &js}
	back, err := ParseText(jarr, `[[1,2],{"a":1}]`)
	if err != nil || canon(t, jarr, back) != canon(t, jarr, []any{"[1,2]", `{"a":1}`}) {
		t.Errorf("json[] of a JSON array = %#v, %v", back, err)
	}
	for _, bad := range []string{"[[1,2],[3]]", "[1,[2]]", "[[1],null]", "[[[1]],[2]]"} {
		if v, err := ParseText(arr, bad); err == nil {
			t.Errorf("ParseText(%s, %s) = %#v, want an error", arr, bad, v)
		}
	}
	if _, err := FormatText(jarr, []any{[]any{"1", "2"}}); !errors.Is(err, ErrMultiDimJSONArray) {
		t.Errorf("2-D json[]: err = %v, want ErrMultiDimJSONArray", err)
	}
}

func FuzzParseText(f *testing.F) {
	for _, s := range []string{"1", "P1M2DT3.5S", "12:00:00+05:30", "2024-01-01T00:00:00Z", "[1,2]", "NaN", "-0.000",
		"infinity", "-infinity", "-4712-01-01", "294276-12-31T23:59:59.999999Z", "[[1,2],[null,4]]", "[[[1]],[[2]]]"} {
		f.Add(uint8(KindInterval), s)
	}
	for _, k := range []Kind{KindDate, KindTimestamp, KindTimestampTZ, KindArray} {
		f.Add(uint8(k), "-0001-02-28T01:02:03.5+05:30")
	}
	f.Fuzz(func(t *testing.T, k uint8, s string) {
		i64 := Type{Kind: KindInt64}
		ty := Type{Kind: Kind(k % uint8(KindMACAddr+1)), Elem: &i64}
		v, err := ParseText(ty, s)
		if err != nil || v == nil {
			return
		}
		out, err := FormatText(ty, v)
		if err != nil {
			return
		}
		again, err := ParseText(ty, out)
		if err != nil {
			t.Fatalf("%s: %q parsed, formatted as %q, which does not parse: %v", ty, s, out, err)
		}
		a, err1 := AppendCanonical(nil, ty, v)
		b, err2 := AppendCanonical(nil, ty, again)
		if err1 == nil && err2 == nil && !bytes.Equal(a, b) && !strings.Contains(s, "NaN") {
			t.Fatalf("%s: %q -> %#v -> %q -> %#v changed the value", ty, s, v, out, again)
		}
	})
}

func TestPlainDecimalAgreesWithNormalize(t *testing.T) {
	for _, s := range []string{"0", "-0", "-0.000", "007.50", "-12.500", "1", "123456789012345678901234567890.1234567890", "0.000001", "10", "-10.0"} {
		got, ok := plainDecimal(s)
		if want := normalizeDecimalRat(s); !ok || got != want {
			t.Errorf("plainDecimal(%q) = %q, %v; big.Rat says %q", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "-", "1.", ".5", "1e5", "1.2.3", "NaN", " 1", "+1", "-.5", "--1", "1.-5"} {
		if _, ok := plainDecimal(s); ok {
			t.Errorf("plainDecimal(%q) accepted", s)
		}
	}
	// The spellings plainDecimal leaves to big.Rat normalize all the same.
	for s, want := range map[string]string{"1.": "1", ".5": "0.5", "1e5": "100000", "+1": "1", "-.50": "-0.5", "1.5E-3": "0.0015", "x": "x"} {
		if got := NormalizeDecimal(s); got != want {
			t.Errorf("NormalizeDecimal(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestFormatTimeOfDay(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "00:00:00"},
		{time.Hour + 2*time.Minute + 3*time.Second, "01:02:03"},
		{13*time.Hour + 500*time.Millisecond, "13:00:00.5"},
		{23*time.Hour + 59*time.Minute + 59*time.Second + 999999*time.Microsecond, "23:59:59.999999"},
		{time.Second + time.Nanosecond, "00:00:01.000000001"},
		{24 * time.Hour, "24:00:00"},
	} {
		got, err := FormatTimeOfDay(c.d)
		if err != nil || got != c.want {
			t.Errorf("FormatTimeOfDay(%s) = %q, %v; want %q", c.d, got, err, c.want)
		}
	}
	for _, d := range []time.Duration{-time.Nanosecond, 24*time.Hour + time.Nanosecond, 100 * time.Hour} {
		if got, err := FormatTimeOfDay(d); err == nil || !strings.Contains(err.Error(), "outside 00:00:00-24:00:00") {
			t.Errorf("FormatTimeOfDay(%s) = %q, %v; want an error", d, got, err)
		}
	}
}

func TestFormatOffset(t *testing.T) {
	for sec, want := range map[int32]string{0: "+00:00", 19800: "+05:30", -3600: "-01:00", -(9*3600 + 30*60 + 15): "-09:30:15", 45: "+00:00:45"} {
		if got := FormatOffset(sec); got != want {
			t.Errorf("FormatOffset(%d) = %q, want %q", sec, got, want)
		}
	}
}

// A fraction of a second finer than a microsecond (a CSV file may carry one)
// survives the text form: FormatText is ParseText's inverse.
func TestTextFormKeepsNanoseconds(t *testing.T) {
	for _, c := range []struct {
		k Kind
		s string
	}{
		{KindTimestamp, "0-10-01 0:00:00,0000001"},
		{KindTimestamp, "2024-02-29T23:59:59.123456789"},
		{KindTimestampTZ, "2024-02-29T23:59:59.123456789+02:00"},
		{KindTime, "12:34:56.000000001"},
		{KindTimeTZ, "12:34:56.987654321+05:30"},
	} {
		ty := Type{Kind: c.k}
		v, err := ParseText(ty, c.s)
		if err != nil {
			t.Fatalf("%s %q: %v", ty, c.s, err)
		}
		out, err := FormatText(ty, v)
		if err != nil {
			t.Fatalf("%s %q: %v", ty, c.s, err)
		}
		back, err := ParseText(ty, out)
		if err != nil {
			t.Fatalf("%s: %q formatted as %q, which does not parse: %v", ty, c.s, out, err)
		}
		a, _ := AppendCanonical(nil, ty, v)
		b, _ := AppendCanonical(nil, ty, back)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: %q -> %q lost a fraction of a second (%v, then %v)", ty, c.s, out, v, back)
		}
	}
}
