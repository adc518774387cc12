package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/flow"
	"github.com/ferrydb/ferry/model"
)

// Incremental snapshots copy a table again while its changes keep
// streaming, without a lock, a long transaction or a snapshot held open:
// the watermark algorithm of Netflix's DBLog (which Debezium's incremental
// snapshots use), with the engine's batcher as the log reader.
//
// The table is read in chunks of --batch-rows rows, each after the last, in
// the source's read order (connector.ChunkReader when it can, else the
// first batch of a ReadPartition). For one chunk:
//
//  1. the batcher starts recording the keys of the table's changes that
//     it folds from now on;
//  2. the chunk is read from the source's current state;
//  3. a high watermark is written into the change stream
//     (connector.PositionMarker; a source without one gives its head
//     position, which the stream passes at its next change or heartbeat);
//  4. once the batcher has folded the batch that reaches the watermark, it
//     folds the chunk's rows as inserts, but those whose key it recorded.
//
// A recorded key changed after recording started: its change came through
// the stream, in order, and a later one would too, so the stream's value
// wins over the chunk's. A key not recorded had no change between the
// start of the recording and the watermark, so the chunk's row is its
// value at the watermark, and everything after the watermark is folded
// after it. A truncate or a schema change of the table while a chunk is
// recorded voids the chunk, which is read again.
//
// Progress (the cursor after the last chunk applied) is saved with the
// checkpoints once the chunk's rows are applied: a killed flow resumes the
// table from there, and a chunk applied twice is harmless (its rows are
// upserts).

// tableResnapshot is a table's incremental snapshot as the checkpoints
// keep it.
type tableResnapshot struct {
	Requested time.Time    `json:"requested"`
	Cursor    model.Cursor `json:"cursor,omitempty"`
	Rows      int64        `json:"rows"`
	Done      bool         `json:"done,omitempty"`
	Finished  time.Time    `json:"finished,omitzero"`
}

func resnapshotKey(ns model.Namespace) string { return tableKey("snapshot/", ns) }

// resnapshots are the incremental snapshots the checkpoints record.
func (c *checkpoints) resnapshots(ctx context.Context) (map[model.Namespace]tableResnapshot, error) {
	raw, err := c.load(ctx, "snapshot/")
	if err != nil {
		return nil, err
	}
	out := make(map[model.Namespace]tableResnapshot, len(raw))
	for k, v := range raw {
		var ns model.Namespace
		var r tableResnapshot
		if err := json.Unmarshal([]byte(v), &struct {
			Table *model.Namespace `json:"table"`
			*tableResnapshot
		}{&ns, &r}); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", k, err)
		}
		out[ns] = r
	}
	return out, nil
}

func (c *checkpoints) saveResnapshot(ctx context.Context, ns model.Namespace, r tableResnapshot) error {
	return c.saveTableRecord(ctx, resnapshotKey(ns), struct {
		Table model.Namespace `json:"table"`
		tableResnapshot
	}{ns, r})
}

// RequestSnapshot asks the flow to copy tables again while CDC goes on
// (ferry snapshot): each is read in chunks that interleave with the
// stream, and ends equal to the source's. The request is kept with the
// checkpoints, so a flow stopped before it finished goes on with it when
// it runs again. A table the flow does not take is refused, and so is a
// table without a primary key. Call it after Prepare, from any goroutine.
func (e *Engine) RequestSnapshot(ctx context.Context, tables []model.Namespace) error {
	if e.currentPlan() == nil {
		return errs.BadConfig(fmt.Sprintf("flow %q has no plan yet", e.name), "run ferry sync first; a table is copied with the rest then")
	}
	if e.mode == flow.ModeSnapshot {
		return errs.BadConfig(fmt.Sprintf("flow %q copies without change data capture (--mode snapshot)", e.name), "run the copy again instead (ferry sync --restart)")
	}
	var unknown []string
	var known []*model.Table
	for _, ns := range tables {
		if t := e.planTable(ns); t != nil {
			known = append(known, t)
		} else {
			unknown = append(unknown, ns.String())
		}
	}
	if len(unknown) > 0 {
		return errs.BadConfig(fmt.Sprintf("flow %q does not take %s", e.name, strings.Join(unknown, ", ")), "name source tables the flow copies (ferry flow status or the dashboard lists them)")
	}
	if err := refuseKeyless(known, "add a primary key, or start the flow over (ferry sync --restart)"); err != nil {
		return err
	}
	for _, ns := range tables {
		if err := e.requestResnapshot(ctx, ns, "ferry snapshot"); err != nil {
			return err
		}
	}
	return nil
}

