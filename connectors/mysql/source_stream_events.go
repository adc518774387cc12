package mysql

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/ferrydb/ferry/errs"
	"github.com/ferrydb/ferry/model"
)

// handle processes one event. Positions only advance at transaction
// boundaries, so a reconnection never resumes inside a transaction.
func (s *stream) handle(ctx context.Context, h *replication.EventHeader, ev replication.Event) error {
	switch e := ev.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
		if !s.inTxn {
			s.boundary = s.boundary.at(s.file, uint32(e.Position))
		}
		return nil
	case *replication.HeartbeatEvent:
		return s.idle(ctx)
	case *replication.MariadbGTIDEvent:
		s.begin(e.IsStandalone())
		s.txnGTID = e.GTID.String()
		return nil
	case *replication.GTIDEvent:
		s.begin(true) // a BEGIN query follows unless the group is one DDL
		if next, err := e.GTIDNext(); err == nil {
			s.txnGTID = next.String()
		}
		return nil
	case *replication.GtidTaggedLogEvent:
		s.begin(true)
		return nil
	case *replication.TableMapEvent:
		return s.tableMap(ctx, e, h)
	case *replication.RowsEvent:
		return s.rows(ctx, e, h)
	case *replication.XIDEvent:
		return s.commit(ctx, h)
	case *replication.QueryEvent:
		return s.query(ctx, e, h)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			ih := *inner.Header
			ih.LogPos = h.LogPos // inner events live inside this one
			if err := s.handle(ctx, &ih, inner.Event); err != nil {
				return err
			}
		}
		return nil
	}
	s.advance(h)
	return nil
}

func (s *stream) begin(standalone bool) {
	s.inTxn = true
	s.standalone = standalone
	s.changes, s.schemas = s.changes[:0], nil
	s.txnGTID = ""
}

// advance moves the resume point over an event outside any transaction.
func (s *stream) advance(h *replication.EventHeader) {
	if s.inTxn || h.LogPos == 0 || h.Flags&replication.LOG_EVENT_ARTIFICIAL_F != 0 {
		return
	}
	p := s.boundary.at(s.file, h.LogPos)
	if c, err := p.compareFile(s.boundary); err == nil && c > 0 {
		s.boundary = p
	}
}

// idle emits an empty batch at the current position, so a caught-up flow
// can tell it is caught up.
func (s *stream) idle(ctx context.Context) error {
	if s.inTxn {
		return nil
	}
	// Even when the position has not moved: an incremental snapshot's
	// watermark is the head position, and its chunk waits for a batch at it.
	if c, err := s.boundary.compareFile(s.emitted); err == nil && c <= 0 && time.Since(s.lastEmit) < idleEmit {
		return nil
	}
	return s.send(ctx, &model.ChangeBatch{Position: s.boundary.position(), CommitTime: time.Now()}, s.boundary)
}

func (s *stream) send(ctx context.Context, b *model.ChangeBatch, at binlogPos) error {
	if err := s.emit(ctx, b); err != nil {
		// The caller refused the batch: not an interrupted stream to
		// reconnect, and its error is the one StreamChanges returns.
		return fatal(err)
	}
	s.emitted = at
	s.lastEmit = time.Now()
	return nil
}

// commit ends a transaction (or a standalone statement) at the event whose
// header is h: the position after it is a safe resume point.
func (s *stream) commit(ctx context.Context, h *replication.EventHeader) error {
	pos := s.boundary.at(s.file, h.LogPos)
	s.inTxn, s.standalone = false, false
	if h.LogPos == 0 {
		pos = s.boundary // an event without a position (never expected at a commit)
	}
	if s.txnGTID != "" && pos.hasGTID {
		gtid, err := addGTID(pos.gtid, s.txnGTID)
		if err != nil {
			return fatal(fmt.Errorf("mysql %s: GTID %s after %s: %w", s.c.host, s.txnGTID, pos, err))
		}
		pos.gtid = gtid
	}
	s.txnGTID = ""
	s.boundary = pos
	s.progressed = true
	commitTime := time.Unix(int64(h.Timestamp), 0)
	if len(s.changes) == 0 && len(s.schemas) == 0 {
		if time.Since(s.lastEmit) < idleEmit {
			return nil
		}
		return s.send(ctx, &model.ChangeBatch{Position: pos.position(), CommitTime: commitTime}, pos)
	}
	b := &model.ChangeBatch{Schemas: s.schemas, Changes: s.changes, Position: pos.position(), CommitTime: commitTime}
	s.changes, s.schemas = nil, nil
	return s.send(ctx, b, pos)
}

