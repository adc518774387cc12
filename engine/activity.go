package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// The functions in this file let another coordinator (scale-out on Temporal)
// run the same planner, copier and applier one step at a time: one partition
// per call, CDC from a given position, with the plan held by the
// coordinator instead of the local state store. Such an engine may be built
// without a state store: the step takes its start position and returns the
// position it reached, and checkpoint.go decides how they meet the
// destination's checkpoints.

// UsePlan makes p the flow's plan without reading or writing the state
// store: the coordinator made and keeps it. p may hold a subset of the
// flow's tables (the one a partition belongs to).
func (e *Engine) UsePlan(p *model.Plan) error {
	e.plan = p
	if err := e.mapTables(p.Tables); err != nil {
		return err
	}
	return e.refuseFullRowCopyOutsideT0(context.Background(), p.Partitions, false)
}

// StoredPartitionProgress is the partition's checkpoint kept by the
// destination, when the destination keeps checkpoints (ok is false
// otherwise, or when it has none for the partition).
func (e *Engine) StoredPartitionProgress(ctx context.Context, partitionID string) (PartitionProgress, bool, error) {
	if e.dst.CheckpointKeeper == nil {
		return PartitionProgress{}, false, nil
	}
	return e.ckpt.partition(ctx, partitionID)
}

// KeepsCheckpoints reports a destination that stores the flow's
// checkpoints itself (connector.CheckpointKeeper): its checkpoints are then
// where a partition resumes, whatever progress the caller remembers.
func (e *Engine) KeepsCheckpoints() bool { return e.dst.CheckpointKeeper != nil }

// ResumePartition is where a partition resumes given the progress the
// coordinator remembers (its last heartbeat), and which of the two it came
// from (ResumedFrom*): the destination's checkpoint when it keeps
// checkpoints, else remembered (see checkpoint.go).
func (e *Engine) ResumePartition(ctx context.Context, partitionID string, remembered PartitionProgress) (PartitionProgress, string, error) {
	stored, ok, err := e.StoredPartitionProgress(ctx, partitionID)
	if err != nil {
		return PartitionProgress{}, "", err
	}
	from, where := resumePartition(remembered, e.dst.CheckpointKeeper != nil, stored, ok)
	return from, where, nil
}

// CopyPartition copies one partition of the plan (UsePlan, with that
// partition only) exactly as Run copies it: one lane, a reader and a writer
// joined by a bounded channel. It resumes from the destination's checkpoint
// when the destination keeps checkpoints, else from from. report is called
// with the progress after each batch the destination confirmed (from the
// writer goroutine: it must not block for long). A graceful stop (stop done)
// ends reading, lets the batches in flight be written and returns the
// progress reached with a nil error; cancelling ctx aborts. The
// destination's end-of-table work is left to FinishTables.
func (e *Engine) CopyPartition(ctx, stop context.Context, partitionID string, from PartitionProgress, report func(PartitionProgress)) (PartitionProgress, error) {
	if e.plan == nil || len(e.plan.Partitions) != 1 || e.plan.Partitions[0].ID != partitionID {
		return from, fmt.Errorf("copy partition %s: the plan must hold that partition only", partitionID)
	}
	key := partitionKey(partitionID)
	if err := e.ckpt.startPartition(ctx, partitionID, from); err != nil {
		return from, err
	}
	// The writers copy() opens report what they wrote; the destination's
	// end-of-table work (TableFinisher) is hidden from copy().
	orig := e.dst
	e.dst.TableFinisher = nil
	e.dst.Destination = &tapDestination{Destination: orig.Destination, after: func(b *model.RowBatch) {
		if report == nil || b.Checkpoint == nil || b.Checkpoint.Key != key {
			return
		}
		var pp PartitionProgress
		if json.Unmarshal([]byte(b.Checkpoint.Value), &pp) == nil {
			report(pp)
		}
	}}
	err := e.copy(ctx, stop)
	e.dst = orig
	got, perr := e.ckpt.partitionReached(context.WithoutCancel(ctx), partitionID, from)
	if err == nil {
		err = perr
	}
	if err != nil {
		return got, err
	}
	if ctx.Err() != nil {
		return got, ctx.Err()
	}
	return got, nil
}

// tapDestination opens writers that call after once the destination
// confirmed a batch.
type tapDestination struct {
	connector.Destination
	after func(*model.RowBatch)
}

