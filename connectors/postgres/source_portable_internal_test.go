package postgres

import "testing"

// A check is given in the portable SQL only when every part of it means
// the same in another engine.
func TestPortableCheck(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"(qty > 0)", `( "qty" > 0 )`},
		{"((qty > 0) AND (qty <= 1000))", `( ( "qty" > 0 ) AND ( "qty" <= 1000 ) )`},
		{"((code)::text <> 'gone'::text)", ""}, // a column's cast
		{"(code <> 'it''s'::text)", `( "code" <> 'it''s' )`},
		{`("Mixed" IS NOT NULL)`, `( "Mixed" IS NOT NULL )`},
		{"(price >= 0::numeric)", `( "price" >= 0 )`},
		{"(note = upper(note))", ""},
		{"(name ~~ 'a%'::text)", ""},
		{"((status)::text = ANY ((ARRAY['a'::character varying])::text[]))", ""},
		{"(a -1 > 0)", `( "a" - 1 > 0 )`},
		{"(E'x' = a)", ""},
	} {
		got, ok := portableCheck(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("portableCheck(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}
