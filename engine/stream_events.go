package engine

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// streamEvents is CDC to an event destination (connector.EventWriter): no
// folding and no parallel writers. Each source batch becomes one event
// batch, in the source's order, written and checkpointed before the next;
// the destination stores the checkpoint once the events are durable, so a
// crash sends again at most the events after the last checkpoint, with the
// same IDs. stream() hands over to it once the start position is known.
func (e *Engine) streamEvents(ctx, stop context.Context, cs connector.ChangeSource, ew connector.EventWriter, from, head model.Position) error {
	g, gctx := errgroup.WithContext(ctx)
	streamCtx, endStream := context.WithCancel(gctx)
	defer endStream()
	g.Go(func() error { e.endOnStop(stop, streamCtx, endStream); return nil })
	if lm := e.src.LagMeter; lm != nil {
		g.Go(func() error { return e.measureLag(streamCtx, lm) })
	}
	flight := semaphore.NewWeighted(flightBytes)
	in := make(chan sourceBatch, 64)
	g.Go(func() error {
		defer close(in)
		return e.readChanges(streamCtx, gctx, cs, from, flight, in)
	})
	until := newUntilTarget(cs, from, endStream, e.logCaughtUp)
	// --until caught-up (and a cutover's drain) wait for incremental
	// snapshots, as for tables.
	until.held = e.resnapshotting
	if head != "" {
		if err := until.set(head); err != nil {
			return err
		}
	}
	g.Go(func() error { return e.awaitCutover(streamCtx, cs, until) })
	// Tables created at the source during CDC (and ferry snapshot) are
	// copied while changes stream, their rows sent as read events.
	applied := newSignal()
	snaps := make(chan snapCmd)
	g.Go(func() error { return e.snapshotLoop(streamCtx, cs, snaps, applied) })
	g.Go(func() error {
		es := &eventStream{e: e, cs: cs, ew: ew, until: until, applied: applied, sent: from}
		for {
			var sb sourceBatch
			select {
			case c := <-snaps:
				if err := es.command(gctx, c); err != nil {
					return err
				}
				continue
			case b, ok := <-in:
				if !ok {
					endStream() // the snapshot loop's too
					return e.ckpt.flushCDC(gctx)
				}
				sb = b
			case <-gctx.Done():
				return gctx.Err()
			}
			// Source batches already waiting join this one, up to
			// maxEventGroup changes: one write, one wait for acks (one
			// Kafka transaction) and one checkpoint for many small source
			// transactions.
			group, n, open := []sourceBatch{sb}, len(sb.b.Changes), true
			for open && n < maxEventGroup {
				select {
				case nb, ok := <-in:
					if !ok {
						open = false
						break
					}
					group, n = append(group, nb), n+len(nb.b.Changes)
				default:
					open = false
				}
			}
			err := es.send(gctx, group)
			for _, g := range group {
				flight.Release(g.bytes)
			}
			if err != nil {
				return err
			}
		}
	})
	return g.Wait()
}

// eventStream turns source batches into event batches. index numbers the
// changes of one source transaction: a huge one comes in parts (Partial)
// that share a position (the previous commit's, its last part at its
// own), and is numbered across them, so a resumed stream, which reads the
// transaction whole again, gives each change the same ID.
type eventStream struct {
	e     *Engine
	cs    connector.ChangeSource
	ew    connector.EventWriter
	until *untilTarget

	lastPos     model.Position
	lastPartial bool
	index       int

	// rec is the chunk of an incremental snapshot being recorded
	// (snapshot.go); its rows go as read events right after the changes
	// of the source batch that reaches its watermark. done are the chunks
	// in the event batch being built, answered once it is written; seq
	// counts the event batches written, applied signals it.
	rec     *recording
	done    []chunkSent
	seq     uint64
	applied *signal
	// sent is the position of the last source batch sent (at first the
	// stream's start), sentCommit its commit time.
	sent       model.Position
	sentCommit time.Time
}

// chunkSent is a chunk of an incremental snapshot in an event batch.
type chunkSent struct {
	reply chan<- snapDone
	rows  int64
}

