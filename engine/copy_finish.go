package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// A table's end-of-copy work (the destination's deferred primary key and
// indexes, ANALYZE) starts as soon as its last partition is written, while
// the lanes copy the other tables, and the largest tables are copied
// first: their finish, the longest (a key build is one server backend on
// the whole table), then overlaps the copy of the smaller ones instead of
// running after everything with the lanes idle. Measured in
// bench/pg-mixed.sh: the 5 M-row table's key and ANALYZE took 2.8 s after
// the last partition, one core busy.

// largestFirst orders the pending partitions by their table's estimated
// size, largest first, each table's partitions in their own order.
func largestFirst(pending []*partTask) {
	size := map[*tableRun]int64{}
	for _, t := range pending {
		size[t.tr] += max(t.p.EstimatedBytes, 1)
	}
	slices.SortStableFunc(pending, func(a, b *partTask) int {
		switch sa, sb := size[a.tr], size[b.tr]; {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
}

// finisher finishes the tables of a copy as their partitions are written.
type finisher struct {
	e    *Engine
	g    *errgroup.Group
	gctx context.Context
	sem  chan struct{} // --parallel finishes at a time
	mu   sync.Mutex
	left map[*tableRun]int // partitions not yet written
	done map[*tableRun]bool
	seen map[*partTask]bool
}

func (e *Engine) newFinisher(ctx context.Context, pending []*partTask) *finisher {
	g, gctx := errgroup.WithContext(ctx)
	f := &finisher{e: e, g: g, gctx: gctx, sem: make(chan struct{}, max(e.cfg.Parallel, 1)), left: map[*tableRun]int{}, done: map[*tableRun]bool{}, seen: map[*partTask]bool{}}
	for _, t := range pending {
		f.left[t.tr]++
	}
	return f
}

// partitionDone counts a written partition; the table's last starts its
// finish. It does not wait for the finish: the lane goes on copying.
func (f *finisher) partitionDone(t *partTask) {
	if f == nil {
		return
	}
	f.mu.Lock()
	if f.seen[t] {
		f.mu.Unlock()
		return
	}
	f.seen[t] = true
	f.left[t.tr]--
	last := f.left[t.tr] == 0
	f.mu.Unlock()
	if !last {
		return
	}
	tr := t.tr
	f.g.Go(func() error {
		select {
		case f.sem <- struct{}{}:
			defer func() { <-f.sem }()
		case <-f.gctx.Done():
			return nil
		}
		if err := f.e.finishTable(f.gctx, tr); err != nil {
			return err
		}
		f.mu.Lock()
		f.done[tr] = true
		f.mu.Unlock()
		return nil
	})
}

// wait waits for the finishes started and returns the first error.
func (f *finisher) wait() error {
	if f == nil {
		return nil
	}
	return f.g.Wait()
}

// finished are the tables finished during the copy.
func (f *finisher) finished() map[*tableRun]bool {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.done)
}

// finishTables runs the destination's end-of-copy work (deferred indexes,
// ANALYZE, assembling files) for every table but those already finished,
// --parallel tables at a time: index builds are the long part and each
// runs on one server backend.
func (e *Engine) finishTables(ctx context.Context, already map[*tableRun]bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(e.cfg.Parallel, 1))
	for _, tr := range e.tables {
		if already[tr] {
			continue
		}
		g.Go(func() error { return e.finishTable(gctx, tr) })
	}
	return g.Wait()
}

// finishTable runs one table's end-of-copy work and marks it copied.
func (e *Engine) finishTable(ctx context.Context, tr *tableRun) error {
	if f := e.dst.TableFinisher; f != nil {
		start := time.Now()
		err := e.onDestination(ctx, "finish table "+tr.dst.Namespace.String(), func(ctx context.Context) error { return f.FinishTable(ctx, tr.dst) })
		if err != nil {
			return fmt.Errorf("finish table %s: %w", tr.dst.Namespace, err)
		}
		e.log.Debug("table finished", "table", tr.dst.Namespace.String(), "took", time.Since(start).Round(time.Millisecond).String())
	}
	tr.stats.markCopied()
	return nil
}
