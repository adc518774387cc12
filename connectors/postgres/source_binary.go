package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/jackc/pglogrepl"

	"github.com/ferrydb/ferry/model"
)

// Binary change stream. On PostgreSQL 14 and later pgoutput can send column
// values in their binary form (its "binary" option): the walsender then
// calls each type's send function instead of its output function (numeric,
// timestamps and floats cost much less to send than to print), and ferry
// decodes them as the copy does (codec_binary_decode.go). The server sends
// every column of every table in binary once asked, so the stream asks only
// while every table it follows has a binary decoder for each of its
// columns; a table that does not (a type ferry reads only as text, a
// generated column, whose computation reads the other columns' text) turns
// the stream to text: at the start, or, for a table that comes during the
// stream (created, altered), at its relation message, before anything of it
// is taken: the session ends and the next one, from the acknowledged
// position, streams text (a reconnect's replay, which the engine takes).
// Measured in bench/pg-mixed.sh: about 5 % off a backlog drain.

// binaryStreamMajor is the first PostgreSQL whose pgoutput has "binary".
const binaryStreamMajor = 14

// binaryOIDs are the built-in types whose binary form ferry decodes: the
// OIDs binDecoderFor accepts, less "char", whose text form differs from
// its byte (the empty value is a NUL byte, printed empty).
var binaryOIDs = map[uint32]bool{
	oidBool: true, oidInt2: true, oidInt4: true, oidInt8: true, oidFloat4: true, oidFloat8: true, oidNumeric: true,
	oidText: true, oidVarchar: true, oidBpchar: true, oidName: true, oidJSON: true, oidJSONB: true,
	oidBytea: true, oidUUID: true, oidDate: true, oidTime: true, oidTimetz: true, oidTimestamp: true,
	oidTimestamptz: true, oidInterval: true,
}

// textModeError ends a binary session at a relation it cannot decode in
// binary: the stream goes on in text.
type textModeError struct {
	table, column string
}

func (e *textModeError) Error() string {
	return fmt.Sprintf("table %s, column %s: no binary decoder; the change stream goes on in text", e.table, e.column)
}

// binaryTable says every column of st decodes from binary.
func (st *streamTable) binaryTable() (bool, string) {
	if st.gen != nil {
		return false, "(generated columns)"
	}
	for i, col := range st.table.Columns {
		if !col.Generated && st.bins[i] == nil {
			return false, col.Name
		}
	}
	return true, ""
}

// chooseBinary decides whether the next session streams binary.
func (s *streamer) chooseBinary() {
	s.binary = false
	if s.textOnly || s.c.major < binaryStreamMajor {
		return
	}
	for ns, st := range s.tables {
		if ok, col := st.binaryTable(); !ok {
			s.textOnly = true
			slog.Debug("postgres: change stream in text", "server", s.c.where(), "table", ns.String(), "column", col)
			return
		}
	}
	s.binary = true
	slog.Debug("postgres: change stream in binary", "server", s.c.where())
}

// checkBinaryTable refuses, in a binary session, a table definition the
// stream is about to take (altered, created: ferry's DDL log) with a column
// ferry cannot decode from binary, before anything of it is taken.
func (s *streamer) checkBinaryTable(t *model.Table) error {
	if !s.binary {
		return nil
	}
	for _, col := range t.Columns {
		if col.Generated {
			return &textModeError{table: t.Namespace.String(), column: col.Name + " (generated)"}
		}
		if streamBinDecoder(col.Type) == nil {
			return &textModeError{table: t.Namespace.String(), column: col.Name}
		}
	}
	return nil
}

// checkBinary refuses, in a binary session, a relation with a column ferry
// cannot decode from binary (see above); an enum's binary form is its
// label, so enums pass (asked of the server once per type).
func (s *streamer) checkBinary(ctx context.Context, m *pglogrepl.RelationMessage, st *streamTable) error {
	if !s.binary {
		return nil
	}
	name := m.Namespace + "." + m.RelationName
	if st != nil && st.gen != nil {
		return &textModeError{table: name, column: "(generated columns)"}
	}
	for _, col := range m.Columns {
		if binaryOIDs[col.DataType] {
			continue
		}
		enum, known := s.enums[col.DataType]
		if !known {
			var typtype string
			if err := s.c.pool.QueryRow(ctx, `SELECT typtype::text FROM pg_type WHERE oid = $1`, col.DataType).Scan(&typtype); err != nil {
				return s.c.classify(err, "read the type of "+name+"."+col.Name)
			}
			enum = typtype == "e"
			s.enums[col.DataType] = enum
		}
		if !enum {
			return &textModeError{table: name, column: col.Name}
		}
	}
	return nil
}

// streamBinDecoder is the binary decoder of a column in the change stream:
// the copy's, and an enum's label; none for "char" (see binaryOIDs).
func streamBinDecoder(t model.Type) binDecoder {
	switch {
	case t.Kind == model.KindEnum:
		return decString
	case t.Native == `"char"`:
		return nil
	}
	d, _ := binDecoderFor(t)
	return d
}

// binaryText is the text of a binary value of a built-in type whose
// binary form ferry's DDL log reads (source_ddl_stream.go): integers, oids
// and text.
func binaryText(oid uint32, b []byte) string {
	switch {
	case oid == oidInt8 && len(b) == 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)), 10)
	case (oid == oidOID || oid == oidInt4) && len(b) == 4:
		if oid == oidOID {
			return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b)), 10)
		}
		return strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(b))), 10)
	case oid == oidInt2 && len(b) == 2:
		return strconv.FormatInt(int64(int16(binary.BigEndian.Uint16(b))), 10)
	}
	return string(b)
}
