package scaleout

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// A query replication flow (ferry run --query) is a workflow of its own:
// each run plans its bounds in one activity per query, reads and writes
// the ranges of the watermark in activities spread over the workers, and
// records the new mark; then a durable timer waits for --every. The marks
// and the ranges' cursors live at the destination with the rows (the
// engine's QueryFlow, as in ferry sync); the workflow keeps what the runs
// did, for ferry flow status, and continues as new every few runs.
const (
	QueryWorkflowName = "ferry.query-flow"
	// ActivityQueryPrepare describes the queries and creates their
	// destination tables; ActivityQueryPlanRun bounds one run of a query
	// and splits it into ranges; ActivityQueryRange reads and writes one
	// range; ActivityQueryFinishRun records the run's mark.
	ActivityQueryPrepare   = "ferry.query-prepare"
	ActivityQueryPlanRun   = "ferry.query-plan-run"
	ActivityQueryRange     = "ferry.query-range"
	ActivityQueryFinishRun = "ferry.query-finish-run"
	// PhaseRun: a run is under way; PhaseWait: waiting for the next.
	PhaseRun  = string(engine.PhaseQueryRun)
	PhaseWait = string(engine.PhaseQueryWait)
	// queryRunsPerHistory bounds the runs of one workflow run: it
	// continues as new after them, or sooner when its history is long.
	queryRunsPerHistory = 50
)

// QueryFlowInput starts (or continues) a query flow's workflow.
type QueryFlowInput struct {
	Options  flow.Config `json:"options"`
	Settings Settings    `json:"settings"`
	// Restart forgets the marks and empties the destination tables first.
	Restart bool `json:"restart,omitempty"`
	// State is what the flow did so far, carried over by continue-as-new
	// (or from a stopped run of the flow); nil for a new flow.
	State *QueryFlowState `json:"state,omitempty"`
}

// QueryFlowState is a query flow's durable state.
type QueryFlowState struct {
	Phase   string    `json:"phase"`
	Started time.Time `json:"started"`
	// Continued counts continue-as-new.
	Continued int `json:"continued"`
	// Tables are the queries' destination tables as described when the
	// flow was prepared; every run reads and writes them.
	Tables []*model.Table `json:"tables,omitempty"`
	// QueryProgress is the runs, the marks, the last run and the one
	// under way (the dashboard's Snapshot.Query).
	engine.QueryProgress
	Paused    bool      `json:"paused,omitempty"`
	Cancelled bool      `json:"cancelled,omitempty"`
	Error     string    `json:"error,omitempty"`
	Ended     time.Time `json:"ended,omitzero"`
}

// QueryRunState is one run of a query flow; QueryTableRun one query's part
// of it.
type (
	QueryRunState = engine.QueryRunReport
	QueryTableRun = engine.QueryTableReport
)

// QueryPrepareInput asks for a query flow's tables.
type QueryPrepareInput struct {
	Options flow.Config `json:"options"`
	Restart bool        `json:"restart,omitempty"`
}

// QueryRunInput asks for one step of a run of query Table: its plan (Run
// nil), one range (Run, Range), or its mark recorded (Run).
type QueryRunInput struct {
	Options flow.Config      `json:"options"`
	Tables  []*model.Table   `json:"tables"`
	Table   string           `json:"table"`
	Run     *engine.QueryRun `json:"run,omitempty"`
	Range   int              `json:"range"`
}

// QueryRangeHeartbeat is a range activity's heartbeat: rows written so far.
type QueryRangeHeartbeat struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// QueryRangeResult is a range written.
type QueryRangeResult struct {
	Rows    int64  `json:"rows"`
	Attempt int32  `json:"attempt"`
	Worker  string `json:"worker"`
}

// queryFlowRun is one run of the query workflow.
type queryFlowRun struct {
	in         QueryFlowInput
	set        Settings
	s          *QueryFlowState
	cancelActs workflow.CancelFunc
	activities int
}

