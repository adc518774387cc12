package postgres

import (
	"encoding/hex"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

// TestBinaryForms: each encoder writes PostgreSQL's binary form of the
// value (length prefix, then the bytes the server's receive function
// reads), and the column's binary decoder reads that form back as the same
// canonical value.
func TestBinaryForms(t *testing.T) {
	ty := func(k model.Kind, native string) model.Type { return model.Type{Kind: k, Native: native} }
	cases := []struct {
		oid  uint32
		t    model.Type
		v    any
		want string // hex of the value's bytes, without the length
	}{
		{oidBool, ty(model.KindBool, "boolean"), true, "01"},
		{oidBool, ty(model.KindBool, "boolean"), false, "00"},
		{oidInt2, ty(model.KindInt16, "smallint"), int64(-1), "ffff"},
		{oidInt4, ty(model.KindInt32, "integer"), int64(5), "00000005"},
		{oidInt8, ty(model.KindInt64, "bigint"), int64(1) << 40, "0000010000000000"},
		{oidInt8, ty(model.KindInt64, "bigint"), int64(math.MinInt64), "8000000000000000"},
		{oidFloat4, ty(model.KindFloat32, "real"), 1.5, "3fc00000"},
		{oidFloat8, ty(model.KindFloat64, "double precision"), 1.5, "3ff8000000000000"},
		{oidFloat8, ty(model.KindFloat64, "double precision"), math.Copysign(0, -1), "8000000000000000"},
		{oidText, ty(model.KindText, "text"), "héllo", "68c3a96c6c6f"},
		{oidVarchar, ty(model.KindText, "character varying(5)"), "", ""},
		{oidJSONB, ty(model.KindJSON, "jsonb"), `{"a": 1}`, "01" + hex.EncodeToString([]byte(`{"a": 1}`))},
		{oidJSON, ty(model.KindJSON, "json"), `[1]`, hex.EncodeToString([]byte(`[1]`))},
		{oidBytea, ty(model.KindBytes, "bytea"), []byte{0, 0xff}, "00ff"},
		{oidUUID, ty(model.KindUUID, "uuid"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11"},
		{oidDate, ty(model.KindDate, "date"), time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC), "00000001"},
		{oidDate, ty(model.KindDate, "date"), time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "ffffffff"},
		{oidDate, ty(model.KindDate, "date"), model.PosInfinity, "7fffffff"},
		{oidDate, ty(model.KindDate, "date"), model.NegInfinity, "80000000"},
		{oidTime, ty(model.KindTime, "time without time zone"), time.Hour, "00000000d693a400"},
		{oidTime, ty(model.KindTime, "time without time zone"), 24 * time.Hour, "000000141dd76000"},
		// timetz keeps its zone in seconds west of UTC: +01:00 is -3600.
		{oidTimetz, ty(model.KindTimeTZ, "time with time zone"), model.TimeTZ{Time: time.Second, Offset: 3600}, "00000000000f4240fffff1f0"},
		{oidTimestamp, ty(model.KindTimestamp, "timestamp without time zone"), time.Date(2000, 1, 1, 0, 0, 1, 1000, time.UTC), "00000000000f4241"},
		{oidTimestamptz, ty(model.KindTimestampTZ, "timestamp with time zone"), time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC), "ffffffffffffffff"},
		{oidTimestamp, ty(model.KindTimestamp, "timestamp without time zone"), model.PosInfinity, "7fffffffffffffff"},
		{oidTimestamptz, ty(model.KindTimestampTZ, "timestamp with time zone"), model.NegInfinity, "8000000000000000"},
		{oidInterval, ty(model.KindInterval, "interval"), model.Interval{Months: 14, Days: 3, Micros: 1}, "0000000000000001" + "00000003" + "0000000e"},
		// numeric: ndigits, weight, sign, dscale, then base-10000 digits.
		{oidNumeric, ty(model.KindDecimal, "numeric(6,2)"), "-12.50", "0002" + "0000" + "4000" + "0002" + "000c" + "1388"},
		{oidNumeric, ty(model.KindDecimal, "numeric"), "10000", "0001" + "0001" + "0000" + "0000" + "0001"},
		{oidNumeric, ty(model.KindDecimal, "numeric"), "0.0001", "0001" + "ffff" + "0000" + "0004" + "0001"},
		{oidNumeric, ty(model.KindDecimal, "numeric"), "NaN", "0000" + "0000" + "c000" + "0000"},
		{oidNumeric, ty(model.KindDecimal, "numeric"), "-Infinity", "0000" + "0000" + "f000" + "0000"},
	}
	for _, c := range cases {
		enc := binEncoderFor(c.oid, c.t)
		if enc == nil {
			t.Fatalf("%s into type %d: no binary encoder", c.t, c.oid)
		}
		got, err := enc(nil, c.v)
		if err != nil {
			t.Fatalf("%s %#v: %v", c.t, c.v, err)
		}
		want, _ := hex.DecodeString(c.want)
		if len(got) < 4 || int(int32(uint32(got[0])<<24|uint32(got[1])<<16|uint32(got[2])<<8|uint32(got[3]))) != len(got)-4 {
			t.Fatalf("%s %#v: length prefix of %x does not match", c.t, c.v, got)
		}
		if hex.EncodeToString(got[4:]) != hex.EncodeToString(want) {
			t.Errorf("%s %#v = %x, want %s", c.t, c.v, got[4:], c.want)
		}
		dec, oids := binDecoderFor(c.t)
		if dec == nil {
			t.Fatalf("%s: no binary decoder", c.t)
		}
		if !slices.Contains(oids, c.oid) {
			t.Errorf("%s: the decoder does not accept type %d (%v)", c.t, c.oid, oids)
		}
		back, err := dec(new(model.Slab), want)
		if err != nil {
			t.Fatalf("decode %s %s: %v", c.t, c.want, err)
		}
		if canon(t, c.t, back) != canon(t, c.t, c.v) {
			t.Errorf("decode %s %s = %#v, want %#v", c.t, c.want, back, c.v)
		}
	}
}

// TestMicrosRoundsHalfAwayFromZero: nanoseconds become microseconds as
// PostgreSQL's text input rounds them.
func TestMicrosRoundsHalfAwayFromZero(t *testing.T) {
	for ns, want := range map[int64]int64{0: 0, 499: 0, 500: 1, 1499: 1, 1500: 2, -499: 0, -500: -1, -1500: -2} {
		if got := micros(ns); got != want {
			t.Errorf("micros(%d) = %d, want %d", ns, got, want)
		}
	}
}

// TestBinaryOnlyWhereTheFormsAgree: a value goes in binary only into a
// column whose binary form is the canonical kind's; every other pair (and
// every type whose form differs between servers) travels as text.
func TestBinaryOnlyWhereTheFormsAgree(t *testing.T) {
	for _, c := range []struct {
		oid uint32
		t   model.Type
		bin bool
	}{
		{oidInt4, model.Type{Kind: model.KindInt64}, true},
		{oidInt4, model.Type{Kind: model.KindText}, false},
		{oidFloat4, model.Type{Kind: model.KindFloat64}, false}, // would round
		{oidFloat8, model.Type{Kind: model.KindFloat32}, true},
		{oidNumeric, model.Type{Kind: model.KindDecimal, Native: "money"}, false},
		{oidText, model.Type{Kind: model.KindUUID}, true},
		{oidUUID, model.Type{Kind: model.KindText}, false},
		{oidJSONB, model.Type{Kind: model.KindText}, true},
		{oidTimestamptz, model.Type{Kind: model.KindTimestamp}, true},
		{oidInet, model.Type{Kind: model.KindInet}, false},
		{oidTime, model.Type{Kind: model.KindTimeTZ}, false},
	} {
		if got := binEncoderFor(c.oid, c.t) != nil; got != c.bin {
			t.Errorf("%s into type %d: binary %v, want %v", c.t, c.oid, got, c.bin)
		}
	}
	for _, c := range []struct {
		t   model.Type
		bin bool
	}{
		{model.Type{Kind: model.KindText, Native: "character varying(10)"}, true},
		{model.Type{Kind: model.KindText, Native: "character(3)"}, true},
		{model.Type{Kind: model.KindText, Native: "citext"}, false},
		{model.Type{Kind: model.KindText, Native: "xml", TextForm: true}, false},
		{model.Type{Kind: model.KindInt64, Native: "oid"}, false},
		{model.Type{Kind: model.KindDecimal, Native: "money"}, false},
		{model.Type{Kind: model.KindInet, Native: "inet"}, false},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt32}}, false},
	} {
		if dec, _ := binDecoderFor(c.t); (dec != nil) != c.bin {
			t.Errorf("%s (%s): read in binary %v, want %v", c.t, c.t.Native, dec != nil, c.bin)
		}
	}
}

