package mysql

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/model"
)

func TestColumnTypeToCanonical(t *testing.T) {
	cases := []struct {
		native string
		json   bool
		want   string // Type.String() plus details
		length int
		enum   string
	}{
		{"tinyint(1)", false, "bool", 0, ""},
		{"tinyint(1) unsigned", false, "int16", 0, ""},
		{"tinyint(4)", false, "int16", 0, ""},
		{"tinyint(3) unsigned", false, "int16", 0, ""},
		{"smallint(6)", false, "int16", 0, ""},
		{"smallint(5) unsigned", false, "int32", 0, ""},
		{"mediumint(8) unsigned", false, "int32", 0, ""},
		{"int(11)", false, "int32", 0, ""},
		{"int", false, "int32", 0, ""},
		{"int(10) unsigned", false, "int64", 0, ""},
		{"bigint(20)", false, "int64", 0, ""},
		{"bigint(20) unsigned", false, "decimal(20,0)", 0, ""},
		{"decimal(65,30)", false, "decimal(65,30)", 0, ""},
		{"decimal(10,2) unsigned zerofill", false, "decimal(10,2)", 0, ""},
		{"float", false, "float32", 0, ""},
		{"float(10,2)", false, "float32", 0, ""},
		{"double", false, "float64", 0, ""},
		{"varchar(20)", false, "text", 20, ""},
		{"char(5)", false, "text", 5, ""},
		{"longtext", false, "text", 0, ""},
		{"longtext", true, "json", 0, ""},
		{"json", false, "json", 0, ""},
		{"varbinary(16)", false, "bytes", 16, ""},
		{"blob", false, "bytes", 0, ""},
		{"bit(10)", false, "bytes", 2, ""},
		{"bit(1)", false, "bytes", 1, ""},
		{"enum('a','b''c','d,e')", false, "enum", 0, "a|b'c|d,e"},
		{"set('x','y')", false, "text", 0, ""},
		{"date", false, "date", 0, ""},
		{"time(3)", false, "time", 0, ""},
		{"datetime(6)", false, "timestamp", 0, ""},
		{"datetime /* mariadb-5.3 */", false, "timestamp", 0, ""},
		{"timestamp(6)", false, "timestamptz", 0, ""},
		{"year(4)", false, "int16", 0, ""},
		{"uuid", false, "uuid", 0, ""},
		{"inet6", false, "inet", 0, ""},
	}
	for _, c := range cases {
		ct, err := parseColType(c.native)
		if err != nil {
			t.Errorf("%s: %v", c.native, err)
			continue
		}
		ct.json = c.json
		typ, err := ct.canonical()
		if err != nil {
			t.Errorf("%s: %v", c.native, err)
			continue
		}
		if typ.String() != c.want || typ.Length != c.length || strings.Join(typ.EnumValues, "|") != c.enum {
			t.Errorf("%s: got %s length %d enum %q, want %s length %d enum %q", c.native, typ, typ.Length, strings.Join(typ.EnumValues, "|"), c.want, c.length, c.enum)
		}
		// Native round-trips through the destination's choice.
		back, err := columnType(typ, false)
		if err != nil {
			t.Errorf("%s: columnType: %v", c.native, err)
			continue
		}
		if !compatible(typ, back) {
			t.Errorf("%s: destination type %s cannot hold it", c.native, back)
		}
	}
	for _, bad := range []string{"geometry", "point", "linestring", "vector(3)"} {
		ct, err := parseColType(bad)
		if err == nil {
			_, err = ct.canonical()
		}
		if err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	for _, notMySQL := range []string{"character varying(20)", "timestamp with time zone", "double precision", "integer[]"} {
		if _, err := parseColType(notMySQL); err == nil {
			t.Errorf("%q parses as a MySQL type", notMySQL)
		}
	}
}

func TestCanonicalToMySQL(t *testing.T) {
	cases := []struct {
		typ  model.Type
		key  bool
		want string
	}{
		{model.Type{Kind: model.KindBool}, false, "tinyint(1)"},
		{model.Type{Kind: model.KindInt32, Native: "integer"}, false, "int"},
		{model.Type{Kind: model.KindInt64, Native: "INTEGER"}, false, "bigint"}, // SQLite's INTEGER is 64-bit
		{model.Type{Kind: model.KindDecimal}, false, "decimal(65,30)"},
		{model.Type{Kind: model.KindDecimal, Precision: 20, Native: "bigint(20) unsigned"}, false, "bigint(20) unsigned"},
		{model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 3, Native: "numeric(12,3)"}, false, "decimal(12,3)"},
		{model.Type{Kind: model.KindFloat32, Native: "real"}, false, "float"}, // PostgreSQL's real is 4 bytes, MySQL's 8
		{model.Type{Kind: model.KindText}, false, "longtext"},
		{model.Type{Kind: model.KindText, Native: "text"}, false, "longtext"}, // not MySQL's 64 KiB TEXT
		{model.Type{Kind: model.KindText}, true, "varchar(768)"},
		{model.Type{Kind: model.KindText, Length: 20}, false, "varchar(20)"},
		{model.Type{Kind: model.KindText, Length: 20, Native: "character varying(20)"}, true, "varchar(20)"},
		{model.Type{Kind: model.KindText, Length: 5000}, false, "longtext"},
		{model.Type{Kind: model.KindText, Native: "mediumtext"}, false, "mediumtext"},
		{model.Type{Kind: model.KindText, Native: "mediumtext"}, true, "varchar(768)"},
		{model.Type{Kind: model.KindBytes, Native: "bytea"}, false, "longblob"},
		{model.Type{Kind: model.KindBytes}, true, "varbinary(3072)"},
		{model.Type{Kind: model.KindJSON, Native: "jsonb"}, false, "json"},
		{model.Type{Kind: model.KindUUID, Native: "uuid"}, false, "char(36)"}, // MariaDB's UUID refuses some of PostgreSQL's uuid values
		{model.Type{Kind: model.KindUUID}, false, "char(36)"},
		{model.Type{Kind: model.KindTime}, false, "time(6)"},
		{model.Type{Kind: model.KindTimeTZ}, false, "varchar(32)"},
		{model.Type{Kind: model.KindTimestamp, Native: "timestamp without time zone"}, false, "datetime(6)"},
		{model.Type{Kind: model.KindTimestamp, Native: "TIMESTAMP"}, false, "datetime(6)"}, // SQLite's TIMESTAMP is naive
		{model.Type{Kind: model.KindTimestampTZ, Native: "timestamp with time zone"}, false, "datetime(6)"},
		{model.Type{Kind: model.KindTimestampTZ, Native: "timestamp(6)"}, false, "timestamp(6)"},
		{model.Type{Kind: model.KindInterval}, false, "varchar(64)"},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindInt32}}, false, "json"},
		{model.Type{Kind: model.KindEnum, EnumValues: []string{"a", "it's"}}, false, "enum('a','it''s')"},
		{model.Type{Kind: model.KindEnum}, false, "varchar(255)"},
		{model.Type{Kind: model.KindInet}, false, "varchar(43)"},
		{model.Type{Kind: model.KindMACAddr}, false, "varchar(23)"},
	}
	for _, c := range cases {
		got, err := columnType(c.typ, c.key)
		if err != nil {
			t.Errorf("%s (native %q, key %v): %v", c.typ, c.typ.Native, c.key, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("%s (native %q, key %v): got %s, want %s", c.typ, c.typ.Native, c.key, got, c.want)
		}
	}
	if _, err := columnType(model.Type{Kind: model.KindDecimal, Precision: 80, Scale: 2}, false); err == nil {
		t.Error("decimal(80,2) has a MySQL mapping")
	}
}

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

