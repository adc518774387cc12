package scaleout

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
	"github.com/ferrydb/ferry/state"
)

// QueryResult is what QueryProgress returns: the flow's definition and its
// durable state.
type QueryResult struct {
	Options  flow.Config `json:"options"`
	Settings Settings    `json:"settings"`
	State    FlowState   `json:"state"`
	// Query is a query flow's state (QueryFlowWorkflow), whose State
	// holds only the phase and the control flags.
	Query *QueryFlowState `json:"query,omitempty"`
}

// flowRun is one run of the workflow (until it ends or continues as new).
type flowRun struct {
	in         FlowInput
	set        Settings
	s          *FlowState
	actCtx     workflow.Context
	cancelActs workflow.CancelFunc
	activities int // started by this run
	// reading says this run reads the cutover's position; cutErr is why
	// that failed.
	reading bool
	cutErr  error
	// sel is the change of --tables asked for (UpdateTables), until its
	// handler answers; continuing says the run is about to continue as
	// new, which a change waits for no longer.
	sel        *tablesChange
	continuing bool
}

// FlowWorkflow coordinates one flow: plan, copy every partition through a
// sliding window of activities, finish the tables, then stream changes in
// successive CDC activities until cutover (or, with until caught-up, until
// the destination caught up). It continues as new before its history grows
// large, carrying its state.
func FlowWorkflow(ctx workflow.Context, in FlowInput) (*FlowState, error) {
	r := &flowRun{in: in, set: in.Settings.withDefaults(in.Options), s: in.State}
	if r.s == nil {
		r.s = &FlowState{Phase: PhasePlan, Started: workflow.Now(ctx)}
	}
	s := r.s
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (QueryResult, error) {
		return QueryResult{Options: r.in.Options, Settings: r.set, State: *s}, nil
	}); err != nil {
		return nil, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryControl, func() (Control, error) {
		return Control{Paused: s.Paused, Cutover: s.Cutover, Cancelled: s.Cancelled, Reselect: r.reselecting()}, nil
	}); err != nil {
		return nil, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryReverse, func() (*state.ReverseStart, error) { return s.Reverse, nil }); err != nil {
		return nil, err
	}
	actCtx, cancelActs := workflow.WithCancel(ctx)
	r.actCtx, r.cancelActs = actCtx, cancelActs
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCutover, r.onCutover,
		workflow.UpdateHandlerOptions{Validator: r.validateCutoverRequest}); err != nil {
		return nil, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateTables, r.onTables,
		workflow.UpdateHandlerOptions{Validator: r.validateTables}); err != nil {
		return nil, err
	}
	r.listen(ctx)

	if s.Plan == nil {
		if err := workflow.Await(ctx, func() bool { return !s.Paused || s.Cancelled }); err != nil {
			return nil, err
		}
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if in.Options.Reverse && s.ReverseOf == nil {
			err := r.checkOldSide(ctx, actCtx)
			if s.Cancelled {
				return r.cancelled(ctx)
			}
			if err != nil {
				return r.fail(err)
			}
		}
		if in.Restart {
			if err := r.release(actCtx); err != nil {
				return r.fail(err)
			}
		}
		// A flow of the first type may have its tasks taken by workers
		// that do not know chunks: it keeps its whole plan (see
		// WorkflowName).
		chunked := workflow.GetVersion(ctx, versionPlanChunks, workflow.DefaultVersion, 1) == 1 &&
			workflow.GetInfo(ctx).WorkflowType.Name != WorkflowNameV1
		var pr PlanResult
		err := workflow.ExecuteActivity(r.options(actCtx, "plan", time.Hour), ActivityPlan, PlanInput{Options: r.in.Options, StartOver: in.Restart, Chunked: chunked, ChunkKB: r.set.PlanChunkKB}).Get(actCtx, &pr)
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if err != nil {
			return r.fail(failure("plan", err))
		}
		s.Plan, s.Mode, s.Abilities = pr.Plan, pr.Mode, pr.Abilities
		if pr.Chunks != nil {
			s.Chunks, s.TableParts = pr.Chunks, pr.Tables
		}
		for _, p := range pr.Plan.Partitions {
			s.Parts = append(s.Parts, PartitionState{ID: p.ID, Table: p.Table.String(), EstimatedRows: p.EstimatedRows, State: PartPending})
		}
	}

	if s.Mode != flow.ModeCDC && !s.TablesFinished {
		s.Phase = PhaseCopy
		next, err := r.copy(ctx, actCtx)
		if next != nil || err != nil {
			return nil, firstErr(next, err)
		}
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		r.copied(actCtx)
		// A destination with nothing to do after the copy needs no activity;
		// a flow planned before abilities were reported runs it, as it did.
		if s.Abilities == nil || s.Abilities.Destination.FinishTables {
			err = workflow.ExecuteActivity(r.options(actCtx, "finish", time.Hour), ActivityFinish, TablesInput{Options: in.Options, Tables: s.Plan.Tables}).Get(actCtx, nil)
			if s.Cancelled {
				return r.cancelled(ctx)
			}
			if err != nil {
				return r.fail(failure("finish tables", err))
			}
		}
		s.TablesFinished = true
	}
	if s.Mode == flow.ModeSnapshot {
		return r.done(ctx, false)
	}
	return r.stream(ctx, actCtx)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// listen applies signals to the state as they arrive.
