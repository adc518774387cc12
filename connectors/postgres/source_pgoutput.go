package postgres

import (
	"encoding/binary"
	"fmt"

	"github.com/jackc/pglogrepl"
)

// parseMessage decodes a pgoutput message. Inserts, updates and deletes are
// decoded here with their values pointing into data: pglogrepl copies each
// value byte by byte, which for a 100 MB value meant a second 100 MB (and
// seconds of CPU) before decodeTuple made the one copy the change keeps. The
// values are only valid while data is (until the next message is
// received), which is as long as handle uses them. Other messages go to
// pglogrepl (its panics on malformed input become errors).
func parseMessage(data []byte) (pglogrepl.Message, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty message")
	}
	body := data[1:]
	switch pglogrepl.MessageType(data[0]) {
	case pglogrepl.MessageTypeInsert:
		rel, rest, err := relationID(body)
		if err != nil {
			return nil, fmt.Errorf("insert: %w", err)
		}
		if len(rest) == 0 || rest[0] != 'N' {
			return nil, fmt.Errorf("insert: no new tuple")
		}
		t, _, err := parseTuple(rest[1:])
		if err != nil {
			return nil, fmt.Errorf("insert: %w", err)
		}
		m := &pglogrepl.InsertMessage{RelationID: rel, Tuple: t}
		m.SetType(pglogrepl.MessageTypeInsert)
		return m, nil
	case pglogrepl.MessageTypeUpdate:
		rel, rest, err := relationID(body)
		if err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		m := &pglogrepl.UpdateMessage{RelationID: rel}
		if len(rest) > 0 && (rest[0] == 'K' || rest[0] == 'O') {
			m.OldTupleType = rest[0]
			t, n, err := parseTuple(rest[1:])
			if err != nil {
				return nil, fmt.Errorf("update, old tuple: %w", err)
			}
			m.OldTuple = t
			rest = rest[1+n:]
		}
		if len(rest) == 0 || rest[0] != 'N' {
			return nil, fmt.Errorf("update: no new tuple")
		}
		if m.NewTuple, _, err = parseTuple(rest[1:]); err != nil {
			return nil, fmt.Errorf("update, new tuple: %w", err)
		}
		m.SetType(pglogrepl.MessageTypeUpdate)
		return m, nil
	case pglogrepl.MessageTypeDelete:
		rel, rest, err := relationID(body)
		if err != nil {
			return nil, fmt.Errorf("delete: %w", err)
		}
		if len(rest) == 0 || (rest[0] != 'K' && rest[0] != 'O') {
			return nil, fmt.Errorf("delete: no old tuple")
		}
		m := &pglogrepl.DeleteMessage{RelationID: rel, OldTupleType: rest[0]}
		if m.OldTuple, _, err = parseTuple(rest[1:]); err != nil {
			return nil, fmt.Errorf("delete, old tuple: %w", err)
		}
		m.SetType(pglogrepl.MessageTypeDelete)
		return m, nil
	}
	return parseOther(data)
}

// parseOther has pglogrepl decode a message; it panics on some malformed
// ones, which are an error here like any other.
func parseOther(data []byte) (m pglogrepl.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("malformed message %q: %v", data[0], r)
		}
	}()
	return pglogrepl.Parse(data)
}

func relationID(b []byte) (uint32, []byte, error) {
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("truncated relation id")
	}
	return binary.BigEndian.Uint32(b), b[4:], nil
}

// parseTuple reads a TupleData and returns it with the bytes it took. The
// columns' Data point into b.
func parseTuple(b []byte) (*pglogrepl.TupleData, int, error) {
	if len(b) < 2 {
		return nil, 0, fmt.Errorf("truncated column count")
	}
	n := int(binary.BigEndian.Uint16(b))
	off := 2
	cols := make([]pglogrepl.TupleDataColumn, n)
	t := &pglogrepl.TupleData{ColumnNum: uint16(n), Columns: make([]*pglogrepl.TupleDataColumn, n)}
	for i := range cols {
		if off >= len(b) {
			return nil, 0, fmt.Errorf("column %d of %d: truncated", i+1, n)
		}
		c := &cols[i]
		c.DataType = b[off]
		off++
		switch c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if len(b)-off < 4 {
				return nil, 0, fmt.Errorf("column %d of %d: truncated length", i+1, n)
			}
			l := binary.BigEndian.Uint32(b[off:])
			off += 4
			if uint64(l) > uint64(len(b)-off) {
				return nil, 0, fmt.Errorf("column %d of %d: %d bytes, only %d left", i+1, n, l, len(b)-off)
			}
			c.Length = l
			c.Data = b[off : off+int(l) : off+int(l)]
			off += int(l)
		case pglogrepl.TupleDataTypeNull, pglogrepl.TupleDataTypeToast:
		default:
			return nil, 0, fmt.Errorf("column %d of %d: unknown kind %q", i+1, n, c.DataType)
		}
		t.Columns[i] = c
	}
	return t, off, nil
}
