package engine

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// CDC bounds the changes it holds by their size as well as their number:
// an apply batch is flushed once its changes hold applyBatchBytes, and the
// changes read but not yet applied hold at most flightBytes, so a stream of
// large values (a 100 MB text) holds one or two at a time, not as many as
// the channels have room for. A batch of the source bigger than flightBytes
// goes alone. Small changes never reach these bounds before --apply-batch.
// Variables so tests can lower them.
var (
	applyBatchBytes int64 = 32 << 20
	flightBytes     int64 = 64 << 20
)

// changeOverhead approximates what a change costs besides its values.
const changeOverhead = 64

// batchBytes is a source batch's share of the flight budget: the memory
// its changes hold, at most the whole budget.
func batchBytes(b *model.ChangeBatch) int64 {
	var n int64
	for i := range b.Changes {
		c := &b.Changes[i]
		n += changeOverhead + c.Row.Size() + c.Key.Size()
	}
	return min(n, flightBytes)
}

// sourceBatch is a source batch on its way to the batcher, holding bytes
// of the flight budget until the apply batch it is folded into is
// checkpointed. (The changes of a table without primary key that wait for
// the end of their transaction are held past that: the gate needs the
// whole transaction, and waiting for budget then could wait forever.)
type sourceBatch struct {
	b     *model.ChangeBatch
	bytes int64
}

// startPosition finds where CDC resumes (checkpoints.cdcStart) and resets
// the writers' checkpoints to it. With tables applied in order (by whole
// row, or with unique constraints besides the key) it also returns their
// gate, which knows the end of the last transaction whose changes of those
// tables were applied; that is saved before the reset, which
// lowers the writers' checkpoints.
func (e *Engine) startPosition(ctx context.Context, cs connector.ChangeSource, writers int) (model.Position, *fullRowGate, error) {
	start, cps, err := e.ckpt.cdcStart(ctx, cs, e.plan.T0)
	if err != nil {
		return "", nil, err
	}
	if start == "" {
		return "", nil, fmt.Errorf("flow %q has no CDC start position (the plan has no T0); run with --restart", e.name)
	}
	var gate *fullRowGate
	if e.dst.CheckpointKeeper != nil {
		uniq, err := e.uniqueDone(ctx, cs, cps, start)
		if err != nil {
			return "", nil, err
		}
		done := start
		if e.hasFullRow() {
			if done, err = e.fullRowDone(ctx, cs, cps, start); err != nil {
				return "", nil, err
			}
		}
		if e.hasOrdered() {
			gate = &fullRowGate{cs: cs, done: done, tables: uniq}
		}
	}
	if err := e.ckpt.resetWriters(ctx, start, writers); err != nil {
		return "", nil, err
	}
	return start, gate, nil
}

