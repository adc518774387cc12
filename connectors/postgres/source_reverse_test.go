package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
	"github.com/ferrydb/ferry/model"
)

// The reverse flow's start: StartReverse makes the slot, a second call
// (a retried cutover) keeps it, a plan with Recorded adopts it (and makes
// no other), and a plan whose recorded slot is gone is refused, not
// silently started at a new position.
func TestReverseStartAdoptedByThePlan(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "revstart")
	srv.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')`)
	ctx := context.Background()
	c := open(t, srv.URL(db))
	ns := model.Namespace{Schema: "public", Table: "items"}
	start, err := c.StartReverse(ctx, "shop-reverse", []model.Namespace{ns})
	if err != nil || start == "" {
		t.Fatalf("StartReverse: %q, %v", start, err)
	}
	srv.Exec(t, db, `INSERT INTO items VALUES (2, 'written after the start')`)
	if again, err := c.StartReverse(ctx, "shop-reverse", []model.Namespace{ns}); err != nil || again != start {
		t.Fatalf("a second StartReverse moved the start from %s to %s (%v)", start, again, err)
	}
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := connector.PlanOptions{CDC: true, Flow: "shop-reverse", Recorded: true, PartitionRows: 1000, BatchRows: 100}
	if err := c.Preflight(ctx, tables, opts); err != nil {
		t.Fatalf("Preflight of a recorded start: %v", err)
	}
	plan, err := open(t, srv.URL(db)).Plan(ctx, tables, opts)
	if err != nil {
		t.Fatal(err)
	}
	if plan.T0 != start {
		t.Fatalf("the plan starts at %s, not at the recorded %s", plan.T0, start)
	}
	if n := count(t, srv.Connect(t, db), `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'ferry\_%'`); n != 1 {
		t.Fatalf("%d ferry slots after adopting the recorded one, want 1", n)
	}

	srv.Exec(t, db, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'ferry\_shop\_reverse%'`)
	_, err = open(t, srv.URL(db)).Plan(ctx, tables, opts)
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "is gone") {
		t.Fatalf("a plan whose recorded slot is gone: want a configuration error saying so, got %v", err)
	}
}

// A destination without logical WAL cannot be the source of the way back.
func TestCheckReverseNeedsLogicalWAL(t *testing.T) {
	srv := pgtest.Start(t, pgtest.WALLevel("replica"))
	db := srv.CreateDatabase(t, "revwal")
	err := open(t, srv.URL(db)).CheckReverse(context.Background())
	if !errs.IsConfigError(err) || !strings.Contains(err.Error(), "wal_level") {
		t.Fatalf("CheckReverse at wal_level=replica: want a configuration error naming wal_level, got %v", err)
	}
}