func (t *tapDestination) OpenWriter(ctx context.Context) (connector.RowWriter, error) {
	w, err := t.Destination.OpenWriter(ctx)
	if err != nil {
		return nil, err
	}
	return &tapWriter{RowWriter: w, after: t.after}, nil
}

// tapWriter calls after once the destination confirmed a batch.
type tapWriter struct {
	connector.RowWriter
	after func(*model.RowBatch)
}

func (t *tapWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	if err := t.RowWriter.WriteRows(ctx, b); err != nil {
		return err
	}
	t.after(b)
	return nil
}

// FinishTables runs the destination's end-of-copy work (deferred indexes,
// ANALYZE, assembling files) for every table of the plan.
func (e *Engine) FinishTables(ctx context.Context) error {
	return e.finishTables(ctx, nil)
}

// Stream runs change data capture of the plan's tables (UsePlan) from the
// later of from and the destination's checkpoints, until stop is done (a
// graceful end: what was read is applied and checkpointed) or, with
// until caught-up, the destination caught up. It returns the position
// every writer applied (CDCPosition while it runs), from when it applied
// nothing.
func (e *Engine) Stream(ctx, stop context.Context, from model.Position) (model.Position, error) {
	return e.streamStep(ctx, stop, from, "")
}

// DrainTo runs change data capture as Stream does, ending once every change
// up to the cutover position to is applied and checkpointed. reached is
// false when stop ended it first.
func (e *Engine) DrainTo(ctx, stop context.Context, from, to model.Position) (pos model.Position, reached bool, err error) {
	if to == "" {
		return from, false, fmt.Errorf("drain: no cutover position")
	}
	pos, err = e.streamStep(ctx, stop, from, to)
	return pos, err == nil && stop.Err() == nil, err
}

// CutoverPosition reads the source's current position, where a cutover
// requested now drains to, and how many bytes of the source's log the flow
// was behind it (nil when the source cannot tell). The applied position is
// the destination's checkpoints when it keeps them, else applied.
func (e *Engine) CutoverPosition(ctx context.Context, applied model.Position) (model.Position, *int64, error) {
	cs := e.src.ChangeSource
	if cs == nil {
		return "", nil, fmt.Errorf("cutover: the source has no change data capture")
	}
	at, _, err := e.ckpt.cdcStart(ctx, cs, applied)
	if err != nil {
		return "", nil, fmt.Errorf("cutover: the applied position: %w", err)
	}
	return e.cutoverPosition(ctx, cs, at)
}

// FinishCutover runs the finishing steps of a cutover whose drain the
// coordinator ran (requested at at), and returns them timed.
func (e *Engine) FinishCutover(ctx context.Context, at time.Time) ([]CutoverStep, error) {
	if e.tables == nil {
		return nil, fmt.Errorf("cutover: the flow has no plan (UsePlan first)")
	}
	e.progress.startCutover(at)
	if err := e.runFinishSteps(ctx); err != nil {
		return nil, err
	}
	e.progress.cutoverDone()
	return e.progress.cutoverReport().Steps, nil
}

func (e *Engine) streamStep(ctx, stop context.Context, from, drainTo model.Position) (model.Position, error) {
	if e.plan == nil {
		return from, fmt.Errorf("stream changes: no plan")
	}
	if e.src.ChangeSource == nil {
		return from, fmt.Errorf("stream changes: the source has no change data capture")
	}
	if err := e.ckpt.setCDCStart(ctx, from); err != nil {
		return from, err
	}
	for _, tr := range e.tables {
		tr.stats.markCopied()
	}
	e.progress.setPhase(PhaseCDC)
	if err := e.streamWhole(ctx, stop, drainTo); err != nil {
		e.observer().Error(err)
		return e.CDCPosition(from), err
	}
	if stop.Err() != nil {
		e.progress.setPhase(PhaseStopped)
	} else {
		e.progress.setPhase(PhaseDone)
	}
	return e.CDCPosition(from), nil
}

// CDCPosition is the position every writer of the running (or ended)
// stream applied, or otherwise when it has none yet. Safe to call
// concurrently with Stream.
func (e *Engine) CDCPosition(otherwise model.Position) model.Position {
	if p := e.ckpt.cdcReached(); p != "" {
		return p
	}
	return otherwise
}

// SourceTables is the source-side schema of every table of the plan, as
// change data capture last saw it (added columns included).
func (e *Engine) SourceTables() []*model.Table { return e.sourceTables() }
