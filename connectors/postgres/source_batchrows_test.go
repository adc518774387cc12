package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/ferrydb/ferry/connector"
	_ "github.com/ferrydb/ferry/connectors/null"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// TestBatchRowsHoldOnAnotherConnection: a partition read by a connection
// that did not make the plan (a resumed flow, a scale-out worker) is read
// in batches of --batch-rows, as on the planner's: the batch size is data
// of the read, not something Plan left on its connection (before, such a
// read took 5000-row batches whatever --batch-rows said).
func TestBatchRowsHoldOnAnotherConnection(t *testing.T) {
	p := newPair(t)
	mustExec(t, p.srv.Connect(t, p.src), `CREATE TABLE t (id bigint PRIMARY KEY, v text);
		INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 3000) g; ANALYZE t`)
	ctx := context.Background()
	cfg := flow.Config{Name: "batches", Source: p.srcURL() + "&snapshot=false", Destination: "null://",
		Mode: flow.ModeSnapshot, PartitionRows: 100000, BatchRows: 100}
	planner := open(t, cfg.Source)
	tables, err := planner.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := planner.Plan(ctx, tables, connector.PlanOptions{PartitionRows: cfg.PartitionRows, BatchRows: cfg.BatchRows})
	if err != nil {
		t.Fatal(err)
	}
	// Into null the rows are decoded; into PostgreSQL they travel raw
	// (binary COPY tuples): both readers.
	mustExec(t, p.srv.Connect(t, p.dst), `CREATE TABLE t (id bigint PRIMARY KEY, v text)`)
	for _, dstURL := range []string{"null://", p.dstURL()} {
		src := open(t, cfg.Source) // a connection that never planned
		dst, err := connector.Open(ctx, dstURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dst.Close() })
		c := cfg
		c.Destination = dstURL
		e, err := engine.New(c, src, dst, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		part := plan.Partitions[0]
		one := &model.Plan{Tables: plan.Tables, Partitions: []model.Partition{part}, CreatedAt: plan.CreatedAt}
		if err := e.UsePlan(one); err != nil {
			t.Fatal(err)
		}
		var batches int
		got, err := e.CopyPartition(ctx, ctx, part.ID, engine.PartitionProgress{}, func(engine.PartitionProgress) { batches++ })
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != 3000 || batches < 30 {
			t.Errorf("into %s: %d rows in %d batches, want 3000 rows in batches of at most 100 (30 or more)", errs.SchemeOf(dstURL), got.Rows, batches)
		}
	}
}

// TestRawBatchesAreLargerByDefault: without --batch-rows, rows that travel
// undecoded into PostgreSQL go in batches of 20,000 (each batch is a
// destination transaction; at decoded rows' 5000 their fixed cost made
// the copy a sixth slower than raw COPY pipes); decoded rows keep 5000.
func TestRawBatchesAreLargerByDefault(t *testing.T) {
	p := newPair(t)
	mustExec(t, p.srv.Connect(t, p.src), `CREATE TABLE t (id bigint PRIMARY KEY, v text);
		INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 45000) g; ANALYZE t`)
	mustExec(t, p.srv.Connect(t, p.dst), `CREATE TABLE t (id bigint PRIMARY KEY, v text)`)
	ctx := context.Background()
	for _, c := range []struct {
		dst  string
		want int
	}{{p.dstURL(), 3 + 1}, {"null://", 9 + 1}} { // and the partition's end
		cfg := flow.Config{Name: "rawbatches", Source: p.srcURL() + "&snapshot=false", Destination: c.dst, Mode: flow.ModeSnapshot, PartitionRows: 100000}
		src := open(t, cfg.Source)
		tables, err := src.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := src.Plan(ctx, tables, connector.PlanOptions{PartitionRows: cfg.PartitionRows})
		if err != nil {
			t.Fatal(err)
		}
		dst, err := connector.Open(ctx, c.dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dst.Close() })
		e, err := engine.New(cfg, src, dst, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.UsePlan(plan); err != nil {
			t.Fatal(err)
		}
		var batches int
		got, err := e.CopyPartition(ctx, ctx, plan.Partitions[0].ID, engine.PartitionProgress{}, func(engine.PartitionProgress) { batches++ })
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != 45000 || batches != c.want {
			t.Errorf("into %s: %d rows in %d batches, want 45000 in %d", errs.SchemeOf(c.dst), got.Rows, batches, c.want)
		}
	}
}
