package mysql

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

func TestDecodeValues(t *testing.T) {
	cases := []struct {
		native     string
		v          any
		fromBinlog bool
		want       any
		err        string
	}{
		{"tinyint(1)", int64(1), false, true, ""},
		{"tinyint(1)", int8(2), true, nil, "not a boolean"},
		{"tinyint(3) unsigned", int8(-1), true, int64(255), ""},
		{"smallint(5) unsigned", int16(-1), true, int64(65535), ""},
		{"mediumint(8) unsigned", int32(-1), true, int64(16777215), ""},
		{"int(10) unsigned", int32(-1), true, int64(4294967295), ""},
		{"int(10) unsigned", uint32(4294967295), true, int64(4294967295), ""},
		{"bigint(20) unsigned", int64(-1), true, "18446744073709551615", ""},
		{"bigint(20) unsigned", "18446744073709551615", false, "18446744073709551615", ""},
		{"bigint(20) unsigned", int64(7), false, "7", ""},
		{"float", float32(0.1), true, float64(float32(0.1)), ""},
		{"enum('a','b')", int64(2), true, "b", ""},
		{"enum('a','b')", []byte("a"), false, "a", ""},
		{"set('x','y','z')", int64(5), true, "x,z", ""},
		{"set('x','y','z')", []byte("x,z"), false, "x,z", ""},
		{"bit(10)", int64(0x2aa), true, []byte{0x02, 0xaa}, ""},
		{"bit(10)", []byte{0x02, 0xaa}, false, []byte{0x02, 0xaa}, ""},
		{"year(4)", 1901, true, int64(1901), ""},
		{"date", "0000-00-00", true, nil, "zero date"},
		{"date", "2020-00-10", false, nil, "zero date"},
		{"datetime(6)", "2020-01-02 03:04:05.000006", true, time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC), ""},
		{"datetime", "0000-00-00 00:00:00", false, nil, "zero date"},
		{"timestamp(3)", "2038-01-19 03:14:07.999", true, time.Date(2038, 1, 19, 3, 14, 7, 999000000, time.UTC), ""},
		{"time(6)", "23:59:59.999999", false, 24*time.Hour - time.Microsecond, ""},
		{"time", "-00:00:01", true, nil, "outside 00:00:00-24:00:00"},
		{"time", "838:59:59", false, nil, "outside"},
		{"varchar(10)", []byte("caf\xe9"), true, "caf\xe9", ""}, // utf8mb4 columns pass bytes through
		{"json", "", true, "null", ""},
		{"inet6", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, true, "::ffff:1.2.3.4", ""},
	}
	for _, c := range cases {
		got, err := codecOf(t, c.native, "utf8mb4", false).decode(c.v, c.fromBinlog)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %#v: error %v, want %q", c.native, c.v, err, c.err)
			}
		case err != nil:
			t.Errorf("%s %#v: %v", c.native, c.v, err)
		default:
			cd := codecOf(t, c.native, "", false)
			a, _ := model.AppendCanonical(nil, cd.typ, got)
			b, _ := model.AppendCanonical(nil, cd.typ, c.want)
			if string(a) != string(b) {
				t.Errorf("%s %#v: got %#v, want %#v", c.native, c.v, got, c.want)
			}
		}
	}
	if v, err := codecOf(t, "date", "", true).decode("0000-00-00", false); err != nil || v != nil {
		t.Errorf("zero_dates=null: got %v, %v", v, err)
	}
	if v, err := codecOf(t, "varchar(10)", "latin1", false).decode([]byte("caf\xe9 \x80"), true); err != nil || v != "café €" {
		t.Errorf("latin1 from the binlog: got %q, %v", v, err)
	}
}

