package engine_test

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/fake"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/model"
)

// The old side's check of the way back: the selected tables only, the
// changes after the cutover's position counted per table up to the head,
// none when the cutover's position is the head.
func TestChangesSinceCountsTheSelectedTablesUpToTheHead(t *testing.T) {
	ctx := context.Background()
	c, err := connector.Open(ctx, "fake://?tables=3&rows=10&changes=300&seed=2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps := connector.Discover(c)
	tables, err := engine.SelectTables(ctx, caps.Source, []string{"fake.t1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 1 || tables[0].Namespace.String() != "fake.t1" {
		t.Fatalf("selected %v, want fake.t1 alone", tables)
	}
	all, err := engine.ChangesSince(ctx, caps, tables, "100", "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[model.Namespace{Schema: "fake", Table: "t1"}] == 0 {
		t.Fatalf("changes after 100: %v, want some to fake.t1 alone", all)
	}
	fewer, err := engine.ChangesSince(ctx, caps, tables, "250", "f")
	if err != nil {
		t.Fatal(err)
	}
	if n, m := fewer[model.Namespace{Schema: "fake", Table: "t1"}], all[model.Namespace{Schema: "fake", Table: "t1"}]; n >= m {
		t.Fatalf("changes after 250: %d, not fewer than after 100: %d", n, m)
	}
	none, err := engine.ChangesSince(ctx, caps, tables, "300", "f")
	if err != nil || len(none) != 0 {
		t.Fatalf("changes after the head: %v, %v; want none", none, err)
	}
}
