package postgres_test

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/connector"
)

// TestPartitionsOfAFreshPlanNameItsSnapshot: every partition of a plan
// carries the name of the snapshot it is to be read at, with CDC (the
// slot's) and without (an exported one); without a snapshot to share
// (snapshot=false) they name none.
func TestPartitionsOfAFreshPlanNameItsSnapshot(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE t (id bigint PRIMARY KEY, pad text);
		INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g; ANALYZE t`)
	ctx := context.Background()
	for _, c := range []struct {
		name, url string
		opts      connector.PlanOptions
		snapshot  bool
	}{
		{"cdc", p.srcURL(), connector.PlanOptions{CDC: true, Flow: "named", PartitionRows: 1000}, true},
		{"copy only", p.srcURL(), connector.PlanOptions{PartitionRows: 1000}, true},
		{"snapshot=false", p.srcURL() + "&snapshot=false", connector.PlanOptions{PartitionRows: 1000}, false},
	} {
		conn := open(t, c.url)
		tables, err := conn.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := conn.Plan(ctx, tables, c.opts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(plan.Partitions) < 2 {
			t.Fatalf("%s: %d partitions, want several", c.name, len(plan.Partitions))
		}
		name := plan.Partitions[0].Snapshot
		if (name != "") != c.snapshot {
			t.Fatalf("%s: partition snapshot %q, want one: %v", c.name, name, c.snapshot)
		}
		for _, part := range plan.Partitions {
			if part.Snapshot != name {
				t.Fatalf("%s: partition %s names snapshot %q, partition 0 %q", c.name, part.ID, part.Snapshot, name)
			}
		}
		if c.opts.CDC && plan.SnapshotConsistent != c.snapshot {
			t.Fatalf("%s: snapshot consistent %v with snapshot %q", c.name, plan.SnapshotConsistent, name)
		}
		if c.opts.CDC {
			if err := conn.DropFlow(ctx, c.opts.Flow); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPartitionReadsCurrentDataOutsideItsSnapshot: a partition naming a
// snapshot this Conn does not hold (a plan made by another process or
// Conn, a name the server never gave, a snapshot released since) reads the
// current state, without an error; the planning Conn reads it at the
// snapshot.
func TestPartitionReadsCurrentDataOutsideItsSnapshot(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	mustExec(t, src, `CREATE TABLE t (id bigint PRIMARY KEY, v text); INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g`)
	ctx := context.Background()
	planner := open(t, p.srcURL())
	tables, err := planner.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planner.Plan(ctx, tables, connector.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Partitions) != 1 || plan.Partitions[0].Snapshot == "" {
		t.Fatalf("plan: %+v", plan.Partitions)
	}
	part := plan.Partitions[0]
	mustExec(t, src, `INSERT INTO t VALUES (101, 'after')`)

	if ids, _ := readAll(t, planner, tables[0], part, ""); len(ids) != 100 {
		t.Fatalf("the planning Conn read %d rows, want the 100 of its snapshot", len(ids))
	}
	other := open(t, p.srcURL())
	if ids, _ := readAll(t, other, tables[0], part, ""); len(ids) != 101 {
		t.Fatalf("another Conn read %d rows of the plan's partition, want the 101 there are now", len(ids))
	}
	unknown := part
	unknown.Snapshot = "00000003-0000001B-1"
	if ids, _ := readAll(t, planner, tables[0], unknown, ""); len(ids) != 101 {
		t.Fatalf("a partition naming a snapshot the Conn does not hold read %d rows, want the 101 there are now", len(ids))
	}
	// A plan made since releases the first plan's snapshot.
	if _, err := planner.Plan(ctx, tables, connector.PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	if ids, _ := readAll(t, planner, tables[0], part, ""); len(ids) != 101 {
		t.Fatalf("a partition of a released snapshot read %d rows, want the 101 there are now", len(ids))
	}
}