// A binlog carries a text column's stored bytes: the codec converts the
// character sets ferry reads and refuses the others.
func TestDecodeBinlogText(t *testing.T) {
	text := model.Type{Kind: model.KindText, Native: "varchar(20)"}
	cases := []struct {
		charset    string
		v          any
		fromBinlog bool
		want       string
		err        string
	}{
		{"utf8mb4", []byte("café"), true, "café", ""},
		{"utf8", "naïve", true, "naïve", ""},
		{"latin1", []byte("caf\xe9"), true, "café", ""},
		{"latin1", "\x80\x8a\x9f\xa0\xff", true, "€Š\u0178\u00a0ÿ", ""},
		{"latin1", []byte{0x81, 0x8d, 0x8f, 0x90, 0x9d}, true, "\u0081\u008d\u008f\u0090\u009d", ""}, // cp1252's holes: C1 controls
		{"latin1", []byte("caf\xe9"), false, "caf\xe9", ""},                                          // a snapshot read is already utf8mb4
		{"ascii", []byte("plain"), true, "plain", ""},
		{"ascii", []byte("caf\xe9"), true, "", "non-ASCII"},
		{"cp1250", []byte("x"), true, "", "character set cp1250 is not supported"},
		{"cp1250", []byte("x"), false, "x", ""},
		{"utf8mb4", int64(3), true, "", "unexpected value of Go type int64"},
	}
	for _, c := range cases {
		cd, err := newCodec(model.Column{Name: "c", Type: text}, c.charset, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cd.decode(c.v, c.fromBinlog)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %q: got %q, %v; want an error containing %q", c.charset, c.v, got, err, c.err)
			}
		case err != nil || got != c.want:
			t.Errorf("%s %q (binlog %v): got %q, %v; want %q", c.charset, c.v, c.fromBinlog, got, err, c.want)
		}
	}
}

func TestDecodeIntegers(t *testing.T) {
	cases := []struct {
		native string
		v      any
		want   int64
		err    string
	}{
		{"int", int64(-5), -5, ""},
		{"int(10) unsigned", int64(-1), 4294967295, ""}, // the binlog's signed view
		{"mediumint unsigned", int64(-1), 16777215, ""},
		{"smallint unsigned", int64(-2), 65534, ""},
		{"tinyint unsigned", int8(-128), 128, ""},
		{"tinyint", int8(-128), -128, ""},
		{"smallint", int16(-300), -300, ""},
		{"bigint", uint64(math.MaxInt64), math.MaxInt64, ""},
		{"bigint", uint64(math.MaxInt64) + 1, 0, "does not fit a signed 64-bit integer"},
		{"int", "42", 42, ""},
		{"int", []byte("-42"), -42, ""},
		{"int", "4x", 0, "invalid integer"},
		{"int", 1.5, 0, "unexpected value of Go type float64"},
	}
	for _, c := range cases {
		got, err := codecOf(t, c.native, "", false).integer(c.v)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %#v: got %d, %v; want an error containing %q", c.native, c.v, got, err, c.err)
			}
		case err != nil || got != c.want:
			t.Errorf("%s %#v: got %d, %v; want %d", c.native, c.v, got, err, c.want)
		}
	}
}

func TestDecodeSets(t *testing.T) {
	cd, err := newCodec(model.Column{Name: "c", Type: model.Type{Kind: model.KindText, Native: "set('a','b','c')"}}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	for mask, want := range map[int64]string{0: "", 1: "a", 6: "b,c", 7: "a,b,c"} {
		if got, err := cd.setText(mask); err != nil || got != want {
			t.Errorf("set mask %#x: got %q, %v; want %q", mask, got, err, want)
		}
	}
	if got, err := cd.setText(8); err == nil || !strings.Contains(err.Error(), "beyond the column's 3 labels") {
		t.Errorf("set mask 0x8: got %q, %v; want an error", got, err)
	}
}

func TestInetText(t *testing.T) {
	for in, want := range map[string]string{
		"\x0a\x00\x00\x01": "10.0.0.1",
		"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01": "2001:db8::1",
	} {
		if got := inetText([]byte(in)); got != want {
			t.Errorf("inetText(% x) = %q, want %q", in, got, want)
		}
	}
}

// codecOf is the codec of a column of MySQL type native.
func codecOf(t *testing.T, native, charset string, zeroNull bool) *codec {
	t.Helper()
	typ, err := colTypeOf(t, native).canonical()
	if err != nil {
		t.Fatal(err)
	}
	cd, err := newCodec(model.Column{Name: "c", Type: typ}, charset, zeroNull)
	if err != nil {
		t.Fatal(err)
	}
	return cd
}

func colTypeOf(t *testing.T, native string) colType {
	t.Helper()
	ct, err := parseColType(native)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}