// requestResnapshot records that table ns is to be copied again (from its
// first row) and wakes the snapshot loop.
func (e *Engine) requestResnapshot(ctx context.Context, ns model.Namespace, why string) error {
	now := time.Now().UTC()
	if err := e.ckpt.saveResnapshot(ctx, ns, tableResnapshot{Requested: now}); err != nil {
		return err
	}
	// A copy of the table under way starts over.
	e.snapRequested.Store(ns, now)
	e.snapState.requested()
	e.progress.resnapshot(ns.String(), 0, false)
	select {
	case e.snapWake <- struct{}{}:
	default:
	}
	e.log.Info("incremental snapshot requested", "table", ns, "why", why)
	return nil
}

// RecordSnapshot records a request to copy tables again (the flow's plan
// definitions) with the flow's checkpoints, at the destination, where the
// engine streaming the flow finds it within snapshotPoll: a coordinator's
// ferry flow snapshot, whose stream runs in another process. A destination
// that keeps no checkpoints is refused, as is a table without a primary key.
func (e *Engine) RecordSnapshot(ctx context.Context, tables []*model.Table) error {
	if e.dst.CheckpointKeeper == nil {
		return errs.BadConfig(fmt.Sprintf("flow %q: its destination keeps no checkpoints, where a running flow's workers would find the request", e.name),
			"copy the tables again with ferry sync --restart")
	}
	if err := refuseKeyless(tables, "add a primary key, or start the flow over"); err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, t := range tables {
		if err := e.ckpt.saveResnapshot(ctx, t.Namespace, tableResnapshot{Requested: now}); err != nil {
			return err
		}
	}
	return nil
}

// refuseKeyless refuses tables without a primary key, which an incremental
// snapshot cannot merge with their changes, with fix as what to do.
func refuseKeyless(tables []*model.Table, fix string) error {
	var keyless []string
	for _, t := range tables {
		if len(t.PrimaryKey) == 0 {
			keyless = append(keyless, t.Namespace.String())
		}
	}
	if len(keyless) > 0 {
		return errs.BadConfig(fmt.Sprintf("an incremental snapshot merges a table's rows with its changes by primary key, and %s has none", strings.Join(keyless, ", ")), fix)
	}
	return nil
}

// planTable is the plan's definition of source table ns, nil when the flow
// does not take it. Any goroutine may call it (currentPlan).
func (e *Engine) planTable(ns model.Namespace) *model.Table {
	for _, t := range e.currentPlan().Tables {
		if t.Namespace == ns {
			return t
		}
	}
	return nil
}

