package mysql

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

func TestLiterals(t *testing.T) {
	dec := func(native string) *target {
		ct, _ := parseColType(native)
		typ, _ := ct.canonical()
		return &target{name: "c", typ: typ, ct: ct}
	}
	of := func(k model.Kind, native string) *target {
		ct, _ := parseColType(native)
		return &target{name: "c", typ: model.Type{Kind: k}, ct: ct}
	}
	cases := []struct {
		tg   *target
		v    any
		want string
		err  string
	}{
		{of(model.KindBool, "tinyint(1)"), true, "1", ""},
		{of(model.KindInt64, "bigint"), int64(math.MinInt64), "-9223372036854775808", ""},
		{dec("decimal(65,30)"), "-12.500", "-12.5", ""},
		{dec("decimal(5,2)"), "1.234", "", "3 digits after the point"},
		{dec("decimal(5,2)"), "1234.5", "", "4 digits before the point"},
		{dec("bigint(20) unsigned"), "18446744073709551615", "18446744073709551615", ""},
		{dec("decimal(10,0)"), "NaN", "", "no NaN"},
		{of(model.KindFloat64, "double"), math.Copysign(0, -1), "", "negative zero"},
		{of(model.KindFloat64, "double"), math.Inf(1), "", "no NaN or infinity"},
		{of(model.KindFloat32, "float"), float64(float32(math.MaxFloat32)), "3.4028234663852886e+38", ""},
		{of(model.KindText, "varchar(10)"), "it's \\ 😀", "'it''s \\ 😀'", ""},
		{of(model.KindBytes, "varbinary(10)"), []byte{0, 0xff}, "X'00ff'", ""},
		{of(model.KindBytes, "blob"), []byte{}, "X''", ""},
		{of(model.KindDate, "date"), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "'2024-02-29'", ""},
		{of(model.KindTimestamp, "datetime(6)"), time.Date(2024, 2, 29, 1, 2, 3, 456000, time.UTC), "'2024-02-29 01:02:03.000456'", ""},
		{of(model.KindTimestamp, "datetime(3)"), time.Date(2024, 2, 29, 1, 2, 3, 456000, time.UTC), "", "more digits than the column's 3"},
		{of(model.KindTimestamp, "datetime(6)"), time.Date(2024, 2, 29, 1, 2, 3, 1, time.UTC), "", "nanoseconds"},
		{of(model.KindTimestampTZ, "datetime(6)"), time.Date(2024, 2, 29, 1, 2, 3, 0, time.FixedZone("x", 3600)), "'2024-02-29 00:02:03'", ""},
		{of(model.KindTime, "time(6)"), 24 * time.Hour, "'24:00:00'", ""},
		{of(model.KindTime, "time(6)"), 90*time.Minute + 5*time.Microsecond, "'01:30:00.000005'", ""},
		{of(model.KindInterval, "varchar(64)"), model.Interval{Months: 14, Days: 3, Micros: 1500000}, "'P14M3DT1.5S'", ""},
		{of(model.KindInt32, "int"), nil, "NULL", ""},
		{of(model.KindDate, "date"), model.PosInfinity, "", "infinity: MySQL dates and timestamps have no infinity"},
		{of(model.KindTimestampTZ, "datetime(6)"), model.NegInfinity, "", "-infinity: MySQL dates and timestamps have no infinity"},
		{of(model.KindDate, "date"), time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC), "", "year -4712 is outside"},
		{&target{name: "c", typ: model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt64}}}, []any{[]any{int64(1), nil}, []any{int64(3), int64(4)}}, "'[[1,null],[3,4]]'", ""},
	}
	for _, c := range cases {
		got, err := appendLiteral(nil, c.tg, c.v)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %#v: error %v, want one containing %q", c.tg.ct, c.v, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s %#v: %v", c.tg.ct, c.v, err)
		case c.err == "" && string(got) != c.want:
			t.Errorf("%s %#v: got %s, want %s", c.tg.ct, c.v, got, c.want)
		}
	}
}

