package file

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/model"
)

func TestTableFileNames(t *testing.T) {
	for _, tc := range []struct {
		ns   model.Namespace
		base string
	}{
		{model.Namespace{Table: "orders"}, "orders"},
		{model.Namespace{Schema: "shop", Table: "orders"}, "shop.orders"},
		{model.Namespace{Schema: "shop", Table: "orders.2024"}, "shop.orders.2024"},
		{model.Namespace{Schema: "my.schema", Table: "t"}, "my%2Eschema.t"},
		{model.Namespace{Table: "a.b"}, "a%2Eb"},
		{model.Namespace{Table: ".hidden"}, "%2Ehidden"},
		{model.Namespace{Table: ".."}, "%2E%2E"},
		{model.Namespace{Schema: ".s", Table: ".t"}, "%2Es.%2Et"},
		{model.Namespace{Table: "a/b\\c"}, "a%2Fb%5Cc"},
		{model.Namespace{Table: "nul\x00tab\tdel\x7f"}, "nul%00tab%09del%7F"},
		{model.Namespace{Table: "100%"}, "100%25"},
		{model.Namespace{Schema: "ünï", Table: "cødé 🎉"}, "ünï.cødé 🎉"},
	} {
		if got := tableBase(tc.ns); got != tc.base {
			t.Errorf("tableBase(%+v) = %q, want %q", tc.ns, got, tc.base)
		}
		if got := parseBase(tc.base); got != tc.ns {
			t.Errorf("parseBase(%q) = %+v, want %+v", tc.base, got, tc.ns)
		}
		if strings.ContainsAny(tc.base, "/\\\x00") || strings.HasPrefix(tc.base, ".") {
			t.Errorf("%q is not a safe file name", tc.base)
		}
	}
	// Hand-named files.
	for name, want := range map[string]model.Namespace{
		"my.data.v2": {Schema: "my", Table: "data.v2"},
		"50%off":     {Table: "50%off"},
		"x.":         {Table: "x."},
	} {
		if got := parseBase(name); got != want {
			t.Errorf("parseBase(%q) = %+v, want %+v", name, got, want)
		}
	}
}

func TestPartNames(t *testing.T) {
	for _, tc := range []struct{ data, id string }{
		{"shop.orders.jsonl", "shop.orders/0003"},
		{"x.part-y.csv", "x.part-y/0001"},
		{"t.jsonl", ""},
		{"t.jsonl", "weird.jsonl"},
	} {
		name := partName(tc.data, tc.id)
		data, id, ok := parsePart(name)
		if !ok || data != tc.data || id != tc.id {
			t.Errorf("parsePart(%q) = %q %q %v, want %q %q", name, data, id, ok, tc.data, tc.id)
		}
		if strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".csv") || strings.HasSuffix(name, ".parquet") {
			t.Errorf("part file %q would be taken for a table", name)
		}
	}
	if got := partName("shop.orders.jsonl", "shop.orders/0003"); got != "shop.orders.jsonl.part-shop%2Eorders%2F0003" {
		t.Errorf("part name %q", got)
	}
	for _, name := range []string{"x.part-y.jsonl", "t.txt.part-1", ".t.jsonl.part-1", "t.schema.json", "parquet.part-1", "csv.part-1"} {
		if _, _, ok := parsePart(name); ok {
			t.Errorf("%q taken for a part file", name)
		}
	}
}

func TestComparePartitions(t *testing.T) {
	ids := []string{"s.t/10000", "s.t/0010", "a/0002", "s.t/0002", "s.t/x", "s.t/0009"}
	slices.SortFunc(ids, comparePartitions)
	want := []string{"a/0002", "s.t/0002", "s.t/0009", "s.t/0010", "s.t/10000", "s.t/x"}
	if !slices.Equal(ids, want) {
		t.Errorf("sorted %q, want %q", ids, want)
	}
}
