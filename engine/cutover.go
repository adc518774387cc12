package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// A cutover ends a flow at the source's position at the moment of the
// request: the stream applies every change up to that position and stops,
// then the finishing steps run, each named and timed in the report. Changes
// the source takes after the request are not carried.

// Cutover step names, in the order they run.
const (
	StepDrain     = "drain"
	StepSequences = "sequences"
)

// CutoverStep is one step a cutover ran and how long it took.
type CutoverStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// Detail says what the step did, when it has more to say.
	Detail string `json:"detail,omitempty"`
}

// CutoverReport is what a cutover did, or is doing while Step is set.
type CutoverReport struct {
	Requested time.Time `json:"requested"`
	// Position is the source's position at the request, which the drain
	// reached; empty for a flow without change data capture.
	Position model.Position `json:"position,omitempty"`
	// LagBytes is how far the applied position was behind Position, in
	// bytes of the source's log, when the source can tell.
	LagBytes *int64 `json:"lag_bytes,omitempty"`
	// Changes counts the changes the drain took from the source.
	Changes int64 `json:"changes_drained"`
	// Step is the step running now, "" once the cutover is done.
	Step  string        `json:"step,omitempty"`
	Steps []CutoverStep `json:"steps"`
	Done  bool          `json:"done"`
}

// Seconds is how long the named step took, and whether it ran.
func (r *CutoverReport) Seconds(step string) (float64, bool) {
	for _, s := range r.Steps {
		if s.Name == step {
			return s.Seconds, true
		}
	}
	return 0, false
}

// finishStep is a step that runs after the drain; detail says what it did.
type finishStep struct {
	name string
	run  func(ctx context.Context) (detail string, err error)
}

// finishSteps are the steps after the drain, in order; each ends in the
// report under its name. A finishing step of the flow (the destination's
// sequences, its schema) is one entry here.
func (e *Engine) finishSteps() []finishStep {
	var steps []finishStep
	if e.src.SequenceReader != nil && e.dst.SequenceWriter != nil {
		steps = append(steps, finishStep{StepSequences, func(ctx context.Context) (string, error) {
			n, err := e.SyncSequences(ctx)
			return fmt.Sprintf("%d sequence(s) set to the source's values", n), err
		}})
	}
	steps = append(steps, e.partitionSteps()...)
	steps = append(steps, e.schemaSteps()...)
	return steps
}

// RequestCutover asks the flow to cut over: Run then drains the stream to
// the source's position at this moment, runs the finishing steps and
// returns, and CutoverReport has the report. A flow whose copy is not done
// is refused (a errs.ConfigError with the copy's progress); a second
// request is harmless. Call it after Prepare, from any goroutine.
func (e *Engine) RequestCutover(ctx context.Context, at time.Time) error {
	if e.plan == nil {
		return errs.BadConfig(fmt.Sprintf("flow %q has no plan yet: its copy has not started", e.name),
			"wait for the copy to finish, then run ferry cutover again")
	}
	if e.mode != flow.ModeCDC {
		done, err := e.ckpt.copyDone(ctx)
		if err != nil {
			return fmt.Errorf("cutover: %w", err)
		}
		if !done {
			return e.copyUnfinished(ctx)
		}
	}
	if pending, all, err := e.pendingResnapshots(ctx); err != nil {
		return fmt.Errorf("cutover: %w", err)
	} else if len(pending) > 0 {
		var what []string
		for _, ns := range pending {
			what = append(what, fmt.Sprintf("%s (%d rows so far)", ns, all[ns].Rows))
		}
		return errs.BadConfig(fmt.Sprintf("flow %q is copying tables again (ferry snapshot): %s; a cutover needs them complete", e.name, strings.Join(what, ", ")),
			"wait for the copies to finish (ferry sync and the dashboard show them), then run ferry cutover again")
	}
	e.cutOnce.Do(func() {
		e.progress.startCutover(at)
		close(e.cutRequested)
	})
	return nil
}