func (r *flowRun) listen(ctx workflow.Context) {
	s := r.s
	chans := map[string]workflow.ReceiveChannel{}
	for _, n := range []string{SignalPause, SignalResume, SignalCancel, SignalCutover} {
		chans[n] = workflow.GetSignalChannel(ctx, n)
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			sel := workflow.NewSelector(ctx)
			for _, n := range []string{SignalPause, SignalResume, SignalCancel, SignalCutover} {
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
					case SignalCutover:
						r.requestCutover(ctx)
					}
					workflow.GetLogger(ctx).Info("signal", "signal", n)
				})
			}
			sel.Select(ctx)
		}
	})
}

// options are the activity options (activityOptions).
func (r *flowRun) options(ctx workflow.Context, id string, startToClose time.Duration) workflow.Context {
	return activityOptions(ctx, r.set, id, startToClose)
}

// activityOptions are every workflow's activity options: heartbeats every
// few seconds so a lost worker is noticed in seconds, retries with a short
// backoff, and configuration errors never retried.
func activityOptions(ctx workflow.Context, set Settings, id string, startToClose time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          id,
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    set.HeartbeatTimeout,
		// A cancelled activity is waited for, so the release that follows a
		// cancel finds the replication slot no longer in use.
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        set.MaxAttempts,
			NonRetryableErrorTypes: []string{errTypeConfig},
		},
	})
}

// historyFull says the history is long enough to continue as new.
func (r *flowRun) historyFull(ctx workflow.Context) bool {
	return historyFull(ctx, r.set, r.activities)
}

// historyFull says a workflow that started activities activities in this
// run has a history long enough to continue as new.
func historyFull(ctx workflow.Context, set Settings, activities int) bool {
	info := workflow.GetInfo(ctx)
	// An activity costs about six events (scheduled, started, completed and
	// the workflow task that handles it); the estimate stands in where the
	// history length is unknown (the SDK's test environment).
	n := max(info.GetCurrentHistoryLength(), 6*activities)
	return n >= set.HistoryLimit || info.GetContinueAsNewSuggested()
}

func (r *flowRun) continueAsNew(ctx workflow.Context) error {
	// A cutover update still answering would be lost with this run.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	r.continuing = true
	r.s.fold()
	s := *r.s
	s.Runs++
	workflow.GetLogger(ctx).Info("continuing as new", "runs", s.Runs, "history", workflow.GetInfo(ctx).GetCurrentHistoryLength())
	// The flow keeps its type: a first-type flow stays where every worker
	// can run it, a new-type one where only those that know chunks can.
	return workflow.NewContinueAsNewError(ctx, workflow.GetInfo(ctx).WorkflowType.Name, FlowInput{Options: r.in.Options, Settings: r.in.Settings, State: &s, Restart: r.in.Restart})
}

