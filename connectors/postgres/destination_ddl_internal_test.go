package postgres

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

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

// TestCanonicalDDL: a canonical type without a PostgreSQL spelling of its
// own gets the column type that holds its kind, bounds included.
func TestCanonicalDDL(t *testing.T) {
	i16 := model.Type{Kind: model.KindInt16}
	for _, c := range []struct {
		t    model.Type
		want string // "" means refused
	}{
		{model.Type{Kind: model.KindDecimal, Precision: 12, Scale: 2}, "numeric(12,2)"},
		{model.Type{Kind: model.KindDecimal, Precision: 2000}, "numeric"},
		{model.Type{Kind: model.KindText, Length: 10}, "varchar(10)"},
		{model.Type{Kind: model.KindText, Length: 20000000}, "text"},
		{model.Type{Kind: model.KindEnum, EnumValues: []string{"a"}}, "text"},
		{model.Type{Kind: model.KindJSON}, "jsonb"},
		{model.Type{Kind: model.KindFloat32}, "real"},
		{model.Type{Kind: model.KindArray, Elem: &i16}, "smallint[]"},
		{model.Type{Kind: model.KindArray, Elem: &model.Type{Kind: model.KindArray, Elem: &i16}}, ""},
		{model.Type{Kind: model.KindArray}, ""},
		{model.Type{Kind: model.KindUnknown}, ""},
	} {
		got, err := canonicalDDL(c.t)
		if c.want == "" {
			if err == nil {
				t.Errorf("%s: %q, want an error", c.t, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v, want %q", c.t, got, err, c.want)
		}
	}
}
