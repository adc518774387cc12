package engine_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// stepEngine builds an engine the way a scale-out activity does: fresh
// connectors, a scratch state store.
func stepEngine(t *testing.T, cfg flow.Config) *engine.Engine {
	t.Helper()
	store, err := state.Open(context.Background(), t.TempDir(), cfg.FlowName())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return stepEngineWith(t, cfg, store)
}

// stepEngineWith builds an engine on fresh connectors and store (nil: none,
// as a scale-out copy or CDC step runs).
func stepEngineWith(t *testing.T, cfg flow.Config, store *state.Store) *engine.Engine {
	t.Helper()
	ctx := context.Background()
	src, err := connector.Open(ctx, cfg.Source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	dst, err := connector.Open(ctx, cfg.Destination)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	e, err := engine.New(cfg, src, dst, store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCopyPartitionStopsAndResumesFromItsProgress copies a partition in two
// steps, as a worker that stops and another that takes over: the second
// step starts from the first's progress (and the destination's checkpoint
// agrees with it), and the partition ends with every row exactly once.
func TestCopyPartitionStopsAndResumesFromItsProgress(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dst.db")
	cfg := flow.Config{Name: "steps", Source: "fake://?tables=1&rows=20000", Destination: "sqlite://" + db,
		Mode: flow.ModeSnapshot, PartitionRows: 10000, BatchRows: 500}
	planner := stepEngine(t, cfg)
	if err := planner.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	plan := planner.Plan()
	if len(plan.Partitions) < 2 {
		t.Fatalf("plan has %d partitions", len(plan.Partitions))
	}
	part := plan.Partitions[1]
	sub := &model.Plan{Tables: []*model.Table{plan.Table(part.Table)}, Partitions: []model.Partition{part}}

	first := stepEngine(t, cfg)
	if err := first.UsePlan(sub); err != nil {
		t.Fatal(err)
	}
	stop, stopNow := context.WithCancel(ctx)
	var reports int
	got, err := first.CopyPartition(ctx, stop, part.ID, engine.PartitionProgress{}, func(p engine.PartitionProgress) {
		reports++
		if p.Rows >= 3000 {
			stopNow()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Done || got.Rows < 3000 || got.Rows >= part.EstimatedRows || got.Cursor == "" || reports == 0 {
		t.Fatalf("after a stop: %+v after %d reports", got, reports)
	}

	second := stepEngine(t, cfg)
	if err := second.UsePlan(sub); err != nil {
		t.Fatal(err)
	}
	stored, ok, err := second.StoredPartitionProgress(ctx, part.ID)
	if err != nil || !ok || stored != got {
		t.Fatalf("the destination's checkpoint %+v (%v, %v), want %+v", stored, ok, err, got)
	}
	final, err := second.CopyPartition(ctx, ctx, part.ID, got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !final.Done || final.Rows != 10000 {
		t.Fatalf("final progress %+v, want done with 10000 rows", final)
	}
	if err := second.FinishTables(ctx); err != nil {
		t.Fatal(err)
	}
	sqldb, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	var n, distinct int
	if err := sqldb.QueryRow(`SELECT count(*), count(DISTINCT id) FROM t1`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 10000 || distinct != 10000 {
		t.Fatalf("destination has %d rows (%d distinct), want the partition's 10000 once", n, distinct)
	}
}

// TestCopyPartitionWithoutStateStore copies a partition with an engine
// built without a state store, as a scale-out copy step is: the position it
// starts from and the one it reached travel as values.
func TestCopyPartitionWithoutStateStore(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dst.db")
	cfg := flow.Config{Name: "nostore", Source: "fake://?tables=1&rows=20000", Destination: "sqlite://" + db,
		Mode: flow.ModeSnapshot, PartitionRows: 10000, BatchRows: 500}
	planner := stepEngine(t, cfg)
	if err := planner.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	plan := planner.Plan()
	part := plan.Partitions[0]
	step := stepEngineWith(t, cfg, nil)
	if err := step.UsePlan(&model.Plan{Tables: []*model.Table{plan.Table(part.Table)}, Partitions: []model.Partition{part}}); err != nil {
		t.Fatal(err)
	}
	from, where, err := step.ResumePartition(ctx, part.ID, engine.PartitionProgress{})
	if err != nil || from != (engine.PartitionProgress{}) || where != engine.ResumedFromNothing {
		t.Fatalf("a fresh partition resumes from %+v (%q, %v), want nothing", from, where, err)
	}
	final, err := step.CopyPartition(ctx, ctx, part.ID, from, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !final.Done || final.Rows != 10000 {
		t.Fatalf("final progress %+v, want done with 10000 rows", final)
	}
}

// DrainTo, as a scale-out cutover's drain runs it: from where CDC stopped
// to a position, it ends on its own once that position is applied and
// checkpointed, and a second drain to the source's head (CutoverPosition)
// ends there.
func TestDrainToEndsAtThePosition(t *testing.T) {
	cfg := flow.Config{Name: "drain", Source: "fake://?tables=1&rows=100&changes=3000&changes_per_sec=2000", Destination: "null://", Mode: flow.ModeCDC}
	e := stepEngineWith(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := e.Plan().T0
	pos, reached, err := e.DrainTo(ctx, ctx, t0, "1200")
	if err != nil || !reached {
		t.Fatalf("drain to 1200: reached %v, %v", reached, err)
	}
	if n, _ := strconv.Atoi(string(pos)); n < 1200 || n >= 3000 {
		t.Fatalf("drain to 1200 ended at %s", pos)
	}
	head, _, err := e.CutoverPosition(ctx, pos)
	if err != nil || head != "3000" {
		t.Fatalf("cutover position %q, %v; want the head, 3000", head, err)
	}
	end, reached, err := e.DrainTo(ctx, ctx, pos, head)
	if err != nil || !reached || end != "3000" {
		t.Fatalf("drain to the head: at %s, reached %v, %v", end, reached, err)
	}
	// Already there: nothing to stream, reached at once.
	if again, reached, err := e.DrainTo(ctx, ctx, end, head); err != nil || !reached || again != end {
		t.Fatalf("drain from the head: at %s, reached %v, %v", again, reached, err)
	}
	if ctx.Err() != nil {
		t.Fatal("the drains ended only with the test's deadline")
	}
}