// TestBinaryRefusesWhatPostgreSQLWouldNot: values out of the column's range
// and forms of the wrong length are errors, not wrapped numbers.
func TestBinaryRefusesWhatPostgreSQLWouldNot(t *testing.T) {
	for _, c := range []struct {
		name string
		enc  binEncoder
		v    any
	}{
		{"smallint overflow", encInt(2), int64(40000)},
		{"integer overflow", encInt(4), int64(math.MaxInt32) + 1},
		{"not an integer", encInt(8), "1"},
		{"date after 5874897", encDate, time.Date(5874898, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"date before 4713 BC", encDate, time.Date(-4713, 11, 23, 0, 0, 0, 0, time.UTC)},
		{"timestamp after 294276", encTimestamp, time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"text with NUL", encString, "a\x00b"},
		{"short uuid", encUUID, "a0eebc99"},
		{"not a decimal", encNumeric, "12a"},
	} {
		if _, err := c.enc(nil, c.v); err == nil {
			t.Errorf("%s: %#v accepted", c.name, c.v)
		}
	}
	for _, c := range []struct {
		name string
		dec  binDecoder
		b    []byte
	}{
		{"bool of 2 bytes", decBool, []byte{0, 1}},
		{"integer of 3 bytes", decInt, []byte{0, 0, 1}},
		{"float4 of 8 bytes", decFloat4, make([]byte, 8)},
		{"uuid of 15 bytes", decUUID, make([]byte, 15)},
		{"date of 2 bytes", decDate, []byte{0, 1}},
		{"interval of 12 bytes", decInterval, make([]byte, 12)},
		{"jsonb of another version", decJSONB, []byte{2, '1'}},
		{"numeric cut short", decNumeric, []byte{0, 2, 0, 0, 0, 0, 0, 0, 0, 1}},
	} {
		if _, err := c.dec(new(model.Slab), c.b); err == nil {
			t.Errorf("%s: %x accepted", c.name, c.b)
		}
	}
}

// A decimal in exponent notation is written with every digit it has (it
// was rounded to 1,100 fraction digits, and a number too large for
// numeric's 16-bit weight was sent wrapped, as another number); one out
// of numeric's range is refused, saying so.
func TestNumericBinaryExactOrRefused(t *testing.T) {
	long := "1." + strings.Repeat("7", 300)
	for _, c := range []struct{ in, want, err string }{
		{in: "1.5E-3", want: "0.0015"},
		{in: "-2.50E2", want: "-250"}, // the scale PostgreSQL gives it: 2 - 2
		{in: "1E1000", want: "1" + strings.Repeat("0", 1000)},
		{in: long + "E-1000", want: "0." + strings.Repeat("0", 999) + "1" + strings.Repeat("7", 300)},
		{in: "1E0800000", err: "exponent"},
		{in: "1E-1001", err: "exponent"},
		{in: "1" + strings.Repeat("0", 131072), err: "out of PostgreSQL numeric's range"},
		{in: "0." + strings.Repeat("1", 16384), err: "out of PostgreSQL numeric's range"},
	} {
		enc, err := encNumeric(nil, c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%.40q: error %v, want one saying %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%.40q: %v", c.in, err)
			continue
		}
		back, err := decNumeric(new(model.Slab), enc[4:])
		if err != nil || back.(string) != c.want {
			t.Errorf("%.40q read back as %.60q (%v), want %.60q", c.in, back, err, c.want)
		}
	}
}

// FuzzNumericBinary checks that a decimal written in numeric's binary form
// reads back with the same value and the same number of fraction digits.
func FuzzNumericBinary(f *testing.F) {
	for _, s := range []string{"0", "-1.50", "0.00001234", "123456789.000100", "9999999999999999999999999999.9999999999", "-0.0", "10000", "NaN", "-Infinity"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		s = strings.TrimSpace(s)
		enc, err := encNumeric(nil, s)
		if err != nil {
			return
		}
		back, err := decNumeric(new(model.Slab), enc[4:])
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		got := back.(string)
		if model.NormalizeDecimal(got) != model.NormalizeDecimal(s) {
			t.Fatalf("%q read back as %q", s, got)
		}
		_, frac, _, _ := splitDecimal(s)
		_, gfrac, _, _ := splitDecimal(got)
		if len(frac) != len(gfrac) && !strings.ContainsAny(s, "eE") && got != "NaN" && !strings.HasSuffix(got, "Infinity") {
			t.Fatalf("%q read back as %q: scale changed", s, got)
		}
	})
}
