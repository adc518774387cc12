package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// errStopped ends a read when a graceful stop was asked for.
var errStopped = errors.New("stopped")

// readLane is a copy lane's reader: it reads the partitions handed out to
// it one at a time, and ends each with its barrier.
func (e *Engine) readLane(ctx, stop context.Context, work <-chan *partTask, lane chan<- laneMsg) error {
	for task := range work {
		if stop.Err() != nil {
			return nil
		}
		task.tr.stats.PartitionsActive.Add(1)
		e.observer().PartitionStarted(task.tr.stats.Table, task.p.ID)
		err := e.readPartition(ctx, stop, task, lane)
		if errors.Is(err, errStopped) || (err != nil && ctx.Err() != nil) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read partition %s of %s: %w", task.p.ID, task.p.Table, err)
		}
		select {
		case lane <- laneMsg{task: task}:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// readPartition reads one partition into the lane. When the source becomes
// unavailable (errs.IsUnavailable: restarted, cut off) it waits with
// exponential backoff and reads again from the cursor of the last batch it
// handed to the lane, for up to --retry-timeout: batches already in the lane
// stay valid, and none is read twice.
func (e *Engine) readPartition(ctx, stop context.Context, task *partTask, lane chan<- laneMsg) error {
	cursor := task.cp.Cursor // the writer owns task.cp from the first batch on
	o := e.newOutage(sideSource)
	for {
		if err := e.waitBackoff(ctx, stop); err != nil {
			return err
		}
		emit := func(b *model.RowBatch) error {
			if stop.Err() != nil {
				return errStopped
			}
			if err := e.waitCopyRate(ctx, stop, b); err != nil {
				return err
			}
			// The source reads the next batch once this returns.
			if err := e.waitBackoff(ctx, stop); err != nil {
				return err
			}
			if task.tr.xf != nil {
				rows, err := task.tr.transformRows(b.Rows)
				if err != nil {
					return err
				}
				b.Rows = rows
			}
			b.Table = task.tr.dst
			b.Partition = task.p.ID
			e.observer().BatchRead(task.tr.stats.Table, int64(b.Len()), b.Bytes)
			select {
			case lane <- laneMsg{task: task, batch: b}:
				cursor = b.Cursor
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// The running flow's --batch-rows, whatever the plan said: a resumed
		// flow or another worker reads with the size it was given.
		p := task.p
		p.BatchRows = e.cfg.BatchRows
		if task.tr.raw != nil && !e.batchRowsSet {
			p.BatchRows = rawBatchRows
		}
		var err error
		if task.tr.raw != nil {
			err = e.src.RawReader.ReadPartitionRaw(ctx, task.tr.src, p, cursor, task.tr.raw, emit)
		} else {
			err = e.src.Source.ReadPartition(ctx, task.tr.src, p, cursor, emit)
		}
		if err == nil {
			o.recovered("reading on", "partition", task.p.ID)
		}
		if err == nil || errors.Is(err, errStopped) || ctx.Err() != nil || !errs.IsUnavailable(err) {
			return err
		}
		// A graceful stop ends the wait too: nothing is pending in the reader.
		waitCtx, cancel := context.WithCancel(ctx)
		stopWait := context.AfterFunc(stop, cancel)
		err = o.failed(waitCtx, err, "reading the partition again from its cursor", "partition", task.p.ID, "cursor", string(cursor))
		stopWait()
		cancel()
		if err != nil && ctx.Err() == nil && stop.Err() != nil {
			return errStopped
		}
		if err != nil {
			return err
		}
	}
}

// waitCopyRate holds a batch just read until --max-rate lets it go on; a
// graceful stop ends the wait (errStopped).
func (e *Engine) waitCopyRate(ctx, stop context.Context, b *model.RowBatch) error {
	if e.copyRate == nil {
		return nil
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(stop, cancel)()
	err := e.copyRate.wait(waitCtx, b.Len(), b.Bytes)
	if err != nil && ctx.Err() == nil && stop.Err() != nil {
		return errStopped
	}
	return err
}

// rawBatchRows is the batch size of a table whose rows travel undecoded
// (PostgreSQL to PostgreSQL) when --batch-rows is not given: its batches
// are bytes, not values (and a source bounds them by size too), and each
// is a destination transaction (COPY and checkpoint) whose fixed cost, at
// the 5000 rows decoded rows use, made such a copy about a sixth slower
// than raw COPY pipes (bench/pg-mixed.sh).
const rawBatchRows = 20000
