package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ferrydb/ferry/connector"
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
}

type applyAck struct {
	seq      uint64
	writer   int
	position model.Position
	commit   time.Time
	changes  int
	bytes    int64
}

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
// the writers' checkpoints to it. With tables applied by whole row it also
// returns their gate, which knows the end of the last transaction whose
// full-row changes were applied; that is saved before the reset, which
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
	if e.keeper != nil && e.hasFullRow() {
		done, err := e.fullRowDone(ctx, cs, cps, start)
		if err != nil {
			return "", nil, err
		}
		gate = &fullRowGate{cs: cs, done: done}
	}
	if err := e.ckpt.resetWriters(ctx, start, writers); err != nil {
		return "", nil, err
	}
	return start, gate, nil
}

// stream runs CDC: a source goroutine emits change batches; the batcher folds
// them into apply batches and hands each writer its share; the checkpointer
// persists a batch's position once every writer has applied its share, then
// acknowledges it to the source.
func (e *Engine) stream(ctx, stop context.Context) error {
	cs := e.src.(connector.ChangeSource)
	applier := e.dst.(connector.ChangeApplier)
	nw := e.cfg.Writers
	from, gate, err := e.startPosition(ctx, cs, nw)
	if err != nil {
		return err
	}
	e.progress.CDC.setPosition(from, time.Time{})
	var head model.Position
	if e.cfg.Until == "caught-up" {
		var caughtUp bool
		if head, caughtUp, err = e.headPosition(ctx, cs, from); err != nil || caughtUp {
			return err
		}
	}
	e.log.Info("change data capture starting", "from", from, "writers", nw, "until", e.cfg.Until, "head", head)

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

	if lm, ok := cs.(connector.LagMeter); ok {
		g.Go(func() error { return e.measureLag(streamCtx, lm) })
	}

	flight := semaphore.NewWeighted(flightBytes)
	in := make(chan sourceBatch, 64)
	g.Go(func() error {
		defer close(in)
		return e.readChanges(streamCtx, gctx, cs, from, flight, in)
	})
	acks := make(chan applyAck, 2*nw)
	applied := newSignal()
	e.startApplying(gctx, g, in, applier, writers, acks, applied, gate)
	g.Go(func() error {
		return e.checkpointLoop(gctx, cs, nw, acks, head, endStream, applied, flight.Release)
	})
	return g.Wait()
}

