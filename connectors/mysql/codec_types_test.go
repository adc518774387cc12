package mysql

import (
	"strings"
	"testing"
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
