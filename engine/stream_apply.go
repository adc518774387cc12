package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/internal/faultpoint"
	"github.com/ferrydb/ferry/model"
)

// applyJob is one writer's share of an apply batch. Every writer receives a
// job for every batch (possibly empty): the job is the in-band barrier that
// tells the checkpointer the writer has passed the batch's position.
type applyJob struct {
	seq      uint64
	batch    *model.ApplyBatch
	position model.Position
	commit   time.Time
	changes  int   // changes folded into the whole batch (counted once, by writer 0)
	bytes    int64 // what the whole batch holds of the flight budget (counted once, by writer 0)
	// once: the share holds changes of tables applied in order, which must
	// not be applied twice (appliedAlready).
	once bool
	// whole: the batch went whole to fullRowWriter (batcher.shares), whose
	// share stores every writer's checkpoint; the others' are empty and
	// write nothing. writers is how many there are.
	whole   bool
	writers int
}

// applyAck tells the checkpointer a writer has applied its share of a batch.
type applyAck struct {
	seq      uint64
	writer   int
	position model.Position
	commit   time.Time
	changes  int
	bytes    int64
}

// applyLoop is one writer: it applies its shares in order and acknowledges
// each, the empty ones too, to the checkpointer.
func (e *Engine) applyLoop(ctx context.Context, writer int, applier connector.ChangeApplier, w *connector.ChangeWriter, jobs <-chan applyJob, acks chan<- applyAck) error {
	// inSpan: the writer's destination transaction holds parts of a
	// source transaction, not committed yet (model.ApplyBatch.Continues).
	inSpan := false
	for job := range jobs {
		if e.dst.CheckpointKeeper != nil && !job.batch.Continues {
			job.batch.Checkpoint = &model.Checkpoint{Flow: e.name, Key: cdcKey(writer), Value: string(job.position)}
			if job.whole && writer == fullRowWriter {
				for k := 0; k < job.writers; k++ {
					if k != writer {
						job.batch.More = append(job.batch.More, model.Checkpoint{Flow: e.name, Key: cdcKey(k), Value: string(job.position)})
					}
				}
			}
		}
		if (len(job.batch.Tables) > 0 || e.dst.CheckpointKeeper != nil || inSpan) && !(job.whole && writer != fullRowWriter) {
			start := time.Now()
			if err := e.applyRetrying(ctx, writer, applier, w, job, inSpan); err != nil {
				return err
			}
			if job.batch.Continues && !inSpan {
				faultpoint.Hold(ctx, faultpoint.SpanPartApplied, e.log)
			}
			inSpan = job.batch.Continues
			took := time.Since(start)
			e.progress.observeApply(took)
			e.observer().ChangesApplied(job.batch.Len(), took)
		}
		e.progress.CDC.Applied.Add(int64(job.batch.Len()))
		e.progress.CDC.Received.Add(int64(job.changes))
		select {
		case acks <- applyAck{seq: job.seq, writer: writer, position: job.position, commit: job.commit, changes: job.changes, bytes: job.bytes}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// applyRetrying applies one writer's share of a batch. When the destination
// is unavailable (errs.IsUnavailable: restarted, cut off), the writer
// keeps its place, closes its applier, waits with exponential backoff,
// reopens it and applies the same share again, for up to --retry-timeout.
// Applying a share twice is harmless (idempotent writes, the checkpoint in
// the same transaction), and later shares of this writer wait behind it, so
// each key's changes stay in order. Any other error fails the flow. inSpan:
// the writer's open destination transaction holds earlier parts of a
// source transaction; an outage then lost them with it, so the share is
// not retried alone: the stream is run again from the last checkpoint
// (spanBroken, streamWhole), which replays the source transaction whole.
func (e *Engine) applyRetrying(ctx context.Context, writer int, applier connector.ChangeApplier, w *connector.ChangeWriter, job applyJob, inSpan bool) error {
	o := e.newOutage(sideDestination)
	partitioned := false
	for {
		var err error
		if *w == nil {
			*w, err = applier.OpenApplier(ctx)
			if err != nil {
				*w = nil
				err = fmt.Errorf("open destination applier: %w", err)
			}
		}
		if err == nil && o.attempts > 0 && !job.batch.Continues {
			// The failed attempt may have committed: whole-row changes
			// must not be applied twice.
			var done bool
			if done, err = e.appliedAlready(ctx, writer, job); err == nil && done {
				return nil
			}
		}
		if err == nil {
			if err = (*w).ApplyChanges(ctx, job.batch); err == nil {
				o.recovered("applying changes", "writer", writer, "position", job.position)
				return nil
			}
		}
		if errors.Is(err, connector.ErrNoPartition) && !partitioned {
			// The source gained a partition while the flow ran.
			partitioned = true
			if e.partitionsForChange(ctx, writer, job.position) {
				continue
			}
		}
		if errs.IsUnavailable(err) && *w != nil {
			// The connection is gone or suspect: the next attempt opens another.
			(*w).Close() //nolint:errcheck // the connection is already broken
			*w = nil
		}
		if inSpan && errs.IsUnavailable(err) && ctx.Err() == nil {
			return &spanBroken{err: err, writer: writer, position: job.position}
		}
		if err := o.failed(ctx, err, "keeping the position and retrying", "writer", writer, "position", job.position); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("apply changes up to %s (writer %d): %w", job.position, writer, err)
		}
	}
}
