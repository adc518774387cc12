package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// writeLane is a copy lane's writer: it writes the lane's batches in order
// and notes each cursor once the destination confirmed it; a partition's
// barrier marks the partition done.
func (e *Engine) writeLane(ctx context.Context, w connector.RowWriter, lane <-chan laneMsg, cursors *cursorLog, fin *finisher) error {
	for msg := range lane {
		task := msg.task
		if msg.batch == nil {
			// The partition's end barrier: every batch before it is durable.
			task.cp.Done = true
			cp := e.partCheckpoint(task)
			if err := w.WriteRows(ctx, &model.RowBatch{Table: task.tr.dst, Partition: task.p.ID, Cursor: task.cp.Cursor, Checkpoint: cp}); err != nil {
				return fmt.Errorf("write end of partition %s: %w", task.p.ID, err)
			}
			cursors.set(cp.Key, cp.Value)
			if err := cursors.flush(ctx, e); err != nil {
				return err
			}
			task.tr.stats.PartitionsDone.Add(1)
			task.tr.stats.PartitionsActive.Add(-1)
			e.observer().PartitionDone(task.tr.stats.Table, task.p.ID)
			fin.partitionDone(task)
			continue
		}
		b := msg.batch
		n := int64(b.Len())
		task.cp.Rows += n
		task.cp.Cursor = b.Cursor
		b.Checkpoint = e.partCheckpoint(task)
		start := time.Now()
		if err := w.WriteRows(ctx, b); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("write partition %s to %s: %w", task.p.ID, task.tr.dst.Namespace, err)
		}
		took := time.Since(start)
		e.progress.observeWrite(took)
		e.observer().BatchWritten(task.tr.stats.Table, task.p.ID, n, b.Bytes, took)
		task.tr.stats.RowsCopied.Add(n)
		task.tr.stats.RowsWritten.Add(n)
		task.tr.stats.BytesCopied.Add(b.Bytes)
		cursors.set(b.Checkpoint.Key, b.Checkpoint.Value)
	}
	return nil
}

// retryingWriter is a copy lane's writer that rides out destination
// outages (see writeRetrying).
type retryingWriter struct {
	e *Engine
	w connector.RowWriter // nil between a lost connection and the next open
}

func (r *retryingWriter) WriteRows(ctx context.Context, b *model.RowBatch) error {
	return r.e.writeRetrying(ctx, &r.w, b)
}

func (r *retryingWriter) Close() error {
	if r.w == nil {
		return nil
	}
	return r.w.Close()
}

// writeRetrying writes one batch. When the destination is unavailable
// (errs.IsUnavailable) it closes the writer, waits with backoff, opens
// another and writes the same batch again, for up to --retry-timeout:
// writing a batch twice is harmless (RowWriter's contract: upsert by key,
// the checkpoint in the same transaction), and the lane's later batches wait.
func (e *Engine) writeRetrying(ctx context.Context, w *connector.RowWriter, b *model.RowBatch) error {
	o := e.newOutage(sideDestination)
	for {
		var err error
		if *w == nil {
			if *w, err = e.dst.Destination.OpenWriter(ctx); err != nil {
				*w = nil
				err = fmt.Errorf("open destination writer: %w", err)
			}
		}
		if err == nil {
			if err = (*w).WriteRows(ctx, b); err == nil {
				o.recovered("copying", "partition", b.Partition)
				return nil
			}
		}
		if errs.IsUnavailable(err) && *w != nil {
			(*w).Close() //nolint:errcheck // the connection is already broken
			*w = nil
		}
		if err := o.failed(ctx, err, "keeping the batch and retrying", "partition", b.Partition); err != nil {
			return err
		}
	}
}

func (e *Engine) partCheckpoint(t *partTask) *model.Checkpoint {
	b, err := json.Marshal(t.cp)
	if err != nil {
		panic(err) // unreachable: partCheckpoint always marshals
	}
	return &model.Checkpoint{Flow: e.name, Key: partitionKey(t.p.ID), Value: string(b)}
}

// cursorLog holds the latest confirmed cursor of each running partition
// until it is flushed to the local store (checkpoints.saveLocal).
type cursorLog struct {
	flushMu sync.Mutex // serializes flushes, so a later value is never overwritten by an earlier one
	mu      sync.Mutex
	dirty   map[string]string
}

func newCursorLog() *cursorLog { return &cursorLog{dirty: map[string]string{}} }

func (c *cursorLog) set(key, value string) {
	c.mu.Lock()
	c.dirty[key] = value
	c.mu.Unlock()
}

func (c *cursorLog) flush(ctx context.Context, e *Engine) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	batch := c.dirty
	c.dirty = map[string]string{}
	c.mu.Unlock()
	return e.ckpt.saveLocal(ctx, batch)
}
