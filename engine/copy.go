package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

// partTask is one partition to copy and its progress so far.
type partTask struct {
	p  model.Partition
	tr *tableRun
	cp PartitionProgress // owned by the lane's writer once the task is handed out
}

// laneMsg travels from a lane's reader to its writer: a batch, or the in-band
// barrier that ends a partition (batch == nil).
type laneMsg struct {
	task  *partTask
	batch *model.RowBatch
}

// copy copies every partition not yet done. Each of the --parallel lanes is a
// reader and a writer joined by a bounded channel; a lane copies one
// partition at a time, so a partition's batches are written in order and its
// cursor can be stored in the same transaction as its rows.
func (e *Engine) copy(ctx, stop context.Context) error {
	if done, err := e.ckpt.copyDone(ctx); err != nil {
		return err
	} else if done {
		for _, tr := range e.tables {
			tr.stats.markCopied()
		}
		return nil
	}
	pending, err := e.pendingPartitions(ctx)
	if err != nil {
		return err
	}
	e.log.Info("copy starting", "partitions", len(e.plan.Partitions), "pending", len(pending),
		"skipped", e.progress.SkippedPartitions.Load(), "resumed", e.progress.ResumedPartitions.Load(), "parallel", e.cfg.Parallel)

	if err := e.negotiateRaw(ctx, pending); err != nil {
		return err
	}
	largestFirst(pending)
	fin := e.newFinisher(ctx, pending)
	err = e.withBackoff(ctx, func(ctx context.Context) error {
		writers, err := e.openWriters(ctx, min(e.cfg.Parallel, max(len(pending), 1)))
		if err != nil {
			return err
		}
		return e.copyLanes(ctx, stop, pending, writers, fin)
	})
	if ferr := fin.wait(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if stop.Err() != nil {
		return nil
	}
	if err := e.finishTables(ctx, fin.finished()); err != nil {
		return err
	}
	e.log.Info("copy done", "rows", e.progress.rowsCopied())
	return e.ckpt.markCopyDone(ctx)
}

// pendingPartitions counts every partition of the plan into its table's
// stats and returns those not done yet, each with the progress it resumes
// from.
func (e *Engine) pendingPartitions(ctx context.Context) ([]*partTask, error) {
	progress, err := e.ckpt.partitions(ctx)
	if err != nil {
		return nil, err
	}
	var pending []*partTask
	for _, p := range e.plan.Partitions {
		tr := e.byNS[p.Table]
		if tr == nil {
			return nil, fmt.Errorf("plan: partition %s belongs to unknown table %s", p.ID, p.Table)
		}
		cp := progress[p.ID]
		tr.stats.Partitions.Add(1)
		tr.stats.RowsCopied.Add(cp.Rows)
		if cp.Done {
			tr.stats.PartitionsDone.Add(1)
			e.progress.SkippedPartitions.Add(1)
			continue
		}
		if cp.Cursor != "" {
			e.progress.ResumedPartitions.Add(1)
		}
		pending = append(pending, &partTask{p: p, tr: tr, cp: cp})
	}
	return pending, nil
}

// openWriters opens one destination writer per lane; if one fails, those
// already open are closed.
func (e *Engine) openWriters(ctx context.Context, lanes int) ([]connector.RowWriter, error) {
	writers := make([]connector.RowWriter, 0, lanes)
	for i := 0; i < lanes; i++ {
		var w connector.RowWriter
		err := e.onDestination(ctx, "open writer", func(ctx context.Context) (err error) {
			w, err = e.dst.Destination.OpenWriter(ctx)
			return err
		})
		if err != nil {
			for _, w := range writers {
				w.Close() //nolint:errcheck // already failing; the open error is the one to report
			}
			return nil, fmt.Errorf("open destination writer: %w", err)
		}
		writers = append(writers, w)
	}
	return writers, nil
}

// copyLanes runs one lane per writer over the pending partitions and closes
// the writers. Whatever was confirmed is saved, also after a failure, so a
// rerun resumes as late as possible.
func (e *Engine) copyLanes(ctx, stop context.Context, pending []*partTask, writers []connector.RowWriter, fin *finisher) error {
	cursors := newCursorLog()
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *partTask)
	g.Go(func() error { return handOut(gctx, stop, pending, work) })
	var lanesWG sync.WaitGroup
	for i := range writers {
		lane := make(chan laneMsg, 4)
		lanesWG.Add(1)
		g.Go(func() error { defer close(lane); return e.readLane(gctx, stop, work, lane) })
		g.Go(func() error {
			defer lanesWG.Done()
			w := &retryingWriter{e: e, w: writers[i]}
			err := e.writeLane(gctx, w, lane, cursors, fin)
			if cerr := w.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close destination writer: %w", cerr)
			}
			return err
		})
	}
	g.Go(func() error { return e.flushCursors(gctx, cursors, &lanesWG) })
	err := g.Wait()
	if ferr := cursors.flush(context.WithoutCancel(ctx), e); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// handOut hands the pending partitions to the lanes' readers, one at a