// copy runs the partitions not yet done, at most Window at once. It returns
// a continue-as-new error when the history grew too long (once the running
// partitions finished), or the failure of a partition.
func (r *flowRun) copy(ctx, actCtx workflow.Context) (next error, err error) {
	s := r.s
	var pending []int
	for i := range s.Parts {
		if s.Parts[i].State != PartDone {
			s.Parts[i].State = PartPending
			pending = append(pending, i)
		}
	}
	tables := map[string]*model.Table{}
	for _, t := range s.Plan.Tables {
		tables[t.Namespace.String()] = t
	}
	bounds := map[string]model.Partition{}
	for _, p := range s.Plan.Partitions {
		bounds[p.ID] = p
	}
	sel := workflow.NewSelector(ctx)
	running := 0
	loading := false // a chunk of the plan is being read
	var failed error
	for {
		full := r.historyFull(ctx)
		// The next chunk is read while the window still has partitions
		// to start, so it stays full.
		if s.Chunks.left() && !loading && len(pending) <= r.set.Window && !s.Paused && !s.Cancelled && failed == nil && !full {
			loading = true
			r.activities++
			k := s.Chunks.Next
			f := workflow.ExecuteActivity(r.options(actCtx, "plan-chunk#"+strconv.Itoa(k), 10*time.Minute), ActivityReadPlanChunk, ReadChunkInput{ID: s.Chunks.ID(k)})
			sel.AddFuture(f, func(f workflow.Future) {
				loading = false
				var parts []model.Partition
				if err := f.Get(ctx, &parts); err != nil {
					if s.Cancelled || failed != nil {
						return
					}
					failed = failure(fmt.Sprintf("read chunk %d of %d of the plan", k+1, s.Chunks.Count), err)
					r.cancelActs()
					return
				}
				s.Chunks.Next++
				for _, p := range parts {
					bounds[p.ID] = p
					s.Plan.Partitions = append(s.Plan.Partitions, p)
					pending = append(pending, len(s.Parts))
					s.Parts = append(s.Parts, PartitionState{ID: p.ID, Table: p.Table.String(), EstimatedRows: p.EstimatedRows, State: PartPending})
				}
			})
		}
		for !s.Paused && !s.Cancelled && failed == nil && !full && running < r.set.Window && len(pending) > 0 {
			i := pending[0]
			pending = pending[1:]
			p := &s.Parts[i]
			p.State = PartRunning
			p.Runs++
			r.activities++
			in := CopyInput{Options: r.in.Options, Table: tables[p.Table], Partition: bounds[p.ID]}
			f := workflow.ExecuteActivity(r.options(actCtx, p.ID+"#"+strconv.Itoa(p.Runs), 24*time.Hour), ActivityCopy, in)
			running++
			sel.AddFuture(f, func(f workflow.Future) {
				running--
				// By index: reading a chunk may have moved s.Parts.
				p := &s.Parts[i]
				var res CopyResult
				if err := f.Get(ctx, &res); err != nil {
					p.State = PartPending
					if s.Cancelled || failed != nil {
						return
					}
					failed = failure("partition "+p.ID, err)
					r.cancelActs()
					return
				}
				p.State = PartDone
				p.Rows, p.Attempts, p.ResumedRows, p.ResumedFrom = res.Rows, res.Attempt, res.ResumedRows, res.ResumedFrom
				p.RowsThisAttempt, p.Worker, p.HeartbeatRows = res.RowsThisAttempt, res.Worker, res.HeartbeatRows
			})
		}
		if running == 0 && !loading {
			switch {
			case s.Cancelled:
				return nil, nil
			case failed != nil:
				_, err := r.fail(failed)
				return nil, err
			case len(pending) == 0 && !s.Chunks.left():
				return nil, nil
			case full:
				return r.continueAsNew(ctx), nil
			case s.Paused:
				s.Phase = PhasePaused
				if err := workflow.Await(ctx, func() bool { return !s.Paused || s.Cancelled }); err != nil {
					return nil, err
				}
				s.Phase = PhaseCopy
				continue
			}
		}
		sel.Select(ctx)
	}
}

// copied tidies a plan in chunks once every partition is copied: the
// finished partitions are folded into their tables' counters and the chunk
// workflows are released (a failure to release them is only logged: they
// hold nothing the flow needs any more).
func (r *flowRun) copied(ctx workflow.Context) {
	s := r.s
	if s.Chunks == nil {
		return
	}
	s.fold()
	if s.Chunks.Count == 0 || s.Chunks.Released {
		return
	}
	r.activities++
	err := workflow.ExecuteActivity(r.options(ctx, "release-plan", 30*time.Minute), ActivityReleasePlan, ReleasePlanInput{Chunks: *s.Chunks}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("the plan's chunk workflows were not all released", "error", err)
		return
	}
	s.Chunks.Released = true
}

