package flow

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/errs"

	"github.com/ferrydb/ferry/model"
)

func ns(s string) model.Namespace {
	n, err := model.ParseNamespace(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestFilter(t *testing.T) {
	cases := []struct {
		spec  string
		in    []string
		notIn []string
	}{
		{"", []string{"a.b", "x"}, nil},
		{"shop.*,!shop.tmp_*", []string{"shop.orders", "shop.tmp"}, []string{"shop.tmp_1", "other.orders"}},
		{"orders", []string{"shop.orders", "public.orders"}, []string{"shop.order"}},
		{"!*.audit", []string{"shop.orders"}, []string{"shop.audit"}},
		{"s?op.o*", []string{"shop.orders", "stop.o"}, []string{"shop.x"}},
		{" shop.a , shop.b ", []string{"shop.a", "shop.b"}, []string{"shop.c"}},
	}
	for _, c := range cases {
		f, err := ParseFilter(c.spec)
		if err != nil {
			t.Fatalf("%q: %v", c.spec, err)
		}
		for _, s := range c.in {
			if !f.Match(ns(s)) {
				t.Errorf("%q should match %s", c.spec, s)
			}
		}
		for _, s := range c.notIn {
			if f.Match(ns(s)) {
				t.Errorf("%q should not match %s", c.spec, s)
			}
		}
	}
	for _, bad := range []string{"shop.[", "!", "a,!"} {
		if _, err := ParseFilter(bad); err == nil {
			t.Errorf("ParseFilter(%q) accepted a bad pattern", bad)
		}
	}
}

func TestRenames(t *testing.T) {
	r, err := ParseRenames([]string{"shop.orders=archive.orders", "crm.*=sales.*"})
	if err != nil {
		t.Fatal(err)
	}
	for from, want := range map[string]string{"shop.orders": "archive.orders", "shop.items": "shop.items", "crm.leads": "sales.leads"} {
		if got := r.Apply(ns(from)).String(); got != want {
			t.Errorf("Apply(%s) = %s, want %s", from, got, want)
		}
	}
	if u := r.Unused([]model.Namespace{ns("shop.items")}); len(u) != 1 || u[0] != "shop.orders" {
		t.Errorf("Unused = %v", u)
	}
	for _, bad := range []string{"noequals", "a.*=b", "a*=b", "a=b*", "=x", "a.b=c,a.b=d"} {
		if _, err := ParseRenames([]string{bad}); err == nil {
			t.Errorf("ParseRenames(%q) accepted a bad rule", bad)
		}
	}
}

// TestRenamesResolve: a rule without a schema names a table the way
// --tables does, in whichever schema the flow's tables hold it.
func TestRenamesResolve(t *testing.T) {
	flowTables := []model.Namespace{ns("public.a"), ns("public.c"), ns("shop.c"), ns("shop.d"), {Table: "plain"}}
	cases := []struct {
		name  string
		rules []string
		want  map[string]string // source -> destination
		err   []string          // all in the error, when it fails
	}{
		{"unqualified takes the schema", []string{"a=b"}, map[string]string{"public.a": "public.b", "public.c": "public.c"}, nil},
		{"unqualified into another schema", []string{"a=archive.b"}, map[string]string{"public.a": "archive.b"}, nil},
		{"qualified source, unqualified target", []string{"shop.d=e"}, map[string]string{"shop.d": "shop.e"}, nil},
		{"qualified both", []string{"public.a=x.y"}, map[string]string{"public.a": "x.y"}, nil},
		{"exact rule beats the schema rule", []string{"a=b", "public.*=arch.*"}, map[string]string{"public.a": "public.b", "public.c": "arch.c", "shop.c": "shop.c"}, nil},
		{"schema-less source table", []string{"plain=other"}, map[string]string{"plain": "other"}, nil},
		{"name in two schemas", []string{"c=z"}, nil, []string{"c=z", "public.c, shop.c", "--rename public.c=z"}},
		{"renamed twice", []string{"a=b", "public.a=x"}, nil, []string{"a=b", "public.a=x", "both rename public.a"}},
		{"name no table has", []string{"nope=b"}, map[string]string{"public.a": "public.a"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseRenames(c.rules)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := r.Resolve(flowTables)
			if c.err != nil {
				if err == nil {
					t.Fatalf("Resolve accepted %v", c.rules)
				}
				var ce *errs.ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("want a configuration error (exit 2), got %T %v", err, err)
				}
				for _, w := range c.err {
					if !strings.Contains(ce.Error(), w) {
						t.Errorf("error lacks %q: %v", w, ce)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for from, want := range c.want {
				if got := rr.Apply(ns(from)).String(); got != want {
					t.Errorf("Apply(%s) = %s, want %s", from, got, want)
				}
			}
		})
	}
}

// TestRenamesUnused: a rule names a table the source does not have, in any
// schema for a rule without one.
func TestRenamesUnused(t *testing.T) {
	source := []model.Namespace{ns("public.a"), ns("shop.b")}
	cases := []struct {
		rules []string
		want  string
	}{
		{[]string{"a=x"}, ""},
		{[]string{"b=x"}, ""},
		{[]string{"public.b=x"}, "public.b"},
		{[]string{"zz=x", "public.a=y"}, "zz"},
		{[]string{"shop.*=other.*"}, ""},
	}
	for _, c := range cases {
		r, err := ParseRenames(c.rules)
		if err != nil {
			if c.want == "" || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseRenames(%v): %v", c.rules, err)
			}
			continue
		}
		if got := strings.Join(r.Unused(source), ","); got != c.want {
			t.Errorf("Unused(%v) = %q, want %q", c.rules, got, c.want)
		}
	}
}

// TestRenamesMap: each table gets its destination table, and two tables
// landing on one name are refused.
func TestRenamesMap(t *testing.T) {
	tbl := func(s string) *model.Table {
		return &model.Table{Namespace: ns(s), Columns: []model.Column{{Name: "id", Type: model.Type{Kind: model.KindInt64}}}}
	}
	r, err := ParseRenames([]string{"a=b"})
	if err != nil {
		t.Fatal(err)
	}
	in := []*model.Table{tbl("public.a"), tbl("shop.x")}
	out, err := r.Map(in)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Namespace.String() != "public.b" || out[1].Namespace.String() != "shop.x" || in[0].Namespace.String() != "public.a" {
		t.Fatalf("Map = %s, %s (source %s)", out[0].Namespace, out[1].Namespace, in[0].Namespace)
	}
	if _, err := r.Map([]*model.Table{tbl("public.a"), tbl("public.b")}); err == nil || !strings.Contains(err.Error(), "would both be written to public.b") {
		t.Fatalf("two tables into public.b: %v", err)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"shop.*,!shop.tmp_*", "a", "!", "[", "a.b.c", "*.*", ",,,"} {
		f.Add(s, "shop.orders")
	}
	f.Fuzz(func(t *testing.T, spec, table string) {
		flt, err := ParseFilter(spec)
		if err != nil {
			return
		}
		n, err := model.ParseNamespace(table)
		if err != nil {
			return
		}
		flt.Match(n) // must not panic
		again, err := ParseFilter(flt.String())
		if err != nil {
			t.Fatalf("String() of a parsed filter %q does not parse: %v", flt.String(), err)
		}
		if again.Match(n) != flt.Match(n) {
			t.Fatalf("filter %q and its String() %q disagree on %s", spec, flt.String(), n)
		}
	})
}

func FuzzParseRenames(f *testing.F) {
	for _, s := range []string{"a.b=c.d", "a.*=b.*", "x=y", "=", "a.*=b"} {
		f.Add(s, "a.b")
	}
	f.Fuzz(func(t *testing.T, rule, table string) {
		r, err := ParseRenames([]string{rule})
		if err != nil {
			return
		}
		if n, err := model.ParseNamespace(table); err == nil {
			r.Apply(n)
			r.Unused([]model.Namespace{n})
			// One table cannot make a name ambiguous; renaming it twice
			// (a=x with schema.a=y) is the only refusal.
			if rr, err := r.Resolve([]model.Namespace{n}); err == nil {
				rr.Apply(n)
			} else if !strings.Contains(err.Error(), "both rename") {
				t.Fatalf("Resolve(%s) with %q: %v", n, rule, err)
			}
		}
	})
}

func TestFlowNameHasNoSecrets(t *testing.T) {
	c := &Config{Source: "postgres://app:hunter2@db/shop", Destination: "sqlite:///tmp/x.db"}
	name := c.FlowName()
	if want := "postgres-to-sqlite-"; len(name) < len(want) || name[:len(want)] != want {
		t.Fatalf("FlowName = %q", name)
	}
	c2 := &Config{Source: "postgres://app:other@db/shop", Destination: "sqlite:///tmp/x.db"}
	if c2.FlowName() != name {
		t.Fatalf("the flow name depends on the password: %q vs %q", name, c2.FlowName())
	}
	if !nameRe.MatchString(name) {
		t.Fatalf("derived name %q is not a valid name", name)
	}
}

func TestFlowNameAndIdentityLeaveOutTheTables(t *testing.T) {
	a := &Config{Source: "postgres://app:pw@db/shop", Destination: "postgres://app:pw@db2/shop", Tables: []string{"public.orders"}}
	b := &Config{Source: a.Source, Destination: a.Destination, Tables: []string{"public.orders", "public.lines"}}
	if a.FlowName() != b.FlowName() {
		t.Fatalf("a wider --tables derives another flow name: %q vs %q", a.FlowName(), b.FlowName())
	}
	if a.Identity() != b.Identity() {
		t.Fatalf("a wider --tables is another identity")
	}
	if a.LegacyFlowName() == b.LegacyFlowName() || a.LegacyFlowName() == a.FlowName() {
		t.Fatalf("the older derived name must still hash the tables: %q %q %q", a.LegacyFlowName(), b.LegacyFlowName(), a.FlowName())
	}
	c := &Config{Source: a.Source, Destination: a.Destination, Rename: []string{"public.orders=archive.orders"}}
	if c.FlowName() == a.FlowName() || c.Identity() == a.Identity() {
		t.Fatalf("--rename must stay part of the name and the identity")
	}
	named := &Config{Name: "shop", Source: a.Source, Destination: a.Destination}
	if named.FlowName() != "shop" || named.LegacyFlowName() != "shop" {
		t.Fatalf("--name is the name: %q %q", named.FlowName(), named.LegacyFlowName())
	}
}

func TestMatchIdentityAcceptsTheOlderFormat(t *testing.T) {
	c := &Config{Source: "postgres://app:pw@db/shop", Destination: "mysql://app:pw@db2/shop", Tables: []string{"public.orders", "public.lines"}}
	// What ferry stored before the selection left the identity.
	legacy := func(src, dst, tables, renames string) string {
		return strings.Join([]string{errs.Redact(src), errs.Redact(dst), tables, renames}, "\n")
	}
	for _, tc := range []struct {
		name, stored string
		ok, old      bool
		selection    string
	}{
		{"current", c.Identity(), true, false, ""},
		{"older, other tables", legacy(c.Source, c.Destination, "public.orders", ""), true, true, "public.orders"},
		{"older, all tables", legacy(c.Source, c.Destination, "", ""), true, true, ""},
		{"older, other source", legacy("postgres://app:pw@other/shop", c.Destination, "public.orders", ""), false, false, ""},
		{"older, other renames", legacy(c.Source, c.Destination, "public.orders", "public.orders=x.orders"), false, false, ""},
		{"other destination", strings.Replace(c.Identity(), "db2", "db3", 1), false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, old, sel := c.MatchIdentity(tc.stored)
			if ok != tc.ok || old != tc.old || sel != tc.selection {
				t.Fatalf("MatchIdentity = %v, %v, %q; want %v, %v, %q", ok, old, sel, tc.ok, tc.old, tc.selection)
			}
		})
	}
}