// endOnStop ends the source's stream when a stop is asked for, and returns
// once the stream has ended either way.
func (e *Engine) endOnStop(stop, streamCtx context.Context, endStream func()) {
	select {
	case <-stop.Done():
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
		if connector.IsUnavailable(err) {
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
	err := cs.StreamChanges(streamCtx, e.sourceTables(), from, func(c context.Context, b *model.ChangeBatch) error {
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
func (e *Engine) startApplying(ctx context.Context, g *errgroup.Group, in <-chan sourceBatch, applier connector.ChangeApplier, writers []connector.ChangeWriter, acks chan<- applyAck, applied *signal, gate *fullRowGate) {
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
		return e.batch(ctx, in, jobs, applied, gate)
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

// batch folds incoming change batches into apply batches of up to
// --apply-batch changes or applyBatchBytes (or whatever arrived within
// --apply-linger) and sends each writer its share. A schema change first
// drains every writer, then alters the destination table, then goes on.
func (e *Engine) batch(ctx context.Context, in <-chan sourceBatch, jobs []chan applyJob, applied *signal, gate *fullRowGate) error {
	bt := &batcher{e: e, jobs: jobs, applied: applied, gate: gate, f: newFolder(), linger: time.NewTimer(time.Hour)}
	bt.linger.Stop()
	for {
		select {
		case sb, ok := <-in:
			if !ok {
				return bt.flush(ctx)
			}
			if err := bt.take(ctx, sb); err != nil {
				return err
			}
		case <-bt.linger.C:
			bt.lingering = false
			if err := bt.flush(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// batcher is batch's state: the apply batch being folded and the timer
// that flushes it once it has lingered long enough.
type batcher struct {
	e       *Engine
	jobs    []chan applyJob
	applied *signal
	gate    *fullRowGate

	f         *folder
	seq       uint64 // of the last apply batch sent
	pos       model.Position
	commit    time.Time
	bytes     int64 // of the flight budget, held by the batches folded in
	pending   bool
	linger    *time.Timer
	lingering bool
}

// take folds one source batch in, after draining the writers and applying
// its schema changes if it carries any, and flushes the apply batch once
// it is full or arms the linger timer.
func (bt *batcher) take(ctx context.Context, sb sourceBatch) error {
	b := sb.b
	if len(b.Schemas) > 0 {
		if err := bt.flush(ctx); err != nil {
			return err
		}
		if err := bt.applied.wait(ctx, bt.seq); err != nil {
			return err
		}
		if err := bt.e.applySchemas(ctx, b.Schemas); err != nil {
			return err
		}
	}
	bt.bytes += sb.bytes
	if err := bt.fold(b); err != nil {
		return err
	}
	bt.pos = b.Position
	if !b.CommitTime.IsZero() {
		bt.commit = b.CommitTime
	}
	bt.pending = true
	if bt.f.changes >= bt.e.cfg.ApplyBatch || bt.bytes >= applyBatchBytes {
		return bt.flush(ctx)
	}
	if !bt.lingering {
		bt.linger.Reset(bt.e.cfg.ApplyLinger)
		bt.lingering = true
	}
	return nil
}

// fold adds a source batch's changes of the flow's tables to the apply
// batch. Changes of tables applied by whole row wait in the gate, which
// releases them once their transaction is complete.
func (bt *batcher) fold(b *model.ChangeBatch) error {
	for i := range b.Changes {
		c := &b.Changes[i]
		tr := bt.e.byNS[c.Table]
		if tr == nil {
			continue // a table outside the flow
		}
		if bt.gate != nil && tr.fullRow() {
			bt.gate.hold(tr, c)
			continue
		}
		if err := bt.f.add(tr, c); err != nil {
			return fmt.Errorf("change at %s: %w", b.Position, err)
		}
	}
	if bt.gate == nil {
		return nil
	}
	rel, err := bt.gate.release(b)
	if err != nil {
		return fmt.Errorf("change at %s: %w", b.Position, err)
	}
	for _, h := range rel {
		if err := bt.f.add(h.tr, h.c); err != nil {
			return fmt.Errorf("change at %s: %w", b.Position, err)
		}
	}
	return nil
}

// flush sends each writer its share of the pending apply batch (writer 0's
// share counts the whole batch's changes and bytes) and starts a new one.
func (bt *batcher) flush(ctx context.Context) error {
	if !bt.pending {
		return nil
	}
	bt.seq++
	bt.e.progress.CDC.dispatched(bt.seq, bt.commit)
	shares := bt.f.split(len(bt.jobs))
	for i, j := range bt.jobs {
		job := applyJob{seq: bt.seq, batch: shares[i], position: bt.pos, commit: bt.commit}
		if i == 0 {
			job.changes, job.bytes = bt.f.changes, bt.bytes
		}
		select {
		case j <- job:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	bt.f = newFolder()
	bt.bytes = 0
	bt.pending = false
	if bt.lingering {
		bt.linger.Stop()
		bt.lingering = false
	}
	return nil
}

// applySchemas follows schema changes of the source. Only what the
// destination can apply exactly goes through; anything else stops the flow.
func (e *Engine) applySchemas(ctx context.Context, schemas []*model.Table) error {
	for _, to := range schemas {
		tr := e.byNS[to.Namespace]
		if tr == nil {
			continue
		}
		if err := to.Validate(); err != nil {
			return fmt.Errorf("schema change: %w", err)
		}
		if fmt.Sprint(to.PrimaryKey) != fmt.Sprint(tr.src.PrimaryKey) {
			return fmt.Errorf("schema change on %s: primary key changed from %v to %v; ferry cannot follow a key change (re-run the flow with --restart)", to.Namespace, tr.src.PrimaryKey, to.PrimaryKey)
		}
		sc, ok := e.dst.(connector.SchemaChanger)
		if !ok {
			return fmt.Errorf("schema change on %s: the destination cannot apply schema changes", to.Namespace)
		}
		toDst := to.Clone()
		toDst.Namespace = tr.dst.Namespace
		if err := e.onDestination(ctx, "alter table "+tr.dst.Namespace.String(), func(ctx context.Context) error { return sc.AlterTable(ctx, tr.dst, toDst) }); err != nil {
			return fmt.Errorf("schema change on %s: %w", to.Namespace, err)
		}
		e.log.Info("applied schema change", "table", to.Namespace, "columns", len(to.Columns))
		e.warnAddedConversions(ctx, tr.dst, toDst)
		tr.src, tr.dst, tr.keyIdx = to, toDst, to.KeyIndexes()
	}
	return nil
}

func (e *Engine) applyLoop(ctx context.Context, writer int, applier connector.ChangeApplier, w *connector.ChangeWriter, jobs <-chan applyJob, acks chan<- applyAck) error {
	for job := range jobs {
		if e.keeper != nil {
			job.batch.Checkpoint = &model.Checkpoint{Flow: e.name, Key: cdcKey(writer), Value: string(job.position)}
		}
		if len(job.batch.Tables) > 0 || e.keeper != nil {
			start := time.Now()
			if err := e.applyRetrying(ctx, writer, applier, w, job); err != nil {
				return err
			}
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
// is unavailable (connector.IsUnavailable: restarted, cut off), the writer
// keeps its place, closes its applier, waits with exponential backoff,
// reopens it and applies the same share again, for up to --retry-timeout.
// Applying a share twice is harmless (idempotent writes, the checkpoint in
// the same transaction), and later shares of this writer wait behind it, so
// each key's changes stay in order. Any other error fails the flow.
func (e *Engine) applyRetrying(ctx context.Context, writer int, applier connector.ChangeApplier, w *connector.ChangeWriter, job applyJob) error {
	o := e.newOutage(sideDestination)
	for {
		var err error
		if *w == nil {
			*w, err = applier.OpenApplier(ctx)
			if err != nil {
				*w = nil
				err = fmt.Errorf("open destination applier: %w", err)
			}
		}
		if err == nil && o.attempts > 0 {
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
		if connector.IsUnavailable(err) && *w != nil {
			// The connection is gone or suspect: the next attempt opens another.
			(*w).Close() //nolint:errcheck // the connection is already broken
			*w = nil
		}
		if err := o.failed(ctx, err, "keeping the position and retrying", "writer", writer, "position", job.position); err != nil {
			if ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("apply changes up to %s (writer %d): %w", job.position, writer, err)
		}
	}
}

// checkpointLoop persists a batch's position once every writer acknowledged
// it, then acknowledges it to the source and returns the batch's share of
// the flight budget. Writers take batches in order, so batches complete in
// order.
func (e *Engine) checkpointLoop(ctx context.Context, cs connector.ChangeSource, writers int, acks <-chan applyAck, head model.Position, endStream func(), applied *signal, release func(int64)) error {
	count := map[uint64]int{}
	held := map[uint64]int64{}
	next := uint64(1)
	caughtUp := false
	for ack := range acks {
		count[ack.seq]++
		held[ack.seq] += ack.bytes
		if count[ack.seq] < writers {
			continue
		}
		a := ack // every writer's ack of one batch carries the same position
		for count[next] == writers {
			delete(count, next)
			if err := e.ckpt.cdcCheckpointed(ctx, a.position); err != nil {
				return err
			}
			if err := cs.Ack(ctx, a.position); err != nil {
				return fmt.Errorf("acknowledge %s to the source: %w", a.position, err)
			}
			e.progress.CDC.setPosition(a.position, a.commit)
			e.progress.CDC.checkpointed(next)
			applied.advance(next)
			release(held[next])
			delete(held, next)
			if head != "" && !caughtUp {
				if c, err := cs.ComparePositions(a.position, head); err != nil {
					return err
				} else if c >= 0 {
					e.log.Info("caught up", "position", a.position, "head", head)
					caughtUp = true
					endStream()
				}
			}
			next++
		}
	}
	return e.ckpt.flushCDC(ctx)
}

// signal broadcasts the last batch every writer has applied.
type signal struct {
	mu  sync.Mutex
	seq uint64
	ch  chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

func (s *signal) advance(seq uint64) {
	s.mu.Lock()
	s.seq = seq
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

func (s *signal) wait(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		done, ch := s.seq >= seq, s.ch
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sourceTables is the source-side schema of every table in the flow.
func (e *Engine) sourceTables() []*model.Table {
	out := make([]*model.Table, len(e.tables))
	for i, t := range e.tables {
		out[i] = t.src
	}
	return out
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