// stream runs CDC activities one after the other, each from where the last
// ended, until cutover, cancel or caught up.
func (r *flowRun) stream(ctx, actCtx workflow.Context) (*FlowState, error) {
	s := r.s
	for {
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if s.Cutover {
			if s.Cut == nil { // a flow from before the drain stops at what was read
				return r.done(ctx, true)
			}
			return r.cutover(ctx, actCtx)
		}
		// Before continuing as new, which would wait for the change's
		// handler, and while paused.
		if r.reselecting() {
			r.changeTables(ctx, actCtx)
			continue
		}
		if s.Paused {
			s.Phase = PhasePaused
			if err := workflow.Await(ctx, func() bool { return !s.Paused || s.Cancelled || s.Cutover || r.reselecting() }); err != nil {
				return nil, err
			}
			continue
		}
		if r.historyFull(ctx) {
			return nil, r.continueAsNew(ctx)
		}
		s.Phase = PhaseCDC
		s.CDC.Activities++
		r.activities++
		in := StreamInput{Options: r.in.Options, Tables: s.Plan.Tables, T0: s.Plan.T0, From: s.CDC.Position, For: r.set.CDCChunk, Poll: time.Second}
		var res StreamResult
		err := workflow.ExecuteActivity(r.options(actCtx, "cdc#"+strconv.Itoa(s.Runs)+"."+strconv.Itoa(s.CDC.Activities), r.set.CDCChunk+10*time.Minute), ActivityStream, in).Get(actCtx, &res)
		if s.Cancelled {
			return r.cancelled(ctx)
		}
		if err != nil {
			return r.fail(failure("change data capture", err))
		}
		r.streamed(res)
		if res.CaughtUp {
			s.CDC.CaughtUp = true
			return r.done(ctx, true)
		}
	}
}

// streamed records where a CDC activity ended.
func (r *flowRun) streamed(res StreamResult) {
	s := r.s
	if res.Position != "" {
		s.CDC.Position = res.Position
	}
	s.CDC.Received += res.Received
	s.CDC.Applied += res.Applied
	s.CDC.LagSeconds = res.LagSeconds
	if len(res.Tables) > 0 {
		s.Plan.Tables = res.Tables
	}
	if res.Snapshots != nil {
		s.CDC.Snapshots = res.Snapshots
	}
}

// done ends the flow. After change data capture, the source's resources
// for the flow (a replication slot retains WAL) are released.
func (r *flowRun) done(ctx workflow.Context, release bool) (*FlowState, error) {
	if release {
		if err := r.release(ctx); err != nil {
			return r.fail(err)
		}
	}
	r.s.Phase = PhaseDone
	r.s.Ended = workflow.Now(ctx)
	return r.s, nil
}

func (r *flowRun) release(ctx workflow.Context) error { return r.releaseInput(ctx, nil) }

// releaseInput releases the flow's resources, and the plan's chunk
// workflows when chunks is set.
func (r *flowRun) releaseInput(ctx workflow.Context, chunks *PlanChunks) error {
	err := workflow.ExecuteActivity(r.options(ctx, "release", 10*time.Minute), ActivityRelease, ReleaseInput{Options: r.in.Options, Chunks: chunks}).Get(ctx, nil)
	if err != nil {
		return failure("release the flow's replication slot and checkpoints", err)
	}
	return nil
}

// cancelled ends a flow cancelled by a signal: running activities were
// cancelled; the flow's resources are released; the workflow fails with a
// Cancelled error so that ferry run exits 1.
func (r *flowRun) cancelled(ctx workflow.Context) (*FlowState, error) {
	r.s.Phase = PhaseCancelled
	r.s.Ended = workflow.Now(ctx)
	if r.s.Plan != nil {
		if err := r.releaseInput(ctx, r.s.unreleased()); err != nil {
			workflow.GetLogger(ctx).Warn("release after cancel failed", "error", err)
		}
	}
	return nil, temporal.NewNonRetryableApplicationError("flow "+r.in.Options.Name+" was cancelled", errTypeCancelled, nil)
}

// fail ends the flow with err (endError).
func (r *flowRun) fail(err error) (*FlowState, error) {
	r.s.Phase = PhaseFailed
	r.s.Error = err.Error()
	return nil, endError(err)
}

// endError is the error a workflow fails with for err, keeping a
// configuration error's type so the runner can exit 2.
func endError(err error) error {
	typ := "FlowFailed"
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == errTypeConfig {
		typ = errTypeConfig
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), typ, nil)
}

// reason is an activity failure's own message, without the activity
// error's wrapping (event IDs, identity).
func reason(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	var te *temporal.TimeoutError
	if errors.As(err, &te) {
		return te.Error()
	}
	return err.Error()
}

// wrapReason keeps err's chain (for its type) with a readable message.
type wrapReason struct {
	msg string
	err error
}

func (w wrapReason) Error() string { return w.msg }
func (w wrapReason) Unwrap() error { return w.err }

func failure(prefix string, err error) error {
	return wrapReason{msg: prefix + ": " + reason(err), err: err}
}