// stream runs CDC: a source goroutine emits change batches; the batcher folds
// them into apply batches and hands each writer its share; the checkpointer
// persists a batch's position once every writer has applied its share, then
// acknowledges it to the source. A non-empty drainTo ends the stream once
// the checkpointed position reaches it (a coordinator's cutover).
func (e *Engine) stream(ctx, stop context.Context, drainTo model.Position) error {
	cs := e.src.ChangeSource
	applier := e.dst.ChangeApplier
	nw := e.cfg.Writers
	if err := e.loadMemberships(ctx); err != nil {
		return err
	}
	if err := e.loadSchemas(ctx); err != nil {
		return err
	}
	// A copy left unfinished by an earlier run holds --until caught-up
	// (and a cutover's drain) until it is done.
	if pending, _, err := e.pendingResnapshots(ctx); err != nil {
		return err
	} else if len(pending) > 0 {
		e.snapState.requested()
	}
	if err := e.findUniqueTables(ctx); err != nil {
		return err
	}
	if e.dst.EventWriter != nil {
		nw = 1 // events go in order, on one writer (stream_events.go)
	}
	from, gate, err := e.startPosition(ctx, cs, nw)
	if err != nil {
		return err
	}
	e.openTx.set(false) // a run before this one may have ended inside one
	e.progress.CDC.setPosition(from, time.Time{})
	var head model.Position
	switch {
	case drainTo != "":
		head = drainTo
		if c, err := cs.ComparePositions(from, drainTo); err != nil {
			return fmt.Errorf("compare the start %s with the cutover position %s: %w", from, drainTo, err)
		} else if c >= 0 {
			e.log.Info("already drained to the cutover position", "position", from, "cutover", drainTo)
			return nil
		}
	// A cutover drains to its own position, even past --until caught-up.
	case e.cfg.Until == "caught-up" && !e.cutoverRequested():
		var caughtUp bool
		if head, caughtUp, err = e.headPosition(ctx, cs, from); err != nil || caughtUp {
			return err
		}
	}
	e.log.Info("change data capture starting", "from", from, "writers", nw, "apply_mode", e.applyMode(), "until", e.cfg.Until, "head", head)

	if ew := e.dst.EventWriter; ew != nil {
		return e.streamEvents(ctx, stop, cs, ew, from, head)
	}
	writers, err := e.openAppliers(ctx, applier, nw)
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	// streamCtx ends the source's stream: on a stop, once caught up, or on any
	// failure. Everything already read is still applied and checkpointed.
	streamCtx, endStream := context.WithCancel(gctx)
	defer endStream()
	g.Go(func() error { e.endOnStop(stop, streamCtx, endStream); return nil })

	if lm := e.src.LagMeter; lm != nil {
		g.Go(func() error { return e.measureLag(streamCtx, lm) })
	}
	if rm := e.src.RetentionMeter; rm != nil {
		g.Go(func() error { return e.watchRetention(streamCtx, rm) })
	}
	if every := e.cfg.SyncSequences; every > 0 {
		g.Go(func() error { e.syncSequencesEvery(streamCtx, every); return nil })
	}

	flight := semaphore.NewWeighted(flightBytes)
	in := make(chan sourceBatch, 64)
	g.Go(func() error {
		defer close(in)
		return e.readChanges(streamCtx, gctx, cs, from, flight, in)
	})
	acks := make(chan applyAck, 2*nw)
	applied := newSignal()
	snaps := make(chan snapCmd)
	e.startApplying(gctx, g, from, in, snaps, applier, writers, acks, applied, gate, flight.Release)
	g.Go(func() error { return e.snapshotLoop(streamCtx, cs, snaps, applied) })
	until := newUntilTarget(cs, from, endStream, e.logCaughtUp)
	until.held = e.resnapshotting
	if head != "" {
		if err := until.set(head); err != nil {
			return err
		}
	}
	g.Go(func() error { return e.awaitCutover(streamCtx, cs, until) })
	g.Go(func() error {
		return e.checkpointLoop(gctx, cs, nw, acks, until, applied, flight.Release)
	})
	return g.Wait()
}

// applyMode names how CDC applies changes, for the log.
func (e *Engine) applyMode() string {
	if e.cfg.Transactional() {
		return flow.ApplyTransactional
	}
	return flow.ApplyParallel
}

// endOnStop ends the source's stream when a stop is asked for, and returns
// once the stream has ended either way.
func (e *Engine) endOnStop(stop, streamCtx context.Context, endStream func()) {
	select {
	case <-stop.Done():
		if open := e.openTx.pending(); open != nil {
			e.log.Info("stopping once the source transaction being read in parts ends, so that it is not read again (signal again to abandon it)",
				"position", e.progress.CDC.getPosition())
			select {
			case <-open:
			case <-streamCtx.Done():
				return
			}
		}
		e.log.Info("stopping: applying what was read, then checkpointing")
		endStream()
	case <-streamCtx.Done():
	}
}

