package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/testsupport/pgtest"
)

// TestPlanAgainAfterAnOutageMakesItsSlotAgain: the engine asks the same
// source for a plan again when an outage hid the first attempt's result
// from it. A slot that attempt made is this run's own leftover and is made
// again; before, the retry refused it ("an earlier run ... kept no plan")
// and the flow ended with exit 2. A slot another live process holds (it
// is making its plan) is still refused.
func TestPlanAgainAfterAnOutageMakesItsSlotAgain(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "replan")
	srv.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 100) g`)
	ctx := context.Background()
	c := open(t, srv.URL(db))
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := connector.PlanOptions{CDC: true, Flow: "replan"}
	if _, err := c.Plan(ctx, tables, opts); err != nil {
		t.Fatal(err)
	}
	second, err := c.Plan(ctx, tables, opts)
	if err != nil {
		t.Fatalf("the plan asked again in the same run refused its own slot: %v", err)
	}
	admin := srv.Connect(t, db)
	var slots int
	var confirmed string
	if err := admin.QueryRow(ctx, `SELECT count(*), max(confirmed_flush_lsn)::text FROM pg_replication_slots WHERE slot_name = 'ferry_replan'`).Scan(&slots, &confirmed); err != nil {
		t.Fatal(err)
	}
	if slots != 1 || confirmed != string(second.T0) {
		t.Fatalf("%d slots confirmed at %s; want one, made by the second attempt at its T0 %s", slots, confirmed, second.T0)
	}
	other := open(t, srv.URL(db))
	_, err = other.Plan(ctx, tables, opts)
	if err == nil || !errs.IsConfigError(err) || !strings.Contains(err.Error(), "is being made by another ferry planning flow") {
		t.Fatalf("another process's plan took over the slot that process still holds: %v", err)
	}
	if err := c.DropFlow(ctx, "replan"); err != nil {
		t.Fatal(err)
	}
}

// TestPlanDropsTheSlotARunLeftWithoutAPlan: a run killed after it created
// its slot and before it saved its plan leaves the slot, held by no one.
// A plan is asked for only when the flow has none, so nothing depends on
// the slot: the next plan drops it and makes a new one at its own T0.
// Before, it refused ("created it but kept no plan ... run with
// --restart").
func TestPlanDropsTheSlotARunLeftWithoutAPlan(t *testing.T) {
	srv := pgtest.Shared(t)
	db := srv.CreateDatabase(t, "leftslot")
	srv.Exec(t, db, `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1, 100) g`)
	srv.Exec(t, db, `SELECT pg_create_logical_replication_slot('ferry_leftslot', 'pgoutput')`)
	srv.Exec(t, db, `INSERT INTO items VALUES (101, 'after the leftover slot')`)
	ctx := context.Background()
	c := open(t, srv.URL(db))
	tables, err := c.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.Plan(ctx, tables, connector.PlanOptions{CDC: true, Flow: "leftslot"})
	if err != nil {
		t.Fatalf("the plan refused the slot a run left without a plan: %v", err)
	}
	var confirmed string
	if err := srv.Connect(t, db).QueryRow(ctx, `SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'ferry_leftslot'`).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	if confirmed != string(plan.T0) {
		t.Fatalf("slot confirmed at %s; want a new slot at the plan's T0 %s", confirmed, plan.T0)
	}
	if err := c.DropFlow(ctx, "leftslot"); err != nil {
		t.Fatal(err)
	}
}
