package postgres

import "testing"

func TestPGSpelling(t *testing.T) {
	cases := []struct {
		native, base string
		want         bool
	}{
		{"integer", "integer", true},
		{"character varying(20)", "character varying", true},
		{"numeric(12,2)[]", "numeric[]", true},
		{"time(3) without time zone", "time without time zone", true},
		{"timestamp(6) with time zone", "timestamp with time zone", true},
		{"interval day to second(3)", "interval", true},
		{"bit varying(8)", "bit varying", true},
		{"char(10)", "character", false}, // MySQL's CHAR drops trailing spaces
		{"int", "integer", false},
		{"decimal(10,2)", "numeric", false},
		{"time(6)", "time without time zone", false},
		{"varchar(100)", "character varying", false},
	}
	for _, c := range cases {
		if got := pgSpelling(c.native, c.base); got != c.want {
			t.Errorf("pgSpelling(%q, %q) = %v, want %v", c.native, c.base, got, c.want)
		}
	}
}
