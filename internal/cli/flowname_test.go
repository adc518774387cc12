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
