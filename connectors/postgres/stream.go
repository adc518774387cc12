package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"

	"github.com/ferrydb/ferry/connector"
	"github.com/ferrydb/ferry/model"
)

const (
	// statusInterval is how often the stream reports its acknowledged
	// position to the server (well within wal_sender_timeout).
	statusInterval = 5 * time.Second
	// maxTxnChanges and maxTxnBytes (their size in the stream) bound the
	// changes of one transaction held in memory: a bigger transaction is
	// emitted in parts, each at the last safe resume point (the previous
	// commit), so a crash replays it whole. A part past maxTxnBytes goes
	// when the next change comes, so that a transaction of one large change
	// goes whole, with its commit: by then the message it came in is
	// released, and applying it does not find that garbage still held.
	maxTxnChanges = 10000
	maxTxnBytes   = 16 << 20
	// maxQueuedBytes bounds the batches waiting for the engine to take
	// them: past it the stream reads nothing more until the engine takes
	// some. Counted in batches only, a queue of 16 could hold 16 large
	// values.
	maxQueuedBytes = 16 << 20
)

// HeadPosition is the server's current WAL insert position: every
// transaction committed before the call ends before it, also with
// synchronous_commit off (pg_current_wal_lsn, the write position, may not
// have reached such a commit yet).
func (c *Conn) HeadPosition(ctx context.Context) (model.Position, error) {
	var lsn string
	if err := c.pool.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return "", c.classify(err, "read the current WAL position")
	}
	return model.Position(lsn), nil
}

// ComparePositions orders two LSNs.
func (c *Conn) ComparePositions(a, b model.Position) (int, error) {
	x, err := pglogrepl.ParseLSN(string(a))
	if err != nil {
		return 0, fmt.Errorf("postgres: bad position %q", a)
	}
	y, err := pglogrepl.ParseLSN(string(b))
	if err != nil {
		return 0, fmt.Errorf("postgres: bad position %q", b)
	}
	switch {
	case x < y:
		return -1, nil
	case x > y:
		return 1, nil
	}
	return 0, nil
}

// Ack records that everything up to pos is durable at the destination. The
// running stream reports it to the server as flushed, which lets the slot
// release the WAL before it.
func (c *Conn) Ack(ctx context.Context, pos model.Position) error {
	lsn, err := pglogrepl.ParseLSN(string(pos))
	if err != nil {
		return fmt.Errorf("postgres: bad position %q", pos)
	}
	for {
		cur := c.acked.Load()
		if uint64(lsn) <= cur || c.acked.CompareAndSwap(cur, uint64(lsn)) {
			return nil
		}
	}
}

