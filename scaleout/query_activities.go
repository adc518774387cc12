package scaleout

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
)

// queryOpened is a query flow's engine over freshly opened connectors.
type queryOpened struct {
	qf      *engine.QueryFlow
	secrets *errs.Scrubber
	close   func()
}

// openQuery opens the flow's connections and its query flow, without a
// state store: the marks and cursors are the destination's, the run's
// plan travels in the activity's input.
func (a *Activities) openQuery(ctx context.Context, in QueryRunInput) (*queryOpened, error) {
	c, err := a.connect(ctx, in.Options)
	if err != nil {
		return nil, err
	}
	qf, err := engine.NewQueryFlow(c.cfg, c.src, c.dst, nil, a.logger())
	if err != nil {
		c.close()
		return nil, a.failure(err, c.secrets)
	}
	if in.Tables != nil {
		if err := qf.UseTables(in.Tables); err != nil {
			c.close()
			return nil, a.failure(err, c.secrets)
		}
	}
	return &queryOpened{qf: qf, secrets: c.secrets, close: c.close}, nil
}

// QueryPrepare describes the flow's queries at the source and creates
// their destination tables (after forgetting the marks and emptying the
// tables with Restart), and returns the tables every run uses.
func (a *Activities) QueryPrepare(ctx context.Context, in QueryPrepareInput) ([]*model.Table, error) {
	o, err := a.openQuery(ctx, QueryRunInput{Options: in.Options})
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	if !o.qf.KeepsCheckpoints() {
		return nil, a.failure(errs.BadConfig(fmt.Sprintf("destination %s keeps no checkpoints, and in scale-out mode a query flow records its marks and cursors with the rows at the destination", in.Options.Destination),
			"replicate into PostgreSQL, MySQL/MariaDB or SQLite, or run the flow with ferry sync"), o.secrets)
	}
	if o.qf.AssemblesTables() {
		// Each range's parts would be on the disk of the worker that wrote
		// it, and the run's end appends them on another.
		return nil, a.failure(errs.BadConfig(fmt.Sprintf("destination %s is files, which each worker would write on its own disk", in.Options.Destination),
			"run a query flow into files with ferry sync, or replicate into a database"), o.secrets)
	}
	if err := o.qf.Prepare(ctx); err != nil {
		return nil, a.failure(err, o.secrets)
	}
	if in.Restart {
		if err := o.qf.StartOver(ctx); err != nil {
			return nil, a.failure(err, o.secrets)
		}
	}
	return o.qf.Tables(), nil
}

// QueryPlanRun plans (or finds, when an earlier attempt recorded it) a
// run of one query: its bounds and ranges, recorded at the destination.
func (a *Activities) QueryPlanRun(ctx context.Context, in QueryRunInput) (*engine.QueryRun, error) {
	o, ns, err := a.openQueryStep(ctx, in)
	if err != nil {
		return nil, err
	}
	defer o.close()
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	run, err := o.qf.PlanRun(ctx, ctx, ns)
	if err == nil && run == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, a.failure(err, o.secrets)
	}
	a.logger().Info("query run planned", "flow", in.Options.Name, "table", in.Table, "from", run.From, "to", run.Hi, "ranges", len(run.Ranges), "resumed", run.Resumed)
	return run, nil
}

// QueryCopyRange reads and writes one range of a run, from its cursor at
// the destination when an earlier attempt wrote some of it, heartbeating
// the rows written.
func (a *Activities) QueryCopyRange(ctx context.Context, in QueryRunInput) (QueryRangeResult, error) {
	info := activity.GetInfo(ctx)
	o, ns, err := a.openQueryStep(ctx, in)
	if err != nil {
		return QueryRangeResult{}, err
	}
	defer o.close()
	if in.Run == nil {
		return QueryRangeResult{}, temporal.NewNonRetryableApplicationError("a range without its run", errTypeConfig, nil)
	}
	log := a.logger().With("flow", in.Options.Name, "table", in.Table, "range", in.Range, "attempt", info.Attempt)
	var rows atomic.Int64
	stopBeats := keepAlive(ctx, func() any { return QueryRangeHeartbeat{Table: in.Table, Rows: rows.Load()} })
	stop, stopping, cancel := graceful(ctx)
	defer cancel()
	var first sync.Once
	n, err := o.qf.CopyRange(ctx, stop, ns, in.Run, in.Range, func(b int64) {
		rows.Add(b)
		first.Do(func() { faultpoint.Hold(ctx, faultpoint.QueryBatchWritten, log) })
	})
	stopBeats()
	if err != nil {
		return QueryRangeResult{}, a.failure(fmt.Errorf("query %s, range %d: %w", in.Table, in.Range, err), o.secrets)
	}
	if stop.Err() != nil {
		if stopping() {
			log.Info("worker stopping: range checkpointed, another worker resumes it", "rows", n)
			return QueryRangeResult{}, temporal.NewApplicationError(fmt.Sprintf("worker %s stopped during range %d of query %s", a.Identity, in.Range, in.Table), errTypeWorkerStop)
		}
		return QueryRangeResult{}, a.failure(ctx.Err(), o.secrets)
	}
	log.Info("query range written", "rows", n)
	return QueryRangeResult{Rows: n, Attempt: info.Attempt, Worker: a.Identity}, nil
}

// QueryFinishRun records a run's mark at the destination once every range
// is written, and returns it.
func (a *Activities) QueryFinishRun(ctx context.Context, in QueryRunInput) (string, error) {
	o, ns, err := a.openQueryStep(ctx, in)
	if err != nil {
		return "", err
	}
	defer o.close()
	if in.Run == nil {
		return "", temporal.NewNonRetryableApplicationError("a run's end without its run", errTypeConfig, nil)
	}
	stop := keepAlive(ctx, func() any { return nil })
	defer stop()
	to, err := o.qf.FinishRun(ctx, ns, in.Run)
	if err != nil {
		return "", a.failure(err, o.secrets)
	}
	a.logger().Info("query run finished", "flow", in.Options.Name, "table", in.Table, "from", in.Run.From, "to", to, "ranges", len(in.Run.Ranges))
	return to, nil
}

// openQueryStep opens the query flow for a step of a run of query
// in.Table.
func (a *Activities) openQueryStep(ctx context.Context, in QueryRunInput) (*queryOpened, model.Namespace, error) {
	ns, err := model.ParseNamespace(in.Table)
	if err != nil {
		return nil, ns, temporal.NewNonRetryableApplicationError(fmt.Sprintf("query table %q: %v", in.Table, err), errTypeConfig, nil)
	}
	o, err := a.openQuery(ctx, in)
	return o, ns, err
}