// The normalization of these spellings is model's (TestPlainDecimalAgreesWithNormalize
// there); isPlainDecimal must accept exactly the same ones.
func TestIsPlainDecimal(t *testing.T) {
	for _, s := range []string{"0", "-0", "-0.000", "007.50", "-12.500", "1", "123456789012345678901234567890.1234567890", "0.000001", "10", "-10.0"} {
		if !isPlainDecimal(s) {
			t.Errorf("isPlainDecimal(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", "1.", ".5", "1e5", "1.2.3", "NaN", " 1", "+1", "-.5", "--1", "1.-5"} {
		if isPlainDecimal(s) {
			t.Errorf("isPlainDecimal(%q) accepted", s)
		}
	}
}

func TestDecimalLiteral(t *testing.T) {
	cases := []struct {
		native, in, want, err string
	}{
		{"decimal(5,2)", "1.50", "1.5", ""},
		{"decimal(5,2)", " 012.30 ", "12.3", ""},
		{"decimal(5,2)", "-0.00", "0", ""},
		{"decimal(5,2)", "1e2", "100", ""},
		{"decimal(5,2)", "+1.5", "1.5", ""},
		{"decimal(5,2)", ".25", "0.25", ""},
		{"decimal(5,2)", "999.99", "999.99", ""},
		{"decimal(5,2)", "1000", "", "4 digits before the point"},
		{"decimal(5,2)", "0.001", "", "3 digits after the point"},
		{"decimal(5,2) unsigned", "-1", "", "is negative"},
		{"decimal", "12", "12", ""}, // MySQL's bare DECIMAL is decimal(10,0)
		{"decimal", "0.5", "", "1 digits after the point"},
		{"bigint unsigned", "18446744073709551615", "18446744073709551615", ""},
		{"int", "1.5", "", "is not an integer"},
		{"varchar(20)", "1.5000", "1.5", ""},
		{"decimal(5,2)", "abc", "", "invalid decimal"},
		{"decimal(5,2)", "1.2.3", "", "invalid decimal"},
		{"decimal(5,2)", "Infinity", "", "no NaN or infinity"},
	}
	for _, c := range cases {
		got, err := decimalLiteral(c.in, colTypeOf(t, c.native))
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %q: got %q, %v; want an error containing %q", c.native, c.in, got, err, c.err)
			}
		case err != nil || got != c.want:
			t.Errorf("%s %q: got %q, %v; want %q", c.native, c.in, got, err, c.want)
		}
	}
}

func TestCheckFraction(t *testing.T) {
	cases := []struct {
		native string
		ns     int
		err    string
	}{
		{"datetime", 0, ""},
		{"datetime", 1000, "more digits than the column's 0"},
		{"datetime(3)", 456000000, ""},
		{"datetime(3)", 456000, "more digits than the column's 3"},
		{"datetime(6)", 456000, ""},
		{"time(6)", 1, "nanoseconds are finer"},
		{"timestamp(1)", 500000000, ""},
		{"varchar(32)", 123456000, ""}, // text keeps what is written
	}
	for _, c := range cases {
		err := checkFraction(c.ns, colTypeOf(t, c.native))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s, %dns: %v", c.native, c.ns, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s, %dns: error %v, want one containing %q", c.native, c.ns, err, c.err)
		}
	}
}

// A session with NO_BACKSLASH_ESCAPES reads a backslash as itself: only the
// quote is doubled.
func TestAppendQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"":         "''",
		"plain":    "'plain'",
		"it's":     "'it''s'",
		"''":       "''''''",
		`a\'b\`:    `'a\''b\'`,
		"x\x00\ny": "'x\x00\ny'",
	} {
		if got := string(appendQuoted([]byte("p:"), in)); got != "p:"+want {
			t.Errorf("appendQuoted(%q) = %q, want %q", in, got, "p:"+want)
		}
	}
}
