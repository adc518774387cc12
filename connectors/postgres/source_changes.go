package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/ferrydb/ferry/model"
)

// afterLogRow, when a test sets it, runs once a DDL log row has been
// handled, before its transaction's commit: its error ends the session as
// a lost connection would.
var afterLogRow func() error

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
		s.commitTime, s.xid = m.CommitTime, m.Xid
	case *pglogrepl.InsertMessage:
		return s.change(ctx, m.RelationID, model.OpInsert, nil, 0, m.Tuple, len(xld.WALData), send)
	case *pglogrepl.UpdateMessage:
		return s.change(ctx, m.RelationID, model.OpUpdate, m.OldTuple, m.OldTupleType, m.NewTuple, len(xld.WALData), send)
	case *pglogrepl.DeleteMessage:
		return s.change(ctx, m.RelationID, model.OpDelete, m.OldTuple, m.OldTupleType, nil, len(xld.WALData), send)
	case *pglogrepl.TruncateMessage:
		return s.truncate(ctx, m, len(xld.WALData), send)
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
		s.xid = 0
		s.emitted = pos
		s.lastData.Store(time.Now().UnixNano())
		if err := send(p); err != nil {
			return err
		}
		s.sent()
	}
	return nil
}

// truncate adds a truncate of each flow table a TRUNCATE message names (one
// statement may name several, and CASCADE adds the tables referencing
// them), in stream order among the transaction's other changes. What came
// before it in the transaction goes first, as a part at the last commit:
// the engine applies everything before a truncate anyway, and a batch that
// begins with the truncate keeps the engine from checkpointing a position
// inside a batch it has not folded yet (on the first batch of a run, a
// position it does not have).
func (s *streamer) truncate(ctx context.Context, m *pglogrepl.TruncateMessage, size int, send func(pending) error) error {
	var ns []model.Namespace
	for _, id := range m.RelationIDs {
		if r := s.rels[id]; r != nil && r.st != nil {
			ns = append(ns, r.ns)
		}
	}
	if len(ns) == 0 {
		return nil
	}
	if err := s.flushPartial(ctx, send); err != nil {
		return err
	}
	for _, n := range ns {
		s.changes = append(s.changes, model.Change{Op: model.OpTruncate, Table: n})
		s.rawRows = append(s.rawRows, nil)
	}
	s.txnBytes += int64(size)
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
	if s.xid != 0 {
		p.b.TxID = strconv.FormatUint(uint64(s.xid), 10)
	}
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
	if err := send(p); err != nil {
		return err
	}
	s.sent()
	return nil
}

// change decodes an insert, update or delete of a table in the flow.
func (s *streamer) change(ctx context.Context, relID uint32, op model.Op, old *pglogrepl.TupleData, oldType uint8, tuple *pglogrepl.TupleData, size int, send func(pending) error) error {
	r := s.rels[relID]
	if r == nil {
		return &decodeError{fmt.Errorf("change to relation %d before its relation message", relID)}
	}
	if r.logCols != nil {
		if op != model.OpInsert || !s.ddlLog {
			return nil
		}
		if err := s.logRow(ctx, r, tuple, send); err != nil {
			return err
		}
		if afterLogRow != nil {
			return afterLogRow()
		}
		return nil
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
		vals, _, err := s.decodeTuple(r, old, nil, false)
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
		vals, texts, err := s.decodeTuple(r, tuple, oldVals, st.gen != nil)
		if err != nil {
			return err
		}
		row := model.Row(vals)
		if !r.same || len(vals) != len(st.table.Columns) {
			row = make(model.Row, len(st.table.Columns))
			for i, ri := range r.colIdx {
				if ri >= 0 {
					row[i] = vals[ri]
				}
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

// decodeTuple decodes a tuple's columns (in relation order), and keeps
// their texts too when withTexts. An unchanged TOAST value takes the old
// row's value when the old row has it (replica identity full), and is
// Unchanged otherwise.
func (s *streamer) decodeTuple(r *relation, t *pglogrepl.TupleData, old []any, withTexts bool) ([]any, []*string, error) {
	vals := make([]any, len(t.Columns))
	var texts []*string
	if withTexts {
		texts = make([]*string, len(t.Columns))
	}
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
			if withTexts {
				texts[ri] = &txt
			}
			if ti < 0 {
				continue // a column the flow does not know
			}
			v, err := r.st.decs[ti](txt)
			if err != nil {
				return nil, nil, &decodeError{fmt.Errorf("table %s, column %s: %w", r.ns, r.st.table.Columns[ti].Name, err)}
			}
			vals[ri] = v
		case pglogrepl.TupleDataTypeBinary:
			if ti < 0 {
				continue // a column the flow does not know
			}
			bin := r.st.bins[ti]
			if bin == nil {
				return nil, nil, &decodeError{fmt.Errorf("table %s, column %s: a binary value ferry cannot decode", r.ns, r.st.table.Columns[ti].Name)}
			}
			v, err := bin(&s.slab, col.Data)
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