// headPosition reads the source's current position, where a stream --until
// caught-up ends, and tells whether from has reached it already.
func (e *Engine) headPosition(ctx context.Context, cs connector.ChangeSource, from model.Position) (model.Position, bool, error) {
	var head model.Position
	err := e.onSource(ctx, "read the current position", func(ctx context.Context) (err error) {
		head, err = cs.HeadPosition(ctx)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("read the source's current position: %w", err)
	}
	e.progress.CDC.setHead(head)
	if c, err := cs.ComparePositions(from, head); err != nil {
		return "", false, err
	} else if c >= 0 {
		e.log.Info("already caught up", "position", from, "head", head)
		return head, true, nil
	}
	return head, false, nil
}

// openAppliers opens one destination applier per writer. A writer whose
// destination is unavailable gets none (nil) and opens it later; on any other
// error those already open are closed.
func (e *Engine) openAppliers(ctx context.Context, applier connector.ChangeApplier, nw int) ([]connector.ChangeWriter, error) {
	writers := make([]connector.ChangeWriter, 0, nw)
	for i := 0; i < nw; i++ {
		w, err := applier.OpenApplier(ctx)
		if errs.IsUnavailable(err) {
			// The destination went away after the copy: the writer opens
			// its applier when its first batch comes, riding out the
			// outage as it does later (up to retry_timeout).
			e.log.Warn("destination unavailable; the writer opens its applier when changes come", "writer", i, "error", err)
			w, err = nil, nil
		}
		if err != nil {
			for _, w := range writers {
				if w != nil {
					w.Close() //nolint:errcheck // already failing
				}
			}
			return nil, fmt.Errorf("open destination applier: %w", err)
		}
		writers = append(writers, w)
	}
	return writers, nil
}

// readChanges streams the source's changes from a position into in, each
// batch holding its share of the flight budget. The stream ending with
// streamCtx (a stop, caught up) is a graceful end; ending with gctx (a
// failure elsewhere) is not.
func (e *Engine) readChanges(streamCtx, gctx context.Context, cs connector.ChangeSource, from model.Position, flight *semaphore.Weighted, in chan<- sourceBatch) error {
	opts := connector.StreamOptions{Flow: e.name, NewTables: e.filter.Match}
	err := cs.StreamChanges(streamCtx, e.sourceTables(), from, opts, func(c context.Context, b *model.ChangeBatch) error {
		n := batchBytes(b)
		if err := flight.Acquire(c, n); err != nil {
			return err
		}
		select {
		case in <- sourceBatch{b: b, bytes: n}:
			return nil
		case <-c.Done():
			flight.Release(n)
			return c.Err()
		}
	})
	if err != nil && streamCtx.Err() != nil && gctx.Err() == nil {
		return nil // a graceful end: stop or caught up
	}
	if err != nil {
		return fmt.Errorf("stream changes: %w", err)
	}
	return nil
}

// startApplying starts, in g, the batcher and one writer per applier. The
// batcher sends every writer its share of each batch; each writer applies
// its shares in order and acknowledges them on acks, which is closed once
// every writer is done.
func (e *Engine) startApplying(ctx context.Context, g *errgroup.Group, from model.Position, in <-chan sourceBatch, snaps <-chan snapCmd, applier connector.ChangeApplier, writers []connector.ChangeWriter, acks chan<- applyAck, applied *signal, gate *fullRowGate, release func(int64)) {
	jobs := make([]chan applyJob, len(writers))
	for i := range jobs {
		jobs[i] = make(chan applyJob, 2)
	}
	g.Go(func() error {
		defer func() {
			for _, j := range jobs {
				close(j)
			}
		}()
		return e.batch(ctx, from, in, snaps, jobs, applied, gate, release)
	})
	var writersWG sync.WaitGroup
	for i := range writers {
		writersWG.Add(1)
		g.Go(func() error {
			defer writersWG.Done()
			err := e.applyLoop(ctx, i, applier, &writers[i], jobs[i], acks)
			if w := writers[i]; w != nil {
				if cerr := w.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("close destination applier: %w", cerr)
				}
			}
			return err
		})
	}
	g.Go(func() error {
		writersWG.Wait()
		close(acks)
		return nil
	})
}