func TestDecodeValues(t *testing.T) {
	codecOf := func(native string, zeroNull bool, charset string) *codec {
		ct, err := parseColType(native)
		if err != nil {
			t.Fatal(err)
		}
		typ, err := ct.canonical()
		if err != nil {
			t.Fatal(err)
		}
		cd, err := newCodec(model.Column{Name: "c", Type: typ}, charset, zeroNull)
		if err != nil {
			t.Fatal(err)
		}
		return cd
	}
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
		got, err := codecOf(c.native, false, "utf8mb4").decode(c.v, c.fromBinlog)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %#v: error %v, want %q", c.native, c.v, err, c.err)
			}
		case err != nil:
			t.Errorf("%s %#v: %v", c.native, c.v, err)
		default:
			cd := codecOf(c.native, false, "")
			a, _ := model.AppendCanonical(nil, cd.typ, got)
			b, _ := model.AppendCanonical(nil, cd.typ, c.want)
			if string(a) != string(b) {
				t.Errorf("%s %#v: got %#v, want %#v", c.native, c.v, got, c.want)
			}
		}
	}
	if v, err := codecOf("date", true, "").decode("0000-00-00", false); err != nil || v != nil {
		t.Errorf("zero_dates=null: got %v, %v", v, err)
	}
	if v, err := codecOf("varchar(10)", false, "latin1").decode([]byte("caf\xe9 \x80"), true); err != nil || v != "café €" {
		t.Errorf("latin1 from the binlog: got %q, %v", v, err)
	}
}