// QueryFlowWorkflow runs a query replication flow: the queries prepared
// once, then runs, each after the last one's --every, until cancelled (or
// once without --every).
func QueryFlowWorkflow(ctx workflow.Context, in QueryFlowInput) (*QueryFlowState, error) {
	r := &queryFlowRun{in: in, set: in.Settings.withDefaults(in.Options), s: in.State}
	if r.s == nil {
		r.s = &QueryFlowState{Phase: PhasePlan, Started: workflow.Now(ctx)}
	}
	s := r.s
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (QueryResult, error) {
		q := *s
		return QueryResult{Options: r.in.Options, Settings: r.set, Query: &q,
			State: FlowState{Phase: s.Phase, Started: s.Started, Runs: s.Continued, Paused: s.Paused, Cancelled: s.Cancelled, Error: s.Error, Ended: s.Ended}}, nil
	}); err != nil {
		return nil, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryControl, func() (Control, error) {
		return Control{Paused: s.Paused, Cancelled: s.Cancelled}, nil
	}); err != nil {
		return nil, err
	}
	// A cutover is refused: there is no change stream to drain (the
	// validator's refusal leaves no trace in the history).
	refuse := func(workflow.Context, CutoverRequest) error {
		return temporal.NewApplicationError(fmt.Sprintf("flow %q is a query flow: it has no change stream to cut over; the destination holds the query's result as of each run's end", r.in.Options.Name), errTypeConfig)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCutover, func(ctx workflow.Context, req CutoverRequest) (CutoverAnswer, error) {
		return CutoverAnswer{}, refuse(ctx, req)
	}, workflow.UpdateHandlerOptions{Validator: refuse}); err != nil {
		return nil, err
	}
	actCtx, cancelActs := workflow.WithCancel(ctx)
	r.cancelActs = cancelActs
	r.listen(ctx)

	if s.Tables == nil {
		if err := workflow.Await(ctx, func() bool { return !s.Paused || s.Cancelled }); err != nil {
			return nil, err
		}
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		r.activities++
		var tables []*model.Table
		err := workflow.ExecuteActivity(activityOptions(actCtx, r.set, "prepare", time.Hour), ActivityQueryPrepare,
			QueryPrepareInput{Options: in.Options, Restart: in.Restart}).Get(actCtx, &tables)
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if err != nil {
			return r.fail(failure("prepare the queries", err))
		}
		s.Tables = tables
	}
	runs := 0
	for {
		if s.Paused {
			s.Phase = PhasePaused
			if err := workflow.Await(ctx, func() bool { return !s.Paused || s.Cancelled }); err != nil {
				return nil, err
			}
		}
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if runs >= queryRunsPerHistory || historyFull(ctx, r.set, r.activities) {
			return nil, r.continueAsNew(ctx)
		}
		s.Phase, s.NextRun = PhaseRun, time.Time{}
		err := r.run(ctx, actCtx)
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if err != nil {
			return r.fail(err)
		}
		runs++
		if in.Options.Every <= 0 {
			s.Phase, s.Ended = PhaseDone, workflow.Now(ctx)
			return s, nil
		}
		// A durable timer: the wait survives workers and the runner
		// going away. A cancel ends it; a pause holds the next run.
		s.Phase, s.NextRun = PhaseWait, workflow.Now(ctx).Add(in.Options.Every)
		if _, err := workflow.AwaitWithTimeout(ctx, in.Options.Every, func() bool { return s.Cancelled }); err != nil {
			return nil, err
		}
	}
}

// listen applies the control signals as they arrive; a cutover (the
// signal of older ferry commands) means nothing to a query flow and is
// only logged.
func (r *queryFlowRun) listen(ctx workflow.Context) {
	s := r.s
	names := []string{SignalPause, SignalResume, SignalCancel, SignalCutover}
	chans := map[string]workflow.ReceiveChannel{}
	for _, n := range names {
		chans[n] = workflow.GetSignalChannel(ctx, n)
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			for _, n := range names {
				sel.AddReceive(chans[n], func(c workflow.ReceiveChannel, _ bool) {
					c.Receive(ctx, nil)
					switch n {
					case SignalPause:
						s.Paused = true
					case SignalResume:
						s.Paused = false
					case SignalCancel:
						s.Cancelled = true
						r.cancelActs()
					}
					workflow.GetLogger(ctx).Info("signal", "signal", n)
				})
			}
			sel.Select(ctx)
		}
	})
}

