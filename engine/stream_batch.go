package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// batch folds incoming change batches into apply batches of up to
// --apply-batch changes or applyBatchBytes (or whatever arrived within
// --apply-linger) and sends each writer its share. A schema change first
// drains every writer, then alters the destination table, then goes on.
func (e *Engine) batch(ctx context.Context, from model.Position, in <-chan sourceBatch, snaps <-chan snapCmd, jobs []chan applyJob, applied *signal, gate *fullRowGate, release func(int64)) error {
	// pos starts at the stream's start: a truncate in the first batch
	// sends what came before it at a position every writer may keep.
	bt := &batcher{e: e, in: in, pos: from, jobs: jobs, applied: applied, gate: gate, f: newFolder(), linger: time.NewTimer(time.Hour),
		tx: e.cfg.Transactional(), span: e.cfg.Transactional() && e.dst.Abilities.SpanApply, release: release}
	bt.linger.Stop()
	for {
		// While a batch lingers, the writers' next progress may leave them
		// all idle: the batch goes then instead of at the linger's end.
		var idle <-chan struct{}
		if bt.lingering && !bt.open {
			idle = bt.applied.changed()
		}
		select {
		case <-idle:
			if bt.lingering && !bt.open && len(in) == 0 && bt.applied.reached(bt.seq) && bt.ready() {
				bt.linger.Stop()
				bt.lingering = false
				if err := bt.flush(ctx); err != nil {
					return err
				}
			}
		case c := <-snaps:
			if err := bt.command(ctx, c); err != nil {
				return err
			}
		case sb, ok := <-in:
			if !ok {
				if bt.open {
					// Transactional: the stream ended inside a transaction.
					// Its first parts are dropped, not applied (a reader
					// would see half of it); the checkpoint is before it, so
					// the next run reads it whole.
					bt.e.log.Info("stream ended inside a source transaction; its changes are applied whole by the next run", "position", bt.pos)
					return nil
				}
				return bt.flush(ctx)
			}
			if err := bt.take(ctx, sb); err != nil {
				return err
			}
		case <-bt.linger.C:
			bt.lingering = false
			if bt.open {
				continue // transactional: the batch ends with its transaction
			}
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
	in      <-chan sourceBatch
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
	// tx: --apply-mode transactional, where an apply batch is sent only at
	// the end of a source transaction. open: the last source batch folded
	// ended inside one (model.ChangeBatch.Partial), whose parts so far
	// are all the apply batch holds.
	tx, open bool
	// span: tx with a destination that applies a source transaction in
	// parts inside one destination transaction (connector SpanApply):
	// each part is sent on as soon as it is folded, holding its flight
	// budget until applied, so memory holds a part, not the transaction.
	// part: the flush under way sends such a part (model.ApplyBatch.Continues).
	span, part bool
	// parts counts the parts of the open transaction sent so far.
	parts int
	// release returns bytes to the flight budget (tx's open transactions).
	release func(int64)
	// rec is the chunk of an incremental snapshot being recorded
	// (snapshot.go).
	rec *recording
	// wholeUntil is the last apply batch sent whole to one writer
	// (shares).
	wholeUntil uint64
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
		for _, ch := range b.Schemas {
			if err := bt.schema(ctx, ch); err != nil {
				return err
			}
			if bt.rec != nil && bt.rec.tr.src.Namespace == ch.Table.Namespace {
				bt.rec.void = true
			}
		}
	}
	if bt.tx && b.Partial {
		if !bt.open {
			// A huge transaction begins: send the whole transactions before
			// it, so the apply batch holds only its parts from here on.
			if err := bt.flush(ctx); err != nil {
				return err
			}
		}
		if bt.span {
			bt.bytes += sb.bytes // a part is applied before the next comes
		} else {
			// Its parts wait for its end, however many: holding their
			// flight budget would stop the stream before that end came.
			bt.release(sb.bytes)
		}
	} else {
		bt.bytes += sb.bytes
	}
	bt.open = bt.tx && b.Partial
	bt.e.openTx.set(bt.open)
	if err := bt.fold(ctx, b); err != nil {
		return err
	}
	bt.pos = b.Position
	if !b.CommitTime.IsZero() {
		bt.commit = b.CommitTime
	}
	bt.pending = true
	if err := bt.reached(ctx, b.Position); err != nil {
		return err
	}
	if bt.open {
		if bt.span {
			return bt.sendPart(ctx)
		}
		return nil // transactional: the batch ends with its transaction
	}
	if bt.f.changes >= bt.e.cfg.ApplyBatch || bt.bytes >= applyBatchBytes {
		return bt.flush(ctx)
	}
	// Nothing more queued and every writer idle: waiting for more would
	// only delay these changes (the linger cost 50 ms of lag at a steady
	// load, bench/pg-cdc.sh). Under load the writers are busy and the
	// batch grows while they work, up to the linger.
	if len(bt.in) == 0 && bt.applied.reached(bt.seq) && bt.ready() {
		return bt.flush(ctx)
	}
	if !bt.lingering {
		bt.linger.Reset(bt.e.cfg.ApplyLinger)
		bt.lingering = true
	}
	return nil
}

// Behind the source by more than backlogAge (its changes committed
// earlier), an apply batch waits for backlogShare changes a writer or the
// linger before it goes to idle writers.
const (
	backlogAge   = 2 * time.Second
	backlogShare = 250
)

// ready says whether the apply batch may go to idle writers before the
// linger ends. A live stream's batch goes at once: its lag is what
// matters. A backlog's does not: the source hands it over faster than the
// writers apply it, and whenever they catch up for a moment a batch of a
// few transactions would go as shares of a dozen changes each, a
// destination round trip per share (bench/pg-cdc.sh's TPC-B drain: 16
// changes a share, the apply 35 % of ferry's CPU). Waiting for a share
// worth a round trip costs a backlog nothing, and hot rows fold. The age
// is the source's commit time against this machine's clock: a source
// clock behind by more than backlogAge delays a live batch by the linger
// at most.
func (bt *batcher) ready() bool {
	if bt.commit.IsZero() || time.Since(bt.commit) < backlogAge {
		return true
	}
	return bt.f.changes >= backlogShare*len(bt.jobs)
}

// schema follows one schema change of the source: a table created or
// dropped (stream_tables.go), or a table's new shape.
func (bt *batcher) schema(ctx context.Context, ch model.SchemaChange) error {
	switch {
	case ch.Created:
		tr, err := bt.e.tableCreated(ctx, ch.Table)
		if err != nil || tr == nil {
			return err
		}
		return bt.e.markUnique(ctx, tr, &bt.gate, bt.pos)
	case ch.Dropped:
		_, err := bt.e.tableDropped(ctx, ch.Table.Namespace)
		return err
	}
	return bt.e.applySchemas(ctx, []model.SchemaChange{ch})
}

// fold adds a source batch's changes of the flow's tables to the apply
// batch. Changes of tables applied in order wait in the gate, which
// releases them once their transaction is complete.
func (bt *batcher) fold(ctx context.Context, b *model.ChangeBatch) error {
	for i := range b.Changes {
		c := &b.Changes[i]
		tr := bt.e.byNS[c.Table]
		if tr == nil {
			continue // a table outside the flow
		}
		if keep, err := tr.transformChange(c); err != nil || !keep {
			if err != nil {
				return fmt.Errorf("change at %s: %w", b.Position, err)
			}
			continue // the table's filter drops it
		}
		if err := bt.rec.record(tr, c); err != nil {
			return fmt.Errorf("change at %s: %w", b.Position, err)
		}
		if bt.gate != nil && tr.ordered() {
			bt.gate.hold(tr, c)
			continue
		}
		if err := bt.add(ctx, tr, c); err != nil {
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
		if err := bt.add(ctx, h.tr, h.c); err != nil {
			return fmt.Errorf("change at %s: %w", b.Position, err)
		}
	}
	return nil
}

// add folds one change in; a truncate is applied at once, after what
// came before it.
func (bt *batcher) add(ctx context.Context, tr *tableRun, c *model.Change) error {
	if c.Op == model.OpTruncate {
		return bt.truncate(ctx, tr)
	}
	bt.pending = true
	return bt.f.add(tr, c)
}

// truncate empties a flow table at the destination in stream order: every
// change folded before it is applied first. Replayed after a crash it is
// harmless: a table with a key gets every later change again (the stream
// resumes at the lowest writer checkpoint), and a table applied in order
// gets its truncate through the gate like its other changes, once.
func (bt *batcher) truncate(ctx context.Context, tr *tableRun) error {
	if bt.e.cfg.DDL == flow.DDLStop {
		return errs.BadConfig(fmt.Sprintf("table %s was truncated at the source and the flow runs with --ddl stop, so it stops before applying anything after the truncate", tr.src.Namespace),
			"empty the destination table yourself and run again with --ddl apply, which follows the truncate (applying it again is harmless)")
	}
	em := bt.e.dst.Emptier
	if em == nil {
		return fmt.Errorf("table %s was truncated at the source, and the destination cannot empty a table; empty it by hand and restart the flow (ferry sync --restart)", tr.src.Namespace)
	}
	if err := bt.flush(ctx); err != nil {
		return err
	}
	if err := bt.applied.wait(ctx, bt.seq); err != nil {
		return err
	}
	if err := bt.e.onDestination(ctx, "truncate "+tr.dst.Namespace.String(), func(ctx context.Context) error {
		return em.EmptyTables(ctx, []*model.Table{tr.dst})
	}); err != nil {
		return fmt.Errorf("truncate %s: %w", tr.dst.Namespace, err)
	}
	bt.e.log.Info("applied truncate", "table", tr.src.Namespace)
	bt.e.progress.CDC.schemaChanged(tr.src.Namespace.String(), "truncated")
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
	bt.e.progress.CDC.held(bt.f.changes)
	if !bt.part && bt.parts > 0 {
		bt.e.log.Info("a source transaction went to the destination in parts of one destination transaction", "parts", bt.parts+1, "position", bt.pos, "held_peak", bt.e.progress.CDC.HeldPeak.Load())
		bt.parts = 0
	}
	shares, whole, err := bt.shares(ctx)
	if err != nil {
		return err
	}
	for i, j := range bt.jobs {
		shares[i].Continues = bt.part
		job := applyJob{seq: bt.seq, batch: shares[i], position: bt.pos, commit: bt.commit, whole: whole, writers: len(bt.jobs)}
		if i == 0 {
			job.changes, job.bytes = bt.f.changes, bt.bytes
		}
		if i == fullRowWriter {
			job.once = bt.f.hasOrdered()
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

// wholeMax is the most changes an apply batch may hold to go whole to one
// writer (batcher.shares).
const wholeMax = 64

// shares splits the apply batch being sent among the writers. A small one
// (a live stream's few transactions) goes whole to fullRowWriter when no
// other writer can still hold an earlier change of its keys: every writer
// has applied every earlier batch, or only such whole batches are in
// flight, all on that writer, which applies them in order. The other
// writers get empty shares and write nothing: the whole share stores
// their checkpoints with its own (applyLoop). Split by key, a lone
// transaction of five rows took four destination transactions on four
// backends at once, each a wake-up on a machine the source may share
// (bench/pg-cdc.sh, session 22, alternating: the p99 lag of a flushed
// burst 1.041 -> 1.035 the subscriber's, medians of five runs each; with
// synchronous commits at 300 a second no change measured). A larger
// batch goes split by key, after any whole batches in flight are applied.
func (bt *batcher) shares(ctx context.Context) (shares []*model.ApplyBatch, whole bool, err error) {
	n := len(bt.jobs)
	if n > 1 && !bt.tx {
		wholeInFlight := !bt.applied.reached(bt.wholeUntil)
		if bt.f.changes <= wholeMax && (wholeInFlight || bt.applied.reached(bt.seq-1)) {
			bt.wholeUntil = bt.seq
			shares = make([]*model.ApplyBatch, n)
			for i := range shares {
				shares[i] = &model.ApplyBatch{}
			}
			shares[fullRowWriter] = bt.f.split(1)[0]
			return shares, true, nil
		}
		if wholeInFlight {
			if err := bt.applied.wait(ctx, bt.wholeUntil); err != nil {
				return nil, false, err
			}
		}
	}
	return bt.f.split(n), false, nil
}

// applySchemas follows schema changes of the source. Only what the
// destination can apply exactly goes through; anything else stops the flow,
// as does any change under --ddl stop.
func (e *Engine) applySchemas(ctx context.Context, schemas []model.SchemaChange) error {
	for _, ch := range schemas {
		to := ch.Table
		tr := e.byNS[to.Namespace]
		if tr == nil {
			continue
		}
		if err := to.Validate(); err != nil {
			return fmt.Errorf("schema change: %w", err)
		}
		what := describeSchemaChange(tr.src, ch)
		if what == "" && !ch.Recopy {
			continue // the shape the flow knows (a change replayed after a resume)
		}
		if what == "" {
			what = "rows rewritten"
		}
		if e.cfg.DDL == flow.DDLStop {
			return errs.BadConfig(fmt.Sprintf("the source changed table %s (%s) and the flow runs with --ddl stop, so it stops before applying anything after that change", to.Namespace, what),
				"make the destination table match and run again with --ddl apply, which follows the change (applying it again is harmless)")
		}
		if fmt.Sprint(keyBefore(to.PrimaryKey, ch.Renamed)) != fmt.Sprint(tr.src.PrimaryKey) {
			return fmt.Errorf("schema change on %s: primary key changed from %v to %v; ferry cannot follow a key change (re-run the flow with --restart)", to.Namespace, tr.src.PrimaryKey, to.PrimaryKey)
		}
		sc := e.dst.SchemaChanger
		if sc == nil {
			return fmt.Errorf("schema change on %s (%s): the destination cannot apply schema changes; recreate the table there and restart the flow (ferry sync --restart)", to.Namespace, what)
		}
		toDst, x, dch, err := e.destinationChange(tr, ch)
		if err != nil {
			return err
		}
		if err := e.onDestination(ctx, "alter table "+tr.dst.Namespace.String(), func(ctx context.Context) error {
			return sc.AlterTable(ctx, tr.dst, dch)
		}); err != nil {
			return fmt.Errorf("schema change on %s: %w", to.Namespace, err)
		}
		if err := e.ckpt.saveSchema(ctx, to); err != nil {
			return err
		}
		e.log.Info("applied schema change", "table", to.Namespace, "change", what)
		e.progress.CDC.schemaChanged(to.Namespace.String(), what)
		e.warnAddedConversions(ctx, tr.dst, toDst)
		tr.src, tr.dst, tr.xf, tr.keyIdx = to, toDst, x, toDst.KeyIndexes()
		if ch.Recopy {
			// The rows changed without changes in the stream: copy the
			// table again, interleaved with the changes after this one.
			if err := e.requestResnapshot(ctx, to.Namespace, "the source rewrote its rows"); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyBefore is a key's column names before the columns renamed were.
func keyBefore(key []string, renamed map[string]string) []string {
	out := make([]string, len(key))
	for i, k := range key {
		out[i] = k
		if old, ok := renamed[k]; ok {
			out[i] = old
		}
	}
	return out
}

// describeSchemaChange says what ch changes in from, for the log and the
// dashboard: "added c; dropped d; renamed a to b; c: int4 to int8"; "" when
// it changes nothing.
func describeSchemaChange(from *model.Table, ch model.SchemaChange) string {
	var parts []string
	was := map[string]string{} // new name -> old name
	for n, o := range ch.Renamed {
		was[n] = o
	}
	kept := map[string]bool{}
	for _, c := range ch.Table.Columns {
		old := c.Name
		if o, ok := was[c.Name]; ok {
			old = o
		}
		i := from.ColumnIndex(old)
		if i < 0 {
			parts = append(parts, "added "+c.Name)
			continue
		}
		kept[old] = true
		if old != c.Name {
			parts = append(parts, "renamed "+old+" to "+c.Name)
		}
		if oc := from.Columns[i]; oc.Type.String() != c.Type.String() || oc.Type.Native != c.Type.Native {
			parts = append(parts, fmt.Sprintf("%s: %s to %s", c.Name, nativeOr(oc.Type), nativeOr(c.Type)))
		}
	}
	for _, c := range from.Columns {
		if !kept[c.Name] {
			parts = append(parts, "dropped "+c.Name)
		}
	}
	if was := keyBefore(ch.Table.PrimaryKey, ch.Renamed); strings.Join(was, ",") != strings.Join(from.PrimaryKey, ",") {
		parts = append(parts, fmt.Sprintf("primary key (%s) to (%s)", strings.Join(from.PrimaryKey, ", "), strings.Join(ch.Table.PrimaryKey, ", ")))
	}
	return strings.Join(parts, "; ")
}

func nativeOr(t model.Type) string {
	if t.Native != "" {
		return t.Native
	}
	return t.String()
}
