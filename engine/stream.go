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
	if e.dst.CheckpointKeeper != nil && e.hasFullRow() {
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
	cs := e.src.ChangeSource
	applier := e.dst.ChangeApplier
	nw := e.cfg.Writers
	from, gate, err := e.startPosition(ctx, cs, nw)
	if err != nil {
		return err
	}
	e.progress.CDC.setPosition(from, time.Time{})
	var head model.Position
	if e.cfg.Until == "caught-up" {
		err = e.onSource(ctx, "read the current position", func(ctx context.Context) (err error) {
			head, err = cs.HeadPosition(ctx)
			return err
		})
		if err != nil {
			return fmt.Errorf("read the source's current position: %w", err)
		}
		e.progress.CDC.setHead(head)
		if c, err := cs.ComparePositions(from, head); err != nil {
			return err
		} else if c >= 0 {
			e.log.Info("already caught up", "position", from, "head", head)
			return nil
		}
	}
	e.log.Info("change data capture starting", "from", from, "writers", nw, "until", e.cfg.Until, "head", head)

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
			return fmt.Errorf("open destination applier: %w", err)
		}
		writers = append(writers, w)
	}

	g, gctx := errgroup.WithContext(ctx)
	// streamCtx ends the source's stream: on a stop, once caught up, or on any
	// failure. Everything already read is still applied and checkpointed.
	streamCtx, endStream := context.WithCancel(gctx)
	defer endStream()
	g.Go(func() error {
		select {
		case <-stop.Done():
			e.log.Info("stopping: applying what was read, then checkpointing")
			endStream()
		case <-streamCtx.Done():
		}
		return nil
	})

	if lm := e.src.LagMeter; lm != nil {
		g.Go(func() error { return e.measureLag(streamCtx, lm) })
	}

	flight := semaphore.NewWeighted(flightBytes)
	in := make(chan sourceBatch, 64)
	g.Go(func() error {
		defer close(in)
		err := cs.StreamChanges(streamCtx, e.sourceTables(), from, connector.StreamOptions{Flow: e.name}, func(c context.Context, b *model.ChangeBatch) error {
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
	})

	jobs := make([]chan applyJob, nw)
	for i := range jobs {
		jobs[i] = make(chan applyJob, 2)
	}
	acks := make(chan applyAck, 2*nw)
	applied := newSignal()
	g.Go(func() error {
		defer func() {
			for _, j := range jobs {
				close(j)
			}
		}()
		return e.batch(gctx, in, jobs, applied, gate)
	})
	var writersWG sync.WaitGroup
	for i := range writers {
		writersWG.Add(1)
		g.Go(func() error {
			defer writersWG.Done()
			err := e.applyLoop(gctx, i, applier, &writers[i], jobs[i], acks)
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
	g.Go(func() error {
		return e.checkpointLoop(gctx, cs, nw, acks, head, endStream, applied, flight.Release)
	})
	return g.Wait()
}

// batch folds incoming change batches into apply batches of up to
// --apply-batch changes or applyBatchBytes (or whatever arrived within
// --apply-linger) and sends each writer its share. A schema change first
// drains every writer, then alters the destination table, then goes on.
func (e *Engine) batch(ctx context.Context, in <-chan sourceBatch, jobs []chan applyJob, applied *signal, gate *fullRowGate) error {
	f := newFolder()
	var seq uint64
	var pos model.Position
	var commit time.Time
	var bytes int64 // of the flight budget, held by the batches folded in
	pending := false
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	lingering := false

	flush := func() error {
		if !pending {
			return nil
		}
		seq++
		e.progress.CDC.dispatched(seq, commit)
		shares := f.split(len(jobs))
		for i, j := range jobs {
			job := applyJob{seq: seq, batch: shares[i], position: pos, commit: commit}
			if i == 0 {
				job.changes, job.bytes = f.changes, bytes
			}
			select {
			case j <- job:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		f = newFolder()
		bytes = 0
		pending = false
		if lingering {
			linger.Stop()
			lingering = false
		}
		return nil
	}

	for {
		select {
		case sb, ok := <-in:
			if !ok {
				return flush()
			}
			b := sb.b
			if len(b.Schemas) > 0 {
				if err := flush(); err != nil {
					return err
				}
				if err := applied.wait(ctx, seq); err != nil {
					return err
				}
				if err := e.applySchemas(ctx, b.Schemas); err != nil {
					return err
				}
			}
			bytes += sb.bytes
			for i := range b.Changes {
				c := &b.Changes[i]
				tr := e.byNS[c.Table]
				if tr == nil {
					continue // a table outside the flow
				}
				if gate != nil && tr.fullRow() {
					gate.hold(tr, c)
					continue
				}
				if err := f.add(tr, c); err != nil {
					return fmt.Errorf("change at %s: %w", b.Position, err)
				}
			}
			if gate != nil {
				rel, err := gate.release(b)
				if err != nil {
					return fmt.Errorf("change at %s: %w", b.Position, err)
				}
				for _, h := range rel {
					if err := f.add(h.tr, h.c); err != nil {
						return fmt.Errorf("change at %s: %w", b.Position, err)
					}
				}
			}
			pos = b.Position
			if !b.CommitTime.IsZero() {
				commit = b.CommitTime
			}
			pending = true
			if f.changes >= e.cfg.ApplyBatch || bytes >= applyBatchBytes {
				if err := flush(); err != nil {
					return err
				}
			} else if !lingering {
				linger.Reset(e.cfg.ApplyLinger)
				lingering = true
			}
		case <-linger.C:
			lingering = false
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
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
		sc := e.dst.SchemaChanger
		if sc == nil {
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
		if e.dst.CheckpointKeeper != nil {
			job.batch.Checkpoint = &model.Checkpoint{Flow: e.name, Key: cdcKey(writer), Value: string(job.position)}
		}
		if len(job.batch.Tables) > 0 || e.dst.CheckpointKeeper != nil {
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