func (s *stream) at(h *replication.EventHeader) string {
	return fmt.Sprintf("%s:%d", s.file, h.LogPos)
}

func (s *stream) rows(ctx context.Context, e *replication.RowsEvent, h *replication.EventHeader) error {
	tm := s.ids[e.TableID]
	if tm == nil || tm.st == nil {
		return nil
	}
	st := tm.st
	t := st.table
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return fatal(&errs.ConfigError{Msg: fmt.Sprintf("mysql %s: a row of table %s at %s lacks column(s): the binlog was written with binlog_row_image other than FULL", s.c.host, t.Namespace, s.at(h)),
				Fix: "SET GLOBAL binlog_row_image = 'FULL' (and in the server's configuration), then restart the flow with --restart"})
		}
	}
	ns := t.Namespace
	where := func(err error) error {
		return fatal(fmt.Errorf("table %s, binlog %s: %w", ns, s.at(h), err))
	}
	if n := int(e.ColumnCount); n < len(t.Columns) {
		// A row from before columns were appended: they were NULL.
		for i, r := range e.Rows {
			e.Rows[i] = append(r[:n:n], make([]any, len(t.Columns)-n)...)
		}
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, raw := range e.Rows {
			row, err := decodeRow(t, st.codecs, raw, true)
			if err != nil {
				return where(err)
			}
			s.changes = append(s.changes, model.Change{Op: model.OpInsert, Table: ns, Row: row})
		}
	case replication.EnumRowsEventTypeDelete:
		for _, raw := range e.Rows {
			key, err := s.key(st, raw)
			if err != nil {
				return where(err)
			}
			s.changes = append(s.changes, model.Change{Op: model.OpDelete, Table: ns, Key: key})
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(e.Rows)%2 != 0 {
			return where(fmt.Errorf("update event with %d row images", len(e.Rows)))
		}
		for i := 0; i < len(e.Rows); i += 2 {
			before, err := s.key(st, e.Rows[i])
			if err != nil {
				return where(err)
			}
			row, err := decodeRow(t, st.codecs, e.Rows[i+1], true)
			if err != nil {
				return where(err)
			}
			ch := model.Change{Op: model.OpUpdate, Table: ns, Row: row}
			if keyChanged(t, st.keyIdx, before, row) {
				ch.Key = before
			}
			s.changes = append(s.changes, ch)
		}
	default:
		return where(fmt.Errorf("unknown rows event type %v", h.EventType))
	}
	if len(s.changes) >= maxPendingChanges && len(s.schemas) == 0 {
		// A large transaction: emit what it has so far at the position where
		// it began, which stays a safe resume point, marked Partial so a
		// transactional apply does not commit it alone.
		b := &model.ChangeBatch{Changes: s.changes, Position: s.boundary.position(), Partial: true}
		s.changes = nil
		return s.send(ctx, b, s.boundary)
	}
	return nil
}

// key decodes the primary-key values of a row image, in key order.
func (s *stream) key(st *streamTable, raw []any) (model.Row, error) {
	key := make(model.Row, len(st.keyIdx))
	for i, j := range st.keyIdx {
		v, err := st.codecs[j].decode(raw[j], true)
		if err != nil {
			return nil, columnErr(st.table, st.table.Columns[j].Name, nil, err)
		}
		key[i] = v
	}
	return key, nil
}