// time, until all are handed out, the copy fails or a stop is asked for.
func handOut(ctx, stop context.Context, pending []*partTask, work chan<- *partTask) error {
	defer close(work)
	for _, t := range pending {
		select {
		case work <- t:
		case <-ctx.Done():
			return nil
		case <-stop.Done():
			return nil
		}
	}
	return nil
}

// flushCursors saves the lanes' confirmed cursors to the local store at most
// once a second until every lane is done; partition ends are saved at once
// by their writer. Both only after the destination confirmed the write.
func (e *Engine) flushCursors(ctx context.Context, cursors *cursorLog, lanesWG *sync.WaitGroup) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lanesDone := make(chan struct{})
	go func() { lanesWG.Wait(); close(lanesDone) }()
	for {
		select {
		case <-t.C:
			if err := cursors.flush(ctx, e); err != nil {
				return err
			}
		case <-lanesDone:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// negotiateRaw decides, per table with pending partitions, whether its rows
// travel undecoded: the source must offer a raw format for it, the
// destination accept that format for its destination table, and no column
// be renamed or mapped on the way. Anything else keeps the decoded path.
func (e *Engine) negotiateRaw(ctx context.Context, pending []*partTask) error {
	if e.src.RawReader == nil || e.dst.RawWriter == nil {
		return nil
	}
	seen := map[*tableRun]bool{}
	for _, task := range pending {
		tr := task.tr
		if seen[tr] {
			continue
		}
		seen[tr] = true
		tr.raw = nil
		if tr.xf != nil || !sameColumnNames(tr.src, tr.dst) {
			continue
		}
		var f *model.RawFormat
		var ok bool
		err := e.onSource(ctx, "raw format of "+tr.src.Namespace.String(), func(ctx context.Context) (err error) {
			f, ok, err = e.src.RawReader.RawFormat(ctx, tr.src)
			return err
		})
		if err != nil {
			return fmt.Errorf("table %s: raw format: %w", tr.src.Namespace, err)
		}
		if !ok {
			continue
		}
		err = e.onDestination(ctx, "raw format of "+tr.dst.Namespace.String(), func(ctx context.Context) (err error) {
			ok, err = e.dst.RawWriter.AcceptsRaw(ctx, tr.dst, f)
			return err
		})
		if err != nil {
			return fmt.Errorf("table %s: raw format: %w", tr.dst.Namespace, err)
		}
		if ok {
			tr.raw = f
		}
		e.log.Debug("copy path", "table", tr.dst.Namespace.String(), "raw", ok)
	}
	return nil
}

func sameColumnNames(a, b *model.Table) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		if a.Columns[i].Name != b.Columns[i].Name {
			return false
		}
	}
	return true
}
