package transform

import (
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestParseRefusesBadSyntax(t *testing.T) {
	cases := []struct {
		name string
		spec Spec
		want []string
	}{
		{"exclude without column", Spec{Exclude: []string{"users"}}, []string{`exclude "users"`, "TABLE.COLUMN"}},
		{"exclude empty column", Spec{Exclude: []string{"users."}}, []string{"TABLE.COLUMN"}},
		{"bad glob", Spec{Exclude: []string{"us[ers.email"}}, []string{`exclude "us[ers.email"`, "table pattern"}},
		{"rename without new name", Spec{Rename: []string{"users.email="}}, []string{`rename "users.email="`, "TABLE.COLUMN=NEW"}},
		{"rename without =", Spec{Rename: []string{"users.email"}}, []string{"TABLE.COLUMN=NEW"}},
		{"unknown mask", Spec{Mask: []string{"users.email=scramble"}}, []string{`mask "users.email=scramble"`, `unknown mask "scramble"`, "redact, hash or lastN"}},
		{"last0", Spec{Mask: []string{"users.email=last0"}}, []string{"N of lastN must be a whole number >= 1"}},
		{"lastx", Spec{Mask: []string{"users.email=lastx"}}, []string{"N of lastN"}},
		{"mask without =", Spec{Mask: []string{"users.email"}}, []string{"=redact, =hash or =lastN"}},
		{"hash without salt", Spec{Mask: []string{"users.email=hash"}}, []string{"needs a salt"}},
		{"filter without table", Spec{Filter: []string{"active == true"}}, []string{"expected TABLE: CEL"}},
		{"filter empty", Spec{Filter: []string{"users:"}}, []string{"expected TABLE: CEL"}},
		{"filter not CEL", Spec{Filter: []string{"users: active ==="}}, []string{`filter "users: active ==="`, "is not CEL", "Syntax error"}},
		{"two filters one table", Spec{Filter: []string{"users: active", "users: id > 5"}}, []string{"both filter users", "&&"}},
		{"compute without =", Spec{Compute: []string{"users.domain"}}, []string{"TABLE.COLUMN = CEL"}},
		{"compute not CEL", Spec{Compute: []string{"users.domain = email.split("}}, []string{"is not CEL"}},
		{"compute without column", Spec{Compute: []string{"users = 1"}}, []string{"TABLE.COLUMN"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.spec)
			isConfig(t, err, c.want...)
		})
	}
}

func TestEmpty(t *testing.T) {
	if !(Spec{Salt: "s"}).Empty() {
		t.Error("a spec with only a salt is not empty")
	}
	if (Spec{Filter: []string{"t: true"}}).Empty() {
		t.Error("a spec with a filter is empty")
	}
	var r *Rules
	if !r.Empty() {
		t.Error("nil rules are not empty")
	}
	if x, err := r.For(users()); x != nil || err != nil {
		t.Errorf("nil rules For = %v, %v; want nil, nil", x, err)
	}
	r, err := Parse(Spec{})
	if err != nil || !r.Empty() {
		t.Errorf("Parse(Spec{}) = %v, %v; want empty rules", r, err)
	}
	if err := r.CheckUnused(nil); err != nil {
		t.Errorf("empty rules CheckUnused: %v", err)
	}
}

// TestGlobs matches tables as --tables does: a pattern with a dot against
// schema.table, one without against the table name in any schema.
func TestGlobs(t *testing.T) {
	cases := []struct {
		pattern string
		match   bool
	}{
		{"users", true},
		{"user?", true},
		{"shop.users", true},
		{"shop.*", true},
		{"*.users", true},
		{"*", true},
		{"other.users", false},
		{"orders", false},
		{"shop", false},
	}
	for _, c := range cases {
		r, err := Parse(Spec{Exclude: []string{c.pattern + ".name"}})
		if err != nil {
			t.Fatal(err)
		}
		x, err := r.For(users())
		if err != nil {
			t.Fatal(err)
		}
		if got := x != nil; got != c.match {
			t.Errorf("pattern %q matches shop.users: %v, want %v", c.pattern, got, c.match)
		}
	}
	// A glob naming a column the table lacks does not apply to it.
	r, err := Parse(Spec{Mask: []string{"*.email=hash"}, Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	if x, err := r.For(events()); x != nil || err != nil {
		t.Errorf("*.email on a table without email: %v, %v; want nil, nil", x, err)
	}
	// A table matched by several rules gets them all.
	x := bind(t, Spec{Exclude: []string{"users.name"}, Mask: []string{"shop.*.email=hash"}, Rename: []string{"*.active=enabled"}}, users())
	got := names(x.Output())
	want := []string{"id", "email", "enabled", "balance", "born"}
	if !equal(got, want) {
		t.Errorf("columns %v, want %v", got, want)
	}
}

func TestCheckUnused(t *testing.T) {
	tables := []*model.Table{users(), events()}
	r, err := Parse(Spec{
		Exclude: []string{"users.name", "orders.note"},
		Rename:  []string{"*.emial=mail"},
		Mask:    []string{"shop.*.amount=last2"},
		Filter:  []string{"invoices: true", "events: amount != null"},
		Compute: []string{"users.x = 1", "nowhere.x = 1"},
		Salt:    salt,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.CheckUnused(tables)
	isConfig(t, err,
		`exclude "orders.note" matches no table`,
		`rename "*.emial=mail": no table * matches has a column emial`,
		`filter "invoices: true" matches no table`,
		`compute "nowhere.x = 1" matches no table`,
		"check the spelling")
	for _, used := range []string{`"users.name"`, "amount=last2", `"events: amount`, `"users.x`} {
		if contains(err.Error(), used) {
			t.Errorf("error %q names the rule %s, which is used", err, used)
		}
	}
	r, _ = Parse(Spec{Exclude: []string{"users.name"}, Mask: []string{"*.amount=last2"}})
	if err := r.CheckUnused(tables); err != nil {
		t.Errorf("CheckUnused of used rules: %v", err)
	}
}