func keyChanged(t *model.Table, keyIdx []int, before, after model.Row) bool {
	for i, j := range keyIdx {
		a, err1 := model.AppendCanonical(nil, t.Columns[j].Type, before[i])
		b, err2 := model.AppendCanonical(nil, t.Columns[j].Type, after[j])
		if err1 != nil || err2 != nil || string(a) != string(b) {
			return true
		}
	}
	return false
}

func (s *stream) query(ctx context.Context, e *replication.QueryEvent, h *replication.EventHeader) error {
	q := string(e.Query)
	st := classify(q, string(e.Schema))
	switch st.kind {
	case stmtBegin:
		s.inTxn, s.standalone = true, false
		return nil
	case stmtCommit:
		return s.commit(ctx, h)
	case stmtCreateTable:
		if s.flow(st.tables[0]) == nil || !st.create.orReplace {
			if err := s.createTable(ctx, st.tables[0], st.create, string(e.Schema), sqlMode(e.StatusVars), s.statementAt(h, q)); err != nil {
				return err
			}
			return s.statementEnd(ctx, h)
		}
		// CREATE OR REPLACE of a flow table: a new table in its place,
		// which stops the flow below.
		st.kind = stmtSchemaChange
	case stmtDropTables:
		s.dropTables(st.tables, st.databases, s.statementAt(h, q))
		return s.statementEnd(ctx, h)
	case stmtRenameTables:
		if err := s.renameTables(ctx, st.renames, s.statementAt(h, q)); err != nil {
			return err
		}
		return s.statementEnd(ctx, h)
	}
	var touched []*streamTable
	for _, ns := range st.tables {
		if t := s.flow(ns); t != nil {
			touched = append(touched, t)
		}
	}
	for _, db := range st.databases {
		for ns, t := range s.tables {
			if ns.Schema == db || (s.c.server.lowerCase != 0 && strings.EqualFold(ns.Schema, db)) {
				touched = append(touched, t)
			}
		}
	}
	if len(touched) > 0 {
		stmt := q
		if len(stmt) > 300 {
			stmt = stmt[:300] + "..."
		}
		where := s.statementAt(h, q)
		switch st.kind {
		case stmtSchemaChange:
			why := "ferry cannot follow this statement"
			if st.reason != "" {
				why = "ferry cannot follow it: " + st.reason
			}
			return fatal(fmt.Errorf("table %s changed at %s; %s, so the flow stops here and writes nothing wrong: recreate the destination table to match and restart the flow (ferry sync --restart)", touched[0].table.Namespace, where, why))
		case stmtDML:
			return fatal(&errs.ConfigError{Msg: fmt.Sprintf("mysql %s: table %s was changed by a statement logged as SQL text at binlog %s (%q), which carries no rows; a session used binlog_format STATEMENT or MIXED", s.c.host, touched[0].table.Namespace, s.at(h), stmt),
				Fix: "make every writer use binlog_format=ROW (SET GLOBAL binlog_format = 'ROW' and reconnect the writers), then restart the flow with --restart"})
		case stmtAlter:
			for _, t := range touched {
				if err := s.alter(ctx, t, st.ops, where); err != nil {
					return err
				}
			}
		case stmtTruncate:
			for _, t := range touched {
				s.changes = append(s.changes, model.Change{Op: model.OpTruncate, Table: t.table.Namespace})
			}
		}
	}
	return s.statementEnd(ctx, h)
}

// statementEnd ends a statement that is its own transaction (DDL).
func (s *stream) statementEnd(ctx context.Context, h *replication.EventHeader) error {
	if s.standalone || !s.inTxn {
		return s.commit(ctx, h)
	}
	return nil
}

// statementAt names a statement of the binlog in a message.
func (s *stream) statementAt(h *replication.EventHeader, q string) string {
	if len(q) > 300 {
		q = q[:300] + "..."
	}
	return fmt.Sprintf("binlog %s by %q", s.at(h), q)
}
