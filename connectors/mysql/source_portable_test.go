package mysql

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

// A check is carried to another engine only when every token of it means
// the same there.
func TestPortableCheck(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"`qty` > 0", `"qty" > 0`},
		{"`qty` > 0 and `qty` <= 1000", `"qty" > 0 AND "qty" <= 1000`},
		{"`a` <> 'x''y' or `a` is null", `"a" <> 'x''y' OR "a" IS NULL`},
		{"`a` != -1.5", `"a" != - 1.5`},
		{"`st` in ('new','done')", `"st" IN ( 'new' , 'done' )`},
		{"`we``ird` between 1 and 2", `"we` + "`" + `ird" BETWEEN 1 AND 2`},
		{"`note` = ucase(`note`)", ""}, // a function
		{"`a` > 0 || `b` > 0", ""},     // MySQL's OR, PostgreSQL's concatenation
		{"`a` <=> `b`", ""},            // null-safe equality
		{"!(`a` > 0)", ""},             // MySQL's NOT
		{"`j` -> '$.a' = 1", ""},       // a JSON path
		{"`a` > 0x10", ""},             // a hexadecimal literal
		{"`a` like 'x\\\\%'", ""},      // backslash escapes differ
		{"qty > 0", ""},                // a bare word could be a function's name
	} {
		got, ok := portableCheck(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("portableCheck(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// Constant defaults and the current time are carried; expressions, zero
// dates and binary literals are not.
func TestConstantDefault(t *testing.T) {
	maria := &Conn{server: serverInfo{mariadb: true}}
	mysql8 := &Conn{}
	for _, c := range []struct {
		conn       *Conn
		kind       model.Kind
		def, extra string
		want       *model.Constant
	}{
		{maria, model.KindText, "'anon'", "", &model.Constant{Value: "anon"}},
		{maria, model.KindText, "'it''s'", "", &model.Constant{Value: "it's"}},
		{maria, model.KindInt32, "42", "", &model.Constant{Value: "42"}},
		{maria, model.KindInt32, "-3", "", &model.Constant{Value: "-3"}},
		{maria, model.KindBool, "1", "", &model.Constant{Value: "1"}},
		{maria, model.KindDecimal, "12.50", "", &model.Constant{Value: "12.50"}},
		{maria, model.KindTimestamp, "current_timestamp()", "", &model.Constant{Now: true}},
		{maria, model.KindTimestamp, "current_timestamp(6)", "", &model.Constant{Now: true}},
		{maria, model.KindDate, "curdate()", "", &model.Constant{Now: true}},
		{maria, model.KindTimestamp, "'2024-01-02 03:04:05'", "", &model.Constant{Value: "2024-01-02 03:04:05"}},
		{maria, model.KindTimestamp, "'0000-00-00 00:00:00'", "", nil},
		{maria, model.KindText, "uuid()", "", nil},
		{maria, model.KindInt32, "1 + 1", "", nil},
		{maria, model.KindBytes, "'ab'", "", nil},
		{maria, model.KindText, "curdate()", "", nil},
		{mysql8, model.KindText, "anon", "", &model.Constant{Value: "anon"}},
		{mysql8, model.KindTimestamp, "CURRENT_TIMESTAMP", "default_generated", &model.Constant{Now: true}},
		{mysql8, model.KindText, "uuid()", "default_generated", nil},
		{mysql8, model.KindInt32, "x", "", nil},
	} {
		got, ok := c.conn.constant(c.kind, c.def, c.extra)
		if ok != (c.want != nil) || ok && *got != *c.want {
			t.Errorf("constant(%v, %q, %q) = %+v, %v; want %+v", c.kind, c.def, c.extra, got, ok, c.want)
		}
	}
}
