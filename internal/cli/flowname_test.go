package cli

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
)

// A flow whose state an older ferry kept under the name that hashed
// --tables in is found under that name; a new flow gets the name without
// the tables; --name stays.
func TestResolveFlowNameFindsStateUnderTheOlderName(t *testing.T) {
	dir := t.TempDir()
	cfg := func() *flow.Config {
		return &flow.Config{Source: "postgres://app@db/shop", Destination: "sqlite:///tmp/x.db", Tables: []string{"public.orders"}, StateDir: dir}
	}
	fresh := cfg()
	if err := resolveFlowName(fresh); err != nil {
		t.Fatal(err)
	}
	if fresh.Name != cfg().FlowName() {
		t.Fatalf("new flow: name %q, want the derived %q", fresh.Name, cfg().FlowName())
	}

	legacy := cfg().LegacyFlowName()
	st, err := state.Open(context.Background(), dir, legacy)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	old := cfg()
	if err := resolveFlowName(old); err != nil {
		t.Fatal(err)
	}
	if old.Name != legacy {
		t.Fatalf("flow with older state: name %q, want %q", old.Name, legacy)
	}

	named := cfg()
	named.Name = "shop"
	if err := resolveFlowName(named); err != nil {
		t.Fatal(err)
	}
	if named.Name != "shop" {
		t.Fatalf("--name shop resolved to %q", named.Name)
	}
}

// A flow started before URLs with an '@' in a query value were redacted
// as they are now is found under the name derived then (the last of its
// earlier names here), so it resumes.
func TestResolveFlowNameFindsStateNamedBeforeTheRedactionChange(t *testing.T) {
	dir := t.TempDir()
	cfg := func() *flow.Config {
		return &flow.Config{Source: "postgres://app:pw@db/shop?application_name=me@example.com", Destination: "sqlite:///tmp/x.db", StateDir: dir}
	}
	earlier := cfg().EarlierFlowNames()
	if len(earlier) < 2 {
		t.Fatalf("earlier names %v: want the older one and the one derived before the redaction changed", earlier)
	}
	st, err := state.Open(context.Background(), dir, earlier[len(earlier)-1])
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	c := cfg()
	if err := resolveFlowName(c); err != nil {
		t.Fatal(err)
	}
	if c.Name != earlier[len(earlier)-1] {
		t.Fatalf("resolved %q, want %q (its state is there)", c.Name, earlier[len(earlier)-1])
	}
}

// ferry run's derived name does not depend on --tables (a flow run again
// with another --tables is the same flow); the older name hashed it in,
// and equals the new one for a flow without --tables.
func TestRunFlowNameLeavesTheTablesOut(t *testing.T) {
	a := &flow.Config{Source: "src", Destination: "dst", Tables: []string{"public.orders"}}
	b := &flow.Config{Source: "src", Destination: "dst", Tables: []string{"public.orders", "public.lines"}}
	none := &flow.Config{Source: "src", Destination: "dst"}
	if runFlowName(a) != "src-to-dst" || runFlowName(b) != runFlowName(a) {
		t.Fatalf("derived names %q, %q; want src-to-dst for both", runFlowName(a), runFlowName(b))
	}
	if legacyRunFlowName(a) == legacyRunFlowName(b) || legacyRunFlowName(none) != runFlowName(none) {
		t.Fatalf("older names %q, %q, %q", legacyRunFlowName(a), legacyRunFlowName(b), legacyRunFlowName(none))
	}
	renamed := &flow.Config{Source: "src", Destination: "dst", Tables: []string{"public.orders"}, Rename: []string{"public.orders=archive.orders"}}
	if n := runFlowName(renamed); n == "src-to-dst" || n != runFlowName(&flow.Config{Source: "src", Destination: "dst", Rename: renamed.Rename}) {
		t.Fatalf("a renaming flow's name %q: want the renames, not the tables, hashed in", n)
	}
}
