package flow

import (
	"testing"

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