// run runs every query once: its plan, its ranges at once (spread over
// the workers), then its mark recorded.
func (r *queryFlowRun) run(ctx, actCtx workflow.Context) error {
	s := r.s
	cur := &QueryRunState{Number: s.Runs + 1, Started: workflow.Now(ctx)}
	s.Current = cur
	for _, t := range s.Tables {
		ns := t.Namespace.String()
		cur.Tables = append(cur.Tables, QueryTableRun{Table: ns})
		tr := &cur.Tables[len(cur.Tables)-1]
		id := fmt.Sprintf("run-%d/%s", cur.Number, ns)
		in := QueryRunInput{Options: r.in.Options, Tables: s.Tables, Table: ns}
		r.activities++
		var run engine.QueryRun
		if err := workflow.ExecuteActivity(activityOptions(actCtx, r.set, id+"/plan", time.Hour), ActivityQueryPlanRun, in).Get(actCtx, &run); err != nil {
			return failure("plan a run of query "+ns, err)
		}
		in.Run = &run
		tr.From, tr.To, tr.Ranges, tr.Resumed = run.From, run.Hi, len(run.Ranges), run.Resumed
		rangesCtx, cancelRanges := workflow.WithCancel(actCtx)
		futures := make([]workflow.Future, len(run.Ranges))
		for i := range run.Ranges {
			ri := in
			ri.Range = i
			r.activities++
			futures[i] = workflow.ExecuteActivity(activityOptions(rangesCtx, r.set, fmt.Sprintf("%s/range-%d", id, i), 24*time.Hour), ActivityQueryRange, ri)
		}
		var failed error
		for i, f := range futures {
			var res QueryRangeResult
			if err := f.Get(ctx, &res); err != nil {
				if failed == nil {
					failed = failure(fmt.Sprintf("query %s, range %d of run %d", ns, i, cur.Number), err)
					cancelRanges()
				}
				continue
			}
			tr.Rows += res.Rows
			cur.Rows += res.Rows
			tr.RangesDone++
			if res.Attempt > 1 {
				tr.RetriedRanges++
			}
		}
		cancelRanges()
		if failed != nil {
			return failed
		}
		to := run.From
		if len(run.Ranges) > 0 {
			r.activities++
			if err := workflow.ExecuteActivity(activityOptions(actCtx, r.set, id+"/finish", 10*time.Minute), ActivityQueryFinishRun, in).Get(actCtx, &to); err != nil {
				return failure("record the mark of query "+ns, err)
			}
		}
		tr.To = to
		if s.Marks == nil {
			s.Marks = map[string]string{}
		}
		s.Marks[ns] = to
	}
	cur.Ended = workflow.Now(ctx)
	s.Runs++
	s.Last, s.Current = cur, nil
	return nil
}

func (r *queryFlowRun) continueAsNew(ctx workflow.Context) error {
	s := *r.s
	s.Continued++
	workflow.GetLogger(ctx).Info("continuing as new", "runs", s.Runs, "continued", s.Continued, "history", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	return workflow.NewContinueAsNewError(ctx, QueryWorkflowName, QueryFlowInput{Options: r.in.Options, Settings: r.in.Settings, State: &s})
}

// cancelled ends a flow cancelled by a signal: running activities were
// cancelled; the marks stay at the destination, so the flow run again
// goes on from them. The workflow fails with a Cancelled error so that
// ferry run exits 1.
func (r *queryFlowRun) cancelled(ctx workflow.Context) (*QueryFlowState, error) {
	r.s.Phase, r.s.Ended = PhaseCancelled, workflow.Now(ctx)
	return nil, temporal.NewNonRetryableApplicationError("flow "+r.in.Options.Name+" was cancelled", errTypeCancelled, nil)
}

func (r *queryFlowRun) fail(err error) (*QueryFlowState, error) {
	r.s.Phase, r.s.Error = PhaseFailed, err.Error()
	return nil, endError(err)
}