// copyUnfinished is the refusal of a cutover before the copy is done, with
// the copy's progress.
func (e *Engine) copyUnfinished(ctx context.Context) error {
	progress, err := e.ckpt.partitions(ctx)
	if err != nil {
		return fmt.Errorf("cutover: %w", err)
	}
	done := 0
	for _, p := range e.plan.Partitions {
		if progress[p.ID].Done {
			done++
		}
	}
	what := fmt.Sprintf("%d of %d partitions copied", done, len(e.plan.Partitions))
	if done == len(e.plan.Partitions) {
		what += "; the destination tables are still being finished"
	}
	return errs.BadConfig(fmt.Sprintf("flow %q has not finished its copy (%s): a cutover needs every row copied", e.name, what),
		"wait for the copy to finish (ferry sync shows its progress), then run ferry cutover again")
}

// cutoverRequested tells whether RequestCutover accepted a request.
func (e *Engine) cutoverRequested() bool {
	select {
	case <-e.cutRequested:
		return true
	default:
		return false
	}
}

// CutoverReport is the report of the cutover Run finished; false while
// none has.
func (e *Engine) CutoverReport() (CutoverReport, bool) {
	r := e.progress.cutoverReport()
	if r == nil || !r.Done {
		return CutoverReport{}, false
	}
	return *r, true
}

// awaitCutover waits, while the stream runs, for a cutover request; then
// it reads the source's position and makes it the stream's end.
func (e *Engine) awaitCutover(ctx context.Context, cs connector.ChangeSource, until *untilTarget) error {
	select {
	case <-ctx.Done():
		return nil
	case <-e.cutRequested:
	}
	e.progress.setPhase(PhaseCutover)
	e.progress.cutoverStep(StepDrain)
	head, lag, err := e.cutoverPosition(ctx, cs, e.ckpt.cdcReached())
	if ctx.Err() != nil {
		return nil // the stream ended first (a stop): no cutover
	}
	if err != nil {
		return err
	}
	e.progress.cutoverPosition(head, lag, e.progress.CDC.Received.Load())
	e.log.Info("cutover: draining to the source's position at the request", "position", head, "applied", e.ckpt.cdcReached())
	return until.set(head)
}

// cutoverPosition reads the source's position at a cutover request and,
// when the source can tell, how many bytes of its log applied was behind it.
func (e *Engine) cutoverPosition(ctx context.Context, cs connector.ChangeSource, applied model.Position) (model.Position, *int64, error) {
	var head model.Position
	// A marker's position is the head too, and the stream reads the marker
	// at once; a source that cannot write one (a role without the right)
	// gives its head, which an idle stream reaches at its next heartbeat.
	if pm := e.src.PositionMarker; pm != nil {
		var err error
		if head, err = pm.MarkPosition(ctx); err != nil {
			e.log.Info("cutover: no position marker written; the drain of an idle source waits for its next heartbeat", "error", err)
			head = ""
		}
	}
	if head == "" {
		err := e.onSource(ctx, "read the current position", func(ctx context.Context) (err error) {
			head, err = cs.HeadPosition(ctx)
			return err
		})
		if err != nil {
			return "", nil, fmt.Errorf("cutover: read the source's current position: %w", err)
		}
	}
	var lag *int64
	if lm := e.src.LagMeter; lm != nil && applied != "" {
		if n, err := lm.LagBytes(ctx, applied); err == nil {
			lag = &n
		}
	}
	e.progress.CDC.setHead(head)
	return head, lag, nil
}

// finishCutover runs after the drain (or after the copy, for a flow without
// change data capture): the finishing steps, each timed, then the report.
func (e *Engine) finishCutover(ctx context.Context) error {
	e.progress.setPhase(PhaseCutover)
	if e.mode != flow.ModeSnapshot {
		e.progress.cutoverDrained(e.progress.CDC.Received.Load())
	}
	if err := e.runFinishSteps(ctx); err != nil {
		return err
	}
	e.progress.cutoverDone()
	r := e.progress.cutoverReport()
	e.log.Info("cutover done", "position", r.Position, "steps", len(r.Steps))
	e.progress.setPhase(PhaseDone)
	return nil
}

// runFinishSteps runs the finishing steps in order, each timed in the
// report.
func (e *Engine) runFinishSteps(ctx context.Context) error {
	for _, s := range e.finishSteps() {
		e.progress.cutoverStep(s.name)
		began := time.Now()
		detail, err := s.run(ctx)
		if err != nil {
			return fmt.Errorf("cutover: %s: %w", s.name, err)
		}
		e.progress.cutoverStepDone(s.name, time.Since(began), detail)
		e.log.Info("cutover step done", "step", s.name, "seconds", time.Since(began).Seconds(), "detail", detail)
	}
	return nil
}
