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
	"github.com/ferrydb/ferry/errs"
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

// StreamChanges streams the publication's changes from the slot, starting
// at from. Each transaction becomes one batch (or several for a huge one)
// whose position is the commit's end: resuming there replays nothing
// committed before and skips nothing after. An idle stream still advances:
// a heartbeat transaction (a logical message) is written every Heartbeat.
// A lost connection (a server restart) is retried with backoff from the
// last position the engine acknowledged; what is received again is emitted
// again, harmlessly.
func (c *Conn) StreamChanges(ctx context.Context, tables []*model.Table, from model.Position, opts connector.StreamOptions, emit func(context.Context, *model.ChangeBatch) error) error {
	c.src.release() // the copy is over; the slot's snapshot is no longer needed
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
	s := &streamer{c: c, tables: map[model.Namespace]*streamTable{}, emitted: start, newTables: opts.NewTables, enums: map[uint32]bool{}}
	s.slot, _ = c.slotFor(flow)
	s.pub, _ = c.publicationFor(flow)
	if err := c.checkSlotUsable(ctx, s.slot, from); err != nil {
		return err
	}
	if s.ddlLog, err = c.publishesDDLLog(ctx, s.pub); err != nil {
		return err
	}
	if s.ddlLog {
		if err := c.upgradeDDLLog(ctx); err != nil {
			return err
		}
	}
	c.warnInactiveSlots(ctx, s.slot)
	for _, t := range tables {
		st, err := c.newStreamTable(ctx, t)
		if err != nil {
			return err
		}
		s.tables[t.Namespace] = st
	}
	out := make(chan []pending, 16)
	s.out, s.taken = out, make(chan struct{}, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for ps := range out {
			for _, p := range ps {
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
	bins  []binDecoder // nil where a column has no binary form (source_binary.go)
	gen   *generated   // nil without generated columns
}

type streamer struct {
	c         *Conn
	slab      model.Slab // binary values' storage (model.Slab); the decoding goroutine's
	slot, pub string
	tables    map[model.Namespace]*streamTable
	rels      map[uint32]*relation
	// ddlLog: the publication carries ferry's DDL log, by which schema
	// changes are followed (source_ddl_stream.go).
	ddlLog bool
	// newTables selects the tables created at the source the stream
	// follows from their creation on (StreamOptions.NewTables; nil: none).
	newTables func(model.Namespace) bool
	out       chan<- []pending // batches to emit, in order; several at once while reading a backlog
	// binary: this session streams values in binary; textOnly: the stream
	// has turned to text for good; enums: which type OIDs are enums
	// (source_binary.go).
	binary, textOnly bool
	enums            map[uint32]bool

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
	xid     uint32 // the open transaction's, from BEGIN
	idleEnd pglogrepl.LSN

	// The transaction being received.
	changes    []model.Change
	txnBytes   int64       // the changes' size in the stream
	rawRows    [][]*string // per change, the new tuple's text (generated columns)
	schemas    []model.SchemaChange
	commitTime time.Time
	// undo takes back, newest first, the changes to tables (a definition
	// replaced, a table added or forgotten) whose schema changes are in
	// schemas, not yet emitted: a session lost before they are emitted
	// restores the tables as the engine knows them, and the next session
	// finds the change again when the server sends the transaction again.
	undo []func()
}

// changeTables records how to take back a change to the stream's tables
// that an emitted batch has not carried to the engine yet.
func (s *streamer) changeTables(undo func()) { s.undo = append(s.undo, undo) }

// sent forgets how to take back the changes a batch just emitted carried.
func (s *streamer) sent() { s.undo = s.undo[:0] }

// restoreTables takes back the changes no emitted batch carried, at the
// start of a session.
func (s *streamer) restoreTables() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = s.undo[:0]
}

// pending is a batch on its way to the engine, with its size in the
// stream.
type pending struct {
	b     *model.ChangeBatch
	bytes int64
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
		start := pglogrepl.LSN(s.c.src.acked.Load())
		progressed, err := s.session(ctx, start, first)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var tm *textModeError
		if errors.As(err, &tm) {
			slog.Info("postgres: a table has a column ferry reads only as text: the change stream goes on in text", "server", s.c.where(), "table", tm.table, "column", tm.column, "from", start.String())
			s.textOnly = true
			continue
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
	if errs.DiagnoseTLS(err) != errs.NoTLSProblem || clientCertRefusal(err) {
		return false // a certificate does not fix itself
	}
	code := sqlState(err)
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && code == "" {
		return true // the server is unreachable for now: restarting, failing over
	}
	if errs.IsConfigError(err) {
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
	*errs.ConfigError
	retry bool
}

func (s *sessionError) Unwrap() error { return s.ConfigError }

// session runs one replication connection from start. It reports whether it
// received anything, which resets the reconnect backoff.
func (s *streamer) session(ctx context.Context, start pglogrepl.LSN, first bool) (progressed bool, err error) {
	pacer := &readPacer{}
	if pacerStarted != nil {
		pacerStarted(pacer)
	}
	conn, err := s.c.replicationConn(ctx, s.slot, pacer)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the session is over
	s.chooseBinary()
	if err := s.startReplication(ctx, conn, start); err != nil {
		return false, err
	}
	s.rels = map[uint32]*relation{}
	s.restoreTables()
	s.changes, s.rawRows, s.schemas, s.txnBytes = nil, nil, nil, 0
	r := &replSession{s: s, conn: conn, pacer: pacer, ticker: time.NewTicker(statusInterval)}
	defer r.ticker.Stop()
	// receive waits by a read deadline, not by a context per message: a
	// cancelled ctx ends the wait by moving the deadline to now.
	defer context.AfterFunc(ctx, func() { conn.Conn().SetReadDeadline(time.Now()) })() //nolint:errcheck // the read then fails, as it should
	// Batches held back are handed over whatever ends the session: the
	// stream's position (emitted) is past them. The connection may be
	// gone: no status updates while this waits.
	defer func() {
		if len(r.held) == 0 {
			return
		}
		select {
		case s.out <- r.held:
			r.held = nil
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
		}
	}()
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
		if len(r.held) > 0 && r.pacer.buffered() == 0 {
			// The next read may wait for the server.
			if err := r.release(ctx); err != nil {
				return r.progressed, err
			}
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
	if s.binary {
		args = append(args, "binary 'true'")
	}
	err := pglogrepl.StartReplication(ctx, conn, quoteIdent(s.slot), start, pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args})
	if err == nil {
		return nil
	}
	switch sqlState(err) {
	case "42704":
		return s.c.slotGone(s.slot, model.Position(start.String()))
	case "55000":
		// "can no longer get changes from replication slot": invalidated,
		// maybe while this flow streamed from it (the server ends the
		// walsender of a slot it invalidates).
		if h, herr := s.c.readSlotHealth(ctx, s.slot); herr == nil && h.exists && h.walStatus == "lost" {
			return s.c.slotLost(s.slot, model.Position(start.String()), h)
		}
	case "55006":
		return &sessionError{ConfigError: &errs.ConfigError{Msg: fmt.Sprintf("replication slot %s is in use by another process", s.slot),
			Fix: "stop the other ferry (or other client) reading it, or give this flow another --name", Err: s.c.scrub.Err(err)}, retry: true}
	}
	if strings.Contains(err.Error(), "publication") && strings.Contains(err.Error(), "does not exist") {
		return errs.BadConfig(fmt.Sprintf("publication %s does not exist at %s", s.pub, s.c.where()), "create the publication again or start the flow over with --restart")
	}
	return s.c.classify(err, "start replication from slot "+s.slot)
}

// replSession is one replication connection's loop: it reads messages,
// hands decoded batches to the emitter and keeps the server informed of
// the acknowledged position, also while it waits for the engine.
type replSession struct {
	s          *streamer
	conn       *pgconn.PgConn
	pacer      *readPacer   // the connection's reads (source_pace.go)
	ticker     *time.Ticker // status updates
	progressed bool         // anything received
	// held are whole transactions decoded from a backlog and not handed
	// to the emitter yet (send), heldChanges their changes.
	held        []pending
	heldChanges int
	// deadline is the read deadline receive set, zero once it passed.
	deadline time.Time
}

// sendStatus reports the acknowledged position to the server.
func (r *replSession) sendStatus(ctx context.Context) error {
	s := r.s
	acked := pglogrepl.LSN(s.c.src.acked.Load())
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

// Held transactions are handed over once there are heldMax of them or
// heldMaxChanges changes, or when the driver has nothing more buffered.
const (
	heldMax        = 256
	heldMaxChanges = 4096
)

// send hands a batch to the emitter, still reporting status while the
// engine applies earlier ones, so the server does not time us out.
//
// While the stream reads a backlog (the pacer is on), whole transactions
// are held and handed over together, up to heldMax of them or until the
// next read may wait: handed over one by one, each woke the emitter and
// the engine's batcher for a few changes, and in a drain that outran its
// walsender that cost more of ferry's CPU than the changes themselves
// (bench/pg-mixed.sh). A batch with schema changes or a part of a
// transaction goes at once, after those held.
func (r *replSession) send(ctx context.Context, p pending) error {
	r.s.queued.Add(p.bytes)
	r.held = append(r.held, p)
	r.heldChanges += len(p.b.Changes)
	if r.pacer != nil && r.pacer.on.Load() && len(p.b.Schemas) == 0 && !p.b.Partial &&
		len(r.held) < heldMax && r.heldChanges < heldMaxChanges {
		return nil
	}
	return r.release(ctx)
}

// release hands the held batches to the emitter. Those it could not hand
// over stay held: the session's end hands them over (the stream's
// position is past them, and a batch the server sends again is emitted
// at that position).
func (r *replSession) release(ctx context.Context) error {
	if len(r.held) == 0 {
		return nil
	}
	if err := r.put(ctx, r.held); err != nil {
		return err
	}
	r.held, r.heldChanges = nil, 0
	return nil
}

// put puts batches on the emitter's queue, in one hand-over.
func (r *replSession) put(ctx context.Context, ps []pending) error {
	for {
		select {
		case r.s.out <- ps:
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
	if r.s.queued.Load() >= maxQueuedBytes {
		// What is held counts as queued: the engine must have it.
		if err := r.release(ctx); err != nil {
			return err
		}
	}
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
// none came. The wait is a read deadline on the connection, set once an
// interval: a context with a timeout per message (and the driver's watch
// of it) cost a fifth of ferry's CPU in a backlog drain. A read that times
// out is harmless (the driver keeps a message read in part), so the
// deadline passing while messages flow costs one empty return an
// interval. session cancels the wait with ctx (context.AfterFunc).
func (r *replSession) receive(ctx context.Context) (pgproto3.BackendMessage, error) {
	// The driver clears the deadlines after a call whose context was
	// cancelled (sendStatus): a cancel is checked here too.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.deadline.IsZero() {
		r.deadline = time.Now().Add(statusInterval)
		if err := r.conn.Conn().SetReadDeadline(r.deadline); err != nil {
			return nil, err
		}
		// A cancel that came before the deadline was set moved an
		// earlier one: it must still end the wait.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	msg, err := r.conn.ReceiveMessage(context.Background())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if pgconn.Timeout(err) {
			r.deadline = time.Time{}
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
			if !s.inTx && pglogrepl.LSN(s.c.src.acked.Load()) >= s.emitted && ka.ServerWALEnd > s.idleEnd {
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
			err = s.handle(ctx, xld, func(p pending) error { return r.send(ctx, p) })
			r.pacer.follow(xld.ServerTime, s.commitTime) // after a BEGIN, its commit time
			return err
		}
	case *pgproto3.ErrorResponse:
		return pgconn.ErrorResponseToPgError(m)
	case *pgproto3.CopyDone:
		return io.EOF
	}
	return nil
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