// command takes a request of the snapshot loop, as the batcher does
// (batcher.command).
func (es *eventStream) command(ctx context.Context, c snapCmd) error {
	if c.start != nil {
		var st snapStarted
		es.rec, st = startRecording(es.e.byNS, c.start)
		c.start.reply <- st
		return nil
	}
	if es.rec == nil {
		return errors.New("incremental snapshot: a chunk came without its start")
	}
	es.rec.chunk = c.chunk
	if len(c.chunk.rows) == 0 {
		// Nothing to send: every event batch before is written already.
		c.chunk.reply <- snapDone{seq: es.seq, redo: es.rec.void}
		es.rec = nil
		return nil
	}
	// The batch reaching the watermark may have come before the chunk
	// did: its rows go now, at the last position sent, rather than with
	// the next batch (on an idle source, the next heartbeat's).
	eb := &connector.EventBatch{Position: es.sent, CommitTime: es.sentCommit,
		Checkpoint: &model.Checkpoint{Flow: es.e.name, Key: cdcKey(0), Value: string(es.sent)}}
	if err := es.chunkEvents(eb, es.sent, es.sentCommit); err != nil || len(es.done) == 0 {
		return err
	}
	if err := es.e.onDestination(ctx, "write events", func(ctx context.Context) error { return es.ew.WriteEvents(ctx, eb) }); err != nil {
		return fmt.Errorf("write the read events of an incremental snapshot's chunk at %s: %w", es.sent, err)
	}
	es.written()
	return nil
}

// written notes an event batch written: the snapshot loop learns that the
// chunks it held are.
func (es *eventStream) written() {
	es.seq++
	es.applied.advance(es.seq)
	for _, d := range es.done {
		d.reply <- snapDone{seq: es.seq, rows: d.rows}
	}
	es.done = es.done[:0]
}

// chunkEvents appends the pending chunk's rows that no change touched
// since its recording started to eb, as read events at position pos (the
// batch that reached its watermark): each row's value there, which the
// key's later changes follow. A key that changed has its changes in the
// stream instead, so no read event repeats or undoes one of them.
func (es *eventStream) chunkEvents(eb *connector.EventBatch, pos model.Position, commit time.Time) error {
	r := es.rec
	if ok, err := r.due(es.cs, pos); !ok || err != nil {
		return err
	}
	es.rec = nil
	if r.void {
		r.chunk.reply <- snapDone{redo: true}
		return nil
	}
	rows, err := r.unchanged()
	if err != nil {
		return err
	}
	tr := r.tr
	for i, row := range rows {
		eb.Events = append(eb.Events, connector.Event{
			Op: model.OpInsert, Read: true, Table: tr.dst, Source: tr.src.Namespace, Row: row,
			// Position says where the value holds; the row is no part of
			// that batch's transaction, so no TxID.
			ID:       fmt.Sprintf("%s/%s/r/%s/%d", es.e.name, pos, tr.src.Namespace, i),
			Position: pos, CommitTime: commit,
		})
	}
	es.done = append(es.done, chunkSent{reply: r.chunk.reply, rows: int64(len(rows))})
	return nil
}

// maxEventGroup bounds the changes of source batches sent as one event
// batch.
const maxEventGroup = 5000

// send writes the events of consecutive source batches as one event
// batch, checkpointed at the last one's position, then acknowledges it.
func (es *eventStream) send(ctx context.Context, group []sourceBatch) error {
	e := es.e
	last := group[len(group)-1].b
	eb := &connector.EventBatch{Position: last.Position, CommitTime: last.CommitTime,
		Checkpoint: &model.Checkpoint{Flow: e.name, Key: cdcKey(0), Value: string(last.Position)}}
	received := 0
	for _, sb := range group {
		if err := es.add(ctx, eb, sb.b); err != nil {
			return err
		}
		received += len(sb.b.Changes)
	}
	start := time.Now()
	if err := e.onDestination(ctx, "write events", func(ctx context.Context) error { return es.ew.WriteEvents(ctx, eb) }); err != nil {
		return fmt.Errorf("write events up to %s: %w", last.Position, err)
	}
	e.observer().ChangesApplied(len(eb.Events), time.Since(start))
	e.progress.CDC.Received.Add(int64(received))
	e.progress.CDC.Applied.Add(int64(len(eb.Events)))
	if err := e.ckpt.cdcCheckpointed(ctx, last.Position); err != nil {
		return err
	}
	if err := es.cs.Ack(ctx, last.Position); err != nil {
		return fmt.Errorf("acknowledge %s to the source: %w", last.Position, err)
	}
	e.progress.CDC.setPosition(last.Position, last.CommitTime)
	es.written()
	return es.until.checkpointed(last.Position)
}