func TestPositions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"binlog.000001:325", "binlog.000001:326", -1},
		{"binlog.000002:4", "binlog.000001:999999", 1},
		{"binlog.000010:4", "binlog.000009:4", 1},
		{"binlog.000001:325", "binlog.000001:325", 0},
	}
	c := &Conn{}
	for _, x := range cases {
		got, err := c.ComparePositions(model.Position(x.a), model.Position(x.b))
		if err != nil || got != x.want {
			t.Errorf("compare(%s, %s) = %d, %v; want %d", x.a, x.b, got, err, x.want)
		}
	}
	for _, bad := range []string{"", "binlog", "binlog.000001", "binlog.x:4", "binlog.000001:-1"} {
		if _, err := parsePosition(model.Position(bad)); err == nil {
			t.Errorf("parsePosition(%q) accepted", bad)
		}
	}
	if _, err := c.ComparePositions("a.000001:4", "b.000001:4"); err == nil {
		t.Error("positions of two binlog base names compared")
	}
}

func TestKeysetConditions(t *testing.T) {
	tbl := &model.Table{Namespace: model.Namespace{Schema: "s", Table: "t"}, PrimaryKey: []string{"a", "b"}, Columns: []model.Column{
		{Name: "a", Type: model.Type{Kind: model.KindDecimal, Precision: 30, Scale: 2, Native: "decimal(30,2)"}},
		{Name: "b", Type: model.Type{Kind: model.KindEnum, EnumValues: []string{"x", "y"}, Native: "enum('x','y')"}},
	}}
	ks, err := keysetFor(tbl)
	if err != nil {
		t.Fatal(err)
	}
	cond, args, err := ks.cond(">", []any{"1.50", "y"})
	if err != nil {
		t.Fatal(err)
	}
	want := "(`a` >= CAST(? AS DECIMAL(30,2)) AND (`a` > CAST(? AS DECIMAL(30,2)) OR `a` = CAST(? AS DECIMAL(30,2)) AND `b` > ?))"
	if cond != want || len(args) != 4 || args[3] != int64(2) {
		t.Fatalf("cond = %s %v\nwant %s", cond, args, want)
	}
	enc, err := ks.encode([]any{"1.50", "y"})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := ks.decode(enc)
	if err != nil || dec[0] != "1.50" || dec[1] != "y" {
		t.Fatalf("key %s decodes to %v, %v", enc, dec, err)
	}
}

func TestPlainDecimalAgreesWithNormalize(t *testing.T) {
	for _, s := range []string{"0", "-0", "-0.000", "007.50", "-12.500", "1", "123456789012345678901234567890.1234567890", "0.000001", "10", "-10.0"} {
		got, ok := plainDecimal(s)
		if !ok || got != model.NormalizeDecimal(s) {
			t.Errorf("plainDecimal(%q) = %q, %v; NormalizeDecimal says %q", s, got, ok, model.NormalizeDecimal(s))
		}
		if !isPlainDecimal(s) {
			t.Errorf("isPlainDecimal(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", "1.", ".5", "1e5", "1.2.3", "NaN", " 1", "+1", "-.5", "--1", "1.-5"} {
		if _, ok := plainDecimal(s); ok {
			t.Errorf("plainDecimal(%q) accepted", s)
		}
		if isPlainDecimal(s) {
			t.Errorf("isPlainDecimal(%q) accepted", s)
		}
	}
}
