package scaleout

import (
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydb/ferry/engine"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/state"
)

// A cutover in scale-out mode has the meaning of ferry cutover: on the
// request, an activity reads the source's position; the running CDC
// activity stops, a drain activity applies every change up to that
// position, a finishing activity runs the engine's finishing steps
// (sequences), then the flow is released and ends. The report is in the
// workflow's state (FlowState.Cut).

// versionCutoverDrain marks flows whose cutover drains to the source's
// position at the request. Histories from before it stop at what was
// already read, as they did.
const versionCutoverDrain = "cutover-drain"

// StepFinish is the cutover's step while the finishing activity runs; the
// report then names the steps it ran.
const StepFinish = "finish"

// StepReverse is the cutover's step while the reverse flow's start is
// recorded (--reverse).
const StepReverse = "reverse"

// validateCutoverRequest refuses, before anything is recorded, a cutover
// the flow cannot take, and a --reverse one whose way back it cannot
// prepare (the destination's own check runs in the handler, on a worker).
func (r *flowRun) validateCutoverRequest(ctx workflow.Context, req CutoverRequest) error {
	if err := r.validateCutover(ctx); err != nil || !req.Reverse {
		return err
	}
	s := r.s
	switch {
	case len(r.in.Options.Rename) > 0:
		return temporal.NewApplicationError(fmt.Sprintf("flow %q renames tables: --reverse does not support a flow with --rename (the reverse flow would need the renames inverted)", r.in.Options.Name), errTypeConfig)
	case r.in.Options.Transforms():
		return temporal.NewApplicationError(fmt.Sprintf("flow %q transforms rows (--exclude, --rename-column, --mask, --filter, --compute): --reverse would write masked or partial rows into the old database", r.in.Options.Name), errTypeConfig)
	case s.Mode == flow.ModeSnapshot:
		return temporal.NewApplicationError(fmt.Sprintf("flow %q has no change data capture (--mode snapshot): ferry could not tell whether the source is written after the cutover", r.in.Options.Name), errTypeConfig)
	case s.Cut != nil && s.Reverse == nil:
		return temporal.NewApplicationError(fmt.Sprintf("flow %q is already cutting over without --reverse", r.in.Options.Name), errTypeConfig)
	}
	return nil
}

// validateCutover refuses a cutover the flow cannot take now: without a
// finished copy, the destination lacks rows.
func (r *flowRun) validateCutover(workflow.Context) error {
	s := r.s
	switch {
	case s.Cancelled || s.Phase == PhaseCancelled || s.Phase == PhaseFailed || s.Phase == PhaseDone:
		return temporal.NewApplicationError(fmt.Sprintf("flow %q has ended (%s): there is nothing to cut over", r.in.Options.Name, s.Phase), errTypeConfig)
	case s.Plan == nil:
		return temporal.NewApplicationError(fmt.Sprintf("flow %q has no plan yet: its copy has not started", r.in.Options.Name), errTypeConfig)
	case s.Mode != flow.ModeCDC && !s.TablesFinished:
		done, total := s.partsDone()
		what := fmt.Sprintf("%d of %d partitions copied", done, total)
		if done == total {
			what += "; the destination tables are still being finished"
		}
		return temporal.NewApplicationError(fmt.Sprintf("flow %q has not finished its copy (%s): a cutover needs every row copied", r.in.Options.Name, what), errTypeConfig)
	}
	return nil
}

// onCutover handles UpdateCutover: it records the request and answers
// with the position the flow drains to. A second request answers with the
// first one's position.
func (r *flowRun) onCutover(ctx workflow.Context, req CutoverRequest) (CutoverAnswer, error) {
	if req.Reverse && r.s.Cut == nil && r.s.Reverse == nil {
		// Checked before anything is drained: a refusal leaves the flow
		// streaming.
		if err := r.checkReverse(ctx); err != nil {
			return CutoverAnswer{}, err
		}
		if r.s.Cut != nil && r.s.Reverse == nil {
			return CutoverAnswer{}, temporal.NewApplicationError(fmt.Sprintf("flow %q started cutting over without --reverse meanwhile", r.in.Options.Name), errTypeConfig)
		}
		r.s.Reverse = &state.ReverseStart{Forward: r.in.Options.Name, Reverse: ReverseName(r.in.Options.Name)}
	}
	already := r.s.Cut != nil
	r.requestCutover(ctx)
	s := r.s
	if s.Cut == nil {
		return CutoverAnswer{Undrained: true}, nil
	}
	if err := workflow.Await(ctx, func() bool { return s.Cut.Position != "" || r.cutErr != nil || s.Cancelled }); err != nil {
		return CutoverAnswer{}, err
	}
	if r.cutErr != nil {
		return CutoverAnswer{}, r.cutErr
	}
	if s.Cut.Position == "" {
		return CutoverAnswer{}, temporal.NewApplicationError("the flow was cancelled before its cutover position was read", errTypeCancelled)
	}
	return CutoverAnswer{CutoverPosition: CutoverPosition{Position: s.Cut.Position, LagBytes: s.Cut.LagBytes}, Already: already}, nil
}