// pendingResnapshots is what the checkpoints say is left to copy again, in
// the order requested; an error if a table is not finished (a cutover
// waits for them).
func (e *Engine) pendingResnapshots(ctx context.Context) ([]model.Namespace, map[model.Namespace]tableResnapshot, error) {
	all, err := e.ckpt.resnapshots(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []model.Namespace
	for ns, r := range all {
		if e.currentPlan() != nil && e.planTable(ns) == nil {
			continue // a table that left the flow's --tables
		}
		e.progress.resnapshot(ns.String(), r.Rows, r.Done)
		if !r.Done {
			out = append(out, ns)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := all[out[i]], all[out[j]]
		if !a.Requested.Equal(b.Requested) {
			return a.Requested.Before(b.Requested)
		}
		return out[i].String() < out[j].String()
	})
	return out, all, nil
}

// snapshotLoop runs the flow's incremental snapshots while the stream
// runs, one table at a time, and waits for new requests. It returns when
// ctx ends (the stream stops; what is left goes on in the next run).
func (e *Engine) snapshotLoop(ctx context.Context, cs connector.ChangeSource, cmds chan<- snapCmd, applied *signal) error {
	// Another process records requests only with a destination that keeps
	// checkpoints (RecordSnapshot): only then is there anything to poll.
	var poll <-chan time.Time
	if e.dst.CheckpointKeeper != nil {
		t := time.NewTicker(snapshotPoll)
		defer t.Stop()
		poll = t.C
	}
	warned := false
	for {
		gen := e.snapState.generation()
		tables, all, err := e.pendingResnapshots(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// A destination outage: the writers ride it out (or end the
			// flow after --retry-timeout); looking for requests waits.
			if !warned {
				e.log.Warn("cannot look for incremental snapshot requests; trying again", "error", err)
				warned = true
			}
			select {
			case <-ctx.Done():
				return nil
			case <-e.snapWake:
			case <-time.After(snapshotPoll):
			}
			continue
		}
		warned = false
		if len(tables) == 0 {
			e.snapState.idle(gen)
		}
		for _, ns := range tables {
			if at, ok := e.snapRequested.Load(ns); !ok || at.(time.Time).Before(all[ns].Requested) {
				e.snapRequested.Store(ns, all[ns].Requested)
			}
			err := e.withBackoff(ctx, func(ctx context.Context) error {
				return e.resnapshotTable(ctx, cs, ns, all[ns], cmds, applied)
			})
			if err != nil {
				return ignoreEnd(ctx, err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.snapWake:
		case <-poll:
			// A request recorded by another process (RecordSnapshot).
		}
	}
}

// resnapshotting tells whether a table is being copied again, or was asked
// to be: --until caught-up and a cutover's drain wait for it.
func (e *Engine) resnapshotting() bool { return e.snapState.busy() }

// snapState is whether incremental snapshots are pending. A request bumps
// the generation; the loop, finding nothing to do, clears pending only if no
// request came since it looked.
type snapState struct {
	mu      sync.Mutex
	gen     uint64
	pending bool
}

func (s *snapState) requested() {
	s.mu.Lock()
	s.gen++
	s.pending = true
	s.mu.Unlock()
}

func (s *snapState) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func (s *snapState) idle(gen uint64) {
	s.mu.Lock()
	if s.gen == gen {
		s.pending = false
	}
	s.mu.Unlock()
}

func (s *snapState) busy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// snapshotPoll is how often a stream looks for requests recorded with the
// checkpoints by another process.
var snapshotPoll = 2 * time.Second

// ignoreEnd drops the error of work cut short by the end of ctx.
func ignoreEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// resnapshotTable copies table ns again, chunk after chunk, from r's cursor.
func (e *Engine) resnapshotTable(ctx context.Context, cs connector.ChangeSource, ns model.Namespace, r tableResnapshot, cmds chan<- snapCmd, applied *signal) error {
	e.log.Info("incremental snapshot", "table", ns, "from", r.Cursor, "rows", r.Rows)
	start, ratePassed := time.Now(), e.copyRate.passedSoFar()
	for !r.Done {
		if at, ok := e.snapRequested.Load(ns); ok && at.(time.Time).After(r.Requested) {
			e.log.Info("incremental snapshot asked for again: starting the table over", "table", ns)
			r = tableResnapshot{Requested: at.(time.Time)}
		}
		t0 := time.Now()
		started := make(chan snapStarted, 1)
		if err := send(ctx, cmds, snapCmd{start: &snapStart{ns: ns, reply: started}}); err != nil {
			return err
		}
		var st snapStarted
		select {
		case st = <-started:
		case <-ctx.Done():
			return ctx.Err()
		}
		if st.err != nil {
			return st.err
		}
		if st.gone {
			e.log.Info("incremental snapshot dropped: the table left the flow", "table", ns)
			return nil
		}
		if err := e.backoff.wait(ctx); err != nil {
			return err
		}
		t1 := time.Now()
		rows, size, cursor, exhausted, err := e.readChunk(ctx, st.table, r.Cursor)
		if err != nil {
			if e.leftWhileRead(ctx, cs, ns) {
				e.log.Info("incremental snapshot dropped: the table was dropped at the source", "table", ns)
				return nil
			}
			return err
		}
		// --max-rate holds chunk reads as it holds the copy's: the same
		// bucket, before the next read.
		if err := e.copyRate.wait(ctx, len(rows), size); err != nil {
			return err
		}
		t2 := time.Now()
		var at model.Position
		if len(rows) > 0 {
			if at, err = e.watermark(ctx, cs); err != nil {
				return err
			}
		}
		done := make(chan snapDone, 1)
		if err := send(ctx, cmds, snapCmd{chunk: &snapChunk{rows: rows, at: at, reply: done}}); err != nil {
			return err
		}
		var d snapDone
		select {
		case d = <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if d.redo {
			e.log.Info("incremental snapshot: the table changed shape or was truncated while a chunk was read; reading it again", "table", ns)
			continue
		}
		t3 := time.Now()
		if err := applied.wait(ctx, d.seq); err != nil {
			return err
		}
		t4 := time.Now()
		if len(rows) > 0 {
			r.Cursor = cursor
		}
		r.Rows += d.rows
		if r.Done = exhausted; r.Done {
			r.Finished = time.Now().UTC()
		}
		if err := e.ckpt.saveResnapshot(ctx, ns, r); err != nil {
			return err
		}
		e.progress.resnapshot(ns.String(), r.Rows, r.Done)
		e.log.Debug("incremental snapshot chunk", "table", ns, "rows", len(rows), "folded", d.rows, "start", t1.Sub(t0), "read", t2.Sub(t1),
			"watermark", t3.Sub(t2), "apply", t4.Sub(t3), "save", time.Since(t4))
	}
	done := []any{"table", ns, "rows", r.Rows, "took", time.Since(start).Round(time.Millisecond)}
	if s := e.copyRate.snapshot(); s != nil {
		done = append(done, "max_rate_passed", e.copyRate.passedSoFar()-ratePassed, "max_rate_unit", s.Unit)
	}
	e.log.Info("incremental snapshot done", done...)
	return nil
}

func send(ctx context.Context, cmds chan<- snapCmd, c snapCmd) error {
	select {
	case cmds <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errChunkRead = errors.New("chunk read")

// readChunk reads up to --batch-rows rows of t after cursor from, in the
// source's read order, from its current state; exhausted when none follow
// them.
func (e *Engine) readChunk(ctx context.Context, t *model.Table, from model.Cursor) (rows []model.Row, size int64, cursor model.Cursor, exhausted bool, err error) {
	n := e.cfg.BatchRows
	err = e.onSource(ctx, "read "+t.Namespace.String(), func(ctx context.Context) error {
		rows, size, cursor, exhausted = nil, 0, "", false
		if cr, ok := e.src.Source.(connector.ChunkReader); ok {
			b, err := cr.ReadChunk(ctx, t, from, n)
			if err != nil {
				return err
			}
			rows, size, cursor, exhausted = b.Rows, b.Bytes, b.Cursor, len(b.Rows) < n
			return nil
		}
		p := model.Partition{ID: t.Namespace.String() + "/snapshot", Table: t.Namespace, BatchRows: n}
		err := e.src.Source.ReadPartition(ctx, t, p, from, func(b *model.RowBatch) error {
			if len(b.Rows) == 0 {
				return nil
			}
			rows, size, cursor = b.Rows, b.Bytes, b.Cursor
			return errChunkRead
		})
		switch {
		case errors.Is(err, errChunkRead):
			// A short chunk is the table's last (sources fill batches).
			exhausted = len(rows) < n
			return nil
		case err == nil:
			exhausted = true
		}
		return err
	})
	if err != nil {
		return nil, 0, "", false, fmt.Errorf("incremental snapshot of %s: %w", t.Namespace, err)
	}
	return rows, size, cursor, exhausted, nil
}

// watermark writes the high watermark of a chunk into the change stream.
func (e *Engine) watermark(ctx context.Context, cs connector.ChangeSource) (model.Position, error) {
	var at model.Position
	err := e.onSource(ctx, "write a watermark", func(ctx context.Context) (err error) {
		if pm := e.src.PositionMarker; pm != nil {
			at, err = pm.MarkPosition(ctx)
		} else {
			at, err = cs.HeadPosition(ctx)
		}
		return err
	})
	if err != nil {
		return "", fmt.Errorf("incremental snapshot: write a watermark: %w", err)
	}
	return at, nil
}

// What the snapshot loop asks the batcher.
type snapCmd struct {
	start *snapStart
	chunk *snapChunk
}

// snapStart starts recording the keys of a table's changes.
type snapStart struct {
	ns    model.Namespace
	reply chan<- snapStarted
}

type snapStarted struct {
	table *model.Table // the table's definition as the batcher knows it
	err   error
	gone  bool // the table left the flow (dropped at the source)
}

// snapChunk is a chunk read, to fold once the stream reaches at (at once
// when it holds no row).
type snapChunk struct {
	rows  []model.Row
	at    model.Position
	reply chan<- snapDone
}

type snapDone struct {
	seq  uint64 // the apply batch holding the chunk's rows
	rows int64  // the chunk's rows folded
	redo bool   // the chunk was voided: read it again
}

// recording is the stream's side of an incremental snapshot's chunk:
// the batcher's (stream_batch.go), or an event stream's
// (stream_events.go), which sends the chunk's rows as read events instead
// of folding them.
type recording struct {
	tr    *tableRun
	keys  map[string]bool
	void  bool
	chunk *snapChunk
	buf   []byte
}

// startRecording answers a snapshot loop's start: the keys of the table's
// changes are recorded from now on (nil when the table left the flow or
// cannot be recorded; st says why).
func startRecording(byNS map[model.Namespace]*tableRun, s *snapStart) (*recording, snapStarted) {
	tr := byNS[s.ns]
	var st snapStarted
	switch {
	case tr == nil:
		st.gone = true // dropped at the source since it was asked for
	case tr.fullRow():
		st.err = fmt.Errorf("incremental snapshot: table %s has no primary key", s.ns)
	default:
		st.table = tr.src.Clone()
		return &recording{tr: tr, keys: map[string]bool{}}, st
	}
	return nil, st
}

// command takes a request of the snapshot loop.
func (bt *batcher) command(ctx context.Context, c snapCmd) error {
	if c.start != nil {
		var st snapStarted
		bt.rec, st = startRecording(bt.e.byNS, c.start)
		c.start.reply <- st
		return nil
	}
	if bt.rec == nil {
		return errors.New("incremental snapshot: a chunk came without its start")
	}
	bt.rec.chunk = c.chunk
	if len(c.chunk.rows) == 0 {
		return bt.foldChunk(ctx)
	}
	// The snapshot loop writes the watermark, then hands the chunk over:
	// the batch reaching it may have been folded already. The chunk is
	// folded now, after the changes up to bt.pos (all recorded), rather
	// than with the next batch (on an idle source, the next heartbeat's).
	// Inside a transactional flow's open transaction its next part comes
	// anyway, and the chunk with it.
	if bt.open {
		return nil
	}
	return bt.reached(ctx, bt.pos)
}

// record notes the key a change of the recorded table touches (r may be
// nil: no chunk is recorded).
func (r *recording) record(tr *tableRun, c *model.Change) error {
	if r == nil || r.tr != tr {
		return nil
	}
	if c.Op == model.OpTruncate {
		r.void = true
		return nil
	}
	keys := []model.Row{c.Key}
	if c.Row != nil {
		keys = append(keys, keyValues(tr, c.Row))
	}
	for _, k := range keys {
		if k == nil {
			continue
		}
		ks, err := r.keyString(k)
		if err != nil {
			return err
		}
		r.keys[ks] = true
	}
	return nil
}

func (r *recording) keyString(k model.Row) (string, error) {
	var s string
	var err error
	r.buf, s, err = canonicalKey(r.buf[:0], r.tr, k)
	return s, err
}

// due tells whether the stream, at pos, has reached the pending chunk's
// watermark (r may be nil).
func (r *recording) due(cs connector.ChangeSource, pos model.Position) (bool, error) {
	if r == nil || r.chunk == nil || pos == "" {
		return false, nil
	}
	c, err := cs.ComparePositions(pos, r.chunk.at)
	if err != nil {
		return false, fmt.Errorf("incremental snapshot: %w", err)
	}
	return c >= 0, nil
}

// unchanged are the chunk's rows whose keys no change touched since the
// recording started: their values at the watermark.
func (r *recording) unchanged() ([]model.Row, error) {
	var out []model.Row
	rows, err := r.tr.transformRows(r.chunk.rows)
	if err != nil {
		return nil, fmt.Errorf("incremental snapshot of %s: %w", r.tr.src.Namespace, err)
	}
	for _, row := range rows {
		ks, err := r.keyString(keyValues(r.tr, row))
		if err != nil {
			return nil, fmt.Errorf("incremental snapshot of %s: %w", r.tr.src.Namespace, err)
		}
		if !r.keys[ks] {
			out = append(out, row)
		}
	}
	return out, nil
}

// reached folds the pending chunk once the stream has reached its
// watermark.
func (bt *batcher) reached(ctx context.Context, pos model.Position) error {
	if ok, err := bt.rec.due(bt.e.src.ChangeSource, pos); !ok || err != nil {
		return err
	}
	return bt.foldChunk(ctx)
}

// foldChunk folds the chunk's rows whose keys no change touched since the
// recording started, sends them to the writers and answers the snapshot
// loop.
func (bt *batcher) foldChunk(ctx context.Context) error {
	r := bt.rec
	bt.rec = nil
	if r.void {
		r.chunk.reply <- snapDone{redo: true}
		return nil
	}
	rows, err := r.unchanged()
	if err != nil {
		return err
	}
	for _, row := range rows {
		if err := bt.add(ctx, r.tr, &model.Change{Op: model.OpInsert, Table: r.tr.src.Namespace, Row: row}); err != nil {
			return fmt.Errorf("incremental snapshot of %s: %w", r.tr.src.Namespace, err)
		}
	}
	if err := bt.flush(ctx); err != nil {
		return err
	}
	r.chunk.reply <- snapDone{seq: bt.seq, rows: int64(len(rows))}
	return nil
}