// StreamChanges streams the publication's changes from the slot, starting
// at from. Each transaction becomes one batch (or several for a huge one)
// whose position is the commit's end: resuming there replays nothing
// committed before and skips nothing after. An idle stream still advances:
// a heartbeat transaction (a logical message) is written every Heartbeat.
// A lost connection (a server restart) is retried with backoff from the
// last position the engine acknowledged; what is received again is emitted
// again, harmlessly.
func (c *Conn) StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, opts connector.StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error {
	c.closeSnapshot() // the copy is over; the slot's snapshot is no longer needed
	flow := opts.Flow
	if flow == "" && c.opts.Slot == "" {
		return fmt.Errorf("postgres: the change stream does not know its flow (no StreamOptions.Flow and no slot= in the URL)")
	}
	start, err := pglogrepl.ParseLSN(string(from))
	if err != nil {
		return fmt.Errorf("postgres: bad start position %q", from)
	}
	if err := c.Ack(ctx, from); err != nil {
		return err
	}
	s := &streamer{c: c, tables: map[model.Namespace]*streamTable{}, emitted: start}
	s.slot, _ = c.slotFor(flow)
	s.pub, _ = c.publicationFor(flow)
	c.warnInactiveSlots(ctx, s.slot)
	for _, t := range tables {
		st, err := c.newStreamTable(ctx, t)
		if err != nil {
			return err
		}
		s.tables[t.Namespace] = st
	}
	out := make(chan pending, 16)
	s.out, s.taken = out, make(chan struct{}, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for p := range out {
			err := emit(gctx, p.b)
			s.queued.Add(-p.bytes)
			select {
			case s.taken <- struct{}{}:
			default:
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error { return s.heartbeat(gctx) })
	g.Go(func() error {
		defer close(out)
		return s.run(gctx)
	})
	return g.Wait()
}

// streamTable is a table of the flow as the stream knows it.
type streamTable struct {
	table *model.Table
	decs  []decoder
	gen   *generated // nil without generated columns
}

type streamer struct {
	c         *Conn
	slot, pub string
	tables    map[model.Namespace]*streamTable
	rels      map[uint32]*relation
	out       chan<- pending

	// queued is the size in the stream of the batches sent and not yet
	// taken by the engine; taken is signalled whenever it takes one.
	queued atomic.Int64
	taken  chan struct{}

	// emitted is the highest position emitted; a batch's position is never
	// lower, so positions only move forward even when a reconnect sends
	// transactions again.
	emitted pglogrepl.LSN
	// lastData is when a transaction was last received (unix nanos), so
	// heartbeats are only written when the stream is idle.
	lastData atomic.Int64

	// inTx is true between a transaction's Begin and Commit; idleEnd is the
	// server's WAL end from a keepalive received while no transaction was
	// open and everything emitted was acknowledged.
	inTx    bool
	idleEnd pglogrepl.LSN

	// The transaction being received.
	changes    []model.Change
	txnBytes   int64       // the changes' size in the stream
	rawRows    [][]*string // per change, the new tuple's text (generated columns)
	schemas    []*model.Table
	commitTime time.Time
}

// pending is a batch on its way to the engine, with its size in the
// stream.
type pending struct {
	b     *model.ChangeBatch
	bytes int64
}

// relation is a relation message and how its columns map to the table's.
type relation struct {
	st       *streamTable // nil for a table outside the flow
	ns       model.Namespace
	colIdx   []int // for each table column, the relation column, or -1
	tableIdx []int // for each relation column, the table column, or -1
	keyIdx   []int // relation columns of the table's primary key
	names    []string
}

// run runs replication sessions until ctx ends or an error that retrying
// cannot fix.
func (s *streamer) run(ctx context.Context) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 500 * time.Millisecond
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = s.c.opts.ReconnectTimeout
	first := true
	begin := time.Now()
	for {
		start := pglogrepl.LSN(s.c.acked.Load())
		progressed, err := s.session(ctx, start, first)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if first && slotBusy(err) && time.Since(begin) < slotBusyWait {
			// Most likely this flow's previous process: its walsender has not
			// yet noticed the client is gone (it may be decoding a large
			// transaction). Wait for it a while before calling the slot busy.
			slog.Warn("postgres: replication slot still active; waiting for it to be released", "server", s.c.where(), "slot", s.slot,
				"waited", time.Since(begin).Round(time.Second).String(), "up_to", slotBusyWait.String())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if err == nil || !retryable(err, first) {
			return err
		}
		first = false
		if progressed {
			bo.Reset()
		}
		wait := bo.NextBackOff()
		if wait == backoff.Stop {
			return fmt.Errorf("replication connection to %s lost and not back within %s: %w", s.c.where(), s.c.opts.ReconnectTimeout, s.c.scrub.Err(err))
		}
		slog.Warn("postgres: replication connection lost; reconnecting", "server", s.c.where(), "slot", s.slot,
			"from", start.String(), "retry_in", wait.Round(time.Millisecond), "error", s.c.scrub.Err(err).Error())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// slotBusyWait is how long a stream's first session waits for its slot to
// be released by a previous session's walsender.
var slotBusyWait = 20 * time.Second

// slotBusy reports the slot being active for another server process.
func slotBusy(err error) bool {
	var se *sessionError
	return errors.As(err, &se) && se.retry
}

// retryable tells a lost connection from an error that would happen again.
func retryable(err error, first bool) bool {
	var de *decodeError
	if errors.As(err, &de) {
		return false
	}
	var se *sessionError
	if errors.As(err, &se) {
		return !first && se.retry
	}
	code := sqlState(err)
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && code == "" {
		return true // the server is unreachable for now: restarting, failing over
	}
	if connector.IsConfigError(err) {
		return false
	}
	switch {
	case code == "":
		return true // network errors, EOF
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "57P"), code == "53300":
		return true // connection failures, shutdown, starting up, too many connections
	}
	return false
}

// decodeError is a problem with the stream's content: retrying reads the
// same again.
type decodeError struct{ err error }

func (d *decodeError) Error() string { return d.err.Error() }
func (d *decodeError) Unwrap() error { return d.err }

// sessionError is a configuration error that a reconnect may see while the
// server recovers (the slot still held by our previous session).
type sessionError struct {
	*connector.ConfigError
	retry bool
}

func (s *sessionError) Unwrap() error { return s.ConfigError }

// session runs one replication connection from start. It reports whether it
// received anything, which resets the reconnect backoff.
func (s *streamer) session(ctx context.Context, start pglogrepl.LSN, first bool) (progressed bool, err error) {
	conn, err := s.c.replicationConn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the session is over
	if err := s.startReplication(ctx, conn, start); err != nil {
		return false, err
	}
	s.rels = map[uint32]*relation{}
	s.changes, s.rawRows, s.schemas, s.txnBytes = nil, nil, nil, 0
	r := &replSession{s: s, conn: conn, ticker: time.NewTicker(statusInterval)}
	defer r.ticker.Stop()
	if err := r.sendStatus(ctx); err != nil {
		return false, err
	}
	for {
		if err := r.statusIfDue(ctx); err != nil {
			return r.progressed, err
		}
		if err := r.waitForRoom(ctx); err != nil {
			return r.progressed, err
		}
		msg, err := r.receive(ctx)
		if err != nil {
			return r.progressed, err
		}
		if msg == nil {
			continue
		}
		if err := r.dispatch(ctx, msg); err != nil {
			return r.progressed, err
		}
	}
}

// startReplication starts streaming the slot from start, saying what to do
// when the slot or the publication is gone or the slot is in use.
func (s *streamer) startReplication(ctx context.Context, conn *pgconn.PgConn, start pglogrepl.LSN) error {
	args := []string{"proto_version '1'", "publication_names " + quoteLiteral(quoteIdent(s.pub)), "messages 'true'"}
	err := pglogrepl.StartReplication(ctx, conn, quoteIdent(s.slot), start, pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args})
	if err == nil {
		return nil
	}
	switch sqlState(err) {
	case "42704":
		return connector.BadConfig(fmt.Sprintf("replication slot %s does not exist at %s", s.slot, s.c.where()), "the slot was dropped; start the flow over with --restart")
	case "55006":
		return &sessionError{ConfigError: &connector.ConfigError{Msg: fmt.Sprintf("replication slot %s is in use by another process", s.slot),
			Fix: "stop the other ferry (or other client) reading it, or give this flow another --name", Err: s.c.scrub.Err(err)}, retry: true}
	}
	if strings.Contains(err.Error(), "publication") && strings.Contains(err.Error(), "does not exist") {
		return connector.BadConfig(fmt.Sprintf("publication %s does not exist at %s", s.pub, s.c.where()), "create the publication again or start the flow over with --restart")
	}
	return s.c.classify(err, "start replication from slot "+s.slot)
}

// replSession is one replication connection's loop: it reads messages,
// hands decoded batches to the emitter and keeps the server informed of
// the acknowledged position, also while it waits for the engine.
type replSession struct {
	s          *streamer
	conn       *pgconn.PgConn
	ticker     *time.Ticker // status updates
	progressed bool         // anything received
}

// sendStatus reports the acknowledged position to the server.
func (r *replSession) sendStatus(ctx context.Context) error {
	s := r.s
	acked := pglogrepl.LSN(s.c.acked.Load())
	// With no transaction open and every emitted change durable, nothing
	// before the server's WAL end is still owed to the destination:
	// confirming it lets the slot advance on an idle database and lets a
	// fast shutdown of the source finish (its walsender waits for it).
	if !s.inTx && acked >= s.emitted && s.idleEnd > acked {
		acked = s.idleEnd
	}
	return pglogrepl.SendStandbyStatusUpdate(ctx, r.conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: acked, WALFlushPosition: acked, WALApplyPosition: acked})
}

// statusIfDue sends a status update when one is due.
func (r *replSession) statusIfDue(ctx context.Context) error {
	select {
	case <-r.ticker.C:
		return r.sendStatus(ctx)
	default:
		return nil
	}
}

// send hands a batch to the emitter, still reporting status while the
// engine applies earlier ones, so the server does not time us out.
func (r *replSession) send(ctx context.Context, p pending) error {
	r.s.queued.Add(p.bytes)
	for {
		select {
		case r.s.out <- p:
			return nil
		case <-r.ticker.C:
			if err := r.sendStatus(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitForRoom reads nothing more while the engine has enough to do: the
// server waits, and our status updates keep the session alive.
func (r *replSession) waitForRoom(ctx context.Context) error {
	for r.s.queued.Load() >= maxQueuedBytes {
		select {
		case <-r.s.taken:
		case <-r.ticker.C:
			if err := r.sendStatus(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// receive waits up to a status interval for the next message; nil when
// none came.
func (r *replSession) receive(ctx context.Context) (pgproto3.BackendMessage, error) {
	rctx, cancel := context.WithTimeout(ctx, statusInterval)
	msg, err := r.conn.ReceiveMessage(rctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if pgconn.Timeout(err) {
			return nil, nil
		}
		return nil, err
	}
	return msg, nil
}

// dispatch handles one message of the replication protocol: keepalives,
// WAL data (pgoutput), errors and the end of the stream.
func (r *replSession) dispatch(ctx context.Context, msg pgproto3.BackendMessage) error {
	s := r.s
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		if len(m.Data) == 0 {
			return nil
		}
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return &decodeError{fmt.Errorf("keepalive: %w", err)}
			}
			if !s.inTx && pglogrepl.LSN(s.c.acked.Load()) >= s.emitted && ka.ServerWALEnd > s.idleEnd {
				s.idleEnd = ka.ServerWALEnd
			}
			if ka.ReplyRequested {
				return r.sendStatus(ctx)
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(m.Data[1:])
			if err != nil {
				return &decodeError{fmt.Errorf("WAL data: %w", err)}
			}
			r.progressed = true
			return s.handle(ctx, xld, func(p pending) error { return r.send(ctx, p) })
		}
	case *pgproto3.ErrorResponse:
		return pgconn.ErrorResponseToPgError(m)
	case *pgproto3.CopyDone:
		return io.EOF
	}
	return nil
}

// handle decodes one pgoutput message.
func (s *streamer) handle(ctx context.Context, xld pglogrepl.XLogData, send func(pending) error) error {
	msg, err := parseMessage(xld.WALData)
	if err != nil {
		return &decodeError{fmt.Errorf("decode pgoutput message at %s: %w", xld.WALStart, err)}
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.relation(ctx, m, send)
	case *pglogrepl.BeginMessage:
		s.inTx = true
		s.changes, s.rawRows, s.txnBytes = s.changes[:0], s.rawRows[:0], 0
		s.commitTime = m.CommitTime
	case *pglogrepl.InsertMessage:
		return s.change(ctx, m.RelationID, model.OpInsert, nil, 0, m.Tuple, len(xld.WALData), send)
	case *pglogrepl.UpdateMessage:
		return s.change(ctx, m.RelationID, model.OpUpdate, m.OldTuple, m.OldTupleType, m.NewTuple, len(xld.WALData), send)
	case *pglogrepl.DeleteMessage:
		return s.change(ctx, m.RelationID, model.OpDelete, m.OldTuple, m.OldTupleType, nil, len(xld.WALData), send)
	case *pglogrepl.TruncateMessage:
		var names []string
		for _, id := range m.RelationIDs {
			if r := s.rels[id]; r != nil && r.st != nil {
				names = append(names, r.ns.String())
			}
		}
		if len(names) > 0 {
			return &decodeError{fmt.Errorf("%s truncated at the source (in the transaction ending after %s): ferry does not replicate TRUNCATE; truncate the destination table(s) yourself and start the flow over (ferry sync --restart), or exclude the table(s)",
				strings.Join(names, ", "), s.emitted)}
		}
	case *pglogrepl.CommitMessage:
		s.inTx = false
		pos := m.TransactionEndLSN
		if pos < s.emitted {
			pos = s.emitted // sent again after a reconnect: already emitted
		}
		p, err := s.batch(ctx, pos)
		if err != nil {
			return err
		}
		p.b.CommitTime = m.CommitTime
		s.emitted = pos
		s.lastData.Store(time.Now().UnixNano())
		return send(p)
	}
	return nil
}

// batch takes the transaction's changes so far as a batch at pos.
func (s *streamer) batch(ctx context.Context, pos pglogrepl.LSN) (pending, error) {
	if err := s.fillMoved(ctx); err != nil {
		return pending{}, err
	}
	if err := s.computeGenerated(ctx); err != nil {
		return pending{}, err
	}
	p := pending{b: &model.ChangeBatch{Schemas: s.schemas, Changes: s.changes, Position: model.Position(pos.String())}, bytes: s.txnBytes}
	s.schemas, s.changes, s.rawRows, s.txnBytes = nil, nil, nil, 0
	return p, nil
}

// flushPartial emits what the open transaction has so far at the last safe
// position: before a schema change inside it, or when it grows too big.
func (s *streamer) flushPartial(ctx context.Context, send func(pending) error) error {
	if len(s.changes) == 0 && len(s.schemas) == 0 {
		return nil
	}
	p, err := s.batch(ctx, s.emitted)
	if err != nil {
		return err
	}
	p.b.Partial = s.inTx
	return send(p)
}

// change decodes an insert, update or delete of a table in the flow.
func (s *streamer) change(ctx context.Context, relID uint32, op model.Op, old *pglogrepl.TupleData, oldType uint8, tuple *pglogrepl.TupleData, size int, send func(pending) error) error {
	r := s.rels[relID]
	if r == nil {
		return &decodeError{fmt.Errorf("change to relation %d before its relation message", relID)}
	}
	if r.st == nil {
		return nil
	}
	if s.txnBytes >= maxTxnBytes {
		if err := s.flushPartial(ctx, send); err != nil {
			return err
		}
	}
	st := r.st
	ch := model.Change{Op: op, Table: r.ns}
	var oldVals []any
	if old != nil && (oldType == 'K' || oldType == 'O') {
		vals, _, err := s.decodeTuple(r, old, nil)
		if err != nil {
			return err
		}
		oldVals = vals
		key := make(model.Row, len(r.keyIdx))
		for j, ri := range r.keyIdx {
			if ri < 0 || vals[ri] == nil || model.IsUnchanged(vals[ri]) {
				return &decodeError{fmt.Errorf("%s on %s: the old row lacks key column %s", op, r.ns, st.table.PrimaryKey[j])}
			}
			key[j] = vals[ri]
		}
		if len(st.table.PrimaryKey) == 0 {
			// No primary key: the whole old row (replica identity full)
			// identifies the row, in the table's column order.
			if oldType != 'O' {
				return &decodeError{fmt.Errorf("%s on %s: the table has no primary key and its change carries no old row; it needs REPLICA IDENTITY FULL", op, r.ns)}
			}
			key = make(model.Row, len(st.table.Columns))
			for i, ri := range r.colIdx {
				if ri >= 0 {
					key[i] = vals[ri]
				}
			}
		}
		ch.Key = key
	}
	var raw []*string
	if op != model.OpDelete {
		if tuple == nil {
			return &decodeError{fmt.Errorf("%s on %s without a new row", op, r.ns)}
		}
		vals, texts, err := s.decodeTuple(r, tuple, oldVals)
		if err != nil {
			return err
		}
		row := make(model.Row, len(st.table.Columns))
		for i, ri := range r.colIdx {
			if ri >= 0 {
				row[i] = vals[ri]
			}
		}
		ch.Row = row
		if st.gen != nil {
			raw = make([]*string, len(st.table.Columns))
			for i, ri := range r.colIdx {
				if ri >= 0 {
					raw[i] = texts[ri]
				}
			}
		}
	} else if ch.Key == nil {
		return &decodeError{fmt.Errorf("delete on %s without its key (check the table's replica identity)", r.ns)}
	}
	s.changes = append(s.changes, ch)
	s.rawRows = append(s.rawRows, raw)
	s.txnBytes += int64(size)
	if len(s.changes) >= maxTxnChanges {
		return s.flushPartial(ctx, send)
	}
	return nil
}

// decodeTuple decodes a tuple's columns (in relation order). An unchanged
// TOAST value takes the old row's value when the old row has it (replica
// identity full), and is Unchanged otherwise.
func (s *streamer) decodeTuple(r *relation, t *pglogrepl.TupleData, old []any) ([]any, []*string, error) {
	vals := make([]any, len(t.Columns))
	texts := make([]*string, len(t.Columns))
	for ri, col := range t.Columns {
		ti := -1
		if ri < len(r.tableIdx) {
			ti = r.tableIdx[ri]
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeToast:
			if old != nil && ri < len(old) && old[ri] != nil && !model.IsUnchanged(old[ri]) {
				vals[ri] = old[ri]
			} else {
				vals[ri] = model.Unchanged
			}
		case pglogrepl.TupleDataTypeText:
			txt := string(col.Data)
			texts[ri] = &txt
			if ti < 0 {
				continue // a column the flow does not know
			}
			v, err := r.st.decs[ti](txt)
			if err != nil {
				return nil, nil, &decodeError{fmt.Errorf("table %s, column %s: %w", r.ns, r.st.table.Columns[ti].Name, err)}
			}
			vals[ri] = v
		default:
			return nil, nil, &decodeError{fmt.Errorf("table %s: tuple column of unexpected format %q", r.ns, col.DataType)}
		}
	}
	return vals, texts, nil
}

// relation records a relation message. When its columns differ from the
// table the flow knows, the table's new schema goes out with the next batch,
// ahead of the changes that use it.
func (s *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage, send func(pending) error) error {
	ns := model.Namespace{Schema: m.Namespace, Table: m.RelationName}
	r := &relation{ns: ns}
	for _, col := range m.Columns {
		r.names = append(r.names, col.Name)
	}
	s.rels[m.RelationID] = r
	st := s.tables[ns]
	if st == nil {
		return nil
	}
	r.st = st
	changed, newTable, err := s.c.relationSchema(ctx, st.table, m)
	if err != nil {
		return err
	}
	if changed {
		if err := s.flushPartial(ctx, send); err != nil {
			return err
		}
		nst, err := s.c.newStreamTable(ctx, newTable)
		if err != nil {
			return err
		}
		*st = *nst
		s.schemas = append(s.schemas, newTable)
	}
	r.colIdx = make([]int, len(st.table.Columns))
	for i, col := range st.table.Columns {
		r.colIdx[i] = -1
		for ri, name := range r.names {
			if name == col.Name {
				r.colIdx[i] = ri
				break
			}
		}
		if r.colIdx[i] < 0 && !col.Generated {
			return &decodeError{fmt.Errorf("table %s: column %s is missing from the change stream", ns, col.Name)}
		}
	}
	r.tableIdx = make([]int, len(r.names))
	for ri := range r.tableIdx {
		r.tableIdx[ri] = -1
	}
	for i, ri := range r.colIdx {
		if ri >= 0 {
			r.tableIdx[ri] = i
		}
	}
	r.keyIdx = make([]int, len(st.table.PrimaryKey))
	for j, k := range st.table.PrimaryKey {
		r.keyIdx[j] = -1
		for ri, name := range r.names {
			if name == k {
				r.keyIdx[j] = ri
			}
		}
	}
	return nil
}

// relationSchema compares a relation message with the known table and, if
// they differ, returns the table's new schema: known columns keep their
// place, dropped ones are gone, added ones come last. An added column with a
// default is refused: the source's existing rows have the default, which no
// change will ever carry to the destination.
func (c *Conn) relationSchema(ctx context.Context, known *model.Table, m *pglogrepl.RelationMessage) (bool, *model.Table, error) {
	var oids []uint32
	for _, col := range m.Columns {
		oids = append(oids, col.DataType)
	}
	if err := c.types.load(ctx, c.pool, oids); err != nil {
		return false, nil, c.classify(err, "read column types")
	}
	relCols := map[string]model.Type{}
	var order []string
	for _, col := range m.Columns {
		native, err := c.formatType(ctx, col.DataType, col.TypeModifier)
		if err != nil {
			return false, nil, err
		}
		ct, err := c.types.mapType(col.DataType, col.TypeModifier, native)
		if err != nil {
			return false, nil, &decodeError{fmt.Errorf("table %s, column %s: %w", known.Namespace, col.Name, err)}
		}
		relCols[col.Name] = ct.typ
		order = append(order, col.Name)
	}
	changed := false
	next := known.Clone()
	next.Columns = next.Columns[:0]
	have := map[string]bool{}
	for _, col := range known.Columns {
		have[col.Name] = true
		if col.Generated {
			next.Columns = append(next.Columns, col)
			continue
		}
		t, ok := relCols[col.Name]
		if !ok {
			changed = true // dropped
			continue
		}
		if t.String() != col.Type.String() || t.Native != col.Type.Native {
			changed = true
			col.Type = t
		}
		next.Columns = append(next.Columns, col)
	}
	var added []string
	for _, name := range order {
		if !have[name] {
			changed = true
			added = append(added, name)
			next.Columns = append(next.Columns, model.Column{Name: name, Type: relCols[name], Nullable: true})
		}
	}
	if len(added) > 0 {
		var withDefault []string
		rows, err := c.pool.Query(ctx, `SELECT a.attname FROM pg_attribute a
			WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2) AND (a.atthasdef OR a.atthasmissing OR a.attidentity <> '')`,
			qualified(known.Namespace), added)
		if err != nil {
			return false, nil, c.classify(err, "read added columns of "+known.Namespace.String())
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err == nil {
				withDefault = append(withDefault, n)
			}
		}
		rows.Close()
		if len(withDefault) > 0 {
			return false, nil, &decodeError{fmt.Errorf("table %s: column(s) %s were added with a default; the rows already copied would get NULL at the destination instead of the default, and no change will carry it: add the column(s) at the destination with the same default and start the flow over (ferry sync --restart)",
				known.Namespace, strings.Join(withDefault, ", "))}
		}
	}
	return changed, next, nil
}

// formatType spells a type with its modifier as the server does.
func (c *Conn) formatType(ctx context.Context, oid uint32, typmod int32) (string, error) {
	var s string
	if err := c.pool.QueryRow(ctx, `SELECT format_type($1, NULLIF($2, -1))`, oid, typmod).Scan(&s); err != nil {
		return "", c.classify(err, "read type name")
	}
	return s, nil
}

func (c *Conn) newStreamTable(ctx context.Context, t *model.Table) (*streamTable, error) {
	decs, err := tableDecoders(t)
	if err != nil {
		return nil, err
	}
	st := &streamTable{table: t, decs: decs}
	for _, col := range t.Columns {
		if col.Generated {
			if st.gen, err = c.loadGenerated(ctx, t); err != nil {
				return nil, err
			}
			break
		}
	}
	return st, nil
}

// heartbeat writes a logical message in a transaction of its own whenever
// the stream has been idle for the heartbeat interval (and once at the
// start), so an idle stream still reaches new positions: the slot advances
// and a flow waiting to catch up sees that it has.
func (s *streamer) heartbeat(ctx context.Context) error {
	every := s.c.opts.Heartbeat
	timer := time.NewTimer(0)
	defer timer.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		idle := time.Since(time.Unix(0, s.lastData.Load()))
		if idle >= every {
			_, err := s.c.pool.Exec(ctx, `SELECT pg_logical_emit_message(true, 'ferry', 'heartbeat')`)
			if err != nil && ctx.Err() == nil && !warned && sqlState(err) != "" {
				slog.Warn("postgres: cannot write heartbeat messages; an idle stream will not advance", "server", s.c.where(), "error", s.c.scrub.Err(err).Error())
				warned = true
			}
			idle = 0
		}
		timer.Reset(every - idle)
	}
}

var _ connector.LagMeter = (*Conn)(nil)

// LagBytes is how many bytes of WAL pos is behind the server's current
// insert position (the head CDC catches up to).
func (c *Conn) LagBytes(ctx context.Context, pos model.Position) (int64, error) {
	if _, err := pglogrepl.ParseLSN(string(pos)); err != nil {
		return 0, fmt.Errorf("postgres: bad position %q", pos)
	}
	var n int64
	if err := c.pool.QueryRow(ctx, `SELECT GREATEST(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::text::pg_lsn), 0)::int8`, string(pos)).Scan(&n); err != nil {
		return 0, c.classify(err, "measure the replication lag")
	}
	return n, nil
}