// loadSchemas makes the tables a schema change of an earlier run altered
// the flow's in their shape after it (checkpoints.saveSchema), so the
// stream resumes knowing the table as it is, not as the plan found it.
func (e *Engine) loadSchemas(ctx context.Context) error {
	recorded, err := e.ckpt.schemas(ctx)
	if err != nil {
		return err
	}
	for ns, t := range recorded {
		tr := e.byNS[ns]
		if tr == nil {
			continue
		}
		if err := e.reshape(tr, t); err != nil {
			return err
		}
	}
	if len(recorded) > 0 {
		e.log.Info("resuming with the tables' shapes after earlier schema changes", "tables", len(recorded))
	}
	return nil
}

// sourceTables is the source-side schema of every table in the flow.
func (e *Engine) sourceTables() []*model.Table {
	e.tablesMu.RLock()
	defer e.tablesMu.RUnlock()
	out := make([]*model.Table, len(e.tables))
	for i, t := range e.tables {
		out[i] = t.src
	}
	return out
}

// retentionEvery is how often CDC measures what the source keeps for the
// flow; retentionRewarn is how often a flow that stays near the limit is
// warned again.
var retentionEvery, retentionRewarn = 5 * time.Second, 5 * time.Minute

// watchRetention measures, while changes stream, the log the source keeps
// for the flow against the most it may keep (a PostgreSQL slot's WAL and
// max_slot_wal_keep_size): the dashboard and metrics show it, and a flow
// near the limit is warned with the numbers. Past the limit the source
// drops what the flow needs, which the stream reports as an error; this
// only reports.
func (e *Engine) watchRetention(ctx context.Context, rm connector.RetentionMeter) error {
	t := time.NewTicker(retentionEvery)
	defer t.Stop()
	var warnedAt time.Time
	for {
		r, err := rm.Retention(ctx, e.name)
		if err == nil {
			e.progress.CDC.setRetention(r)
			if r.Near() && time.Since(warnedAt) >= retentionRewarn {
				e.log.Warn(fmt.Sprintf("the source keeps %s of its log for this flow, near its limit of %s: %s more and the source drops what the flow has not read, and the flow must start over; let CDC catch up, or raise the limit",
					humanize.IBytes(uint64(r.Retained)), humanize.IBytes(uint64(r.Limit)), humanize.IBytes(uint64(max(r.Safe, 0)))),
					"retained_bytes", r.Retained, "limit_bytes", r.Limit, "safe_bytes", r.Safe)
				warnedAt = time.Now()
			} else if !r.Near() {
				warnedAt = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// lagEvery is how often CDC measures how far behind the source's head it is.
var lagEvery = time.Second

// measureLag asks the source, every lagEvery while changes stream, how many
// bytes of its log the checkpointed position is behind its head. It only
// reports: a failed measurement is logged once and skipped.
func (e *Engine) measureLag(ctx context.Context, lm connector.LagMeter) error {
	t := time.NewTicker(lagEvery)
	defer t.Stop()
	warned := false
	for {
		if pos := e.progress.CDC.getPosition(); pos != "" {
			n, err := lm.LagBytes(ctx, pos)
			switch {
			case err == nil:
				e.progress.CDC.setLagBytes(n)
			case ctx.Err() == nil && !warned:
				e.log.Warn("cannot measure replication lag in bytes", "error", err)
				warned = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// logCaughtUp says the stream reached the head it was asked to reach, with
// how the changes so far were applied: how many, in how many writers'
// shares, and how long a share took (many small shares is a stream that
// fed its writers one transaction at a time).
func (e *Engine) logCaughtUp(pos, target model.Position) {
	s := e.progress.Snapshot()
	e.log.Info("caught up", "position", pos, "head", target, "changes_applied", s.CDC.Applied,
		"apply_shares", s.ApplyBatches, "apply_share_avg_ms", math.Round(s.ApplyLatencyAvgMS*100)/100)
}