// requestCutover records a cutover request (from the update or the
// signal) and starts reading the source's position. A second request,
// or one before the copy finished (only a signal gets this far), changes
// nothing.
func (r *flowRun) requestCutover(ctx workflow.Context) {
	s := r.s
	if s.Cut != nil || s.Cancelled {
		return
	}
	if workflow.GetVersion(ctx, versionCutoverDrain, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		s.Cutover = true
		return
	}
	if r.validateCutover(ctx) != nil {
		workflow.GetLogger(ctx).Warn("cutover signal ignored: the flow cannot cut over now (ferry flow cutover says why)")
		return
	}
	s.Cut = &engine.CutoverReport{Requested: workflow.Now(ctx), Step: engine.StepDrain}
	s.Cutover = true // the running CDC activity stops; the drain takes over
	s.Phase = PhaseCutover
	r.readCutoverPosition(ctx)
}

// readCutoverPosition reads the source's position in an activity of its
// own, so the position is the one at the request, not after the running
// CDC activity stopped.
func (r *flowRun) readCutoverPosition(ctx workflow.Context) {
	s := r.s
	r.reading, r.cutErr = true, nil
	in := CutoverPositionInput{Options: r.in.Options, Tables: s.Plan.Tables, T0: s.Plan.T0, Applied: s.CDC.Position}
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { r.reading = false }()
		var res CutoverPosition
		err := workflow.ExecuteActivity(r.options(r.actCtx, "cutover-position#"+strconv.Itoa(s.Runs), 10*time.Minute), ActivityCutoverPosition, in).Get(ctx, &res)
		if err != nil {
			r.cutErr = failure("cutover: read the source's position", err)
			return
		}
		s.Cut.Position, s.Cut.LagBytes = res.Position, res.LagBytes
	})
}

// cutover drains to the cutover's position, runs the finishing steps and
// ends the flow. It picks up where a run that continued as new left it.
func (r *flowRun) cutover(ctx, actCtx workflow.Context) (*FlowState, error) {
	s := r.s
	s.Phase = PhaseCutover
	if s.Cut.Position == "" && !r.reading {
		r.readCutoverPosition(ctx) // the run that took the request continued as new first
	}
	if err := workflow.Await(ctx, func() bool { return s.Cut.Position != "" || r.cutErr != nil || s.Cancelled }); err != nil {
		return nil, err
	}
	if s.Cancelled {
		return r.cancelled(ctx)
	}
	if r.cutErr != nil {
		return r.fail(r.cutErr)
	}
	if _, drained := s.Cut.Seconds(engine.StepDrain); !drained {
		for {
			if r.historyFull(ctx) {
				return nil, r.continueAsNew(ctx)
			}
			s.CDC.Activities++
			r.activities++
			in := StreamInput{Options: r.in.Options, Tables: s.Plan.Tables, T0: s.Plan.T0, From: s.CDC.Position,
				For: r.set.CDCChunk, Poll: time.Second, DrainTo: s.Cut.Position}
			var res StreamResult
			err := workflow.ExecuteActivity(r.options(actCtx, "drain#"+strconv.Itoa(s.Runs)+"."+strconv.Itoa(s.CDC.Activities), r.set.CDCChunk+10*time.Minute), ActivityStream, in).Get(actCtx, &res)
			if s.Cancelled {
				return r.cancelled(ctx)
			}
			if err != nil {
				return r.fail(failure("cutover: drain to "+string(s.Cut.Position), err))
			}
			r.streamed(res)
			s.Cut.Changes += res.Received
			if res.Drained {
				break
			}
		}
		s.Cut.Steps = append(s.Cut.Steps, engine.CutoverStep{Name: engine.StepDrain, Seconds: workflow.Now(ctx).Sub(s.Cut.Requested).Seconds(),
			Detail: fmt.Sprintf("%d changes to %s", s.Cut.Changes, s.Cut.Position)})
	}
	s.Cut.Step = StepFinish
	var steps []engine.CutoverStep
	err := workflow.ExecuteActivity(r.options(actCtx, "finish-cutover#"+strconv.Itoa(s.Runs), time.Hour), ActivityFinishCutover,
		FinishCutoverInput{Options: r.in.Options, Tables: s.Plan.Tables, Requested: s.Cut.Requested}).Get(actCtx, &steps)
	if s.Cancelled {
		return r.cancelled(ctx)
	}
	if err != nil {
		return r.fail(failure("cutover: finish", err))
	}
	s.Cut.Steps = append(s.Cut.Steps, steps...)
	if s.Reverse != nil && s.Reverse.Start == "" {
		s.Cut.Step = StepReverse
		began := workflow.Now(ctx)
		if err := r.startReverse(ctx, actCtx); err != nil {
			if s.Cancelled {
				return r.cancelled(ctx)
			}
			return r.fail(err)
		}
		s.Cut.Steps = append(s.Cut.Steps, engine.CutoverStep{Name: StepReverse, Seconds: workflow.Now(ctx).Sub(began).Seconds(),
			Detail: fmt.Sprintf("flow %s starts at %s at the destination", s.Reverse.Reverse, s.Reverse.Start)})
	}
	s.Cut.Step, s.Cut.Done = "", true
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return nil, err
	}
	// With --reverse the forward flow keeps its slot at the source: the
	// reverse flow reads it once to check nothing was written there since.
	return r.done(ctx, s.Reverse == nil)
}