// add appends the events of one source batch to eb.
func (es *eventStream) add(ctx context.Context, eb *connector.EventBatch, b *model.ChangeBatch) error {
	e := es.e
	if !(es.lastPartial && b.Position == es.lastPos) {
		es.index = 0
	}
	es.lastPos, es.lastPartial = b.Position, b.Partial
	// The parts of a transaction before its last come at the previous
	// commit's position (a safe resume point), where that transaction's
	// events are numbered already: theirs are marked apart.
	at := e.name + "/" + string(b.Position) + "/"
	if b.Partial {
		at += "p/"
	}
	for i, ch := range b.Schemas {
		ev, err := es.schema(ctx, ch)
		if err != nil {
			return err
		}
		if ev != nil {
			ev.ID = fmt.Sprintf("%ss%d.%d", at, es.index, i)
			ev.Position, ev.CommitTime, ev.TxID = b.Position, b.CommitTime, b.TxID
			eb.Events = append(eb.Events, *ev)
		}
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		idx := es.index
		es.index++
		tr := e.byNS[c.Table]
		if tr == nil {
			continue // a table outside the flow
		}
		if keep, err := tr.transformChange(c); err != nil || !keep {
			if err != nil {
				return fmt.Errorf("change at %s: %w", b.Position, err)
			}
			continue // the table's filter drops it
		}
		if err := es.rec.record(tr, c); err != nil {
			return fmt.Errorf("change at %s: %w", b.Position, err)
		}
		eb.Events = append(eb.Events, connector.Event{
			Op: c.Op, Table: tr.dst, Source: tr.src.Namespace, Row: c.Row, Key: c.Key,
			ID:       at + strconv.Itoa(idx),
			Position: b.Position, CommitTime: b.CommitTime, TxID: b.TxID,
		})
	}
	es.sent, es.sentCommit = b.Position, b.CommitTime
	return es.chunkEvents(eb, b.Position, b.CommitTime)
}

// schema follows a table's new shape and returns it as an event. A table
// created at the source joins the flow as it does for a table destination
// (its rows then come as read events of an incremental snapshot); one
// dropped leaves it. Either is an event as well.
func (es *eventStream) schema(ctx context.Context, ch model.SchemaChange) (*connector.Event, error) {
	e := es.e
	if es.rec != nil && es.rec.tr.src.Namespace == ch.Table.Namespace {
		es.rec.void = true // the chunk being recorded is read again
	}
	// A table that joins or leaves the flow is a schema event too
	// (Debezium's CREATE and DROP), in stream order: the CREATE before the
	// table's first event, the DROP after its last.
	switch {
	case ch.Created:
		tr, err := e.tableCreated(ctx, ch.Table)
		if err != nil || tr == nil {
			return nil, err
		}
		return &connector.Event{Table: tr.dst, Source: ch.Table.Namespace,
			Schema: &model.SchemaChange{Table: tr.dst, Created: true}}, nil
	case ch.Dropped:
		tr := e.byNS[ch.Table.Namespace]
		if left, err := e.tableDropped(ctx, ch.Table.Namespace); err != nil || !left {
			return nil, err
		}
		// The table's last shape the flow knew: the source sends no
		// more than its name.
		return &connector.Event{Table: tr.dst, Source: ch.Table.Namespace,
			Schema: &model.SchemaChange{Table: tr.dst, Dropped: true}}, nil
	}
	tr := e.byNS[ch.Table.Namespace]
	if tr == nil {
		return nil, nil
	}
	what := describeSchemaChange(tr.src, ch)
	if what == "" {
		return nil, nil // the shape the flow knows (replayed after a resume)
	}
	if e.cfg.DDL == flow.DDLStop {
		return nil, errs.BadConfig(fmt.Sprintf("the source changed table %s (%s) and the flow runs with --ddl stop, so it stops before sending anything after that change", ch.Table.Namespace, what),
			"run again with --ddl apply, which sends the change as a schema event and goes on")
	}
	if ch.Recopy {
		return nil, fmt.Errorf("schema change on %s (%s) rewrote the table's rows without changes in the stream, which an event destination cannot follow; restart the flow (ferry sync --restart) to send every row again", ch.Table.Namespace, what)
	}
	toDst, x, dch, err := e.destinationChange(tr, ch)
	if err != nil {
		return nil, err
	}
	if err := e.ckpt.saveSchema(ctx, ch.Table); err != nil {
		return nil, err
	}
	e.log.Info("schema change sent as an event", "table", ch.Table.Namespace, "change", what)
	e.progress.CDC.schemaChanged(ch.Table.Namespace.String(), what)
	tr.src, tr.dst, tr.xf, tr.keyIdx = ch.Table, toDst, x, toDst.KeyIndexes()
	return &connector.Event{Table: toDst, Source: ch.Table.Namespace,
		Schema: &model.SchemaChange{Table: toDst, Renamed: dch.Renamed}}, nil
}

// describeSource tells an event destination the source's kind and
// database (its events' source.connector and source.db), from the
// flow's source URL.
func describeSource(dst connector.Connector, sourceURL string) {
	d, ok := dst.(connector.SourceDescriber)
	if !ok {
		return
	}
	u, err := url.Parse(sourceURL)
	if err != nil {
		return
	}
	var info connector.SourceInfo
	switch u.Scheme {
	case "postgres", "postgresql":
		info = connector.SourceInfo{Connector: "postgresql", Database: strings.TrimPrefix(u.Path, "/")}
	case "mysql", "mariadb":
		info = connector.SourceInfo{Connector: "mysql", Database: strings.TrimPrefix(u.Path, "/")}
	}
	d.DescribeSource(info)
}
